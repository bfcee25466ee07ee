// Package apps is the application manager, a service of the agent: it
// joins the store of installed apps (agent/apps/store) and the runner of
// their runs (agent/apps/runner), and serves the local API's verbs
// (agent/api's Apps interface, with the documents of
// agent/api/apitypes): install, uninstall, list, detail, start, once,
// terminate, pause, resume, rollback, enable, disable, logs and events.
//
// # Install and replace
//
// An install is the store's two phases. For an app with no live run
// and not desired running: Prepare, Commit. For an app that runs (or
// should): Prepare the new version beside the old one, stop the old
// runs, start the new version; only once it is running is the install
// committed (the old version becomes the previous one). If the new
// version cannot start, the install is aborted (its tree removed), the
// old version is started again, and the install fails with cant_start.
//
// # Runs across agent restarts
//
// Desired states, runids and restart counts live in the store's
// state.json. The records of the live runs (pid, start time, cgroup) are
// written atomically to runs.json (Config.Runs) on every change. When the
// manager starts (Serve) it adopts each recorded run that still lives
// (runner.Adopt), stops the processes in the agent's app cgroups that
// belong to no run (runner.Sweep), and starts every app whose desired
// state is running, or that is enabled (boot start) when the host has
// booted since the last agent (its boot id changed), and has no live run.
// At the end of Serve, runs are left running when they have cgroups (a pidfd
// and their cgroup find them again); without cgroup v2 they are stopped
// with the agent and started again by the next one.
//
// # Desired state
//
// start and once make an app's desired state running; terminate of its
// last live run, uninstall, and a clean exit of its last run (exit 0, not
// restarted by its policy) make it stopped. A run that failed (start
// limit hit) or exited non-zero leaves it running: the app is wanted but
// not running, which the status document and the controller link show.
package apps

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/monitor"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/runner"
	"osmanager/agent/apps/store"
	"osmanager/agent/state"
	"osmanager/agent/sysroot"
)

// Config is what a Manager needs.
type Config struct {
	// Root is the LuoYun dir: the store, runs.json and the logs are in it.
	Root  *sysroot.Root
	Files store.Files
	// Runs is the sysroot name of the live runs' records; Logs the dir of
	// the runs' log files (<id>/<runid>.log).
	Runs string
	Logs string
	// Store options (limits, user lookup, HTTP client); Log is set from
	// Config.Log.
	Store store.Options
	// Runner is the runner's config but Sys, Log and OnChange, which the
	// manager sets; a new runner is made for each Serve.
	Runner runner.Config
	// State gets the apps' record (state.Apps) on every change; nil for
	// none.
	State *state.Store
	Log   *slog.Logger // carries service=apps
	// KeepRuns is how many final runs of each app are kept for display;
	// default 3.
	KeepRuns int
	// Monitor configures the sampling of the runs and the system
	// (agent/apps/monitor) but State, Log, OnAlert and the file's rules,
	// which the manager sets.
	Monitor monitor.Config
	// AlertFile is the sysroot name of the system alert file
	// (pack.AlertFile; paths.AlertsFile), read when Serve starts; ""
	// or missing: no rules but the manifests'.
	AlertFile string
	// BootID is the host file of the kernel's boot id; default
	// /proc/sys/kernel/random/boot_id. Enabled apps are started on a new
	// boot, not when only the agent restarts.
	BootID string

	// Declared services (services.go): AppsD is the LuoYun name of the
	// apps.d dir ("" for none); Sys the system root, where the services'
	// Unix sockets are; each receive on Reload (SIGHUP) reads AppsD again.
	AppsD  string
	Sys    *sysroot.Root
	Reload <-chan os.Signal
}

// Manager is the app manager. Serve is its service loop; its verbs wait
// until Serve has opened the store and recovered the runs, or their ctx
// ends.
type Manager struct {
	cfg Config
	log *slog.Logger
	hub apitypes.Hub

	mu     sync.Mutex
	sess   *session
	ready  chan struct{} // closed while sess is set
	broken error         // why the last Serve could not open the store
	locks  map[string]chan struct{}
}

// session is one Serve: the store opened and the runner running.
type session struct {
	st  *store.Store
	r   *runner.Runner
	mon *monitor.Monitor

	mu     sync.Mutex
	runs   map[uint64]*entry
	dirty  chan struct{} // a run changed: write runs.json, restarts
	bootID string

	decl decl // the declared services
}

