package runner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/backoff"
	"osmanager/agent/proc"
)

// Status is a run's state.
type Status string

// Run states: starting → running → (paused ↔ running) → stopping →
// exited or failed. Between automatic restarts a run is starting again,
// with NextStart set.
const (
	Starting Status = "starting"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopping Status = "stopping"
	Exited   Status = "exited"
	Failed   Status = "failed"
)

// Final reports a state nothing follows.
func (s Status) Final() bool { return s == Exited || s == Failed }

// ExitInfo is how a run's leader last ended.
type ExitInfo struct {
	Code   int    `json:"code"`             // -1 after a signal, or when unknown
	Signal string `json:"signal,omitempty"` // "TERM", "KILL"
	// Unknown: the leader was adopted (not the agent's child), so its
	// status went to init.
	Unknown bool `json:"unknown,omitempty"`
}

func exitInfo(e proc.Exit, known bool) *ExitInfo {
	if !known {
		return &ExitInfo{Code: -1, Unknown: true}
	}
	x := &ExitInfo{Code: e.Code}
	if e.Signaled() {
		x.Signal = proc.SignalName(e.Signal)
	}
	return x
}

// String is "exit 3", "signal TERM" or "unknown".
func (x *ExitInfo) String() string {
	switch {
	case x == nil:
		return ""
	case x.Unknown:
		return "unknown"
	case x.Signal != "":
		return "signal " + x.Signal
	}
	return fmt.Sprintf("exit %d", x.Code)
}

