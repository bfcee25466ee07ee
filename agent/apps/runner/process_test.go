package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/proc"
	"osmanager/agent/sysroot"
)

// The test binary doubles as the runs' program: RUNNER_HELPER says what
// it does.
func TestMain(m *testing.M) {
	if mode := os.Getenv("RUNNER_HELPER"); mode != "" {
		helper(mode)
		return
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	name, arg, _ := strings.Cut(mode, "=")
	switch name {
	case "sleep":
		time.Sleep(time.Hour)
	case "exit":
		n, _ := strconv.Atoi(arg)
		os.Exit(n)
	case "ignoreterm":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring TERM")
		time.Sleep(time.Hour)
	case "print":
		n, _ := strconv.Atoi(arg)
		for i := range n {
			fmt.Printf("line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "to stderr")
	case "tick":
		for i := 0; ; i++ {
			fmt.Printf("tick %d\n", i)
			time.Sleep(10 * time.Millisecond)
		}
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "fork": // a child that stays (setsid with arg "daemon"), then exit
		self, _ := os.Executable()
		cmd := exec.Command(self)
		cmd.Env = []string{"RUNNER_HELPER=child"}
		if arg == "daemon" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		cmd.Start()
		fmt.Println("child", cmd.Process.Pid)
	case "child":
		signal.Ignore(syscall.SIGTERM, syscall.SIGHUP)
		time.Sleep(time.Hour)
	case "listen": // check the sockets handed over, then answer one connection on each
		fds, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		fmt.Printf("pid ok %v fds %d names %s\n", os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()), fds, os.Getenv("LISTEN_FDNAMES"))
		for i := range fds {
			ln, err := net.FileListener(os.NewFile(uintptr(3+i), "listen"))
			if err != nil {
				fmt.Println("fd", 3+i, err)
				os.Exit(1)
			}
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			fmt.Fprintf(c, "fd %d\n", 3+i)
			c.Close()
		}
	case "forkwait": // a child in the group, and wait
		self, _ := os.Executable()
		cmd := exec.Command(self)
		cmd.Env = []string{"RUNNER_HELPER=sleep"}
		cmd.Start()
		time.Sleep(time.Hour)
	}
}

// env is a real Runner: process groups only, or cgroups under a test
// cgroup of its own.
type env struct {
	keep   bool // leave runs running at shutdown, even without cgroups
	t      *testing.T
	r      *Runner
	sys    *sysroot.Root
	cg     *Cgroups
	cancel context.CancelFunc
	ran    chan struct{}
	exe    string
}

// testCgroups returns a cgroup v2 directory of the test's own under the
// host's tree, or skips: it needs root and a writable v2 tree.
func testCgroups(t testing.TB) *Cgroups {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	var mount string
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if isCgroup2(d) {
			mount = d
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup v2 tree")
	}
	base := filepath.Join(mount, fmt.Sprintf("osm-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())))
	cg := SetupCgroups(CgroupConfig{FS: "/sys/fs/cgroup", Base: base})
	if !cg.On() {
		t.Skipf("no writable cgroup v2 tree: %s", cg.Reason)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.IsDir() {
				cgroup(filepath.Join(base, e.Name())).remove()
			}
		}
		os.Remove(base)
	})
	return cg
}

func mustExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func newEnv(t *testing.T, cg *Cgroups) *env {
	t.Helper()
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sys: sys, cg: cg, exe: exe}
	e.r = e.runner()
	return e
}

func (e *env) runner() *Runner {
	var stop *bool
	if e.keep {
		stop = new(bool)
	}
	r := New(Config{Sys: e.sys, Runtime: &Process{Cgroups: e.cg, Log: testLogger(e.t)}, Log: testLogger(e.t), LogMax: 4096, StopOnShutdown: stop,
		NewBackoff: func() *backoff.Backoff { return backoff.New(time.Millisecond, 4*time.Millisecond) }})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	e.cancel, e.ran = cancel, ran
	e.t.Cleanup(func() {
		for _, st := range r.States() {
			r.Terminate(context.Background(), st.RunID)
		}
		cancel()
		<-ran
	})
	return r
}

func (e *env) spec(runid uint64, mode string) Spec {
	return Spec{ID: "helper", Version: "1", RunID: runid, Exec: e.exe, Env: map[string]string{"RUNNER_HELPER": mode},
		Log: fmt.Sprintf("/apps/logs/helper/%d.log", runid), StopTimeout: 5 * time.Second}
}

func (e *env) wait(runid uint64) State {
	e.t.Helper()
	u, err := e.r.get(runid)
	if err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-u.done:
	case <-time.After(20 * time.Second):
		e.t.Fatalf("run %d not final: %+v", runid, u.state())
	}
	return u.state()
}

