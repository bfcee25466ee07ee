package supervisor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/state"
)

// unit is one supervised service. Its loop goroutine alone runs the
// service and writes its state; everyone else reaches it through cmds.
type unit struct {
	spec Spec
	log  *slog.Logger  // with service=NAME
	cmds chan command  // unbuffered: a send means the loop has it
	done chan struct{} // closed when the loop has returned
	// Guarded by Supervisor.mu:
	removed      bool // dropped by Remove
	startStopped bool // stopped before Run: the loop starts idle
}

// phase is what a unit's loop does next.
type phase int

const (
	phaseRun  phase = iota // start the service and wait for it
	phaseWait              // wait out a backoff, then run
	phaseIdle              // stopped or failed: wait for a command
	phaseQuit              // return
)

// life is what a unit's loop knows between phases; only the loop uses it.
type life struct {
	s       *Supervisor
	u       *unit
	policy  Policy
	b       *backoff.Backoff
	stable  time.Duration
	limit   StartLimit
	starts  []time.Time         // starts within limit.Interval; only with a limit
	status  state.ServiceStatus // as last published
	delay   time.Duration       // for phaseWait
	restart bool                // the next start is an automatic restart (counted)
	reply   chan error          // a Start's or Restart's, answered once running
}

// loop runs u until ctx ends or u is removed.
func (s *Supervisor) loop(ctx context.Context, u *unit) {
	defer close(u.done)
	if r, ok := u.spec.Service.(LogReceiver); ok {
		r.SetLogger(u.log)
	}
	b, stable := s.newBackoff(u.spec)
	l := &life{s: s, u: u, policy: cmp.Or(u.spec.Policy, Always), b: b, stable: stable, limit: u.spec.StartLimit, status: state.ServiceStarting}
	if l.limit.Burst > 0 {
		l.limit.Interval = cmp.Or(l.limit.Interval, 10*time.Second)
	}
	s.mu.Lock()
	next := phaseRun
	if u.startStopped {
		next, l.status = phaseIdle, state.ServiceStopped
	}
	s.mu.Unlock()
	for next != phaseQuit {
		var c *command
		switch next {
		case phaseRun:
			next, c = l.run(ctx)
		case phaseWait:
			next, c = l.wait(ctx)
		case phaseIdle:
			select {
			case cmd := <-u.cmds:
				c = &cmd
			case <-ctx.Done():
				next = phaseQuit // failed or stopped stays so
			}
		}
		if c != nil {
			next = l.handle(*c)
		}
	}
	l.answer(ErrNotRunning) // a Start that came as Run was ending
}

// run starts the service and waits until it returns, ctx ends, or a
// command needs it stopped; it returns the next phase, and that command.
func (l *life) run(ctx context.Context) (phase, *command) {
	if ctx.Err() != nil {
		l.stopped(l.now(), "")
		return phaseQuit, nil
	}
	start := l.now()
	if l.limit.Burst > 0 {
		l.starts = append(l.starts, start)
	}
	restart := l.restart
	l.restart = false
	l.set(func(sv *state.Service) {
		sv.Status, sv.Since, sv.NextStart, sv.Reason = state.ServiceRunning, start, time.Time{}, ""
		if restart {
			sv.Restarts++
		}
	})
	l.answer(nil)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exit := make(chan error, 1)
	go func() { exit <- l.s.runService(rctx, l.u) }()
	for {
		select {
		case err := <-exit:
			return l.exited(ctx, start, err), nil
		case c := <-l.u.cmds:
			if c.op == opStart {
				c.reply <- nil // running already
				continue
			}
			cancel()
			if err := <-exit; err != nil {
				l.u.log.Debug("service returned an error when stopped", "op", c.op, "err", err)
			}
			return phaseIdle, &c
		case <-ctx.Done():
			cancel()
			<-exit
			l.stopped(l.now(), "")
			return phaseQuit, nil
		}
	}
}

