package apps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/runner"
	"osmanager/agent/apps/store"
)

// The verbs of the local API (agent/api's Apps interface).

// Install installs from req.URL, or from body when it is not nil. Over
// an app that runs (or should) it replaces the running version: see the
// package comment.
func (m *Manager) Install(ctx context.Context, req apitypes.InstallRequest, body io.Reader) (apitypes.App, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.App{}, err
	}
	src := pack.Source{URL: req.URL, SHA256: req.SHA256}
	if body != nil {
		src = pack.Source{Body: body, SHA256: req.SHA256}
	}
	p, err := s.st.Prepare(ctx, src, store.InstallOptions{Force: req.Force})
	if err != nil {
		m.log.Warn("install refused", "source", src.Describe(), "code", apperr.CodeOf(err), "err", err)
		return apitypes.App{}, err
	}
	next := p.App()
	if err := m.checkLimits(s, next); err != nil {
		p.Abort()
		m.log.Warn("install refused", "source", src.Describe(), "app", next.ID, "code", apperr.CodeOf(err), "err", err)
		return apitypes.App{}, err
	}
	unlock, err := m.lock(ctx, next.ID)
	if err != nil {
		p.Abort()
		return apitypes.App{}, err
	}
	defer unlock()
	old, oldErr := s.st.Get(next.ID)
	// The runs of declared services are replaced by applying the
	// declaration again once the new version is in place.
	running := oldErr == nil && (old.Desired == store.Running || len(m.liveFree(s, next.ID)) > 0)
	if !running {
		a, err := p.Commit()
		if err != nil {
			p.Abort()
			return apitypes.App{}, err
		}
		m.redeclare(ctx, s, a.ID)
		if err := m.unitsStarted(s, a.ID); err != nil && oldErr == nil {
			// An eager declared service of the new version cannot start:
			// back to the old version, as a replace does.
			m.log.Error("new version cannot start as its declared service; the old one starts again", "app", a.ID, "version", a.Current.Version, "old", old.Current.Version, "err", err)
			if _, rerr := s.st.Rollback(a.ID); rerr != nil {
				m.log.Error("cannot go back to the old version", "app", a.ID, "err", rerr)
			}
			m.redeclare(ctx, s, a.ID)
			m.publish(s)
			return apitypes.App{}, apperr.Wrap(apperr.CantStart, fmt.Sprintf("%s %s installed but its declared service cannot start; %s kept and started again", a.ID, a.Current.Version, old.Current.Version), err)
		}
		m.installed(s, a, "")
		return m.appDoc(s, a, false), nil
	}

	// Replace: stop the old, start the new, commit only once it runs.
	if err := m.stopAll(ctx, s, next.ID); err != nil {
		p.Abort()
		return apitypes.App{}, err
	}
	if _, err := m.startRun(ctx, s, next, next.Current); err != nil {
		p.Abort()
		m.log.Error("new version cannot start; the old one starts again", "app", next.ID, "version", next.Current.Version, "old", old.Current.Version, "err", err)
		if _, rerr := m.startRun(ctx, s, old, old.Current); rerr != nil {
			m.log.Error("old version cannot start again either", "app", old.ID, "version", old.Current.Version, "err", rerr)
		}
		m.publish(s)
		return apitypes.App{}, apperr.Wrap(apperr.CantStart, fmt.Sprintf("%s %s installed but cannot start; %s kept and started again", next.ID, next.Current.Version, old.Current.Version), err)
	}
	a, err := p.Commit()
	if err != nil {
		// The new version runs from a tree the state does not name: stop
		// it, put the old one back.
		m.stopAll(ctx, s, next.ID)
		p.Abort()
		m.startRun(ctx, s, old, old.Current)
		return apitypes.App{}, err
	}
	if a.Desired != store.Running {
		a, _ = s.st.SetDesired(a.ID, store.Running)
	}
	m.installed(s, a, old.Current.Version)
	m.redeclare(ctx, s, a.ID)
	return m.appDoc(s, a, false), nil
}

func (m *Manager) installed(s *session, a store.App, from string) {
	m.log.Info("app installed", "app", a.ID, "version", a.Current.Version, "replaced", from)
	m.event(apitypes.EventInstalled, a.ID, a.Current.Version, "")
	m.event(apitypes.EventChanged, a.ID, a.Current.Version, "installed")
	m.publish(s)
}

// List returns every installed app with its live runs.
func (m *Manager) List(ctx context.Context) ([]apitypes.App, error) {
	s, err := m.session(ctx)
	if err != nil {
		return nil, err
	}
	out := []apitypes.App{}
	for _, a := range s.st.List() {
		out = append(out, m.appDoc(s, a, false))
	}
	return out, nil
}

// Detail returns an app with all its known runs.
func (m *Manager) Detail(ctx context.Context, id string) (apitypes.App, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.App{}, err
	}
	a, err := s.st.Get(id)
	if err != nil {
		return apitypes.App{}, err
	}
	return m.appDoc(s, a, true), nil
}

