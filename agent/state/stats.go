package state

import (
	"slices"

	"osmanager/agent/api/apitypes"
)

// The app monitor's latest figures: the system's, each app's (summed over
// its live runs, with each run's), and the alerts raised now. They are the
// API's stats document (agent/api/apitypes), kept here as they are served,
// so that the status document and GET /v1/stats need no conversion. The
// monitor rewrites them every sample (agent/apps/monitor); only a change
// of the raised alerts counts as a change of the store (Changed), so a
// page or the controller link is not woken every second.
type (
	Stats       = apitypes.Stats
	Figures     = apitypes.Figures
	AppStats    = apitypes.AppStats
	RunStats    = apitypes.RunStats
	SystemStats = apitypes.SystemStats
	NetStats    = apitypes.NetStats
	AlertView   = apitypes.RaisedAlert
)

// UpdateStats lets the monitor rewrite the figures in place, reusing the
// store's slices (a sample allocates nothing); f returns whether the
// raised alerts changed, the one change that wakes Changed's waiters.
func (s *Store) UpdateStats(f func(*Stats) (alertsChanged bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.note(f(&s.stats))
}

// Stats returns a copy of the figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats
	c.System.Net = slices.Clone(c.System.Net)
	c.Alerts = slices.Clone(c.Alerts)
	c.Apps = slices.Clone(c.Apps)
	for i := range c.Apps {
		c.Apps[i].Runs = slices.Clone(c.Apps[i].Runs)
	}
	return c
}
