// Package runner runs the runs of the appliance's applications: it starts
// a run's program in a process group (and, where cgroup v2 is writable, a
// cgroup) of its own, with an environment built from scratch and its
// output in a capped, rotated log; it keeps the run by its restart policy
// and start limit; it pauses, resumes and terminates it; and it adopts the
// runs an earlier agent left running.
//
// A run's state: starting → running → (paused ↔ running) → stopping →
// exited (with the leader's exit code or signal) or failed (the start
// limit hit, or the program cannot start). Each run has one loop
// goroutine that alone drives it; the Runner waits for every loop.
//
// Runs go through a Runtime: the built-in Process runtime here; the OCI
// runtime adapter (agent/apps/oci: crun or runc) is another
// implementation of the same interface, and Mux sends each run to the one
// its Spec asks for.
//
// The runner has its own restart loop rather than the agent's supervisor:
// a run needs states the supervisor has not (paused, stopping, exited
// with a code), needs to be left running, not stopped, when the agent
// shuts down (for adoption), and must be running only once its process
// is, not once a goroutine is; its states go to the manager, not to the
// agent's service list. The policy semantics match the supervisor's: the
// same jittered backoff (agent/backoff), stable-after, and start limit.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/sysroot"
)

// Config is what a Runner needs. Sys is required; the rest defaults.
type Config struct {
	Sys     *sysroot.Root
	Runtime Runtime // default &Process{} (process groups only)
	Clock   clock.Clock
	Log     *slog.Logger
	// OnChange gets every state change of every run, in order for each
	// run, from the run's loop: it must not block for long nor call the
	// Runner back synchronously with a verb that waits on that run.
	OnChange func(State)
	// NewBackoff makes a run's restart delays; default 1 s to 30 s.
	NewBackoff func() *backoff.Backoff
	// StableAfter is how long a run must last for its next exit to count
	// as a first failure again; default one minute.
	StableAfter time.Duration
	// PATH is a run's PATH (the wiring gives the path table's); default
	// DefaultPATH. A run inherits nothing of the agent's environment.
	PATH string
	// LogMax caps a run's log file (default 1 MiB); LogKeep is how many
	// rotated files are kept beside it (default 1: the last two files).
	LogMax  int64
	LogKeep int
	// StopOnShutdown terminates the runs when Run ends instead of leaving
	// them for the next agent; default: stop them only without cgroups.
	StopOnShutdown *bool
}

// Runner runs runs. Its methods are safe for concurrent use.
type Runner struct {
	cfg Config
	rt  Runtime

	ctx    context.Context // the loops'; ends when Run's does
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	runs   map[uint64]*run
	closed bool
}