// entry is a run the manager knows.
type entry struct {
	spec  runner.Spec
	tree  string
	st    runner.State
	told  runner.Status // the state last sent as an event
	taken int           // restarts already counted in the app's record
	ended bool          // its clean end was seen by persist
	unit  *unit         // the declared service it runs for; nil for none
	watch int           // the pid of the process the monitor tracks; 0: not tracked
}

// permanentError is a failure restarting will not mend (the supervisor
// asks Permanent).
type permanentError struct{ error }

func (e permanentError) Permanent() bool { return true }
func (e permanentError) Unwrap() error   { return e.error }

// New returns a Manager; Serve runs it.
func New(cfg Config) *Manager {
	cfg.Log = cmp.Or(cfg.Log, slog.New(slog.DiscardHandler))
	cfg.KeepRuns = cmp.Or(cfg.KeepRuns, 3)
	cfg.BootID = cmp.Or(cfg.BootID, "/proc/sys/kernel/random/boot_id")
	return &Manager{cfg: cfg, log: cfg.Log, ready: make(chan struct{}), locks: map[string]chan struct{}{}}
}

// runsFile is runs.json: the live runs' records.
type runsFile struct {
	BootID string      `json:"boot_id,omitempty"` // the boot the enabled apps were started on
	Runs   []runRecord `json:"runs"`
}

type runRecord struct {
	Tree   string        `json:"tree"` // the app's version tree the run was started from
	Record runner.Record `json:"record"`
	// Socket: the run held the agent's sockets (a declared service); the
	// next agent stops it, should it have outlived its agent.
	Socket bool `json:"socket,omitempty"`
}

// Serve is the service (Run is the API's verb that returns a run): it
// opens the store, adopts the runs an earlier agent left, starts the
// apps that should run, and serves until ctx ends. An unusable apps dir
// is a permanent failure. At the end, runs with cgroups are left
// running for the next agent; without, they are stopped.
func (m *Manager) Serve(ctx context.Context) error {
	so := m.cfg.Store
	so.Log = m.log
	st, err := store.Open(m.cfg.Root, m.cfg.Files, so)
	if err != nil {
		m.log.Error("app store unusable; the app manager stops", "err", err)
		m.mu.Lock()
		m.broken = err
		m.mu.Unlock()
		return permanentError{fmt.Errorf("apps: %w", err)}
	}
	s := &session{st: st, runs: map[uint64]*entry{}, dirty: make(chan struct{}, 1)}
	s.decl.units = map[string]*unit{}
	s.decl.ctx, s.decl.cancel = context.WithCancel(context.Background())
	rc := m.cfg.Runner
	rc.Sys, rc.Log = m.cfg.Root, m.log
	rc.OnChange = func(rs runner.State) { m.changed(s, rs) }
	s.r = runner.New(rc)
	s.mon = m.newMonitor()
	rctx, cancel := context.WithCancel(context.Background())
	ran, sampled := make(chan struct{}), make(chan struct{})
	go func() { s.r.Run(rctx); close(ran) }()
	go func() { s.mon.Run(rctx); close(sampled) }()
	defer func() {
		m.stopUnits(s)
		cancel()
		<-ran
		<-sampled
		m.persist(s)
		m.mu.Lock()
		m.sess = nil
		m.ready = make(chan struct{})
		m.mu.Unlock()
		m.publish(s)
		m.log.Info("app manager stopped")
	}()
	m.log.Info("app manager starting", "cgroup_mode", s.r.Mode(), "stop_runs_with_agent", s.r.Mode() == runner.CgroupNone)
	files, probs := m.readDecl()
	m.recover(ctx, s, m.socketApps(s, m.parseDecl(s, files, probs)))
	if m.cfg.AppsD != "" {
		rep := m.apply(ctx, s, files, probs, "")
		m.log.Info("declared services loaded", "dir", m.cfg.AppsD, "units", len(rep.Added), "problems", len(rep.Problems))
	}
	m.mu.Lock()
	m.sess, m.broken = s, nil
	close(m.ready)
	m.mu.Unlock()
	m.publish(s)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.dirty:
			m.persist(s)
		case <-m.cfg.Reload:
			m.reload(ctx, s)
		}
	}
}

