package oci

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/apps/runner"
	"osmanager/agent/backoff"
	"osmanager/agent/sysroot"
)

// Busybox returns the host's static busybox (Debian's busybox-static),
// or skips.
func busybox(t testing.TB) string {
	t.Helper()
	const p = "/bin/busybox"
	f, err := elf.Open(p)
	if err != nil {
		t.Skipf("no %s (apt-get install busybox-static): %v", p, err)
	}
	defer f.Close()
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_INTERP {
			t.Skipf("%s is dynamically linked; the bundle needs busybox-static", p)
		}
	}
	return p
}

// MakeBundle writes an OCI bundle running args into dir/<name>: its
// rootfs holds busybox and the applets named, as symlinks to it.
func makeBundle(t testing.TB, dir, name string, args []string, annotations ...string) string {
	t.Helper()
	bb, err := os.ReadFile(busybox(t))
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(b, "rootfs/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "rootfs/bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sleep", "sh", "echo"} {
		if err := os.Symlink("busybox", filepath.Join(b, "rootfs/bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(packtest.BundleConfig(args, annotations...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// crunOrSkip returns the host's crun, or skips.
func crunOrSkip(t testing.TB) (kind, bin string) { return runtimeOrSkip(t, Crun) }

// runtimeOrSkip returns the host's runtime of that kind, or skips.
func runtimeOrSkip(t testing.TB, want string) (kind, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("OCI containers need root")
	}
	kind, bin, err := Find(want, runner.DefaultPATH)
	if err != nil || kind == "" {
		t.Skipf("no %s installed (apt-get install %s)", want, want)
	}
	return kind, bin
}

// testCgroups is a v2 parent of the test's own (hybrid or unified), or
// mode none when the host has no writable v2 tree.
func testCgroups(t testing.TB) *runner.Cgroups {
	t.Helper()
	for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if !isCgroup2(mount) {
			continue
		}
		base := filepath.Join(mount, fmt.Sprintf("osmtest-oci-%d.slice", os.Getpid()))
		cg := runner.SetupCgroups(runner.CgroupConfig{FS: "/sys/fs/cgroup", Base: base})
		t.Cleanup(func() { RemoveV1("", filepath.Base(base)) }) // what crun made on a hybrid host
		if cg.On() {
			t.Cleanup(func() {
				ents, _ := os.ReadDir(base)
				for _, e := range ents {
					if e.IsDir() {
						runner.CgroupDir(filepath.Join(base, e.Name())).Remove()
					}
				}
				os.Remove(base)
			})
		}
		return cg
	}
	return &runner.Cgroups{Mode: runner.CgroupNone}
}

type env struct {
	t      *testing.T
	sys    *sysroot.Root
	rt     *Runtime
	cg     *runner.Cgroups
	r      *runner.Runner
	cancel context.CancelFunc
	ran    chan struct{}
}

func newEnvOf(t *testing.T, want string) *env { return newEnvCg(t, want, true) }

// newEnvCg is newEnvOf, with app cgroups or without (mode none).
func newEnvCg(t *testing.T, want string, cgroups bool) *env {
	kind, bin := runtimeOrSkip(t, want)
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cg := &runner.Cgroups{Mode: runner.CgroupNone}
	if cgroups {
		cg = testCgroups(t)
	}
	t.Cleanup(func() { RemoveV1("", fmt.Sprintf("osmtest-oci-%d.slice", os.Getpid())) })
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	rt := &Runtime{Kind: kind, Binary: bin, Cgroups: cg, Sys: sys, Dir: "/oci", State: filepath.Join(t.TempDir(), "state"), Log: log,
		Slice: fmt.Sprintf("osmtest-oci-%d.slice", os.Getpid())}
	e := &env{t: t, sys: sys, rt: rt, cg: cg}
	e.start()
	t.Cleanup(func() {
		e.stop()
		out, _ := rt.run("list", "--quiet")
		for _, cid := range strings.Fields(string(out)) {
			rt.delete(cid)
		}
	})
	return e
}

// start makes a runner that leaves its runs running at shutdown.
func (e *env) start() {
	keep := false
	e.r = runner.New(runner.Config{Sys: e.sys, Runtime: &runner.Mux{Process: &runner.Process{Cgroups: e.cg}, OCI: e.rt},
		Log: e.rt.Log, StopOnShutdown: &keep,
		NewBackoff: func() *backoff.Backoff { return backoff.New(time.Millisecond, 4*time.Millisecond) }})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.ran = cancel, make(chan struct{})
	go func() { e.r.Run(ctx); close(e.ran) }()
}

func (e *env) stop() {
	e.cancel()
	<-e.ran
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func spec(id string, runid uint64, bundle string) runner.Spec {
	return runner.Spec{ID: id, Version: "1", RunID: runid, Bundle: bundle, Log: fmt.Sprintf("/logs/%s/%d.log", id, runid),
		StopTimeout: 500 * time.Millisecond, Restart: runner.RestartNo}
}

// waitState polls the run's state until ok, for up to 20 s.
func (e *env) waitState(runid uint64, ok func(runner.State) bool) runner.State {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.r.State(runid)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d: state %+v, %v: not reached in 20 s", runid, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// TestBusyboxSleepLifecycle: a bundle whose rootfs is busybox-static,
// with sleep as its process, starts, pauses, resumes and terminates under
// crun, in the run's leaf cgroup.
func TestBusyboxSleepLifecycle(t *testing.T) {
	for _, kind := range []string{Crun, Runc} {
		t.Run(kind, func(t *testing.T) { testLifecycle(t, newEnvOf(t, kind)) })
	}
	t.Run("crun without app cgroups", func(t *testing.T) { testLifecycle(t, newEnvCg(t, Crun, false)) })
}

func testLifecycle(t *testing.T, e *env) {
	ctx := context.Background()
	b := makeBundle(t, t.TempDir(), "sleeper", []string{"/bin/sleep", "1000"})
	st, err := e.r.Start(ctx, spec("sleeper", 1, b))
	if err != nil {
		t.Fatal(err)
	}
	rec := st.Record
	if st.State != runner.Running || rec == nil || len(st.Pids) == 0 || st.Pids[0] != rec.Pid || rec.Runtime != e.rt.Kind {
		t.Fatalf("after start: %+v record %+v; want running, %s, init pid first", st, rec, e.rt.Kind)
	}
	if got := comm(rec.Pid); got != "sleep" {
		t.Errorf("container init is %q, want sleep", got)
	}
	if e.cg.On() {
		want := string(e.cg.Leaf("sleeper", 1))
		if rec.Cgroup != want || !runner.CgroupDir(want).Has(rec.Pid) {
			t.Errorf("record cgroup %q (holds init: %v), want %q holding it", rec.Cgroup, runner.CgroupDir(want).Has(rec.Pid), want)
		}
	}
	cid := ContainerID("sleeper", 1)
	for _, step := range []struct {
		name   string
		verb   func(context.Context, uint64) (runner.State, error)
		want   runner.Status
		status string
	}{
		{"pause", e.r.Pause, runner.Paused, "paused"},
		{"pause again", e.r.Pause, runner.Paused, "paused"},
		{"resume", e.r.Resume, runner.Running, "running"},
	} {
		t.Run(step.name, func(t *testing.T) {
			st, err := step.verb(ctx, 1)
			if err != nil || st.State != step.want {
				t.Fatalf("state %s, %v; want %s", st.State, err, step.want)
			}
			if cs, _ := e.rt.state(cid); cs.Status != step.status {
				t.Errorf("%s state %q, want %q", e.rt.Kind, cs.Status, step.status)
			}
		})
	}
	st, err = e.r.Terminate(ctx, 1)
	if err != nil || st.State != runner.Exited || st.LastExit == nil {
		t.Fatalf("terminate: %+v, %v", st, err)
	}
	// sleep is the container's pid 1: it has no TERM handler, so the
	// kernel drops SIGTERM and the stop timeout ends it with SIGKILL.
	if st.LastExit.Signal != "KILL" || st.LastExit.Unknown {
		t.Errorf("last exit %+v, want signal KILL", st.LastExit)
	}
	if _, ok := e.rt.state(cid); ok {
		t.Errorf("container %s still known to %s after terminate", cid, e.rt.Kind)
	}
	if rec.Cgroup != "" {
		if _, err := os.Stat(rec.Cgroup); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leaf %s left: %v", rec.Cgroup, err)
		}
	}
}

// TestBusyboxLogAndExit: the container's stdout and stderr go to the
// run's log; its exit code is the run's.
func TestBusyboxLogAndExit(t *testing.T) {
	for _, kind := range []string{Crun, Runc} {
		t.Run(kind, func(t *testing.T) { testBusyboxLogAndExit(t, newEnvOf(t, kind)) })
	}
}

func testBusyboxLogAndExit(t *testing.T, e *env) {
	b := makeBundle(t, t.TempDir(), "talker", []string{"/bin/sh", "-c", "echo out $OSM_APP_ID $OSM_RUNID; echo err >&2; exit 3"})
	// It may end before a state poll sees it running: still a run that
	// started and exited, not a failure to start.
	if _, err := e.r.Start(context.Background(), spec("talker", 7, b)); err != nil {
		t.Fatal(err)
	}
	st := e.waitState(7, func(s runner.State) bool { return s.State.Final() })
	if st.State != runner.Exited || st.LastExit == nil || st.LastExit.Code != 3 {
		t.Errorf("final %+v exit %+v, want exited with code 3", st, st.LastExit)
	}
	lines, err := e.r.Tail(spec("talker", 7, b), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"out talker 7", "err"} {
		if !slices.Contains(lines, want) {
			t.Errorf("log %q lacks %q", lines, want)
		}
	}
}

// TestBusyboxRestartPolicy: a bundle that fails is started again by its
// policy until the start limit, then failed with the reason, as any run.
func TestBusyboxRestartPolicy(t *testing.T) {
	for _, kind := range []string{Crun, Runc} {
		t.Run(kind, func(t *testing.T) { testBusyboxRestartPolicy(t, newEnvOf(t, kind)) })
	}
}

func testBusyboxRestartPolicy(t *testing.T, e *env) {
	b := makeBundle(t, t.TempDir(), "crasher", []string{"/bin/sh", "-c", "echo try; exit 1"})
	sp := spec("crasher", 1, b)
	sp.Restart, sp.StartLimit = runner.RestartOnFailure, runner.StartLimit{Burst: 3, Interval: time.Minute}
	if _, err := e.r.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	st := e.waitState(1, func(s runner.State) bool { return s.State.Final() })
	if st.State != runner.Failed || st.Restarts != 2 || !strings.Contains(st.Reason, "start limit") || st.LastExit == nil || st.LastExit.Code != 1 {
		t.Errorf("final %+v (exit %+v); want failed by the start limit after 3 starts, exit 1", st, st.LastExit)
	}
	if lines, _ := e.r.Tail(sp, 0); len(lines) != 3 {
		t.Errorf("log %q, want 3 tries", lines)
	}
}

// TestAdoptAndSweep: a container left running by one runner is adopted
// by the next (crun state names the same init); a container no record
// names is deleted by the sweep.
func TestAdoptAndSweep(t *testing.T) {
	for _, kind := range []string{Crun, Runc} {
		t.Run(kind, func(t *testing.T) { testAdoptAndSweep(t, newEnvOf(t, kind)) })
	}
}

func testAdoptAndSweep(t *testing.T, e *env) {
	ctx := context.Background()
	b := makeBundle(t, t.TempDir(), "keeper", []string{"/bin/sleep", "1000"})
	st, err := e.r.Start(ctx, spec("keeper", 1, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.Start(ctx, spec("keeper", 2, b)); err != nil {
		t.Fatal(err)
	}
	rec := *st.Record
	e.stop()
	if _, ok := e.rt.state(ContainerID("keeper", 1)); !ok {
		t.Fatal("container gone with the runner")
	}
	e.start()
	got, err := e.r.Adopt(ctx, spec("keeper", 1, b), rec)
	if err != nil || got.State != runner.Running || len(got.Pids) == 0 || got.Pids[0] != rec.Pid {
		t.Fatalf("adopt: %+v, %v; want running with init %d first", got, err, rec.Pid)
	}
	swept := e.r.Sweep(nil)
	if !slices.Contains(swept, ContainerID("keeper", 2)) {
		t.Errorf("swept %q, want %s", swept, ContainerID("keeper", 2))
	}
	if _, ok := e.rt.state(ContainerID("keeper", 2)); ok {
		t.Error("unknown container survived the sweep")
	}
	st, err = e.r.Terminate(ctx, 1)
	if err != nil || st.State != runner.Exited || st.LastExit == nil || !st.LastExit.Unknown {
		t.Errorf("terminate adopted: %+v, %v; want exited, status unknown", st, err)
	}
	// A record whose container is gone is not adopted.
	e.stop()
	e.start()
	if _, err := e.r.Adopt(ctx, spec("keeper", 1, b), rec); !errors.Is(err, runner.ErrGone) {
		t.Errorf("adopt of a terminated run: %v, want ErrGone", err)
	}
}

// TestHybridNeedsUnshare: on a hybrid host the runtime must not see the
// v2 tree; without unshare(1) a start says so.
func TestHybridNeedsUnshare(t *testing.T) {
	if isCgroup2("/sys/fs/cgroup") || !isCgroup2("/sys/fs/cgroup/unified") {
		t.Skip("not a hybrid cgroup host")
	}
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{Kind: Crun, Binary: "/bin/false", Sys: sys, Dir: "/oci", PATH: t.TempDir()}
	_, err = rt.Start(runner.Launch{Spec: spec("app", 1, "/nonexistent/app")})
	if !errors.Is(err, runner.ErrCantStart) || !strings.Contains(err.Error(), "unshare(1)") {
		t.Errorf("start = %v, want cannot start naming unshare(1)", err)
	}
}

// TestNoRuntime: without crun or runc a bundle cannot start, and the
// error names what to install.
func TestNoRuntime(t *testing.T) {
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{Sys: sys, Dir: "/oci"}
	r := runner.New(runner.Config{Sys: sys, Runtime: &runner.Mux{Process: &runner.Process{}, OCI: rt}, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	_, err = r.Start(ctx, spec("app", 1, "/nonexistent/app"))
	if !errors.Is(err, runner.ErrCantStart) || !strings.Contains(err.Error(), "apt-get install crun") {
		t.Errorf("start = %v, want cannot start naming apt-get install crun", err)
	}
	if got := rt.Sweep(nil); got != nil {
		t.Errorf("sweep without a runtime = %q", got)
	}
	if _, err := rt.Adopt(runner.Record{Runtime: "oci", ID: "app", RunID: 1}); !errors.Is(err, runner.ErrGone) {
		t.Errorf("adopt without a runtime = %v, want ErrGone", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	both, crunOnly, runcOnly := filepath.Join(dir, "both"), filepath.Join(dir, "crun"), filepath.Join(dir, "runc")
	for d, names := range map[string][]string{both: {"crun", "runc"}, crunOnly: {"crun"}, runcOnly: {"runc"}} {
		os.MkdirAll(d, 0o755)
		for _, n := range names {
			os.WriteFile(filepath.Join(d, n), []byte("#!/bin/sh\n"), 0o755)
		}
	}
	os.WriteFile(filepath.Join(dir, "crun-noexec"), nil, 0o644)
	for _, tc := range []struct {
		name, choice, path, kind string
		bad                      bool
	}{
		{"auto prefers crun", Auto, both, Crun, false},
		{"auto takes runc", Auto, runcOnly, Runc, false},
		{"runc asked", Runc, both, Runc, false},
		{"crun asked, only runc", Crun, runcOnly, "", false},
		{"none", Auto, t.TempDir(), "", false},
		{"bad choice", "docker", both, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, bin, err := Find(tc.choice, tc.path)
			if (err != nil) != tc.bad || kind != tc.kind || (kind != "" && bin != filepath.Join(tc.path, kind)) {
				t.Errorf("Find(%q, %q) = %q %q %v; want %q", tc.choice, tc.path, kind, bin, err, tc.kind)
			}
		})
	}
}

func TestRunConfig(t *testing.T) {
	cfg := `{"ociVersion": "1.0.2", "x-vendor": {"n": 12345678901234567890}, "process": {"args": ["sleep"], "env": ["PATH=/bin"], "cwd": "/"},
		"root": {"path": "rootfs"}, "mounts": [{"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]},
		{"destination": "/etc/x", "source": "/etc/x", "options": ["bind"]}, {"destination": "/proc", "type": "proc", "source": "proc"}]}`
	out, err := RunConfig([]byte(cfg), "/apps/a/1/a", "/osmanager.slice/app-a-1", []string{"PATH=/usr/bin", "OSM_APP_ID=a", "OSM_APP_DATA=/host/data", "OSM_RUNID=1"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{`"path": "/apps/a/1/a/rootfs"`, `"source": "/apps/a/1/a/data"`, `"source": "/etc/x"`, `"source": "proc"`,
		`"cgroupsPath": "/osmanager.slice/app-a-1"`, `"OSM_APP_ID=a"`, `"OSM_RUNID=1"`, `12345678901234567890`, `"x-vendor"`} {
		if !strings.Contains(s, want) {
			t.Errorf("run config lacks %s:\n%s", want, s)
		}
	}
	for _, bad := range []string{"OSM_APP_DATA", "/usr/bin"} {
		if strings.Contains(s, bad) {
			t.Errorf("run config holds %s:\n%s", bad, s)
		}
	}
	for _, c := range []string{`{`, `{"root": {"path": "/abs"}, "process": {}}`, `{"root": {"path": "../r"}, "process": {}}`, `{"root": {"path": "r"}}`} {
		if _, err := RunConfig([]byte(c), "/b", "/x", nil); err == nil {
			t.Errorf("RunConfig(%s) accepted", c)
		}
	}
}

// TestBusyboxCannotExec: a process the rootfs lacks is a failure to
// start, with crun's reason, and leaves no container, leaf or run dir.
func TestBusyboxCannotExec(t *testing.T) {
	for _, kind := range []string{Crun, Runc} {
		t.Run(kind, func(t *testing.T) { testBusyboxCannotExec(t, newEnvOf(t, kind)) })
	}
}

func testBusyboxCannotExec(t *testing.T, e *env) {
	b := makeBundle(t, t.TempDir(), "broken", []string{"/bin/nonexistent"})
	st, err := e.r.Start(context.Background(), spec("broken", 1, b))
	if !errors.Is(err, runner.ErrCantStart) || !strings.Contains(err.Error(), "nonexistent") || st.State != runner.Failed {
		t.Fatalf("start = %s, %v; want failed, cannot start, naming /bin/nonexistent", st.State, err)
	}
	if _, ok := e.rt.state(ContainerID("broken", 1)); ok {
		t.Error("container left")
	}
	if leaf := e.cg.Leaf("broken", 1); leaf != "" {
		if _, err := os.Stat(string(leaf)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leaf %s left: %v", leaf, err)
		}
	}
	if names, _ := e.sys.ReadDirNames("/oci"); len(names) != 0 {
		t.Errorf("run dirs left: %q", names)
	}
}

// FuzzRunConfig: any config.json gives an error or a config whose
// root.path is under the bundle and whose cgroupsPath is the one asked,
// never a panic.
func FuzzRunConfig(f *testing.F) {
	f.Add([]byte(packtest.BundleConfig([]string{"/bin/sleep", "1"})))
	f.Add([]byte(`{"root": {"path": "r"}, "process": {}, "linux": null, "mounts": [null, {"source": "x", "type": "bind"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := RunConfig(data, "/b", "/s/app-a-1", []string{"OSM_RUNID=1"})
		if err != nil {
			return
		}
		var cfg struct {
			Root  struct{ Path string }
			Linux struct {
				CgroupsPath string `json:"cgroupsPath"`
			}
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		if !strings.HasPrefix(cfg.Root.Path, "/b/") || cfg.Linux.CgroupsPath != "/s/app-a-1" {
			t.Fatalf("root.path %q, cgroupsPath %q", cfg.Root.Path, cfg.Linux.CgroupsPath)
		}
	})
}
