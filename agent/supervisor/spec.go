package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"osmanager/agent/backoff"
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

// LogReceiver is implemented by a service that takes its logger from the
// supervisor, the one owner of the `service` attribute. SetLogger is called
// once, from the goroutine that runs the service, before its first Run,
// with the supervisor's logger carrying service=NAME. The service logs
// through it and adds no service attribute of its own; the supervisor's
// lines about the service (failed, restarting, stopped) carry the same one.
type LogReceiver interface {
	SetLogger(*slog.Logger)
}

// Policy says whether a service that returned is started again.
type Policy string

// Restart policies. A permanent error (see Permanent) ends the service
// whatever its policy.
const (
	Always    Policy = "always"     // after any return, error or nil; the default
	OnFailure Policy = "on-failure" // after an error; a nil return means done (stopped)
	Never     Policy = "never"      // the first return ends it: failed after an error, stopped after nil
)

// StartLimit bounds automatic restarts: a service that would start more
// than Burst times within Interval is marked failed instead, with the
// reason in its state. A start by request (Start, Restart) clears the
// count. Burst 0 means no limit; Interval defaults to 10 s.
type StartLimit struct {
	Burst    int
	Interval time.Duration
}

// Spec is one supervised thing: a service of the agent, or (for the app
// manager) one run of an application.
type Spec struct {
	Name    string  // unique among the supervisor's services; the `service` log attribute
	Service Service // what runs
	Policy  Policy  // default Always

	// Backoff makes the restart delays; default Supervisor.NewBackoff.
	Backoff func() *backoff.Backoff
	// StableAfter is how long a run must last for its failure to count
	// as a first failure again (the backoff starts over); default
	// Supervisor.StableAfter.
	StableAfter time.Duration
	StartLimit  StartLimit
}

// Named is Spec under its earlier name.
type Named = Spec

func (sp Spec) check() error {
	switch {
	case sp.Name == "":
		return errors.New("service without a name")
	case sp.Service == nil:
		return fmt.Errorf("service %s: no Service", sp.Name)
	case sp.StartLimit.Burst < 0 || sp.StartLimit.Interval < 0 || sp.StableAfter < 0:
		return fmt.Errorf("service %s: negative start limit or stable-after", sp.Name)
	}
	switch sp.Policy {
	case "", Always, OnFailure, Never:
		return nil
	}
	return fmt.Errorf("service %s: restart policy %q is not always, on-failure or never", sp.Name, sp.Policy)
}

// Permanent marks err as a failure that restarting cannot cure (a missing
// setting, say): the service is marked failed and not restarted. The
// message is err's. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// IsPermanent reports whether restarting cannot help: whether err, or an
// error it wraps, has a method Permanent() bool that says so. A service
// declares it on its own error types without importing this package:
//
//	func (e *ConfigError) Permanent() bool { return true }
//
// The outermost error with the method decides.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
