package apps

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/api"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/monitor"
	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/apps/runner"
	"osmanager/agent/apps/store"
	"osmanager/agent/backoff"
	"osmanager/agent/state"
	"osmanager/agent/sysroot"
)

var (
	_ api.Apps        = (*Manager)(nil)
	_ api.StatsSource = (*Manager)(nil)
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pkg is an app whose bin/hello is script (a /bin/sh body).
func pkg(id, version, script string, extra ...string) []byte {
	return packtest.Tar(true,
		packtest.Manifest(id, version, extra...),
		packtest.Entry{Name: "bin/", Type: tar.TypeDir},
		packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: script},
	)
}

const (
	ticker  = "#!/bin/sh\necho started $OSM_APP_VERSION\nwhile :; do echo tick; sleep 1; done\n"
	noStart = "#!/nonexistent/interpreter\n" // exec fails: cannot start
)

// fixture is a Manager on a temp LuoYun dir, served until the test ends
// (or stop).
type fixture struct {
	t     *testing.T
	dir   string
	root  *sysroot.Root
	cg    *runner.Cgroups
	keep  bool // leave runs running at stop (a restarting agent)
	state *state.Store
	boot  string // the boot id file
	mon   monitor.Config
	alert string // the alert file's name
	m     *Manager
	stop  func()
	hup   chan os.Signal // the Manager's Reload
	oci   runner.Runtime // runs OCI bundles when set (newOCIFixture)
}

func newFixture(t *testing.T, cg *runner.Cgroups, dir string) *fixture {
	t.Helper()
	return newFixtureWith(t, cg, dir, nil)
}

func newFixtureWith(t *testing.T, cg *runner.Cgroups, dir string, oci func(*sysroot.Root) runner.Runtime) *fixture {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	root, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, root: root, cg: cg, state: &state.Store{}, boot: filepath.Join(dir, "boot_id"), hup: make(chan os.Signal, 1)}
	if oci != nil {
		f.oci = oci(root)
	}
	if _, err := os.Stat(f.boot); err != nil {
		f.reboot("boot-1")
	}
	f.start()
	return f
}

func (f *fixture) start() {
	t := f.t
	var stop *bool
	if f.keep {
		stop = new(bool)
	}
	var rt runner.Runtime = &runner.Process{Cgroups: f.cg, Log: testLogger(t)}
	if f.oci != nil {
		rt = &runner.Mux{Process: rt, OCI: f.oci}
	}
	f.m = New(Config{
		Root: f.root, Files: store.Files{Dir: "/apps", Data: "/apps-data"},
		Runs: "/apps/.runs.json", Logs: "/apps/.logs",
		Runner: runner.Config{
			Runtime: rt, StopOnShutdown: stop,
			NewBackoff: func() *backoff.Backoff { return backoff.New(time.Millisecond, 4*time.Millisecond) },
		},
		State: f.state, Log: testLogger(t).With("service", "apps"), BootID: f.boot,
		AppsD: "/apps.d", Sys: f.root, Reload: f.hup,
		Monitor: f.mon, AlertFile: f.alert,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Serve(ctx) }()
	var once sync.Once
	stopped := false
	f.stop = func() {
		once.Do(func() {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v", err)
			}
		})
	}
	m := f.m
	t.Cleanup(func() {
		if !f.keep && !stopped {
			runs, _ := m.Runs(ctxT(t))
			for _, r := range runs {
				m.Terminate(context.Background(), r.RunID)
			}
		}
		f.stop()
	})
}