// State is a run's state as the manager publishes it.
type State struct {
	RunID     uint64     `json:"runid"`
	ID        string     `json:"id"`
	Version   string     `json:"version"`
	State     Status     `json:"state"`
	Pids      []int      `json:"pids"` // leader first
	Since     time.Time  `json:"since"`
	Restarts  int        `json:"restarts"`
	LastExit  *ExitInfo  `json:"last_exit,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	NextStart time.Time  `json:"next_start,omitzero"`
	Cgroup    CgroupMode `json:"cgroup"`
	// Record is set while a process lives, for the manager to persist.
	Record *Record `json:"-"`
}

// AGL is the state as AGL's `state` verb gives it.
type AGL struct {
	RunID uint64 `json:"runid"`
	Pids  []int  `json:"pids"`
	State Status `json:"state"`
	ID    string `json:"id"`
}

// AGL returns the AGL form of the state.
func (s State) AGL() AGL {
	return AGL{RunID: s.RunID, Pids: slices.Clone(s.Pids), State: s.State, ID: s.ID}
}

type op int

const (
	opPause op = iota + 1
	opResume
	opTerminate
)

type command struct {
	op    op
	reply chan error // buffered: the loop never waits for the asker
}

// run is one run: its loop goroutine alone drives it and writes its
// state; others read the state under mu and send commands.
type run struct {
	r    *Runner
	spec Spec
	cmds chan command
	done chan struct{} // closed when the loop has returned
	up   chan struct{} // closed once the run is first running, or final

	mu   sync.Mutex
	st   State
	inst Instance
	sink *sink

	// loop-owned
	b       *backoff.Backoff
	starts  []time.Time
	waiters []chan error // terminates answered at the end
	last    Instance     // the last instance, cleaned up
	begun   bool         // started or adopted once: the next start is a restart
}

func (u *run) state() State {
	u.mu.Lock()
	st, inst := u.st, u.inst
	u.mu.Unlock()
	if inst != nil && !st.State.Final() {
		st.Pids = inst.Pids()
	}
	st.Pids = slices.Clone(st.Pids)
	if st.Pids == nil {
		st.Pids = []int{}
	}
	return st
}

// set changes the state and reports it.
func (u *run) set(f func(*State)) {
	u.mu.Lock()
	f(&u.st)
	st := u.st
	inst := u.inst
	if st.State == Running || st.State == Paused || st.State.Final() {
		select {
		case <-u.up:
		default:
			close(u.up)
		}
	}
	u.mu.Unlock()
	if u.r.cfg.OnChange == nil {
		return
	}
	if inst != nil && !st.State.Final() {
		st.Pids = inst.Pids()
	}
	u.r.cfg.OnChange(st)
}

func (u *run) now() time.Time { return u.r.clock().Now() }

func (u *run) setInst(in Instance) {
	u.mu.Lock()
	u.inst = in
	u.mu.Unlock()
}

// outcome is how watching an instance ended.
type outcome int

const (
	leaderExited outcome = iota
	terminated
	detached
)

// loop drives the run until it is final or the runner stops. inst is
// an adopted instance, or nil to start one.
func (u *run) loop(ctx context.Context, inst Instance) {
	defer close(u.done)
	log := u.r.log().With("app", u.spec.ID, "runid", u.spec.RunID)
	for {
		if inst == nil {
			var err error
			if inst, err = u.start(); err != nil {
				log.Error("run cannot start", "err", err)
				u.end(Failed, nil, err.Error())
				return
			}
			log.Info("run started", "pid", inst.Record().Pid, "restarts", u.st.Restarts)
		}
		began := u.now()
		switch u.watch(ctx, inst) {
		case detached:
			log.Info("run left running for the next agent", "pid", inst.Record().Pid)
			inst.Detach()
			u.sink.close(false, u.spec.Pipe())
			u.answer(nil)
			return
		case terminated:
			e, known := inst.Exit()
			u.cleanup(inst)
			x := exitInfo(e, known)
			log.Info("run terminated", "exit", x.String())
			u.end(Exited, x, "terminated")
			return
		}
		e, known := inst.Exit()
		x := exitInfo(e, known)
		u.cleanup(inst)
		inst = nil
		restart := u.spec.Restart == RestartAlways || (u.spec.Restart == RestartOnFailure && !(known && e.Success()))
		if !restart {
			log.Info("run exited", "exit", x.String(), "policy", u.spec.Restart)
			u.end(Exited, x, "")
			return
		}
		now := u.now()
		lim := u.spec.StartLimit
		u.starts = slices.DeleteFunc(u.starts, func(t time.Time) bool { return now.Sub(t) >= lim.Interval })
		if len(u.starts) >= lim.Burst {
			reason := fmt.Sprintf("start limit hit: %d starts within %s", len(u.starts), lim.Interval)
			log.Error("run failed; not restarting", "exit", x.String(), "reason", reason)
			u.end(Failed, x, reason)
			return
		}
		if now.Sub(began) >= u.r.stableAfter() {
			u.b.Reset()
		}
		delay := u.b.Next()
		log.Warn("run exited; restarting", "exit", x.String(), "policy", u.spec.Restart, "in", delay.Round(time.Millisecond))
		u.set(func(s *State) {
			s.State, s.Since, s.NextStart, s.LastExit, s.Reason, s.Record = Starting, now, now.Add(delay), x, "restarting after "+x.String(), nil
		})
		if !u.backoff(ctx, delay) {
			u.end(Exited, x, "terminated")
			return
		}
	}
}

// start starts a new instance of the run.
func (u *run) start() (Instance, error) {
	now := u.now()
	restart := u.begun
	u.begun = true
	u.starts = append(u.starts, now)
	u.set(func(s *State) {
		s.State, s.Since, s.NextStart = Starting, now, time.Time{}
		if restart {
			s.Restarts++
		}
	})
	out, err := u.r.cfg.Sys.OpenFIFO(u.spec.Pipe(), unix.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("%w: open log pipe: %v", ErrCantStart, err)
	}
	defer out.Close()
	inst, err := u.r.rt.Start(Launch{Spec: u.spec, Env: u.spec.Environ(u.r.pathList()), Stdout: out})
	if err != nil {
		return nil, err
	}
	u.setInst(inst)
	rec := inst.Record()
	rec.Started, rec.Restarts = now, u.st.Restarts
	u.set(func(s *State) { s.State, s.Since, s.Reason, s.Record = Running, now, "", &rec })
	return inst, nil
}

// watch waits for the instance's leader to exit, serving commands.
func (u *run) watch(ctx context.Context, inst Instance) outcome {
	paused := inst.Paused()
	for {
		select {
		case <-inst.Done():
			return leaderExited
		case <-ctx.Done():
			if u.r.detach() && !u.spec.StopWithAgent {
				return detached
			}
			u.stop(inst, paused)
			return terminated
		case c := <-u.cmds:
			switch c.op {
			case opPause, opResume:
				want := c.op == opPause
				if paused == want {
					c.reply <- nil
					continue
				}
				f, st := inst.Resume, Running
				if want {
					f, st = inst.Pause, Paused
				}
				err := f()
				if err == nil {
					paused = want
					now := u.now()
					u.set(func(s *State) { s.State, s.Since = st, now })
				}
				c.reply <- err
			case opTerminate:
				u.waiters = append(u.waiters, c.reply)
				u.stop(inst, paused)
				return terminated
			}
		}
	}
}

// stop sends SIGTERM to the whole run, waits the stop timeout, then
// SIGKILLs everything left, and waits for the leader.
func (u *run) stop(inst Instance, paused bool) {
	now := u.now()
	u.set(func(s *State) { s.State, s.Since = Stopping, now })
	inst.Signal(syscall.SIGTERM)
	if paused {
		inst.Resume() // frozen or stopped processes act on SIGTERM only once thawed
	}
	t := u.r.clock().NewTimer(u.spec.StopTimeout)
	defer t.Stop()
	for {
		select {
		case <-inst.Done():
			return
		case <-t.C():
			u.r.log().Warn("run did not stop in time; killing it", "app", u.spec.ID, "runid", u.spec.RunID, "stop_timeout", u.spec.StopTimeout)
			inst.Kill()
			<-inst.Done()
			return
		case c := <-u.cmds:
			if c.op == opTerminate {
				u.waiters = append(u.waiters, c.reply)
			} else {
				c.reply <- fmt.Errorf("%w: run %d is stopping", ErrInvalidState, u.spec.RunID)
			}
		}
	}
}

// backoff waits out delay before a restart; false means terminated or
// stopped meanwhile.
func (u *run) backoff(ctx context.Context, delay time.Duration) bool {
	t := u.r.clock().NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			return true
		case <-ctx.Done():
			return false
		case c := <-u.cmds:
			if c.op == opTerminate {
				u.waiters = append(u.waiters, c.reply)
				return false
			}
			c.reply <- fmt.Errorf("%w: run %d is waiting to restart", ErrInvalidState, u.spec.RunID)
		}
	}
}

// cleanup kills what the leader left.
func (u *run) cleanup(inst Instance) {
	if err := inst.Cleanup(); err != nil {
		u.r.log().Warn("run's leftovers", "app", u.spec.ID, "runid", u.spec.RunID, "err", err)
	}
	u.setInst(nil)
	u.last = inst
}

// end makes the state final, closes the log and answers terminates.
func (u *run) end(st Status, x *ExitInfo, reason string) {
	if u.sink != nil {
		u.sink.close(true, u.spec.Pipe())
	}
	if u.last != nil {
		if err := u.last.Remove(); err != nil {
			u.r.log().Warn("cannot remove the run's cgroup", "app", u.spec.ID, "runid", u.spec.RunID, "err", err)
		}
	}
	now := u.now()
	u.set(func(s *State) {
		s.State, s.Since, s.NextStart, s.Reason, s.Record, s.Pids = st, now, time.Time{}, reason, nil, nil
		if x != nil {
			s.LastExit = x
		}
	})
	u.answer(nil)
}

func (u *run) answer(err error) {
	for _, w := range u.waiters {
		w <- err
	}
	u.waiters = nil
}
