// Package apitypes is the wire schema of the agent's local API: the JSON
// documents the server (agent/api) sends and takes, which its client
// (agent/api/client, osmctl) and the app manager share. It imports only
// the standard library, so osmctl links nothing of the agent through it.
//
// # Routes
//
// HTTP/1.1 over the Unix socket (default /run/osmanager.sock):
//
//	POST   /v1/apps                    install: the archive as the body (application/octet-stream,
//	                                   application/x-tar, application/gzip; ?sha256=H&force=1), or
//	                                   an InstallRequest as JSON; answers the App
//	GET    /v1/apps                    []App
//	GET    /v1/apps/{id}               App, with its Runs
//	DELETE /v1/apps/{id}[?purge=1]     Removed
//	POST   /v1/apps/{id}/start         Started (Existing when a single-instance app already runs)
//	POST   /v1/apps/{id}/once          Started: the running instance, or a new one
//	POST   /v1/apps/{id}/rollback      App
//	POST   /v1/apps/{id}/enable        App
//	POST   /v1/apps/{id}/disable       App
//	GET    /v1/apps/{id}/logs          text/plain: the last ?n= lines (default 100), ?follow=1 streams on
//	GET    /v1/runs                    []Run
//	GET    /v1/runs/{runid}            Run
//	POST   /v1/runs/{runid}/pause      Run
//	POST   /v1/runs/{runid}/resume     Run
//	POST   /v1/runs/{runid}/terminate  Run (exited)
//	GET    /v1/events                  application/x-ndjson: one Event per line, as they happen
//	GET    /v1/status                  the agent's status document (as the web server's /api/v1/status)
//	GET    /v1/services                ServiceList: the declared services (apps.d) and refused entries
//	POST   /v1/reload                  Reloaded: apps.d read again and applied
//	GET    /v1/stats[?id=APP|RUNID]    Stats: the monitor's figures of the apps (or one) and the system
//
// Every failure is an ErrorBody with the matching HTTP status (the codes
// of agent/apps/apperr): bad_request 400, forbidden 403, not_found 404,
// conflict and invalid_state 409, too_large 413, integrity 422,
// internal 500, cant_start 502, no_space 507.
//
// New fields are only ever added, with omitempty where a zero value would
// mislead; a reader ignores fields it does not know (osmctl does). JSON
// request bodies are strict: an unknown key is a bad_request, so a typo
// does not pass.
package apitypes

import (
	"strconv"
	"time"
)

// InstallRequest is the JSON body of POST /v1/apps for an install from a
// URL. The same options come as query parameters with an archive body.
type InstallRequest struct {
	URL    string `json:"url"`              // http or https
	SHA256 string `json:"sha256,omitempty"` // hex; required with URL
	Force  bool   `json:"force,omitempty"`  // install the same or an older version again
}

// Desired is the state the manager keeps an app in.
type Desired string

// The desired states.
const (
	Stopped Desired = "stopped"
	Running Desired = "running"
)

// App is an installed app.
type App struct {
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Version     string    `json:"version"`
	Previous    string    `json:"previous,omitempty"` // the version rollback goes back to
	SHA256      string    `json:"sha256,omitempty"`   // of the installed archive
	Size        int64     `json:"size,omitempty"`     // archive bytes
	Installed   time.Time `json:"installed"`
	Instances   string    `json:"instances,omitempty"` // single or multi
	Restart     string    `json:"restart,omitempty"`   // no, on-failure, always
	User        string    `json:"user,omitempty"`
	Desired     Desired   `json:"desired"`
	Enabled     bool      `json:"enabled"` // started once the boot steps are done
	Restarts    int64     `json:"restarts"`
	Problem     string    `json:"problem,omitempty"` // why it cannot run (missing tree, bad manifest)
	Runs        []Run     `json:"runs,omitempty"`    // in GET /v1/apps/{id}; live runs in GET /v1/apps

	// OCI bundles: Bundle is set for an OCI runtime bundle (run by the
	// agent's OCI runtime, crun or runc) rather than a manifest.json package.
	Bundle bool `json:"bundle,omitempty"`
}