// modes runs f with process groups only and, when it can, with cgroups.
func modes(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("group", func(t *testing.T) { f(t, newEnv(t, nil)) })
	t.Run("cgroup", func(t *testing.T) { f(t, newEnv(t, testCgroups(t))) })
}

func alive(pid int) bool {
	st, err := proc.Table{}.Stat(pid)
	return err == nil && !st.Zombie()
}

func TestProcessExitAndLogs(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, err := e.r.Start(ctx, e.spec(1, "exit=3")); err != nil {
			t.Fatal(err)
		}
		if st := e.wait(1); st.State != Exited || st.LastExit.String() != "exit 3" {
			t.Errorf("state %s, last exit %s; want exited, exit 3", st.State, st.LastExit)
		}
		sp := e.spec(2, "print=3")
		e.r.Start(ctx, sp)
		e.wait(2)
		lines, err := e.r.Tail(sp, 2)
		if want := []string{"line 2", "to stderr"}; err != nil || !slices.Equal(lines, want) {
			t.Errorf("Tail = %q, %v; want %q", lines, err, want)
		}
		if _, err := e.sys.Lstat(sp.Pipe()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pipe left after the run: %v", err)
		}
	})
}

func TestProcessEnvironment(t *testing.T) {
	t.Setenv("AGENT_SECRET", "KEY=hunter2")
	e := newEnv(t, nil)
	sp := e.spec(1, "env")
	e.r.Start(context.Background(), sp)
	e.wait(1)
	lines, _ := e.r.Tail(sp, 0)
	got := strings.Join(lines, "\n")
	for _, want := range []string{"OSM_RUNID=1", "OSM_APP_ID=helper", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} {
		if !strings.Contains(got, want) {
			t.Errorf("environment lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hunter2") {
		t.Errorf("the agent's environment leaked into the run:\n%s", got)
	}
}

func TestProcessTerminate(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		t.Run("ignores SIGTERM", func(t *testing.T) {
			sp := e.spec(1, "ignoreterm")
			sp.StopTimeout = 300 * time.Millisecond
			st, _ := e.r.Start(ctx, sp)
			waitLog(t, e, sp, "ignoring TERM")
			pid := st.Pids[0]
			st, err := e.r.Terminate(ctx, 1)
			if err != nil || st.LastExit.String() != "signal KILL" {
				t.Errorf("Terminate = %s, %v; want signal KILL", st.LastExit, err)
			}
			if alive(pid) {
				t.Errorf("pid %d alive after terminate", pid)
			}
		})
		t.Run("children in the group", func(t *testing.T) {
			st, _ := e.r.Start(ctx, e.spec(2, "forkwait"))
			pids := waitPids(t, e.r, 2, 2)
			st, err := e.r.Terminate(ctx, 2)
			if err != nil || st.State != Exited {
				t.Errorf("Terminate = %+v, %v", st, err)
			}
			for _, p := range pids {
				if alive(p) {
					t.Errorf("pid %d alive after terminate", p)
				}
			}
			if e.cg != nil {
				if _, err := os.Stat(filepath.Join(e.cg.Base, "app-helper-2")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("run's cgroup left after terminate: %v", err)
				}
			}
		})
		t.Run("a forked child outlives its leader", func(t *testing.T) {
			mode := "fork"
			if e.cg != nil {
				mode = "fork=daemon" // setsid: only the cgroup finds it
			}
			sp := e.spec(3, mode)
			e.r.Start(ctx, sp)
			st := e.wait(3)
			if st.State != Exited || st.LastExit.String() != "exit 0" {
				t.Errorf("state %s %s, want exited 0", st.State, st.LastExit)
			}
			lines, _ := e.r.Tail(sp, 1)
			if len(lines) != 1 {
				t.Fatalf("log = %q", lines)
			}
			pid, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "child "))
			if pid == 0 || alive(pid) {
				t.Errorf("forked child %d alive after its run exited", pid)
			}
		})
	})
}