// Uninstall stops every run of the app, then removes it (its data dir
// too with purge) and its logs.
func (m *Manager) Uninstall(ctx context.Context, id string, purge bool) error {
	s, err := m.session(ctx)
	if err != nil {
		return err
	}
	if _, err := s.st.Get(id); err != nil {
		return err
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	m.dropUnits(ctx, s, id) // no connection starts it meanwhile
	if err := m.stopAll(ctx, s, id); err != nil {
		return err
	}
	if err := s.st.Uninstall(id, purge); err != nil {
		m.redeclare(ctx, s, id)
		return err
	}
	m.redeclare(ctx, s, id) // its services are now refused: not installed
	var gone []uint64
	s.mu.Lock()
	for runid, e := range s.runs {
		if e.spec.ID == id {
			delete(s.runs, runid)
			gone = append(gone, runid)
		}
	}
	s.mu.Unlock()
	for _, runid := range gone {
		s.r.Forget(runid)
	}
	if err := m.cfg.Root.RemoveAll(m.cfg.Logs + "/" + id); err != nil {
		m.log.Warn("remove app logs", "app", id, "err", err)
	}
	m.dirty(s)
	m.log.Info("app removed", "app", id, "purge", purge)
	m.event(apitypes.EventRemoved, id, "", "")
	m.event(apitypes.EventChanged, id, "", "removed")
	m.publish(s)
	return nil
}

// Start starts a run of the app. A single-instance app that has a live
// run gets that run back, marked Existing.
func (m *Manager) Start(ctx context.Context, id string) (apitypes.Started, error) {
	return m.start(ctx, id, false)
}

// Once returns the app's live run, or starts one.
func (m *Manager) Once(ctx context.Context, id string) (apitypes.Started, error) {
	return m.start(ctx, id, true)
}

func (m *Manager) start(ctx context.Context, id string, once bool) (apitypes.Started, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.Started{}, err
	}
	if _, err := s.st.Get(id); err != nil {
		return apitypes.Started{}, err
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return apitypes.Started{}, err
	}
	defer unlock()
	a, err := s.st.Get(id)
	if err != nil {
		return apitypes.Started{}, err
	}
	if u := m.socketUnit(s, id); u != nil {
		// Its run needs the unit's sockets: the unit starts it (or has).
		return m.kickUnit(ctx, s, u)
	}
	if live := m.live(s, id); len(live) > 0 && (once || single(a)) {
		rs, err := s.r.State(live[0])
		if err == nil {
			note := fmt.Sprintf("%s is already running as run %d; nothing started", id, rs.RunID)
			if once {
				note = fmt.Sprintf("%s runs as run %d", id, rs.RunID)
			}
			return apitypes.Started{Run: m.runDoc(s, rs), Existing: true, Note: note}, nil
		}
	}
	if a.Problem != "" {
		return apitypes.Started{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s cannot run: %s", id, a.Problem))
	}
	if a.Desired != store.Running {
		if _, err := s.st.SetDesired(id, store.Running); err != nil {
			return apitypes.Started{}, err
		}
		m.event(apitypes.EventChanged, id, a.Current.Version, "desired running")
	}
	rs, err := m.startRun(ctx, s, a, a.Current)
	m.publish(s)
	if err != nil {
		return apitypes.Started{}, err
	}
	m.log.Info("app started", "app", id, "runid", rs.RunID)
	return apitypes.Started{Run: m.runDoc(s, rs)}, nil
}

// Rollback stops the app's runs, makes its previous version current and
// starts it again if it was running.
func (m *Manager) Rollback(ctx context.Context, id string) (apitypes.App, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.App{}, err
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return apitypes.App{}, err
	}
	defer unlock()
	a, err := s.st.Get(id)
	if err != nil {
		return apitypes.App{}, err
	}
	if a.Previous == nil {
		return apitypes.App{}, apperr.New(apperr.InvalidState, fmt.Sprintf("%s has no previous version to roll back to", id))
	}
	wasRunning := a.Desired == store.Running || len(m.liveFree(s, id)) > 0
	if err := m.stopAll(ctx, s, id); err != nil {
		return apitypes.App{}, err
	}
	b, err := s.st.Rollback(id)
	if err != nil {
		return apitypes.App{}, err
	}
	defer m.redeclare(ctx, s, id)
	m.log.Info("app rolled back", "app", id, "version", b.Current.Version, "from", a.Current.Version)
	m.event(apitypes.EventChanged, id, b.Current.Version, "rolled back from "+a.Current.Version)
	var serr error
	if wasRunning {
		_, serr = m.startRun(ctx, s, b, b.Current)
	}
	m.publish(s)
	if serr != nil {
		return m.appDoc(s, b, false), apperr.Wrap(apperr.CantStart, fmt.Sprintf("rolled back to %s %s, which cannot start", id, b.Current.Version), serr)
	}
	return m.appDoc(s, b, false), nil
}