// RunState is where a run is in its life.
type RunState string

// The run states: starting → running → (paused ↔ running) → stopping →
// exited or failed.
const (
	Starting RunState = "starting"
	Active   RunState = "running"
	Paused   RunState = "paused"
	Stopping RunState = "stopping"
	Exited   RunState = "exited"
	Failed   RunState = "failed"
)

// Done reports whether a run in state s is over.
func (s RunState) Done() bool { return s == Exited || s == Failed }

// Exit is how a run's leader ended: a code, or the signal that killed
// it (as agent/apps/runner reports it).
type Exit struct {
	Code   int    `json:"code"`             // -1 after a signal, or when unknown
	Signal string `json:"signal,omitempty"` // "TERM", "KILL"
	// Unknown: the leader was adopted after an agent restart (not the
	// agent's child), so its status went to init.
	Unknown bool `json:"unknown,omitempty"`
}

// String is "exit 3", "signal TERM" or "unknown".
func (x *Exit) String() string {
	switch {
	case x == nil:
		return ""
	case x.Unknown:
		return "unknown"
	case x.Signal != "":
		return "signal " + x.Signal
	}
	return "exit " + strconv.Itoa(x.Code)
}

// Run is one run of an app; its fields are those of the runner's state
// (agent/apps/runner.State) that the status document also shows.
type Run struct {
	RunID     uint64    `json:"runid"`
	ID        string    `json:"id"` // the app's id
	Version   string    `json:"version"`
	State     RunState  `json:"state"`
	PIDs      []int     `json:"pids"`                // every process of the run, the group leader first; [] when over
	Since     time.Time `json:"since"`               // when it entered State
	Started   time.Time `json:"started,omitzero"`    // when its current process started
	Restarts  int64     `json:"restarts"`            // restarts by its policy so far
	LastExit  *Exit     `json:"last_exit,omitempty"` // how its process last ended
	Reason    string    `json:"reason,omitempty"`    // why it failed or is restarting
	NextStart time.Time `json:"next_start,omitzero"` // the next automatic restart, while starting again
	Cgroup    string    `json:"cgroup,omitempty"`    // the cgroup mode: unified, hybrid or none
}

// Started answers start and once.
type Started struct {
	Run
	Existing bool   `json:"existing,omitempty"` // the run was already there; nothing was started
	Note     string `json:"note,omitempty"`     // says so, for people
}

// Removed answers DELETE /v1/apps/{id}.
type Removed struct {
	ID     string `json:"id"`
	Purged bool   `json:"purged"` // the data dir went too
}

// EventType names an Event. The set grows; a reader skips types it does
// not know.
type EventType string

// The event types.
const (
	EventInstalled EventType = "installed" // ID, Version
	EventRemoved   EventType = "removed"   // ID
	EventChanged   EventType = "changed"   // ID: enabled, desired or version (rollback) changed
	EventState     EventType = "state"     // ID, RunID, State (and Exit, Reason when over)
	EventAlert     EventType = "alert"     // Alert (ID empty for a system alert)
)