func TestProcessPause(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		started, _ := e.r.Start(ctx, e.spec(1, "forkwait"))
		pids := waitPids(t, e.r, 1, 2)
		if pids[0] != started.Record.Pid {
			t.Errorf("pids %v, want the leader %d first", pids, started.Record.Pid)
		}
		st, err := e.r.Pause(ctx, 1)
		if err != nil || st.State != Paused {
			t.Fatalf("Pause = %s, %v", st.State, err)
		}
		if e.cg != nil {
			if frozen, _ := cgroup(filepath.Join(e.cg.Base, "app-helper-1")).event("frozen"); !frozen {
				t.Errorf("cgroup.events: frozen 0 after pause")
			}
		} else {
			for _, p := range pids {
				if s, _ := (proc.Table{}).Stat(p); s.State != 'T' && s.State != 't' {
					t.Errorf("pid %d state %c after pause, want T", p, s.State)
				}
			}
		}
		if st, err := e.r.Resume(ctx, 1); err != nil || st.State != Running {
			t.Fatalf("Resume = %s, %v", st.State, err)
		}
		for _, p := range pids {
			if s, _ := (proc.Table{}).Stat(p); s.State == 'T' || s.State == 't' {
				t.Errorf("pid %d still stopped after resume", p)
			}
		}
		// terminate of a paused run
		e.r.Pause(ctx, 1)
		if st, err := e.r.Terminate(ctx, 1); err != nil || st.LastExit.String() != "signal TERM" {
			t.Errorf("Terminate of a paused run = %s, %v; want signal TERM", st.LastExit, err)
		}
	})
}

func TestLogRotation(t *testing.T) {
	e := newEnv(t, nil)
	sp := e.spec(1, "print=2000") // ~18 kB, LogMax 4 kB
	e.r.Start(context.Background(), sp)
	e.wait(1)
	for _, name := range []string{sp.Log, sp.Log + ".1"} {
		fi, err := e.sys.Lstat(name)
		if err != nil || fi.Size() > 4096 {
			t.Errorf("%s: %v, size %d; want at most 4096", name, err, fi.Size())
		}
	}
	if _, err := e.sys.Lstat(sp.Log + ".2"); err == nil {
		t.Errorf("%s.2 kept; want the last two files only", sp.Log)
	}
	lines, _ := e.r.Tail(sp, 1)
	if !slices.Equal(lines, []string{"to stderr"}) {
		t.Errorf("last line %q, want to stderr", lines)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	ch chan struct{}
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if strings.Count(s.b.String(), "\n") >= 5 && s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	return len(p), nil
}

func TestFollow(t *testing.T) {
	e := newEnv(t, nil)
	e.r.Start(context.Background(), e.spec(1, "tick"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan struct{})
	buf := &syncBuf{ch: got}
	errc := make(chan error, 1)
	go func() { errc <- e.r.Follow(ctx, 1, 1, buf) }()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("followed: %q", buf.b.String())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Follow = %v", err)
	}
	if !strings.HasPrefix(buf.b.String(), "tick ") {
		t.Errorf("followed %q", buf.b.String())
	}
}

// waitLog waits until the run's log holds want.
func waitLog(t *testing.T, e *env, sp Spec, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lines, _ := e.r.Tail(sp, 0)
		if slices.Contains(lines, want) {
			return
		}
		runtimeYield()
	}
	t.Fatalf("log of run %d never said %q", sp.RunID, want)
}

// waitPids waits until the run has n processes.
func waitPids(t *testing.T, r *Runner, runid uint64, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := r.State(runid); len(st.Pids) >= n {
			return st.Pids
		}
		runtimeYield()
	}
	st, _ := r.State(runid)
	t.Fatalf("run %d has pids %v, want %d", runid, st.Pids, n)
	return nil
}

// runtimeYield paces a poll with a deadline.
func runtimeYield() { <-time.After(5 * time.Millisecond) }

func TestProcessCannotStart(t *testing.T) {
	e := newEnv(t, nil)
	sp := e.spec(1, "sleep")
	sp.Exec = "/nonexistent/program"
	st, err := e.r.Start(context.Background(), sp)
	if !errors.Is(err, ErrCantStart) || st.State != Failed || !strings.Contains(st.Reason, "no such file") {
		t.Errorf("Start = %s (%q), %v; want failed, ErrCantStart, naming the cause", st.State, st.Reason, err)
	}
}

