// Package supervisor runs the agent: the one-shot boot steps in order, then
// the long-running services together, each by its Spec: a restart policy
// (always, on-failure, never), jittered exponential backoff, a start limit,
// and errors that say restarting will not help (IsPermanent). Services are
// stopped, started, restarted, added and removed by name while Run runs.
// Every step's and service's state goes to a state.Store for the status
// page and the local API.
//
// Goroutines: Run owns one loop per service, and each loop owns the
// goroutine that runs its service; Run returns once every loop (and so
// every service) has returned.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/state"
)

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
// Its methods are safe for concurrent use.
type Supervisor struct {
	State *state.Store
	Log   *slog.Logger
	Clock clock.Clock // default clock.Real
	// NewBackoff makes the restart delays of a service whose Spec has
	// none; default 1 s to 30 s.
	NewBackoff func() *backoff.Backoff
	// QuietSteps logs each step's result at debug level, for a caller
	// that prints the results itself (the boot summary).
	QuietSteps bool
	// StableAfter is how long a service must run before a failure counts
	// as a first failure again, for a Spec without its own; default one
	// minute.
	StableAfter time.Duration

	mu    sync.Mutex
	units []*unit         // in the order added
	ctx   context.Context // Run's, from its start; nil before
	done  bool            // Run is returning: no more starts
	wg    sync.WaitGroup  // the units' loops
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