// exited decides, by the policy, what follows a return of the service
// that started at start, and publishes it.
func (l *life) exited(ctx context.Context, start time.Time, err error) phase {
	now, log := l.now(), l.u.log
	if ctx.Err() != nil {
		l.stopped(now, "")
		return phaseQuit
	}
	switch {
	case IsPermanent(err):
		log.Error("service failed; not restarting", "err", err, "reason", "permanent")
		l.fail(now, err, "permanent: restarting will not help")
		return phaseIdle
	case err == nil && l.policy != Always:
		log.Info("service exited", "policy", l.policy)
		l.stopped(now, "exited")
		return phaseIdle
	case err != nil && l.policy == Never:
		log.Error("service failed; not restarting", "err", err, "policy", l.policy)
		l.fail(now, err, "failed; restart policy never")
		return phaseIdle
	}
	if n, hit := l.limitHit(now); hit {
		reason := fmt.Sprintf("start limit hit: %d starts within %s", n, l.limit.Interval)
		log.Error("service failed; not restarting", "err", err, "reason", reason)
		l.fail(now, err, reason)
		return phaseIdle
	}
	if now.Sub(start) >= l.stable {
		l.b.Reset()
	}
	l.delay = l.b.Next()
	reason := ""
	if err != nil {
		log.Warn("service failed; restarting", "err", err, "in", l.delay.Round(time.Millisecond))
	} else {
		reason = "returned; restart policy always"
		log.Warn("service returned before shutdown; restarting", "in", l.delay.Round(time.Millisecond))
	}
	l.set(func(sv *state.Service) {
		sv.Status, sv.Since, sv.NextStart, sv.Reason = state.ServiceBackoff, now, now.Add(l.delay), reason
		if err != nil {
			sv.LastError = err.Error()
		}
	})
	return phaseWait
}

// limitHit reports whether another start would pass the start limit, and
// how many starts there were within its interval.
func (l *life) limitHit(now time.Time) (int, bool) {
	if l.limit.Burst <= 0 {
		return 0, false
	}
	l.starts = slices.DeleteFunc(l.starts, func(t time.Time) bool { return now.Sub(t) >= l.limit.Interval })
	return len(l.starts), len(l.starts) >= l.limit.Burst
}

// wait waits out the backoff delay.
func (l *life) wait(ctx context.Context) (phase, *command) {
	t := l.s.clock().NewTimer(l.delay)
	defer t.Stop()
	select {
	case <-t.C():
		l.restart = true
		return phaseRun, nil
	case c := <-l.u.cmds:
		return phaseIdle, &c
	case <-ctx.Done():
		l.stopped(l.now(), "")
		return phaseQuit, nil
	}
}

// handle carries out a command once the service is not running.
func (l *life) handle(c command) phase {
	switch c.op {
	case opStop:
		if l.status != state.ServiceStopped && l.status != state.ServiceFailed {
			l.u.log.Info("service stopped by request")
			l.stopped(l.now(), "stopped by request")
		}
		c.reply <- nil
		return phaseIdle
	case opRemove:
		l.u.log.Info("service removed")
		l.s.drop(l.u)
		c.reply <- nil
		return phaseQuit
	}
	l.u.log.Info("service started by request", "op", c.op)
	l.b.Reset()
	l.starts, l.restart = l.starts[:0], false
	l.reply = c.reply // answered by run, once running
	return phaseRun
}

func (l *life) now() time.Time { return l.s.clock().Now() }

// set publishes the unit's state.
func (l *life) set(f func(*state.Service)) {
	l.s.State.UpdateService(l.u.spec.Name, func(sv *state.Service) {
		f(sv)
		l.status = sv.Status
	})
}

func (l *life) stopped(now time.Time, reason string) {
	l.set(func(sv *state.Service) {
		sv.Status, sv.Since, sv.NextStart, sv.Reason = state.ServiceStopped, now, time.Time{}, reason
	})
}

func (l *life) fail(now time.Time, err error, reason string) {
	l.set(func(sv *state.Service) {
		sv.Status, sv.Since, sv.NextStart, sv.Reason = state.ServiceFailed, now, time.Time{}, reason
		if err != nil {
			sv.LastError = err.Error()
		}
	})
}

// answer answers a pending Start or Restart.
func (l *life) answer(err error) {
	if l.reply != nil {
		l.reply <- err
		l.reply = nil
	}
}

// runService runs u's service once, turning a panic into an error so that
// one broken service never takes the agent down.
func (s *Supervisor) runService(ctx context.Context, u *unit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			u.log.Error("service panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return u.spec.Service.Run(ctx)
}