// Enable marks the app to start once the boot steps are done.
func (m *Manager) Enable(ctx context.Context, id string) (apitypes.App, error) {
	return m.setEnabled(ctx, id, true)
}

// Disable clears the boot start mark.
func (m *Manager) Disable(ctx context.Context, id string) (apitypes.App, error) {
	return m.setEnabled(ctx, id, false)
}

func (m *Manager) setEnabled(ctx context.Context, id string, on bool) (apitypes.App, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.App{}, err
	}
	a, err := s.st.Get(id)
	if err != nil {
		return apitypes.App{}, err
	}
	if a.Enabled != on {
		if a, err = s.st.SetEnabled(id, on); err != nil {
			return apitypes.App{}, err
		}
		m.log.Info("app boot start", "app", id, "enabled", on)
		m.event(apitypes.EventChanged, id, a.Current.Version, map[bool]string{true: "enabled", false: "disabled"}[on])
		m.publish(s)
	}
	return m.appDoc(s, a, false), nil
}

// Runs returns every known run.
func (m *Manager) Runs(ctx context.Context) ([]apitypes.Run, error) {
	s, err := m.session(ctx)
	if err != nil {
		return nil, err
	}
	out := []apitypes.Run{}
	for _, rs := range m.runStates(s, "") {
		out = append(out, m.runDoc(s, rs))
	}
	return out, nil
}

// Run returns one run (the API's GET /v1/runs/{runid}; the service
// loop is Serve).
func (m *Manager) Run(ctx context.Context, runid uint64) (apitypes.Run, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.Run{}, err
	}
	rs, err := s.r.State(runid)
	if err != nil {
		return apitypes.Run{}, runErr(err, runid)
	}
	return m.runDoc(s, rs), nil
}

// Pause freezes a run.
func (m *Manager) Pause(ctx context.Context, runid uint64) (apitypes.Run, error) {
	return m.runVerb(ctx, runid, "pause")
}

// Resume thaws a run.
func (m *Manager) Resume(ctx context.Context, runid uint64) (apitypes.Run, error) {
	return m.runVerb(ctx, runid, "resume")
}

// Terminate stops a run and returns it exited; terminating the app's
// last live run makes its desired state stopped.
func (m *Manager) Terminate(ctx context.Context, runid uint64) (apitypes.Run, error) {
	return m.runVerb(ctx, runid, "terminate")
}

func (m *Manager) runVerb(ctx context.Context, runid uint64, verb string) (apitypes.Run, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.Run{}, err
	}
	s.mu.Lock()
	e := s.runs[runid]
	s.mu.Unlock()
	if e == nil {
		return apitypes.Run{}, apperr.New(apperr.NotFound, fmt.Sprintf("no run %d", runid))
	}
	var rs runner.State
	switch verb {
	case "pause":
		rs, err = s.r.Pause(ctx, runid)
	case "resume":
		rs, err = s.r.Resume(ctx, runid)
	case "terminate":
		rs, err = s.r.Terminate(ctx, runid)
		if err == nil && len(m.live(s, e.spec.ID)) == 0 {
			if a, gerr := s.st.Get(e.spec.ID); gerr == nil && a.Desired != store.Stopped {
				if _, err := s.st.SetDesired(e.spec.ID, store.Stopped); err == nil {
					m.event(apitypes.EventChanged, e.spec.ID, a.Current.Version, "desired stopped")
				}
			}
		}
		m.dirty(s)
	}
	if err != nil {
		return m.runDoc(s, rs), runErr(err, runid)
	}
	m.log.Info("run "+verb, "app", e.spec.ID, "runid", runid, "state", rs.State)
	m.publish(s)
	return m.runDoc(s, rs), nil
}

// Logs returns the last n lines of the app's latest run and, with
// follow, what that run writes next.
func (m *Manager) Logs(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error) {
	s, err := m.session(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.st.Get(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var last *entry
	for _, e := range s.runs {
		if e.spec.ID == id && (last == nil || e.spec.RunID > last.spec.RunID) {
			last = e
		}
	}
	s.mu.Unlock()
	if last == nil {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if !follow || last.st.State.Final() {
		lines, err := s.r.Tail(last.spec, n)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, apperr.Wrap(apperr.Internal, "read the log of "+id, err)
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		return io.NopCloser(strings.NewReader(b.String())), nil
	}
	pr, pw := io.Pipe()
	fctx, cancel := context.WithCancel(ctx)
	go func() {
		err := s.r.Follow(fctx, last.spec.RunID, n, pw)
		pw.CloseWithError(err)
	}()
	return &followReader{PipeReader: pr, cancel: cancel}, nil
}

type followReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (f *followReader) Close() error {
	f.cancel()
	return f.PipeReader.Close()
}

// Subscribe returns the events from now on (apitypes.Hub.Subscribe).
func (m *Manager) Subscribe(ctx context.Context, buf int) <-chan apitypes.Event {
	return m.hub.Subscribe(ctx, buf)
}