// Event is one line of GET /v1/events.
type Event struct {
	Type    EventType `json:"type"`
	Time    time.Time `json:"time"`
	ID      string    `json:"id,omitempty"` // the app's id
	Version string    `json:"version,omitempty"`
	RunID   uint64    `json:"runid,omitempty"`
	State   RunState  `json:"state,omitempty"`
	Exit    *Exit     `json:"exit,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Alert   *Alert    `json:"alert,omitempty"`
	Message string    `json:"message,omitempty"` // for people
}

// Alert is a threshold alert raised or cleared on a metric.
type Alert struct {
	Metric    string  `json:"metric"` // cpu, memory, disk, net:<if>
	Raised    bool    `json:"raised"` // false: cleared
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
}

// ErrorBody is every failure's body.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a failure: Code is one of agent/apps/apperr's codes,
// Message names what failed for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Stats is GET /v1/stats: the monitor's latest figures (sampled every
// interval_seconds; *_avg over window_seconds), of every app with live
// runs, or of one (?id=APP, or ?id=RUNID: that run alone), and of the
// system, with the alerts raised now.
type Stats struct {
	Time     time.Time     `json:"time"`
	Interval float64       `json:"interval_seconds"`
	Window   float64       `json:"window_seconds"`
	System   SystemStats   `json:"system"`
	Apps     []AppStats    `json:"apps"`
	Alerts   []RaisedAlert `json:"alerts"`
}

// WithLists returns s with its nil lists made empty, so that the JSON
// shows [] rather than null. It sets the Runs of s's own Apps.
func (s Stats) WithLists() Stats {
	if s.Apps == nil {
		s.Apps = []AppStats{}
	}
	if s.Alerts == nil {
		s.Alerts = []RaisedAlert{}
	}
	if s.System.Net == nil {
		s.System.Net = []NetStats{}
	}
	for i := range s.Apps {
		if s.Apps[i].Runs == nil {
			s.Apps[i].Runs = []RunStats{}
		}
	}
	return s
}

// Figures are a run's, or an app's summed over its live runs.
type Figures struct {
	CPUPercent  float64 `json:"cpu_percent"` // of one core
	CPUAvg      float64 `json:"cpu_percent_avg"`
	MemoryBytes uint64  `json:"memory_bytes"`
	MemoryAvg   uint64  `json:"memory_bytes_avg"`
	MemoryPeak  uint64  `json:"memory_peak_bytes"`
	Pids        uint64  `json:"pids"`
	IOBytes     uint64  `json:"io_bytes"` // read and written since the run started
	IORate      float64 `json:"io_bytes_per_second"`
	IOAvg       float64 `json:"io_bytes_per_second_avg"`
}

// AppStats is one app's figures.
type AppStats struct {
	ID string `json:"id"`
	Figures
	DiskBytes   uint64     `json:"disk_bytes"` // its data dir
	DiskChecked time.Time  `json:"disk_checked,omitzero"`
	DiskPartial bool       `json:"disk_partial,omitempty"` // the walk stopped at its bound
	Runs        []RunStats `json:"runs"`
}

// RunStats is one run's figures.
type RunStats struct {
	RunID uint64 `json:"runid"`
	Figures
	Source string `json:"source"`          // cgroup, cgroup+proc or proc
	Error  string `json:"error,omitempty"` // "cgroup gone", "process group gone"
}

// SystemStats is the machine's figures.
type SystemStats struct {
	CPUPercent    float64    `json:"cpu_percent"` // of all CPUs
	CPUAvg        float64    `json:"cpu_percent_avg"`
	MemoryTotal   uint64     `json:"memory_total_bytes"`
	MemoryUsed    uint64     `json:"memory_used_bytes"`
	MemoryPercent float64    `json:"memory_used_percent"`
	DiskPath      string     `json:"disk_path"`
	DiskTotal     uint64     `json:"disk_total_bytes"`
	DiskUsed      uint64     `json:"disk_used_bytes"`
	DiskPercent   float64    `json:"disk_used_percent"`
	Net           []NetStats `json:"net"`
}

// NetStats is one interface's traffic.
type NetStats struct {
	Name    string  `json:"name"`
	RxRate  float64 `json:"rx_bytes_per_second"`
	TxRate  float64 `json:"tx_bytes_per_second"`
	RxAvg   float64 `json:"rx_bytes_per_second_avg"`
	TxAvg   float64 `json:"tx_bytes_per_second_avg"`
	RxBytes uint64  `json:"rx_bytes"`
	TxBytes uint64  `json:"tx_bytes"`
}

// RaisedAlert is an alert raised now.
type RaisedAlert struct {
	ID        string    `json:"id,omitempty"` // "" for a system alert
	Metric    string    `json:"metric"`
	Value     float64   `json:"value"` // when raised
	Threshold float64   `json:"threshold"`
	Since     time.Time `json:"since"`
}
