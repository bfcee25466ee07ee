package apitypes

import "time"

// The documents of the declared services' routes (GET /v1/services,
// POST /v1/reload), served when the app manager implements agent/api's
// Services.

// ServiceStart says how a declared service starts.
type ServiceStart string

// The ways to start.
const (
	Lazy  ServiceStart = "lazy"  // on the first connection to one of its sockets
	Eager ServiceStart = "eager" // when the declaration is loaded (startup_services, apps)
)

// The states of a declared service besides its run's states (RunState).
const (
	Listening RunState = "listening" // its sockets are held by the agent; no run
	Idle      RunState = "idle"      // lazy without a socket, or eager and its run over: nothing runs
)

// Service is one declared unit: a named service of apps.d, or an app of
// its "apps" list (Name empty).
type Service struct {
	Name    string       `json:"name,omitempty"`
	App     string       `json:"app"` // the provider
	Args    []string     `json:"args,omitempty"`
	Start   ServiceStart `json:"start"`
	Sockets []string     `json:"sockets,omitempty"` // "tcp 127.0.0.1:8081", "unix /run/hello.sock"
	// State is listening, idle, failed, or the state of its run.
	State  RunState `json:"state"`
	RunID  uint64   `json:"runid,omitempty"` // its current or last run
	Starts int      `json:"starts"`          // runs it started (activations)
	File   string   `json:"file"`            // the apps.d file it is declared in
	Error  string   `json:"error,omitempty"` // why it failed (a socket not bound, the start limit)
	Note   string   `json:"note,omitempty"`  // for people
}

// ServiceProblem is an entry of apps.d that was refused.
type ServiceProblem struct {
	File    string `json:"file"`
	Key     string `json:"key,omitempty"` // "services.web", "apps[1]"; empty for the whole file
	Message string `json:"message"`
}

// ServiceList answers GET /v1/services.
type ServiceList struct {
	Dir      string           `json:"dir"` // the apps.d dir read
	Loaded   time.Time        `json:"loaded,omitzero"`
	Services []Service        `json:"services"`
	Problems []ServiceProblem `json:"problems"`
}

// Reloaded answers POST /v1/reload: what the reload did, by unit ("web",
// or "app:<id>" for an apps entry), then the list as it is now.
type Reloaded struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"` // stopped and made again
	Unchanged []string `json:"unchanged"`
	ServiceList
}