// New returns a Runner. Runs may be started and adopted before Run.
func New(cfg Config) *Runner {
	r := &Runner{cfg: cfg, rt: cfg.Runtime, runs: map[uint64]*run{}}
	if r.rt == nil {
		r.rt = &Process{Log: cfg.Log}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// DefaultPATH is a run's PATH when Config.PATH is empty.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func (r *Runner) clock() clock.Clock { return cmp.Or[clock.Clock](r.cfg.Clock, clock.Real{}) }
func (r *Runner) log() *slog.Logger  { return cmp.Or(r.cfg.Log, slog.New(slog.DiscardHandler)) }
func (r *Runner) pathList() string   { return cmp.Or(r.cfg.PATH, DefaultPATH) }
func (r *Runner) stableAfter() time.Duration {
	return cmp.Or(r.cfg.StableAfter, time.Minute)
}

// detach reports whether runs are left running at shutdown.
func (r *Runner) detach() bool {
	if r.cfg.StopOnShutdown != nil {
		return !*r.cfg.StopOnShutdown
	}
	return r.rt.Mode() != CgroupNone
}

// Mode says how runs are grouped (for the log and the status document).
func (r *Runner) Mode() CgroupMode { return r.rt.Mode() }

// Run blocks until ctx ends, then leaves every run running for the next
// agent (with cgroups) or terminates it (without), and returns nil once
// every run's loop has returned.
func (r *Runner) Run(ctx context.Context) error {
	<-ctx.Done()
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// Start starts the run sp and returns once it is running, or has failed.
func (r *Runner) Start(ctx context.Context, sp Spec) (State, error) {
	u, err := r.add(sp)
	if err != nil {
		return State{}, err
	}
	return r.launch(ctx, u, nil)
}

// Adopt re-attaches to the run rec names, started by an earlier agent
// with sp, if it still lives. When it is gone (ErrGone), what was left
// of it has been stopped; the caller may start it again.
func (r *Runner) Adopt(ctx context.Context, sp Spec, rec Record) (State, error) {
	if sp.RunID != rec.RunID || sp.ID != rec.ID {
		return State{}, fmt.Errorf("%w: record of run %d of %q for spec of run %d of %q", ErrBadSpec, rec.RunID, rec.ID, sp.RunID, sp.ID)
	}
	inst, err := r.rt.Adopt(rec)
	if err != nil {
		r.log().Info("run not adopted", "app", rec.ID, "runid", rec.RunID, "err", err)
		return State{}, err
	}
	u, err := r.add(sp)
	if err != nil {
		inst.Detach()
		return State{}, err
	}
	u.st.Restarts, u.st.Since, u.begun = rec.Restarts, rec.Started, true
	r.log().Info("run adopted", "app", rec.ID, "runid", rec.RunID, "pid", rec.Pid, "cgroup", rec.Cgroup)
	return r.launch(ctx, u, inst)
}

func (r *Runner) add(sp Spec) (*run, error) {
	if err := sp.Check(); err != nil {
		return nil, err
	}
	sp = sp.withDefaults()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("runner stopped")
	}
	if _, ok := r.runs[sp.RunID]; ok {
		return nil, fmt.Errorf("%w: runid %d is taken", ErrBadSpec, sp.RunID)
	}
	b := backoff.New(time.Second, 30*time.Second)
	if r.cfg.NewBackoff != nil {
		b = r.cfg.NewBackoff()
	}
	u := &run{r: r, spec: sp, cmds: make(chan command), done: make(chan struct{}), up: make(chan struct{}), b: b}
	u.st = State{RunID: sp.RunID, ID: sp.ID, Version: sp.Version, State: Starting, Since: r.clock().Now(), Cgroup: r.rt.Mode()}
	r.runs[sp.RunID] = u
	return u, nil
}

// launch opens the run's log and starts its loop; it returns once the
// run is running or final.
func (r *Runner) launch(ctx context.Context, u *run, inst Instance) (State, error) {
	s, err := openSink(r.cfg.Sys, u.spec.Log, u.spec.Pipe(), cmp.Or(r.cfg.LogMax, 1<<20), cmp.Or(r.cfg.LogKeep, 1), r.log())
	if err != nil {
		if inst != nil {
			inst.Detach()
		}
		r.mu.Lock()
		delete(r.runs, u.spec.RunID)
		r.mu.Unlock()
		return State{}, fmt.Errorf("%w: log: %v", ErrCantStart, err)
	}
	u.mu.Lock()
	u.sink = s
	u.mu.Unlock()
	if inst != nil {
		u.setInst(inst)
		rec := inst.Record()
		st := Running
		if inst.Paused() {
			st = Paused
		}
		u.set(func(s *State) { s.State, s.Record = st, &rec }) // closes up
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		u.loop(r.ctx, inst)
	}()
	select {
	case <-u.up:
	case <-ctx.Done():
		return u.state(), ctx.Err()
	}
	st := u.state()
	if st.State == Failed {
		return st, fmt.Errorf("%w: %s", ErrCantStart, strings.TrimPrefix(st.Reason, ErrCantStart.Error()+": "))
	}
	return st, nil
}

func (r *Runner) get(runid uint64) (*run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.runs[runid]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownRun, runid)
	}
	return u, nil
}

