// Package status is the agent's status read model: the document that
// GET /api/v1/status returns (and the local API will), built from the
// shared state (agent/state) and the system's own figures (/proc, statfs,
// the network interfaces, the host name and build/VERSION). It serves no
// requests itself: the web server renders the document, and every other
// reader takes the same one, so they cannot drift apart. It imports no
// service.
package status

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"osmanager/agent/clock"
	"osmanager/agent/internal/hostname"
	"osmanager/agent/state"
)

// Schema is the version of the status document. Fields may be added
// within a version; none is removed or changes meaning.
const Schema = 1

// DefaultRefresh is how often the default page polls the document unless
// told otherwise.
const DefaultRefresh = 5 * time.Second

// Status is the status document: what the default page shows. It holds
// nothing secret: no KEY, no password hash, no cookie.
type Status struct {
	Schema         int             `json:"schema"`
	Time           time.Time       `json:"time"`
	Hostname       string          `json:"hostname"`
	Version        Version         `json:"version"` // <root>/build/VERSION
	Agent          AgentInfo       `json:"agent"`
	Addresses      []Interface     `json:"addresses"`
	System         System          `json:"system"`
	Boot           Boot            `json:"boot"`
	Services       []state.Service `json:"services"`
	Controller     state.Link      `json:"controller"`
	Application    state.AppHealth `json:"application"`     // custom/scripts/status
	Apps           state.Apps      `json:"apps"`            // the application manager's apps and their runs
	Stats          *state.Stats    `json:"stats,omitempty"` // the app monitor's figures and raised alerts; absent before its first sample
	Terminal       TerminalStatus  `json:"terminal"`
	RefreshSeconds float64         `json:"refresh_seconds"` // how often the default page polls
}

