package apps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/monitor"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/runner"
	"osmanager/agent/apps/store"
	"osmanager/agent/state"
)

// Monitoring: the manager tracks each live run in the monitor
// (agent/apps/monitor), applies the manifests' limits through the
// runner, refuses at install the limits the host cannot apply (unless
// soft), sends raised and cleared alerts as events, and serves the
// stats verb.

// newMonitor builds the session's monitor from Config.Monitor and the
// system alert file.
func (m *Manager) newMonitor() *monitor.Monitor {
	mc := m.cfg.Monitor
	mc.Log, mc.State = m.log, m.cfg.State
	if mc.State == nil {
		mc.State = &state.Store{}
	}
	mc.OnAlert = func(al monitor.Alert) {
		ev := apitypes.Event{Type: apitypes.EventAlert, Time: al.At.UTC(), ID: al.ID,
			Alert: &apitypes.Alert{Metric: al.Metric, Raised: al.Raised, Value: al.Value, Threshold: al.Threshold}, Message: al.Why}
		m.hub.Publish(ev)
	}
	if f := m.cfg.AlertFile; f != "" {
		data, err := m.cfg.Root.ReadFile(f, pack.MaxAlertFile+1)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			m.log.Error("read the alert file", "file", f, "err", err)
		default:
			af, err := pack.ParseAlertFile(data)
			if err != nil {
				// The rules that are right still hold.
				m.log.Error("alert file has bad rules; they are left out", "file", f, "err", err)
			}
			mc.System, mc.Apps = af.System, af.Apps
			m.log.Info("alert rules loaded", "file", f, "system", len(af.System), "apps", len(af.Apps))
		}
	}
	return monitor.New(mc)
}

// watch tracks a run in the monitor while a process of it lives. Called
// from changed, with the run's new state.
func (m *Manager) watch(s *session, e *entry, rs runner.State) {
	live := rs.Record != nil && !rs.State.Final()
	var rec runner.Record
	if live {
		rec = *rs.Record
	}
	s.mu.Lock()
	tracked := e.watch != 0
	retrack := live && tracked && e.watch != rec.Pid // restarted: a new process, a fresh leaf
	if live {
		e.watch = rec.Pid
	} else {
		e.watch = 0
	}
	s.mu.Unlock()
	switch {
	case live && (!tracked || retrack):
		var alerts pack.Alerts
		if a, err := s.st.Get(rs.ID); err == nil {
			if v := version(a, e.tree); v != nil && v.Manifest != nil {
				alerts = v.Manifest.Alerts
			}
		}
		s.mon.Track(monitor.Target{ID: rs.ID, RunID: rec.RunID, Cgroup: rec.Cgroup, Pid: rec.Pid, StartTime: rec.StartTime, Data: e.spec.Data, Alerts: alerts})
	case !live && tracked:
		s.mon.Untrack(rs.RunID)
	}
}

// runLimits is the runner's form of a manifest's limits.
func runLimits(l *pack.ResourceLimits) runner.Limits {
	if l == nil {
		return runner.Limits{}
	}
	return runner.Limits{Memory: int64(l.Memory), CPU: l.CPU, Pids: l.Pids, Soft: l.Soft}
}

// checkLimits refuses an app whose limits this host cannot apply, unless
// they are soft.
func (m *Manager) checkLimits(s *session, a store.App) error {
	mf := a.Current.Manifest
	if mf == nil || mf.Limits.Empty() {
		return nil
	}
	err := s.r.CheckLimits(runLimits(mf.Limits))
	switch {
	case err == nil:
		return nil
	case mf.Limits.Soft:
		m.log.Warn("limits cannot be applied here; the app runs without them (soft)", "app", a.ID, "err", err)
		return nil
	}
	return apperr.Wrap(apperr.CantStart, fmt.Sprintf(`%s %s: its "limits" cannot be applied on this host (cgroup mode %s); mark them "soft": true to run without them`, a.ID, a.Current.Version, s.r.Mode()), err)
}

// Stats is the stats verb: the monitor's latest figures, of every app or
// of one (an app id, or a runid: that run's app with that run only).
func (m *Manager) Stats(ctx context.Context, id string) (apitypes.Stats, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.Stats{}, err
	}
	st := s.mon.State().Stats()
	if id == "" {
		return statsDoc(st), nil
	}
	var keep []state.AppStats
	if _, err := s.st.Get(id); err == nil {
		for _, a := range st.Apps {
			if a.ID == id {
				keep = append(keep, a)
			}
		}
	} else if runid, perr := strconv.ParseUint(id, 10, 64); perr == nil && runid > 0 {
		if _, rerr := s.r.State(runid); rerr != nil {
			return apitypes.Stats{}, apperr.New(apperr.NotFound, fmt.Sprintf("no app %s and no run %d", id, runid))
		}
		for _, a := range st.Apps {
			for _, r := range a.Runs {
				if r.RunID == runid {
					a.Runs, a.Figures = []state.RunStats{r}, r.Figures
					keep = append(keep, a)
				}
			}
		}
	} else {
		return apitypes.Stats{}, err
	}
	st.Apps = keep
	return statsDoc(st), nil
}

// statsDoc is the stats document as the API serves it: lists never
// null, the time in UTC.
func statsDoc(st state.Stats) apitypes.Stats {
	st = st.WithLists()
	if !st.Time.IsZero() {
		st.Time = st.Time.UTC()
	}
	return st
}
