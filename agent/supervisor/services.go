package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/state"
)

// Errors of the control methods, wrapped with the service's name.
var (
	ErrUnknown    = errors.New("no such service")
	ErrExists     = errors.New("service already exists")
	ErrNotRunning = errors.New("supervisor not running") // Run has returned, or is returning
)

// Serve adds the services and runs them until ctx ends; see Run.
func (s *Supervisor) Serve(ctx context.Context, services []Spec) error {
	for _, sp := range services {
		if err := s.Add(sp); err != nil {
			return err
		}
	}
	return s.Run(ctx)
}

// Run starts the services added so far, and those added while it runs,
// keeps each going by its Spec until ctx ends, and returns nil once every
// service has returned. A Supervisor runs once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return errors.New("supervisor: Run called twice")
	}
	s.ctx = ctx
	for _, u := range s.units {
		s.start(u)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.done = true // no loop starts after this, so Wait sees every one
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Logger returns the logger the supervisor hands the named service (see
// LogReceiver): Supervisor.Log with service=name. The supervisor is the one
// owner of that attribute; the wiring logs what it decides about a service
// before it runs through this logger too.
func (s *Supervisor) Logger(name string) *slog.Logger {
	return cmp.Or(s.Log, slog.New(slog.DiscardHandler)).With("service", name)
}

// Add adds a service: it starts at once if Run is running, else when Run
// starts. The name must be new.
func (s *Supervisor) Add(sp Spec) error {
	if err := sp.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return fmt.Errorf("add %s: %w", sp.Name, ErrNotRunning)
	}
	if s.find(sp.Name) != nil {
		return fmt.Errorf("add %s: %w", sp.Name, ErrExists)
	}
	u := &unit{
		spec: sp,
		log:  s.Logger(sp.Name),
		cmds: make(chan command),
		done: make(chan struct{}),
	}
	s.units = append(s.units, u)
	s.State.UpdateService(sp.Name, func(sv *state.Service) {
		*sv = state.Service{Name: sp.Name, Status: state.ServiceStarting, Since: s.clock().Now()}
	})
	if s.ctx != nil {
		u.log.Info("service added")
		s.start(u)
	}
	return nil
}

// Stop stops the named service and waits until it has returned; it stays
// stopped until Start or Restart. A service in backoff stops waiting; one
// already stopped or failed is left as it is. If ctx ends first, Stop
// returns ctx's error and the stop goes on.
//
// Stop, Start, Restart and Remove work before Run too: a service stopped
// then is not started by Run; one removed is gone.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	return s.control(ctx, name, opStop)
}

// Start starts the named service if it is stopped or failed, or at once
// if it is waiting out a backoff, and returns once it runs; a running
// service is left alone. The backoff and the start limit start over.
func (s *Supervisor) Start(ctx context.Context, name string) error {
	return s.control(ctx, name, opStart)
}

// Restart stops the named service if it runs, waits for it, and starts it
// again, with the backoff and the start limit starting over.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	return s.control(ctx, name, opRestart)
}

// Remove stops the named service, waits until it has returned, and drops
// it and its state.
func (s *Supervisor) Remove(ctx context.Context, name string) error {
	return s.control(ctx, name, opRemove)
}

type op string

const (
	opStop    op = "stop"
	opStart   op = "start"
	opRestart op = "restart"
	opRemove  op = "remove"
)

// command asks a unit's loop to do op; the loop answers on reply (which
// has room for the answer) once the effect is in the state.
type command struct {
	op    op
	reply chan error
}

func (s *Supervisor) control(ctx context.Context, name string, o op) error {
	s.mu.Lock()
	u := s.find(name)
	if u == nil {
		s.mu.Unlock()
		return fmt.Errorf("%s %s: %w", o, name, ErrUnknown)
	}
	if s.ctx == nil {
		defer s.mu.Unlock()
		s.controlBeforeRun(u, o)
		return nil
	}
	s.mu.Unlock()
	c := command{op: o, reply: make(chan error, 1)}
	select {
	case u.cmds <- c:
	case <-u.done:
		s.mu.Lock()
		removed := u.removed
		s.mu.Unlock()
		if removed {
			return fmt.Errorf("%s %s: %w", o, name, ErrUnknown)
		}
		return fmt.Errorf("%s %s: %w", o, name, ErrNotRunning)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		if err != nil {
			return fmt.Errorf("%s %s: %w", o, name, err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if o == opRemove {
		<-u.done // answered after its service returned; the loop ends next
	}
	return nil
}

// controlBeforeRun carries out o on a unit whose loop has not started: a
// stopped unit starts stopped. Call with s.mu held.
func (s *Supervisor) controlBeforeRun(u *unit, o op) {
	now := s.clock().Now()
	switch o {
	case opStop:
		u.startStopped = true
		s.State.UpdateService(u.spec.Name, func(sv *state.Service) {
			sv.Status, sv.Since, sv.Reason = state.ServiceStopped, now, "stopped by request"
		})
	case opStart, opRestart:
		if u.startStopped {
			u.startStopped = false
			s.State.UpdateService(u.spec.Name, func(sv *state.Service) {
				sv.Status, sv.Since, sv.Reason = state.ServiceStarting, now, ""
			})
		}
	case opRemove:
		s.dropLocked(u)
	}
}

// find returns the named unit or nil. Call with s.mu held.
func (s *Supervisor) find(name string) *unit {
	if i := slices.IndexFunc(s.units, func(u *unit) bool { return u.spec.Name == name }); i >= 0 {
		return s.units[i]
	}
	return nil
}

// start starts u's loop. Call with s.mu held, s.ctx set and s.done false.
func (s *Supervisor) start(u *unit) {
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx, u)
	}()
}

// drop forgets u and its state, once its loop is about to return.
func (s *Supervisor) drop(u *unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(u)
}

func (s *Supervisor) dropLocked(u *unit) {
	s.units = slices.DeleteFunc(s.units, func(x *unit) bool { return x == u })
	u.removed = true
	s.State.RemoveService(u.spec.Name)
}

// newBackoff returns u's backoff and stable-after, from its Spec or the
// Supervisor's defaults.
func (s *Supervisor) newBackoff(sp Spec) (*backoff.Backoff, time.Duration) {
	b := backoff.New(time.Second, 30*time.Second)
	switch {
	case sp.Backoff != nil:
		b = sp.Backoff()
	case s.NewBackoff != nil:
		b = s.NewBackoff()
	}
	return b, cmp.Or(sp.StableAfter, s.StableAfter, time.Minute)
}