// AgentInfo describes osmanager itself.
type AgentInfo struct {
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// Boot is the boot steps of this start, in order.
type Boot struct {
	OK    bool         `json:"ok"` // no step failed
	Steps []state.Step `json:"steps"`
}

// Terminal says where the web terminal is, for the page's link.
type Terminal struct {
	Enabled bool   `json:"enabled"`
	Port    int    `json:"port,omitempty"` // on the host the page was loaded from
	TLS     bool   `json:"tls"`            // https rather than http
	Path    string `json:"path,omitempty"` // default "/"
}

// TerminalStatus is the web terminal: where it listens and its counters
// (which the terminal publishes into the state).
type TerminalStatus struct {
	Terminal
	Active        int `json:"active"`
	Sessions      int `json:"sessions"`
	LoginFailures int `json:"login_failures"`
}

// Config configures a Source. State and VersionFile are needed; the rest
// has defaults.
type Config struct {
	State       *state.Store
	VersionFile string // host path of build/VERSION
	// Hostname is the JSON's domain.name; empty or not an RFC 1123 name
	// means the OS host name (itself checked; else "localhost").
	Hostname     string
	AgentVersion string   // empty: Unknown
	Terminal     Terminal // the web terminal's address, for the page's link
	// Refresh is how often the default page polls the document.
	Refresh time.Duration
	Log     *slog.Logger

	// Where system figures come from: default /proc, / and the host's
	// interfaces and host name; tests point them elsewhere.
	Proc       string
	Disk       string
	Interfaces func() ([]Interface, error)
	OSHostname func() (string, error)
	Clock      clock.Clock
}

// Source builds the status document. Build it with New; its methods are
// safe for concurrent use.
type Source struct {
	cfg     Config
	log     *slog.Logger
	state   *state.Store
	clock   clock.Clock
	started time.Time

	ident identitySource
	sys   sysReader

	errMu   sync.Mutex
	lastErr map[string]string // per source, so a lasting fault is logged once
}

// New checks cfg and builds a Source. The agent's start time, shown as
// agent.started, is the time New is called.
func New(cfg Config) (*Source, error) {
	if cfg.State == nil {
		return nil, errors.New("status: no state store")
	}
	if cfg.VersionFile == "" {
		return nil, errors.New("status: VersionFile is needed")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = Unknown
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.Disk == "" {
		cfg.Disk = "/"
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = HostInterfaces
	}
	if cfg.OSHostname == nil {
		cfg.OSHostname = os.Hostname
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Terminal.Enabled && cfg.Terminal.Path == "" {
		cfg.Terminal.Path = "/"
	}
	s := &Source{cfg: cfg, log: cfg.Log, state: cfg.State, clock: cfg.Clock, started: cfg.Clock.Now(), lastErr: map[string]string{}}
	host := cfg.Hostname
	if host != "" && hostname.Check(host) != nil {
		// The host-name step refused it too; the page must not show it.
		s.log.Warn("domain.name is not an RFC 1123 host name; the page shows the OS host name")
		host = ""
	}
	s.ident = identitySource{hostname: host, osHostname: cfg.OSHostname, versionFile: cfg.VersionFile, onError: s.noteError}
	s.sys = sysReader{proc: cfg.Proc, disk: cfg.Disk}
	return s, nil
}

// Identity returns the host name and VERSION as of now, read again when
// the last reading is IdentityTTL old. The same *Identity is returned
// until then, so a caller may key a cache on it.
func (s *Source) Identity(now time.Time) *Identity { return s.ident.get(now) }

// AgentVersion is osmanager's own version (Unknown when not known).
func (s *Source) AgentVersion() string { return s.cfg.AgentVersion }

// Status builds the status document now.
func (s *Source) Status() Status {
	now := s.clock.Now()
	id := s.ident.get(now)
	st := Status{
		Schema:         Schema,
		Time:           now.UTC().Round(time.Millisecond),
		Hostname:       id.Hostname,
		Version:        id.Version,
		Agent:          AgentInfo{Version: s.cfg.AgentVersion, Started: s.started.UTC(), UptimeSeconds: round1(now.Sub(s.started).Seconds())},
		Addresses:      []Interface{},
		Services:       s.state.Services(),
		Controller:     s.state.Link(),
		Application:    s.state.AppHealth(),
		RefreshSeconds: s.cfg.Refresh.Seconds(),
	}
	if ifs, err := s.cfg.Interfaces(); err != nil {
		s.noteError("interfaces", err)
	} else if ifs != nil {
		st.Addresses = ifs
	}
	sys, err := s.sys.read(now)
	if err != nil {
		s.noteError("system", err)
	}
	st.System = sys
	st.Boot.Steps, st.Boot.OK = s.state.Steps(), true
	for _, x := range st.Boot.Steps {
		if x.Status == state.StepFailed {
			st.Boot.OK = false
		}
	}
	if st.Boot.Steps == nil {
		st.Boot.Steps = []state.Step{}
	}
	if st.Services == nil {
		st.Services = []state.Service{}
	}
	if st.Controller.Status == "" {
		st.Controller.Status = state.LinkDisconnected
	}
	st.Apps = s.state.Apps()
	if st.Apps.Apps == nil {
		st.Apps.Apps = []state.AppView{}
	}
	for i := range st.Apps.Apps {
		runs := st.Apps.Apps[i].Runs
		if runs == nil {
			runs = []state.RunView{}
		}
		for j := range runs {
			runs[j].Since = runs[j].Since.UTC()
		}
		st.Apps.Apps[i].Runs = runs
	}
	if ms := s.state.Stats(); !ms.Time.IsZero() {
		ms.Time = ms.Time.UTC().Round(time.Millisecond)
		ms = ms.WithLists()
		st.Stats = &ms
	}
	t := s.state.Terminal()
	st.Terminal = TerminalStatus{Terminal: s.cfg.Terminal, Active: t.Active, Sessions: t.Sessions, LoginFailures: t.LoginFailures}
	return st
}

// JSON is the document now as every reader is sent it: indented JSON
// ending in a newline.
func (s *Source) JSON() ([]byte, error) {
	body, err := json.MarshalIndent(s.Status(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(body, '\n'), nil
}

// noteError logs a failure to read a system figure once, not on every
// request, and again only when it changes.
func (s *Source) noteError(what string, err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.lastErr[what] == err.Error() {
		return
	}
	s.lastErr[what] = err.Error()
	s.log.Warn("cannot read "+what, "err", err)
}
