// Package state is the agent's shared record of what happened and what is
// running: boot step results and service states. The supervisor and the
// services write it; the status page and the local API read snapshots of it,
// and wait on Changed for the next change instead of polling.
// It imports nothing of the agent, so every part may use it.
package state

import (
	"reflect"
	"slices"
	"sync"
	"time"
)

// StepStatus is the outcome of a one-shot boot step.
type StepStatus string

// Step outcomes.
const (
	StepOK      StepStatus = "ok"
	StepFailed  StepStatus = "failed"
	StepSkipped StepStatus = "skipped"
)

// Step is the result of one boot step.
type Step struct {
	Name     string        `json:"name"`
	Status   StepStatus    `json:"status"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Changed  []string      `json:"changed,omitempty"` // what the step changed; empty when all was as wanted
	Note     string        `json:"note,omitempty"`    // a skip reason or a short summary
	Error    string        `json:"error,omitempty"`
}

// ServiceStatus is where a long-running service stands.
type ServiceStatus string

// Service states.
const (
	ServiceStarting ServiceStatus = "starting"
	ServiceRunning  ServiceStatus = "running"
	ServiceBackoff  ServiceStatus = "backoff" // failed, waiting to restart
	ServiceFailed   ServiceStatus = "failed"  // failed for good (bad config, start limit), not restarted
	ServiceStopped  ServiceStatus = "stopped" // by request, at shutdown, or exited and not to be restarted
)

// Service is the state of one long-running service.
type Service struct {
	Name      string        `json:"name"`
	Status    ServiceStatus `json:"status"`
	Since     time.Time     `json:"since"`
	Restarts  int           `json:"restarts"`
	LastError string        `json:"last_error,omitempty"`
	NextStart time.Time     `json:"next_start,omitzero"` // in backoff: when it restarts
	Reason    string        `json:"reason,omitempty"`    // why failed or stopped: "start limit hit: …", "stopped by request", …
}

// Store holds the state; its methods are safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	watch    watch
	steps    []Step
	services []Service
	link     Link
	app      AppHealth
	terminal Terminal
	apps     Apps
	stats    Stats
}

// SetStep records a step's result, replacing an earlier one of that name.
func (s *Store) SetStep(st Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Changed = slices.Clone(st.Changed)
	if i := slices.IndexFunc(s.steps, func(x Step) bool { return x.Name == st.Name }); i >= 0 {
		s.watch.note(!reflect.DeepEqual(s.steps[i], st))
		s.steps[i] = st
		return
	}
	s.steps = append(s.steps, st)
	s.watch.note(true)
}

// Steps returns the step results in the order they first ran.
func (s *Store) Steps() []Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.steps)
	for i := range out {
		out[i].Changed = slices.Clone(out[i].Changed)
	}
	return out
}

// UpdateService applies f to the named service's state, creating it first.
func (s *Store) UpdateService(name string, f func(*Service)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.services, func(x Service) bool { return x.Name == name })
	added := i < 0
	if added {
		s.services = append(s.services, Service{Name: name})
		i = len(s.services) - 1
	}
	old := s.services[i]
	f(&s.services[i])
	s.watch.note(added || s.services[i] != old)
}

// RemoveService drops the named service's state, for a service removed at
// run time.
func (s *Store) RemoveService(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.services)
	s.services = slices.DeleteFunc(s.services, func(x Service) bool { return x.Name == name })
	s.watch.note(len(s.services) != n)
}

// Services returns the service states in the order they were added.
func (s *Store) Services() []Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.services)
}

// LinkStatus is where the controller link stands.
type LinkStatus string

// Controller link states, in the order a connection goes through them.
const (
	LinkDisconnected   LinkStatus = "disconnected" // waiting out a backoff, or not started
	LinkDiscovering    LinkStatus = "discovering"  // listening for a multicast JOIN
	LinkConnecting     LinkStatus = "connecting"
	LinkAuthenticating LinkStatus = "authenticating"
	LinkRegistered     LinkStatus = "registered"
)

// Link is the state of the cloud-controller link.
type Link struct {
	Status     LinkStatus `json:"status"`
	Since      time.Time  `json:"since"`
	Controller string     `json:"controller,omitempty"` // ip:port in use or last used
	LastError  string     `json:"last_error,omitempty"`
	Reconnects int        `json:"reconnects"`
	LastReport *Report    `json:"last_report,omitempty"`
}

// Report is an application status report sent to the controller.
type Report struct {
	Value int32     `json:"value"` // 2000 + exit code, 2128 unknown, …
	At    time.Time `json:"at"`
}

// AppHealth is the appliance's health from custom/scripts/status (not an
// app of the app manager).
type AppHealth struct {
	Code     int32         `json:"code"`             // the value reported to the controller
	Meaning  string        `json:"meaning"`          // "running", "not serving (exit 3)", "unknown", …
	Checked  time.Time     `json:"checked,omitzero"` // when the script last ran
	Duration time.Duration `json:"duration_ns"`      // how long it took
	// DurationText is Duration as Go writes it ("12ms"), what schema 1
	// had before duration_ns; SetAppHealth fills it in.
	//
	// Deprecated: read Duration (duration_ns).
	DurationText string `json:"duration,omitempty"`
}

// UpdateLink applies f to the link state.
func (s *Store) UpdateLink(f func(*Link)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.link
	if old.LastReport != nil {
		r := *old.LastReport
		old.LastReport = &r
	}
	f(&s.link)
	s.watch.note(!reflect.DeepEqual(old, s.link))
}

// Link returns the link state.
func (s *Store) Link() Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.link
	if l.LastReport != nil {
		r := *l.LastReport
		l.LastReport = &r
	}
	return l
}

// SetAppHealth records the application status; DurationText is made
// from Duration once the script has run.
func (s *Store) SetAppHealth(a AppHealth) {
	a.DurationText = ""
	if !a.Checked.IsZero() {
		a.DurationText = a.Duration.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.note(s.app != a)
	s.app = a
}

// AppHealth returns the application status.
func (s *Store) AppHealth() AppHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.app
}

// Terminal counts web-terminal sessions and logins.
type Terminal struct {
	Active        int `json:"active"`
	Sessions      int `json:"sessions"`       // started since the agent started
	LoginFailures int `json:"login_failures"` // since the agent started
}

// UpdateTerminal applies f to the terminal counters.
func (s *Store) UpdateTerminal(f func(*Terminal)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.terminal
	f(&s.terminal)
	s.watch.note(s.terminal != old)
}

// Terminal returns the terminal counters.
func (s *Store) Terminal() Terminal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminal
}

// Apps is the application manager's record for the status page, the
// status document, /metrics and the controller link. The manager replaces
// it whole on every change.
type Apps struct {
	Cgroups string    `json:"cgroups"` // how runs are grouped: "unified", "hybrid" or "none"; "" before the manager runs
	Apps    []AppView `json:"apps"`    // by id
}

// AppView is one installed application.
type AppView struct {
	ID      string    `json:"id"`
	Version string    `json:"version"`
	Desired string    `json:"desired"` // "running" or "stopped": what the owner asked for
	Enabled bool      `json:"enabled"` // started once the boot steps are done
	Runs    []RunView `json:"runs"`    // live and recent runs, by runid
}

// RunView is one run of an application.
type RunView struct {
	RunID    uint64    `json:"runid"`
	State    string    `json:"state"` // starting, running, paused, stopping, exited, failed
	Since    time.Time `json:"since"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"` // "exit 3", "signal KILL", "unknown"
	Reason   string    `json:"reason,omitempty"`    // why failed: "start limit hit: …"
}

// SetApps replaces the applications' record.
func (s *Store) SetApps(a Apps) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a = cloneApps(a) // the caller may reuse its slices
	s.watch.note(!reflect.DeepEqual(s.apps, a))
	s.apps = a
}

func cloneApps(a Apps) Apps {
	c := Apps{Cgroups: a.Cgroups, Apps: slices.Clone(a.Apps)}
	for i := range c.Apps {
		c.Apps[i].Runs = slices.Clone(c.Apps[i].Runs)
	}
	return c
}

// Apps returns a copy of the applications' record.
func (s *Store) Apps() Apps {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneApps(s.apps)
}

// AppsRunning reports whether every application whose desired state is
// running has a run in state running (true when there are none): what the
// controller link reports as 2000 when the appliance has no status script.
func (a Apps) AppsRunning() bool {
	for _, app := range a.Apps {
		if app.Desired != "running" {
			continue
		}
		if !slices.ContainsFunc(app.Runs, func(r RunView) bool { return r.State == "running" }) {
			return false
		}
	}
	return true
}