func TestProcessCrashLoop(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		sp := e.spec(1, "exit=1")
		sp.Restart, sp.StartLimit = RestartOnFailure, StartLimit{Burst: 3, Interval: time.Minute}
		e.r.Start(context.Background(), sp)
		st := e.wait(1)
		if st.State != Failed || st.Restarts != 2 || st.LastExit.String() != "exit 1" || !strings.HasPrefix(st.Reason, "start limit hit: 3 starts") {
			t.Errorf("state %s, restarts %d, last exit %s, reason %q; want failed after 3 starts, exit 1", st.State, st.Restarts, st.LastExit, st.Reason)
		}
		if e.cg != nil {
			if _, err := os.Stat(filepath.Join(e.cg.Base, "app-helper-1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed run's cgroup left: %v", err)
			}
		}
	})
}

// TestProcessRestartAfterKill: a run whose leftovers were killed (its
// daemon child, by cgroup.kill) starts again cleanly.
func TestProcessRestartAfterKill(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		sp := e.spec(1, "fork")
		sp.Restart, sp.StartLimit = RestartAlways, StartLimit{Burst: 3, Interval: time.Minute}
		e.r.Start(context.Background(), sp)
		st := e.wait(1)
		if st.Restarts != 2 || st.LastExit.String() != "exit 0" {
			t.Errorf("restarts %d, last exit %s; want 2, exit 0 (no start killed)", st.Restarts, st.LastExit)
		}
	})
}

// TestProcessListen: a run with listening sockets gets them as fds 3, 4
// with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID its own pid (through
// the shell shim), and a connection made before it started is answered.
func TestProcessListen(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		var files []*os.File
		var addrs []string
		for range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			t.Cleanup(func() { f.Close() })
			files = append(files, f)
			addrs = append(addrs, ln.Addr().String())
		}
		// Connect before the program runs: the kernel queues the connection.
		var conns []net.Conn
		for _, a := range addrs {
			c, err := net.Dial("tcp", a)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		sp := e.spec(1, "listen")
		sp.Env["LISTEN_FDS"] = "9" // the manifest's would be replaced
		sp.Listen, sp.ListenNames = files, []string{"web", "admin"}
		if _, err := e.r.Start(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
		for i, c := range conns {
			b, err := io.ReadAll(c)
			if want := fmt.Sprintf("fd %d\n", 3+i); err != nil || string(b) != want {
				t.Errorf("connection %d read %q, %v; want %q", i, b, err, want)
			}
		}
		if st := e.wait(1); st.LastExit.String() != "exit 0" {
			t.Errorf("run ended %s, want exit 0", st.LastExit)
		}
		lines, _ := e.r.Tail(sp, 0)
		if want := []string{"pid ok true fds 2 names web:admin"}; !slices.Equal(lines, want) {
			t.Errorf("log %q, want %q", lines, want)
		}
	})
}

func TestSpecListenRefused(t *testing.T) {
	f := os.Stdin
	base := Spec{ID: "a", RunID: 1, Exec: "/bin/true", Log: "/l"}
	for _, tc := range []struct {
		name  string
		files []*os.File
		names []string
	}{
		{"names missing", []*os.File{f}, nil},
		{"nil file", []*os.File{nil}, []string{"a"}},
		{"name with colon", []*os.File{f}, []string{"a:b"}},
		{"empty name", []*os.File{f}, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := base
			sp.Listen, sp.ListenNames = tc.files, tc.names
			if err := sp.Check(); !errors.Is(err, ErrBadSpec) {
				t.Errorf("Check = %v, want ErrBadSpec", err)
			}
		})
	}
}

// TestProcessListenCannotStart: with sockets (through the shim), what
// execve would refuse is still cannot start, not an exit 127 of a run.
func TestProcessListenCannotStart(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	badInterp := filepath.Join(dir, "bad-interp")
	os.WriteFile(badInterp, []byte("#!/nonexistent/interpreter\n"), 0o755)
	noX := filepath.Join(dir, "no-x")
	os.WriteFile(noX, []byte("#!/bin/sh\n"), 0o644)
	for i, tc := range []struct{ name, exec, want string }{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"not executable", noX, "not an executable file"},
		{"bad interpreter", badInterp, "interpreter /nonexistent/interpreter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := e.spec(uint64(i+1), "sleep")
			sp.Exec = tc.exec
			sp.Listen, sp.ListenNames = []*os.File{os.Stdin}, []string{"x"}
			st, err := e.r.Start(context.Background(), sp)
			if !errors.Is(err, ErrCantStart) || !strings.Contains(err.Error(), tc.want) || st.State != Failed {
				t.Errorf("Start = %s, %v; want failed, cannot start with %q", st.State, err, tc.want)
			}
		})
	}
}