// recover adopts recorded runs, sweeps strays and starts the apps that
// should run, but those of declared services with sockets (their units
// start them) and stops adopted runs that held an earlier agent's
// sockets.
func (m *Manager) recover(ctx context.Context, s *session, socketApps map[string]bool) {
	var rf runsFile
	data, err := m.cfg.Root.ReadFile(m.cfg.Runs, 16<<20)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		m.log.Error("read run records", "file", m.cfg.Runs, "err", err)
	default:
		if err := json.Unmarshal(data, &rf); err != nil {
			m.log.Error("read run records", "file", m.cfg.Runs, "err", err)
			rf = runsFile{}
		}
	}
	for _, rr := range rf.Runs {
		rec := rr.Record
		s.mu.Lock()
		dup := s.runs[rec.RunID] != nil
		s.mu.Unlock()
		if dup {
			m.log.Warn("run recorded twice; the second record is ignored", "app", rec.ID, "runid", rec.RunID)
			continue
		}
		a, err := s.st.Get(rec.ID)
		if err != nil {
			m.log.Warn("run of an app no longer installed; its processes are swept", "app", rec.ID, "runid", rec.RunID)
			continue
		}
		v := version(a, rr.Tree)
		if v == nil {
			m.log.Warn("run of a version no longer installed; its processes are swept", "app", rec.ID, "runid", rec.RunID, "tree", rr.Tree)
			continue
		}
		sp, err := m.spec(s, a, *v, rec.RunID)
		if err != nil {
			m.log.Error("cannot rebuild a run's spec", "app", rec.ID, "runid", rec.RunID, "err", err)
			continue
		}
		m.add(s, sp, v.Tree, nil)
		if _, err := s.r.Adopt(ctx, sp, rec); err != nil {
			s.mu.Lock()
			delete(s.runs, rec.RunID)
			s.mu.Unlock()
		} else if rr.Socket {
			m.log.Warn("run held the sockets of an earlier agent; stopped (its service starts it again)", "app", rec.ID, "runid", rec.RunID)
			s.r.Terminate(ctx, rec.RunID)
		}
	}
	if swept := s.r.Sweep(nil); len(swept) > 0 {
		m.log.Warn("stopped processes of no known run", "cgroups", swept)
	}
	b, _ := os.ReadFile(m.cfg.BootID)
	s.bootID = strings.TrimSpace(string(b))
	newBoot := s.bootID == "" || s.bootID != rf.BootID
	for _, a := range s.st.List() {
		if a.Desired != store.Running && !(a.Enabled && newBoot) {
			continue
		}
		if len(m.live(s, a.ID)) > 0 || a.Problem != "" || socketApps[a.ID] {
			continue
		}
		why := "desired running"
		if a.Desired != store.Running {
			why = "enabled at boot"
		}
		if _, err := m.startRun(ctx, s, a, a.Current); err != nil {
			m.log.Error("app not started", "app", a.ID, "why", why, "err", err)
			continue
		}
		m.log.Info("app started", "app", a.ID, "why", why)
	}
	m.persist(s)
}

func version(a store.App, tree string) *store.Version {
	switch {
	case a.Current.Tree == tree:
		return &a.Current
	case a.Previous != nil && a.Previous.Tree == tree:
		return a.Previous
	}
	return nil
}

// session waits for Run to be up.
func (m *Manager) session(ctx context.Context) (*session, error) {
	for {
		m.mu.Lock()
		s, ready, broken := m.sess, m.ready, m.broken
		m.mu.Unlock()
		if s != nil {
			return s, nil
		}
		if broken != nil {
			return nil, apperr.Wrap(apperr.Internal, "the app manager is not running", broken)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, apperr.Wrap(apperr.Internal, "the app manager is not running", ctx.Err())
		}
	}
}

// lock takes the app's lock: one verb that changes an app at a time.
func (m *Manager) lock(ctx context.Context, id string) (func(), error) {
	m.mu.Lock()
	l := m.locks[id]
	if l == nil {
		l = make(chan struct{}, 1)
		m.locks[id] = l
	}
	m.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, apperr.Wrap(apperr.Conflict, "another change of "+id+" is in progress", ctx.Err())
	}
}

