package web

import (
	"encoding/json"
	"net/http"
	"time"

	"osmanager/agent/state"
)

// StatusSchema is the version of the /api/v1/status document. Fields may be
// added within a version; none is removed or changes meaning.
const StatusSchema = 1

// Status is the document GET /api/v1/status returns: what the default page
// shows. It holds nothing secret: no KEY, no password hash, no cookie.
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
	Application    state.App       `json:"application"` // custom/scripts/status
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

// TerminalStatus is the web terminal: where it listens and its counters.
type TerminalStatus struct {
	Terminal
	Active        int `json:"active"`
	Sessions      int `json:"sessions"`
	LoginFailures int `json:"login_failures"`
}

// Status builds the status document now.
func (s *Server) Status() Status {
	now := s.clock.Now()
	v := s.vars.get(now)
	st := Status{
		Schema:         StatusSchema,
		Time:           now.UTC().Round(time.Millisecond),
		Hostname:       v.vals[varHostname],
		Version:        v.version,
		Agent:          AgentInfo{Version: s.cfg.AgentVersion, Started: s.started.UTC(), UptimeSeconds: round1(now.Sub(s.started).Seconds())},
		Addresses:      []Interface{},
		Services:       s.state.Services(),
		Controller:     s.state.Link(),
		Application:    s.state.App(),
		RefreshSeconds: s.cfg.Refresh.Seconds(),
	}
	if st.Agent.Version == "" {
		st.Agent.Version = Unknown
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
	t := s.state.Terminal()
	st.Terminal = TerminalStatus{Terminal: s.cfg.Terminal, Active: t.Active, Sessions: t.Sessions, LoginFailures: t.LoginFailures}
	return st
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(s.Status(), "", "  ")
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = s.hdr.json
	h["Cache-Control"] = s.hdr.noStore
	h["Content-Security-Policy"] = s.hdr.cspNone
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(append(body, '\n'))
	}
}