func (r *Runner) command(ctx context.Context, runid uint64, o op) (State, error) {
	u, err := r.get(runid)
	if err != nil {
		return State{}, err
	}
	c := command{op: o, reply: make(chan error, 1)}
	select {
	case u.cmds <- c:
	case <-u.done:
		st := u.state()
		if o == opTerminate {
			return st, nil // terminate twice: the same outcome
		}
		return st, fmt.Errorf("%w: run %d is %s", ErrInvalidState, runid, st.State)
	case <-ctx.Done():
		return u.state(), ctx.Err()
	}
	select {
	case err = <-c.reply:
	case <-ctx.Done():
		return u.state(), ctx.Err()
	}
	if o == opTerminate {
		<-u.done
	}
	return u.state(), err
}

// Pause freezes every process of the run (its cgroup, or SIGSTOP to its
// group). A paused run stays paused; a run not alive is ErrInvalidState.
func (r *Runner) Pause(ctx context.Context, runid uint64) (State, error) {
	return r.command(ctx, runid, opPause)
}

// Resume thaws a paused run; a running one stays running.
func (r *Runner) Resume(ctx context.Context, runid uint64) (State, error) {
	return r.command(ctx, runid, opResume)
}

// Terminate stops the run: SIGTERM to all its processes, SIGKILL to what
// is left after its stop timeout. It returns once the run has exited; a
// run already final returns its state as it is (terminate twice is no
// error).
func (r *Runner) Terminate(ctx context.Context, runid uint64) (State, error) {
	return r.command(ctx, runid, opTerminate)
}

// State returns the run's state.
func (r *Runner) State(runid uint64) (State, error) {
	u, err := r.get(runid)
	if err != nil {
		return State{}, err
	}
	return u.state(), nil
}

// States returns every run's state, by runid.
func (r *Runner) States() []State {
	r.mu.Lock()
	us := make([]*run, 0, len(r.runs))
	for _, u := range r.runs {
		us = append(us, u)
	}
	r.mu.Unlock()
	out := make([]State, 0, len(us))
	for _, u := range us {
		out = append(out, u.state())
	}
	slices.SortFunc(out, func(a, b State) int { return cmp.Compare(a.RunID, b.RunID) })
	return out
}

// Forget drops a final run from the runner.
func (r *Runner) Forget(runid uint64) error {
	u, err := r.get(runid)
	if err != nil {
		return err
	}
	select {
	case <-u.done:
	default:
		return fmt.Errorf("%w: run %d is not final", ErrInvalidState, runid)
	}
	r.mu.Lock()
	delete(r.runs, runid)
	r.mu.Unlock()
	return nil
}

// Sweep stops the processes in the agent's app cgroups that belong to no
// run of this runner nor of known (records not adopted yet), and says
// which cgroups it stopped.
func (r *Runner) Sweep(known []Record) []string {
	all := slices.Clone(known)
	for _, st := range r.States() {
		if u, err := r.get(st.RunID); err == nil {
			u.mu.Lock()
			if u.inst != nil {
				all = append(all, u.inst.Record())
			} else if u.last != nil {
				all = append(all, u.last.Record())
			}
			u.mu.Unlock()
		}
	}
	return r.rt.Sweep(all)
}

// Tail returns the last n lines of the run's log (n <= 0: all).
func (r *Runner) Tail(sp Spec, n int) ([]string, error) {
	return Tail(r.cfg.Sys, sp.Log, cmp.Or(r.cfg.LogKeep, 1), n)
}

// Follow writes the last n lines of the run's log to w, then what the
// run writes as it comes, until ctx ends or the run ends. w may have a
// Flush method (http.Flusher), called after each piece.
func (r *Runner) Follow(ctx context.Context, runid uint64, n int, w io.Writer) error {
	u, err := r.get(runid)
	if err != nil {
		return err
	}
	lines, err := r.Tail(u.spec, n)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	u.mu.Lock()
	s := u.sink
	u.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.follow(ctx, w)
}
