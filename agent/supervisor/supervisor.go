// Package supervisor runs the agent: the one-shot boot steps in order, then
// the long-running services together, restarting a service that fails with
// jittered exponential backoff. Every step's and service's state goes to a
// state.Store for the status page and the local API.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/state"
)

// Service is a long-running part of the agent. Run blocks until ctx ends or
// the service fails; it closes what it owns before returning and returns nil
// on cancellation.
type Service interface {
	Run(ctx context.Context) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Run calls f.
func (f ServiceFunc) Run(ctx context.Context) error { return f(ctx) }

// Named is a service with the name it is known by in logs and state.
type Named struct {
	Name    string
	Service Service
}

// ErrPermanent marks a failure that restarting cannot cure (a missing
// setting, say): the service is marked failed and not restarted.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error { return fmt.Errorf("%w (%w)", err, ErrPermanent) }

// ErrSkipped is returned (wrapped) by a step that had nothing to do, such as
// a config script the appliance does not ship.
var ErrSkipped = errors.New("skipped")

// Skip returns an error that marks a step skipped with the reason given.
func Skip(reason string) error { return skipError(reason) }

type skipError string

func (e skipError) Error() string        { return "skipped: " + string(e) }
func (e skipError) Is(target error) bool { return target == ErrSkipped }

// Step is a one-shot boot step. Run returns what it changed (files,
// addresses, …; nothing when all was as wanted) and a one-line note.
type Step struct {
	Name string
	Run  func(ctx context.Context) (changed []string, note string, err error)
}

// Supervisor runs steps and services. Fill State and Log; the rest defaults.
type Supervisor struct {
	State *state.Store
	Log   *slog.Logger
	Clock clock.Clock // default clock.Real
	// NewBackoff makes each service's restart policy; default 1 s to 30 s.
	NewBackoff func() *backoff.Backoff
	// QuietSteps logs each step's result at debug level, for a caller
	// that prints the results itself (the boot summary).
	QuietSteps bool
	// StableAfter is how long a service must run before a failure counts
	// as a first failure again; default one minute.
	StableAfter time.Duration
}

func (s *Supervisor) clock() clock.Clock {
	if s.Clock == nil {
		return clock.Real{}
	}
	return s.Clock
}

// RunSteps runs the steps in order. A failing step is recorded and logged
// and the rest still run; the result joins every step's error.
func (s *Supervisor) RunSteps(ctx context.Context, steps []Step) error {
	var errs []error
	for _, st := range steps {
		res := state.Step{Name: st.Name, Started: s.clock().Now()}
		changed, note, err := s.runStep(ctx, st)
		res.Duration = s.clock().Now().Sub(res.Started)
		res.Changed, res.Note = changed, note
		switch {
		case errors.Is(err, ErrSkipped):
			res.Status = state.StepSkipped
			var reason skipError
			if res.Note == "" && errors.As(err, &reason) {
				res.Note = string(reason)
			}
		case err != nil:
			// One line, for the summary, the log and the status page.
			res.Status, res.Error = state.StepFailed, strings.ReplaceAll(err.Error(), "\n", "; ")
			errs = append(errs, fmt.Errorf("%s: %w", st.Name, err))
		default:
			res.Status = state.StepOK
		}
		s.State.SetStep(res)
		attrs := []any{"step", st.Name, "status", res.Status, "duration", res.Duration.Round(time.Microsecond), "changed", len(changed)}
		if res.Note != "" {
			attrs = append(attrs, "note", res.Note)
		}
		level := slog.LevelInfo
		if res.Error != "" {
			level, attrs = slog.LevelError, append(attrs, "err", res.Error)
		}
		if s.QuietSteps {
			level = slog.LevelDebug
		}
		s.Log.Log(ctx, level, "boot step", attrs...)
	}
	return errors.Join(errs...)
}

// runStep runs one step, turning a panic into an error so that one broken
// step never stops the boot.
func (s *Supervisor) runStep(ctx context.Context, st Step) (changed []string, note string, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("boot step panicked", "step", st.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return st.Run(ctx)
}

// Serve runs the services until ctx ends, restarting any that fails, and
// returns nil once all have stopped.
func (s *Supervisor) Serve(ctx context.Context, services []Named) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range services {
		s.State.UpdateService(n.Name, func(sv *state.Service) {
			sv.Status, sv.Since = state.ServiceStarting, s.clock().Now()
		})
		g.Go(func() error { s.supervise(ctx, n); return nil })
	}
	return g.Wait()
}

func (s *Supervisor) supervise(ctx context.Context, n Named) {
	log := s.Log.With("service", n.Name)
	b := backoff.New(time.Second, 30*time.Second)
	if s.NewBackoff != nil {
		b = s.NewBackoff()
	}
	stable := s.StableAfter
	if stable == 0 {
		stable = time.Minute
	}
	for {
		start := s.clock().Now()
		s.State.UpdateService(n.Name, func(sv *state.Service) {
			sv.Status, sv.Since, sv.NextStart = state.ServiceRunning, start, time.Time{}
		})
		err := s.runService(ctx, n)
		now := s.clock().Now()
		if ctx.Err() != nil {
			s.State.UpdateService(n.Name, func(sv *state.Service) { sv.Status, sv.Since = state.ServiceStopped, now })
			return
		}
		if err == nil {
			err = errors.New("returned before shutdown")
		}
		if errors.Is(err, ErrPermanent) {
			log.Error("service failed; not restarting", "err", err)
			s.State.UpdateService(n.Name, func(sv *state.Service) {
				sv.Status, sv.Since, sv.LastError = state.ServiceFailed, now, err.Error()
			})
			return
		}
		if now.Sub(start) >= stable {
			b.Reset()
		}
		delay := b.Next()
		log.Warn("service failed; restarting", "err", err, "in", delay.Round(time.Millisecond))
		s.State.UpdateService(n.Name, func(sv *state.Service) {
			sv.Status, sv.Since, sv.LastError, sv.NextStart = state.ServiceBackoff, now, err.Error(), now.Add(delay)
		})
		t := s.clock().NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.State.UpdateService(n.Name, func(sv *state.Service) { sv.Status, sv.Since = state.ServiceStopped, s.clock().Now() })
			return
		case <-t.C():
		}
		s.State.UpdateService(n.Name, func(sv *state.Service) { sv.Restarts++ })
	}
}

func (s *Supervisor) runService(ctx context.Context, n Named) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("service panicked", "service", n.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	svc := n.Service
	return svc.Run(ctx)
}