// spec makes a run's Spec from an installed version.
func (m *Manager) spec(s *session, a store.App, v store.Version, runid uint64) (runner.Spec, error) {
	mf := v.Manifest
	if mf == nil {
		return runner.Spec{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s %s: no manifest (%s)", a.ID, v.Version, a.Problem))
	}
	sp := runner.Spec{
		ID: a.ID, Version: v.Version, RunID: runid,
		Exec: filepath.Join(v.Dir, mf.Exec), Args: mf.Args, Env: mf.Env, Data: a.DataDir,
		Workdir: v.Dir, Restart: runner.Policy(cmp.Or(mf.Restart, pack.DefaultRestart)),
		StopTimeout: mf.StopTimeout.D(),
		Log:         m.logName(a.ID, runid),
		Limits:      runLimits(mf.Limits),
	}
	if mf.Workdir != "" {
		sp.Workdir = filepath.Join(v.Dir, mf.Workdir)
	}
	if mf.Bundle != nil { // an OCI bundle: the OCI runtime runs it (runner.Mux)
		sp.Exec, sp.Workdir, sp.Bundle = "", "", filepath.Join(v.Dir, mf.Bundle.Dir)
	}
	if mf.StartLimit != nil {
		sp.StartLimit = runner.StartLimit{Burst: mf.StartLimit.Burst, Interval: mf.StartLimit.Interval.D()}
	}
	if u := mf.User; u != "" && u != "root" {
		if m.cfg.Store.Users == nil {
			return runner.Spec{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s: user %q: no account lookup", a.ID, u))
		}
		uid, gid, err := m.cfg.Store.Users(u)
		if err != nil {
			return runner.Spec{}, apperr.Wrap(apperr.CantStart, a.ID+": user "+u, err)
		}
		sp.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		sp.User = u
	}
	return sp, nil
}

func (m *Manager) logName(id string, runid uint64) string {
	return m.cfg.Logs + "/" + id + "/" + strconv.FormatUint(runid, 10) + ".log"
}

func (m *Manager) add(s *session, sp runner.Spec, tree string, u *unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[sp.RunID] = &entry{spec: sp, tree: tree, st: runner.State{RunID: sp.RunID, ID: sp.ID, Version: sp.Version, State: runner.Starting}, unit: u}
}

// startRun starts a new run of version v of a, with a new runid.
func (m *Manager) startRun(ctx context.Context, s *session, a store.App, v store.Version) (runner.State, error) {
	return m.startRunFor(ctx, s, a, v, nil)
}

// startRunFor starts a run for the declared unit u (nil for none): with
// its extra args after the manifest's, and its sockets.
func (m *Manager) startRunFor(ctx context.Context, s *session, a store.App, v store.Version, u *unit) (runner.State, error) {
	runid, err := s.st.NextRunID()
	if err != nil {
		return runner.State{}, err
	}
	sp, err := m.spec(s, a, v, runid)
	if err != nil {
		return runner.State{}, err
	}
	if u != nil {
		sp.Args = append(slices.Clone(sp.Args), u.args...)
		if len(u.files) > 0 {
			sp.Listen, sp.ListenNames, sp.StopWithAgent = u.files, u.names, true
		}
	}
	if _, err := s.st.MakeDataDir(a.ID); err != nil && !errors.Is(err, &apperr.Error{Code: apperr.NotFound}) {
		return runner.State{}, err
	}
	m.add(s, sp, v.Tree, u)
	m.prune(s, a.ID)
	rs, err := s.r.Start(ctx, sp)
	if err != nil {
		if rs.RunID == 0 { // never got into the runner
			s.mu.Lock()
			delete(s.runs, runid)
			s.mu.Unlock()
		}
		m.dirty(s)
		return rs, apperr.Wrap(apperr.CantStart, fmt.Sprintf("start %s %s", a.ID, v.Version), err)
	}
	// Start returns once running, perhaps before OnChange has told us.
	s.mu.Lock()
	if e := s.runs[runid]; e != nil && !rs.Since.Before(e.st.Since) {
		e.st = rs
	}
	s.mu.Unlock()
	m.dirty(s)
	m.publish(s)
	return rs, nil
}

// prune forgets the oldest final runs of an app beyond KeepRuns, and
// their logs.
func (m *Manager) prune(s *session, id string) {
	s.mu.Lock()
	var final []uint64
	for runid, e := range s.runs {
		if e.spec.ID == id && e.st.State.Final() {
			final = append(final, runid)
		}
	}
	slices.Sort(final)
	var drop []*entry
	for len(final) > m.cfg.KeepRuns {
		drop = append(drop, s.runs[final[0]])
		delete(s.runs, final[0])
		final = final[1:]
	}
	s.mu.Unlock()
	for _, e := range drop {
		s.r.Forget(e.spec.RunID)
		for _, n := range []string{e.spec.Log, e.spec.Log + ".1", e.spec.Log + ".2"} {
			m.cfg.Root.Remove(n)
		}
	}
}

// live returns the app's runs that are not final, by runid.
func (m *Manager) live(s *session, id string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for runid, e := range s.runs {
		if e.spec.ID == id && !e.st.State.Final() {
			out = append(out, runid)
		}
	}
	slices.Sort(out)
	return out
}

// stopAll terminates every live run of the app.
func (m *Manager) stopAll(ctx context.Context, s *session, id string) error {
	var errs []error
	for _, runid := range m.live(s, id) {
		if _, err := s.r.Terminate(ctx, runid); err != nil && !errors.Is(err, runner.ErrUnknownRun) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return apperr.Wrap(apperr.Internal, "stop the runs of "+id, err)
	}
	return nil
}

// changed is the runner's OnChange: it must be quick.
func (m *Manager) changed(s *session, rs runner.State) {
	s.mu.Lock()
	e := s.runs[rs.RunID]
	var prev runner.Status
	if e != nil {
		prev = e.told
		e.st, e.told = rs, rs.State
	}
	s.mu.Unlock()
	if e == nil {
		return
	}
	if e.unit != nil && rs.State.Final() {
		select {
		case e.unit.ended <- rs.RunID:
		default:
		}
	}
	m.watch(s, e, rs)
	if prev != rs.State {
		ev := apitypes.Event{Type: apitypes.EventState, Time: time.Now().UTC(), ID: rs.ID, Version: rs.Version, RunID: rs.RunID, State: apitypes.RunState(rs.State), Reason: rs.Reason}
		if rs.State.Final() {
			ev.Exit = exitOf(rs.LastExit)
		}
		m.hub.Publish(ev)
		m.log.Debug("run state", "app", rs.ID, "runid", rs.RunID, "state", rs.State)
	}
	m.dirty(s)
	m.publish(s)
}

func (m *Manager) dirty(s *session) {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// persist writes runs.json from the live runs, counts restarts into the
// apps' records and drops the desired state of apps whose last run ended
// cleanly.
func (m *Manager) persist(s *session) {
	s.mu.Lock()
	rf := runsFile{BootID: s.bootID}
	restarts := map[string]int{}
	liveApps, cleanEnd := map[string]bool{}, map[string]bool{}
	for _, e := range s.runs {
		if e.st.Record != nil {
			rf.Runs = append(rf.Runs, runRecord{Tree: e.tree, Record: *e.st.Record, Socket: len(e.spec.Listen) > 0})
		}
		if d := e.st.Restarts - e.taken; d > 0 {
			restarts[e.spec.ID] += d
			e.taken = e.st.Restarts
		}
		if !e.st.State.Final() {
			liveApps[e.spec.ID] = true
		} else if e.st.State == runner.Exited && e.st.Reason == "" && e.st.LastExit != nil && e.st.LastExit.Code == 0 && e.st.LastExit.Signal == "" && !e.st.LastExit.Unknown && !e.ended {
			cleanEnd[e.spec.ID] = true
			e.ended = true
		}
	}
	s.mu.Unlock()
	slices.SortFunc(rf.Runs, func(a, b runRecord) int { return cmp.Compare(a.Record.RunID, b.Record.RunID) })
	if rf.Runs == nil {
		rf.Runs = []runRecord{}
	}
	data, _ := json.MarshalIndent(rf, "", "  ")
	if _, err := m.cfg.Root.WriteFile(m.cfg.Runs, append(data, '\n'), sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o755}); err != nil {
		m.log.Error("write run records", "file", m.cfg.Runs, "err", err)
	}
	for id, d := range restarts {
		s.st.Update(id, func(a *store.App) error { a.Restarts += int64(d); return nil })
	}
	for id := range cleanEnd {
		if liveApps[id] {
			continue
		}
		if a, err := s.st.Get(id); err == nil && a.Desired == store.Running {
			if _, err := s.st.SetDesired(id, store.Stopped); err == nil {
				m.log.Info("app finished; desired state now stopped", "app", id)
				m.hub.Publish(apitypes.Event{Type: apitypes.EventChanged, Time: time.Now().UTC(), ID: id, Message: "finished: desired state stopped"})
			}
		}
	}
	if len(restarts) > 0 || len(cleanEnd) > 0 {
		m.publish(s)
	}
}

// publish replaces the agent's state.Apps record.
func (m *Manager) publish(s *session) {
	if m.cfg.State == nil {
		return
	}
	rec := state.Apps{Cgroups: string(s.r.Mode()), Apps: []state.AppView{}}
	s.mu.Lock()
	byApp := map[string][]runner.State{}
	for _, e := range s.runs {
		byApp[e.spec.ID] = append(byApp[e.spec.ID], e.st)
	}
	s.mu.Unlock()
	for _, a := range s.st.List() {
		v := state.AppView{ID: a.ID, Version: a.Current.Version, Desired: string(a.Desired), Enabled: a.Enabled, Runs: []state.RunView{}}
		runs := byApp[a.ID]
		slices.SortFunc(runs, func(x, y runner.State) int { return cmp.Compare(x.RunID, y.RunID) })
		for _, r := range runs {
			v.Runs = append(v.Runs, state.RunView{RunID: r.RunID, State: string(r.State), Since: r.Since, Restarts: r.Restarts, LastExit: r.LastExit.String(), Reason: r.Reason})
		}
		rec.Apps = append(rec.Apps, v)
	}
	m.cfg.State.SetApps(rec)
}

func (m *Manager) event(t apitypes.EventType, id, version, msg string) {
	m.hub.Publish(apitypes.Event{Type: t, Time: time.Now().UTC(), ID: id, Version: version, Message: msg})
}

func exitOf(x *runner.ExitInfo) *apitypes.Exit {
	if x == nil {
		return nil
	}
	return &apitypes.Exit{Code: x.Code, Signal: x.Signal, Unknown: x.Unknown}
}

func (m *Manager) runDoc(s *session, rs runner.State) apitypes.Run {
	r := apitypes.Run{
		RunID: rs.RunID, ID: rs.ID, Version: rs.Version, State: apitypes.RunState(rs.State),
		PIDs: rs.Pids, Since: rs.Since, Restarts: int64(rs.Restarts), LastExit: exitOf(rs.LastExit),
		Reason: rs.Reason, NextStart: rs.NextStart, Cgroup: string(rs.Cgroup),
	}
	if r.PIDs == nil {
		r.PIDs = []int{}
	}
	if rs.Record != nil {
		r.Started = rs.Record.Started
	}
	return r
}

// runStates returns the current states of the app's runs (every app's
// with id ""), by runid.
func (m *Manager) runStates(s *session, id string) []runner.State {
	s.mu.Lock()
	var ids []uint64
	for runid, e := range s.runs {
		if id == "" || e.spec.ID == id {
			ids = append(ids, runid)
		}
	}
	s.mu.Unlock()
	slices.Sort(ids)
	out := make([]runner.State, 0, len(ids))
	for _, runid := range ids {
		if rs, err := s.r.State(runid); err == nil {
			out = append(out, rs)
		}
	}
	return out
}

func (m *Manager) appDoc(s *session, a store.App, all bool) apitypes.App {
	d := apitypes.App{
		ID: a.ID, Version: a.Current.Version, SHA256: a.Current.SHA256, Size: a.Current.Size,
		Installed: a.Current.Installed, Desired: apitypes.Desired(a.Desired), Enabled: a.Enabled,
		Restarts: a.Restarts, Problem: a.Problem,
	}
	if a.Previous != nil {
		d.Previous = a.Previous.Version
	}
	if mf := a.Current.Manifest; mf != nil {
		d.Name, d.Description, d.User = mf.Name, mf.Description, mf.User
		d.Instances = string(cmp.Or(mf.Instances, pack.Single))
		d.Restart = string(cmp.Or(mf.Restart, pack.DefaultRestart))
		d.Bundle = mf.Bundle != nil
	}
	for _, rs := range m.runStates(s, a.ID) {
		if all || !rs.State.Final() {
			d.Runs = append(d.Runs, m.runDoc(s, rs))
		}
	}
	return d
}

func single(a store.App) bool {
	return a.Current.Manifest == nil || a.Current.Manifest.Instances != pack.Multi
}

func runErr(err error, runid uint64) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runner.ErrUnknownRun):
		return apperr.New(apperr.NotFound, fmt.Sprintf("no run %d", runid))
	case errors.Is(err, runner.ErrInvalidState):
		return apperr.Wrap(apperr.InvalidState, fmt.Sprintf("run %d", runid), err)
	case errors.Is(err, runner.ErrCantStart):
		return apperr.Wrap(apperr.CantStart, fmt.Sprintf("run %d", runid), err)
	}
	return apperr.Wrap(apperr.Internal, fmt.Sprintf("run %d", runid), err)
}
