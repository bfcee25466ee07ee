// Package statetest fills a state.Store with one of everything, for the
// tests of the packages that render it (agent/status, agent/web).
package statetest

import (
	"time"

	"osmanager/agent/state"
)

// Fill records, at start: four boot steps (ok, ok with a change, skipped,
// failed), a running and a backing-off service, a registered link with a
// report, the application's health, terminal counters and apps.
func Fill(st *state.Store, start time.Time, apps state.Apps) {
	st.SetStep(state.Step{Name: "floppy", Status: state.StepOK, Started: start, Duration: 325 * time.Microsecond, Note: "read 633 bytes from /dev/fd0"})
	st.SetStep(state.Step{Name: "password", Status: state.StepOK, Started: start, Duration: 3 * time.Millisecond, Changed: []string{"/etc/shadow"}})
	st.SetStep(state.Step{Name: "network", Status: state.StepSkipped, Started: start, Duration: 2 * time.Microsecond, Note: "--no-network"})
	st.SetStep(state.Step{Name: "script", Status: state.StepFailed, Started: start, Duration: 1500 * time.Millisecond, Error: "exit status 3"})
	st.UpdateService("clc", func(s *state.Service) { s.Status, s.Since = state.ServiceRunning, start })
	st.UpdateService("webssh", func(s *state.Service) {
		s.Status, s.Since, s.Restarts, s.LastError, s.NextStart = state.ServiceBackoff, start, 2, "listen :8001: address in use", start.Add(4*time.Second)
	})
	st.UpdateLink(func(l *state.Link) {
		l.Status, l.Since, l.Controller, l.Reconnects = state.LinkRegistered, start, "10.0.0.1:1369", 3
		l.LastReport = &state.Report{Value: 2000, At: start}
	})
	st.SetAppHealth(state.AppHealth{Code: 2000, Meaning: "running", Checked: start, Duration: 12 * time.Millisecond})
	st.UpdateTerminal(func(t *state.Terminal) { t.Active, t.Sessions, t.LoginFailures = 1, 5, 2 })
	st.SetApps(apps)
}