// reboot makes the host's boot id id (for the next Manager).
func (f *fixture) reboot(id string) {
	if err := os.WriteFile(f.boot, []byte(id+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) install(data []byte, force bool) (apitypes.App, error) {
	return f.m.Install(ctxT(f.t), apitypes.InstallRequest{Force: force}, bytes.NewReader(data))
}

func (f *fixture) mustInstall(data []byte, force bool) apitypes.App {
	f.t.Helper()
	a, err := f.install(data, force)
	if err != nil {
		f.t.Fatalf("Install = %v", err)
	}
	return a
}

func (f *fixture) mustStart(id string) apitypes.Started {
	f.t.Helper()
	st, err := f.m.Start(ctxT(f.t), id)
	if err != nil {
		f.t.Fatalf("Start(%s) = %v", id, err)
	}
	return st
}

// waitRun polls the run until ok, with a deadline.
func (f *fixture) waitRun(runid uint64, what string, ok func(apitypes.Run) bool) apitypes.Run {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := f.m.Run(ctxT(f.t), runid)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("run %d: not %s: %+v, %v", runid, what, r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) waitLog(id, want string) {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rc, err := f.m.Logs(ctxT(f.t), id, 0, false)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("log of %s: no %q", id, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive: signal 0 reaches the process, or it exists but is not ours to
// signal (EPERM: pid 1 for a plain user).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

func testCgroups(t *testing.T) *runner.Cgroups {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	var mount string
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
				mount = d
				break
			}
		}
	}
	if mount == "" {
		t.Skip("no cgroup v2 tree")
	}
	base := filepath.Join(mount, fmt.Sprintf("osm-mgr-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	cg := runner.SetupCgroups(runner.CgroupConfig{FS: "/sys/fs/cgroup", Base: base})
	if !cg.On() {
		t.Skipf("no writable cgroup v2 tree: %s", cg.Reason)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.IsDir() {
				os.WriteFile(filepath.Join(base, e.Name(), "cgroup.kill"), []byte("1"), 0)
				for i := 0; i < 200 && os.Remove(filepath.Join(base, e.Name())) != nil; i++ {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}
		os.Remove(base)
	})
	return cg
}

// TestLifecycle: install → start → running → terminate → exited, with
// desired states, logs, events in order and state.Apps published.
func TestLifecycle(t *testing.T) {
	f := newFixture(t, nil, "")
	ctx := ctxT(t)
	events := f.m.Subscribe(ctx, 64)
	a := f.mustInstall(pkg("tick", "1.0.0", ticker), false)
	if a.ID != "tick" || a.Version != "1.0.0" || a.Desired != apitypes.Stopped {
		t.Fatalf("Install = %+v; want tick 1.0.0 stopped", a)
	}
	st := f.mustStart("tick")
	if st.State != apitypes.Active || st.Existing || len(st.PIDs) == 0 {
		t.Fatalf("Start = %+v; want a new running run", st)
	}
	f.waitLog("tick", "started 1.0.0")
	if got := f.state.Apps(); !got.AppsRunning() || len(got.Apps) != 1 || got.Apps[0].Desired != "running" {
		t.Errorf("state.Apps = %+v; want tick desired running and running", got)
	}
	leader := st.PIDs[0]
	r, err := f.m.Terminate(ctx, st.RunID)
	if err != nil || r.State != apitypes.Exited {
		t.Fatalf("Terminate = %+v, %v; want exited", r, err)
	}
	if alive(leader) {
		t.Errorf("leader %d alive after terminate", leader)
	}
	if d, _ := f.m.Detail(ctx, "tick"); d.Desired != apitypes.Stopped || len(d.Runs) != 1 {
		t.Errorf("Detail = %+v; want desired stopped, the one run", d)
	}
	if _, err := f.m.Terminate(ctx, st.RunID); err != nil {
		t.Errorf("terminate twice = %v; want no error", err)
	}
	if _, err := f.m.Pause(ctx, st.RunID); apperr.CodeOf(err) != apperr.InvalidState {
		t.Errorf("pause of an exited run = %v; want invalid_state", err)
	}
	if _, err := f.m.Start(ctx, "nope"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("start of an unknown app = %v; want not_found", err)
	}
	if _, err := f.install(pkg("tick", "1.0.0", ticker), false); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("same id+version without force = %v; want conflict", err)
	}
	want := []string{
		"installed tick", "changed tick",
		"changed tick", // desired running
		"state tick running", "state tick stopping", "state tick exited",
		"changed tick", // desired stopped
	}
	var got []string
	for len(got) < len(want) {
		select {
		case ev := <-events:
			s := string(ev.Type) + " " + ev.ID
			if ev.Type == apitypes.EventState {
				if ev.State == apitypes.Starting {
					continue
				}
				s += " " + string(ev.State)
			}
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("events = %q; want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q\nwant %q", got, want)
	}
}

// TestSingleInstance: a second start gives the run that is there.
func TestSingleInstance(t *testing.T) {
	f := newFixture(t, nil, "")
	f.mustInstall(pkg("tick", "1.0.0", ticker), false)
	first := f.mustStart("tick")
	second := f.mustStart("tick")
	if !second.Existing || second.RunID != first.RunID || !strings.Contains(second.Note, "already running") {
		t.Errorf("second Start = %+v; want run %d, existing, a note", second, first.RunID)
	}
	once, err := f.m.Once(ctxT(t), "tick")
	if err != nil || once.RunID != first.RunID {
		t.Errorf("Once = %+v, %v; want run %d", once, err, first.RunID)
	}
	runs, _ := f.m.Runs(ctxT(t))
	if len(runs) != 1 {
		t.Errorf("runs = %d; want 1", len(runs))
	}
}

// TestForceReplace: a new version over a running app starts in its
// place; one that cannot start leaves the old one running.
func TestForceReplace(t *testing.T) {
	f := newFixture(t, nil, "")
	ctx := ctxT(t)
	f.mustInstall(pkg("tick", "1.0.0", ticker), false)
	old := f.mustStart("tick")

	t.Run("new version starts", func(t *testing.T) {
		a := f.mustInstall(pkg("tick", "1.0.0", strings.Replace(ticker, "started", "again", 1)), true)
		if a.Version != "1.0.0" || a.Previous != "1.0.0" || len(a.Runs) != 1 || a.Runs[0].RunID == old.RunID || a.Runs[0].State != apitypes.Active {
			t.Fatalf("forced Install = %+v; want a new running run", a)
		}
		if r, _ := f.m.Run(ctx, old.RunID); r.State != apitypes.Exited {
			t.Errorf("old run %d = %s; want exited", old.RunID, r.State)
		}
		f.waitLog("tick", "again 1.0.0")
	})
	t.Run("new version cannot start", func(t *testing.T) {
		before, _ := f.m.Detail(ctx, "tick")
		_, err := f.install(pkg("tick", "2.0.0", noStart), false)
		if apperr.CodeOf(err) != apperr.CantStart {
			t.Fatalf("Install of a version that cannot start = %v; want cant_start", err)
		}
		a, _ := f.m.Detail(ctx, "tick")
		if a.Version != "1.0.0" || a.Previous != before.Previous {
			t.Errorf("after a failed replace: %s (previous %s); want 1.0.0 untouched", a.Version, a.Previous)
		}
		live := slices.DeleteFunc(a.Runs, func(r apitypes.Run) bool { return r.State.Done() })
		if len(live) != 1 || live[0].Version != "1.0.0" || live[0].State != apitypes.Active {
			t.Errorf("runs after a failed replace = %+v; want 1.0.0 running again", live)
		}
		if ents, _ := os.ReadDir(filepath.Join(f.dir, "apps", "tick")); len(ents) != 2 {
			t.Errorf("trees = %d; want 2 (current, previous), the failed one gone", len(ents))
		}
	})
	t.Run("rollback", func(t *testing.T) {
		a, err := f.m.Rollback(ctx, "tick")
		if err != nil || a.Previous != "" || len(a.Runs) != 1 || a.Runs[0].State != apitypes.Active {
			t.Fatalf("Rollback = %+v, %v; want the previous version running, none before it", a, err)
		}
		f.waitLog("tick", "started 1.0.0")
		if _, err := f.m.Rollback(ctx, "tick"); apperr.CodeOf(err) != apperr.InvalidState {
			t.Errorf("second Rollback = %v; want invalid_state", err)
		}
	})
}

// TestUninstallStopsRuns: uninstall stops every run first; the data dir
// stays without purge.
func TestUninstallStopsRuns(t *testing.T) {
	f := newFixture(t, nil, "")
	ctx := ctxT(t)
	f.mustInstall(pkg("multi", "1.0.0", ticker, `"instances": "multi"`), false)
	var pids []int
	for range 2 {
		pids = append(pids, f.mustStart("multi").PIDs[0])
	}
	if err := f.m.Uninstall(ctx, "multi", false); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d alive after uninstall", p)
		}
	}
	if runs, _ := f.m.Runs(ctx); len(runs) != 0 {
		t.Errorf("runs after uninstall = %+v", runs)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "apps-data", "multi")); err != nil {
		t.Errorf("data dir without purge: %v", err)
	}
	if _, err := f.m.Detail(ctx, "multi"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("Detail after uninstall = %v", err)
	}
	if got := f.state.Apps(); len(got.Apps) != 0 {
		t.Errorf("state.Apps = %+v; want none", got)
	}
}

// TestBootStart: after a restart of the agent (a new Manager on the same
// dirs), an app desired running but not running is started, and an
// enabled app too after a reboot only; a clean finish makes the desired
// state stopped.
func TestBootStart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, nil, dir)
	ctx := ctxT(t)
	f.mustInstall(pkg("boot", "1.0.0", ticker), false)
	f.mustInstall(pkg("want", "1.0.0", ticker), false)
	f.mustInstall(pkg("idle", "1.0.0", ticker), false)
	if _, err := f.m.Enable(ctx, "boot"); err != nil {
		t.Fatal(err)
	}
	w := f.mustStart("want")
	f.stop() // without cgroups: the runs stop with the agent
	f.waitGone(w.PIDs[0])

	// The agent restarts on the same boot: the enabled app waits for a boot.
	f1 := newFixture(t, nil, dir)
	if a, _ := f1.m.Detail(ctxT(t), "boot"); len(a.Runs) != 0 {
		t.Errorf("enabled app started by an agent restart on the same boot: %+v", a.Runs)
	}
	if a, _ := f1.m.Detail(ctxT(t), "want"); len(a.Runs) != 1 {
		t.Errorf("app desired running not started again: %+v", a.Runs)
	}
	f1.stop()
	f1.reboot("boot-2")

	f2 := newFixture(t, nil, dir)
	for id, want := range map[string]bool{"boot": true, "want": true, "idle": false} {
		a, err := f2.m.Detail(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		live := slices.ContainsFunc(a.Runs, func(r apitypes.Run) bool { return r.State == apitypes.Active })
		if live != want {
			t.Errorf("%s running after the agent's restart = %v; want %v (%+v)", id, live, want, a.Runs)
		}
		if want && a.Runs[0].RunID <= w.RunID {
			t.Errorf("%s runid %d reused (<= %d)", id, a.Runs[0].RunID, w.RunID)
		}
	}

	// A clean exit (exit 0, not restarted by on-failure) ends the wish.
	{
		f2.mustInstall(pkg("oneshot", "1.0.0", "#!/bin/sh\necho done\n"), false)
		if _, err := f2.m.Enable(ctxT(t), "oneshot"); err != nil {
			t.Fatal(err)
		}
		st := f2.mustStart("oneshot")
		f2.waitRun(st.RunID, "exited", func(r apitypes.Run) bool { return r.State == apitypes.Exited })
		deadline := time.Now().Add(10 * time.Second)
		for {
			a, _ := f2.m.Detail(ctxT(t), "oneshot")
			if a.Desired == apitypes.Stopped && a.Enabled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a clean exit: %+v; want desired stopped, still enabled", a)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (f *fixture) waitGone(pid int) {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if time.Now().After(deadline) {
			f.t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAdoptAfterRestart: with cgroups, a run outlives its agent and the
// next one adopts it; a stray process in an app cgroup is swept.
func TestAdoptAfterRestart(t *testing.T) {
	cg := testCgroups(t)
	dir := t.TempDir()
	f := newFixture(t, cg, dir)
	f.keep = true
	f.stop()
	f.start()
	f.mustInstall(pkg("tick", "1.0.0", ticker), false)
	st := f.mustStart("tick")
	f.waitLog("tick", "tick")
	f.stop()
	if !alive(st.PIDs[0]) {
		t.Fatalf("run's leader %d did not outlive its agent", st.PIDs[0])
	}

	// A stray: a process in an app cgroup that no run record names.
	stray := exec.Command("sleep", "300")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	ghost := filepath.Join(cg.Base, "app-ghost-99")
	if err := os.Mkdir(ghost, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ghost, "cgroup.procs"), []byte(strconv.Itoa(stray.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan error, 1)
	go func() { strayDone <- stray.Wait() }()

	f2 := newFixture(t, cg, dir)
	select {
	case <-strayDone:
	case <-time.After(15 * time.Second):
		t.Errorf("stray process %d in %s not swept", stray.Process.Pid, ghost)
		stray.Process.Kill()
	}
	r, err := f2.m.Run(ctxT(t), st.RunID)
	if err != nil || r.State != apitypes.Active || r.PIDs[0] != st.PIDs[0] {
		t.Fatalf("after restart run %d = %+v, %v; want adopted, running, leader %d", st.RunID, r, err, st.PIDs[0])
	}
	if a, _ := f2.m.Detail(ctxT(t), "tick"); len(a.Runs) != 1 {
		t.Errorf("runs = %+v; want the adopted one only (not started again)", a.Runs)
	}
	r, err = f2.m.Terminate(ctxT(t), st.RunID)
	if err != nil || r.State != apitypes.Exited {
		t.Errorf("Terminate of the adopted run = %+v, %v", r, err)
	}
	f2.waitGone(st.PIDs[0])
}

// TestCrashLoop: an app that exits at once costs its start limit, then
// ends failed with the reason, its desired state still running (wanted,
// not running), and its restarts counted in its record.
func TestCrashLoop(t *testing.T) {
	f := newFixture(t, nil, "")
	f.mustInstall(pkg("crash", "1.0.0", "#!/bin/sh\nexit 3\n", `"start_limit": {"burst": 3, "interval": "1m"}`), false)
	st := f.mustStart("crash")
	r := f.waitRun(st.RunID, "failed", func(r apitypes.Run) bool { return r.State == apitypes.Failed })
	if !strings.Contains(r.Reason, "start limit") || r.Restarts != 2 || r.LastExit == nil || r.LastExit.Code != 3 {
		t.Errorf("run = %+v; want failed by the start limit after 2 restarts, exit 3", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := f.m.Detail(ctxT(t), "crash")
		if a.Restarts == 2 && a.Desired == apitypes.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app = %+v; want 2 restarts counted, desired running", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.state.Apps().AppsRunning() {
		t.Errorf("AppsRunning with a failed app desired running")
	}
}

// TestUnusableAppsDir: a state.json that cannot be read fails the
// service for good, removes nothing, and the verbs say why at once.
func TestUnusableAppsDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apps", "tick", "1.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apps", "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, _ := sysroot.New(dir)
	m := New(Config{Root: root, Files: store.Files{Dir: "/apps", Data: "/apps-data"}, Runs: "/apps/.runs.json", Logs: "/apps/.logs", Log: testLogger(t)})
	err := m.Serve(ctxT(t))
	var p interface{ Permanent() bool }
	if err == nil || !errors.As(err, &p) || !p.Permanent() {
		t.Fatalf("Serve = %v; want a permanent error", err)
	}
	if _, err := m.List(ctxT(t)); apperr.CodeOf(err) != apperr.Internal || !strings.Contains(err.Error(), "not running") {
		t.Errorf("List = %v; want internal, not running", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "apps", "tick", "1.0.0")); err != nil {
		t.Errorf("a tree was removed: %v", err)
	}
}

// TestBadRunRecords: whatever runs.json holds, the manager comes up,
// adopts nothing it should not, and starts the app desired running once.
func TestBadRunRecords(t *testing.T) {
	for _, tc := range []struct{ name, runs string }{
		{"not json", "{not json"},
		{"empty", ""},
		{"unknown app", `{"runs": [{"tree": "1.0.0", "record": {"runtime": "process", "id": "ghost", "runid": 1, "pid": 1, "start_time": 1}}]}`},
		{"unknown tree", `{"runs": [{"tree": "9.9.9", "record": {"runtime": "process", "id": "want", "runid": 1, "pid": 1, "start_time": 1}}]}`},
		{"pid 1 reused", `{"runs": [{"tree": "1.0.0", "record": {"runtime": "process", "id": "want", "runid": 1, "pid": 1, "start_time": 1}}]}`},
		{"twice", `{"runs": [{"tree": "1.0.0", "record": {"runtime": "process", "id": "want", "runid": 1, "pid": 1, "start_time": 1}}, {"tree": "1.0.0", "record": {"runtime": "process", "id": "want", "runid": 1, "pid": 1, "start_time": 1}}]}`},
		{"foreign cgroup", `{"runs": [{"tree": "1.0.0", "record": {"runtime": "process", "id": "want", "runid": 1, "pid": 1, "start_time": 1, "cgroup": "/sys/fs/cgroup"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newFixture(t, nil, dir)
			f.mustInstall(pkg("want", "1.0.0", ticker), false)
			w := f.mustStart("want")
			f.stop()
			f.waitGone(w.PIDs[0])
			if err := os.WriteFile(filepath.Join(dir, "apps", ".runs.json"), []byte(tc.runs), 0o600); err != nil {
				t.Fatal(err)
			}
			f2 := newFixture(t, nil, dir)
			a, err := f2.m.Detail(ctxT(t), "want")
			live := slices.DeleteFunc(a.Runs, func(r apitypes.Run) bool { return r.State.Done() })
			if err != nil || len(live) != 1 || live[0].State != apitypes.Active || live[0].PIDs[0] == 1 {
				t.Errorf("after bad records: %+v, %v; want one new running run", a.Runs, err)
			}
			if !alive(1) {
				t.Fatal("pid 1 gone")
			}
		})
	}
}
