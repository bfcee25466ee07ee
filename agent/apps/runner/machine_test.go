package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/proc"
	"osmanager/agent/sysroot"
)

// fakeRT is a Runtime whose instances exit when the test says.
type fakeRT struct {
	mu      sync.Mutex
	insts   []*fakeInst
	started chan *fakeInst
	fail    error
	// exitAtOnce makes every instance exit with this at its start.
	exitAtOnce *proc.Exit
	ignoreTerm bool
}

func (f *fakeRT) Name() string            { return "fake" }
func (f *fakeRT) Mode() CgroupMode        { return CgroupNone }
func (f *fakeRT) Sweep([]Record) []string { return nil }
func (f *fakeRT) Adopt(rec Record) (Instance, error) {
	if rec.Pid == 0 {
		return nil, ErrGone
	}
	in := &fakeInst{rt: f, pid: rec.Pid, done: make(chan struct{})}
	if f.started != nil {
		f.started <- in
	}
	return in, nil
}

func (f *fakeRT) Start(l Launch) (Instance, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	f.mu.Lock()
	in := &fakeInst{rt: f, pid: 1000 + len(f.insts), done: make(chan struct{})}
	f.insts = append(f.insts, in)
	f.mu.Unlock()
	if f.exitAtOnce != nil {
		in.exit(*f.exitAtOnce)
	}
	if f.started != nil {
		f.started <- in
	}
	return in, nil
}

func (f *fakeRT) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.insts)
}

type fakeInst struct {
	rt   *fakeRT
	pid  int
	mu   sync.Mutex
	done chan struct{}
	e    proc.Exit
	sigs []syscall.Signal
	ops  []string
}

func (in *fakeInst) exit(e proc.Exit) {
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-in.done:
	default:
		in.e = e
		close(in.done)
	}
}

func (in *fakeInst) Record() Record        { return Record{Runtime: "fake", Pid: in.pid} }
func (in *fakeInst) Pids() []int           { return []int{in.pid, in.pid + 500} }
func (in *fakeInst) Done() <-chan struct{} { return in.done }
func (in *fakeInst) Exit() (proc.Exit, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.e, true
}
func (in *fakeInst) op(s string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ops = append(in.ops, s)
	return nil
}
func (in *fakeInst) Paused() bool  { return false }
func (in *fakeInst) Pause() error  { return in.op("pause") }
func (in *fakeInst) Resume() error { return in.op("resume") }
func (in *fakeInst) Signal(sig syscall.Signal) error {
	in.mu.Lock()
	in.sigs = append(in.sigs, sig)
	in.mu.Unlock()
	if sig == syscall.SIGTERM && !in.rt.ignoreTerm {
		in.exit(proc.Exit{Code: -1, Signal: syscall.SIGTERM})
	}
	return nil
}
func (in *fakeInst) Kill() error {
	in.exit(proc.Exit{Code: -1, Signal: syscall.SIGKILL})
	return nil
}
func (in *fakeInst) Cleanup() error { return in.op("cleanup") }
func (in *fakeInst) Remove() error  { return in.op("remove") }
func (in *fakeInst) Detach()        { in.op("detach") }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// fixture is a Runner on a fake runtime and a fake clock, with every
// state change recorded.
type fixture struct {
	r      *Runner
	rt     *fakeRT
	clk    *clock.Fake
	mu     sync.Mutex
	states []Status
	cancel context.CancelFunc
	ran    chan struct{}
}

func newFixture(t *testing.T, rt *fakeRT) *fixture {
	t.Helper()
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rt: rt, clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), ran: make(chan struct{})}
	stop := true
	f.r = New(Config{
		Sys: sys, Runtime: rt, Clock: f.clk, Log: testLogger(t), StopOnShutdown: &stop,
		NewBackoff: func() *backoff.Backoff { return &backoff.Backoff{Min: time.Second, Max: 8 * time.Second, Factor: 2} },
		OnChange: func(s State) {
			f.mu.Lock()
			f.states = append(f.states, s.State)
			f.mu.Unlock()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.r.Run(ctx); close(f.ran) }()
	t.Cleanup(func() { cancel(); <-f.ran })
	return f
}

func (f *fixture) seen() []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Status(nil), f.states...)
}

func spec(runid uint64, policy Policy) Spec {
	return Spec{ID: "hello", Version: "1.0.0", RunID: runid, Exec: "/bin/hello", Restart: policy, Log: "/logs/hello.log", StopTimeout: 5 * time.Second}
}

// waitFinal waits until the run is final.
func waitFinal(t *testing.T, f *fixture, runid uint64) State {
	t.Helper()
	u, err := f.r.get(runid)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-u.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("run %d not final: %+v", runid, u.state())
	}
	return u.state()
}

func equal(a, b []Status) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStateMachine(t *testing.T) {
	ctx := context.Background()
	t.Run("start pause resume terminate", func(t *testing.T) {
		f := newFixture(t, &fakeRT{})
		st, err := f.r.Start(ctx, spec(1, RestartAlways))
		if err != nil || st.State != Running {
			t.Fatalf("Start = %+v, %v; want running", st, err)
		}
		if got := st.AGL(); got.RunID != 1 || got.ID != "hello" || len(got.Pids) != 2 || got.Pids[0] != 1000 {
			t.Errorf("AGL = %+v, want runid 1, leader 1000 first", got)
		}
		if st, err = f.r.Pause(ctx, 1); err != nil || st.State != Paused {
			t.Fatalf("Pause = %s, %v; want paused", st.State, err)
		}
		if st, err = f.r.Pause(ctx, 1); err != nil || st.State != Paused {
			t.Fatalf("second Pause = %s, %v; want paused, no error", st.State, err)
		}
		if st, err = f.r.Resume(ctx, 1); err != nil || st.State != Running {
			t.Fatalf("Resume = %s, %v; want running", st.State, err)
		}
		st, err = f.r.Terminate(ctx, 1)
		if err != nil || st.State != Exited || st.LastExit.String() != "signal TERM" || st.Reason != "terminated" {
			t.Fatalf("Terminate = %+v, %v; want exited by signal TERM", st, err)
		}
		want := []Status{Starting, Running, Paused, Running, Stopping, Exited}
		if got := f.seen(); !equal(got, want) {
			t.Errorf("states = %v, want %v", got, want)
		}
		// terminate twice: the same outcome, no error
		again, err := f.r.Terminate(ctx, 1)
		if err != nil || again.State != Exited || again.LastExit.String() != "signal TERM" {
			t.Errorf("second Terminate = %+v, %v; want the same exited state", again, err)
		}
		if _, err := f.r.Pause(ctx, 1); !errors.Is(err, ErrInvalidState) {
			t.Errorf("Pause of an exited run: %v, want ErrInvalidState", err)
		}
		if _, err := f.r.Resume(ctx, 1); !errors.Is(err, ErrInvalidState) {
			t.Errorf("Resume of an exited run: %v, want ErrInvalidState", err)
		}
		if _, err := f.r.Pause(ctx, 99); !errors.Is(err, ErrUnknownRun) {
			t.Errorf("Pause of an unknown run: %v, want ErrUnknownRun", err)
		}
	})
	t.Run("terminate a paused run resumes it after SIGTERM", func(t *testing.T) {
		rt := &fakeRT{started: make(chan *fakeInst, 1)}
		f := newFixture(t, rt)
		f.r.Start(ctx, spec(1, RestartNo))
		in := <-rt.started
		f.r.Pause(ctx, 1)
		f.r.Terminate(ctx, 1)
		in.mu.Lock()
		defer in.mu.Unlock()
		if len(in.ops) < 2 || in.ops[0] != "pause" || in.ops[1] != "resume" {
			t.Errorf("ops = %v, want pause then resume (thaw to act on SIGTERM)", in.ops)
		}
	})
	t.Run("SIGKILL after the stop timeout", func(t *testing.T) {
		f := newFixture(t, &fakeRT{ignoreTerm: true})
		f.r.Start(ctx, spec(1, RestartNo))
		got := make(chan State, 1)
		go func() { st, _ := f.r.Terminate(ctx, 1); got <- st }()
		f.clk.WaitPending(1, nil)
		f.clk.Advance(4 * time.Second)
		select {
		case st := <-got:
			t.Fatalf("terminated before the stop timeout: %+v", st)
		default:
		}
		f.clk.Advance(time.Second)
		if st := <-got; st.LastExit.String() != "signal KILL" {
			t.Errorf("last exit = %s, want signal KILL", st.LastExit)
		}
	})
	t.Run("cannot start", func(t *testing.T) {
		f := newFixture(t, &fakeRT{fail: errors.New("exec format error")})
		st, err := f.r.Start(ctx, spec(1, RestartAlways))
		if !errors.Is(err, ErrCantStart) || st.State != Failed {
			t.Errorf("Start = %s, %v; want failed, ErrCantStart", st.State, err)
		}
	})
	t.Run("bad spec", func(t *testing.T) {
		f := newFixture(t, &fakeRT{})
		sp := spec(1, "sometimes")
		if _, err := f.r.Start(ctx, sp); !errors.Is(err, ErrBadSpec) {
			t.Errorf("Start = %v, want ErrBadSpec", err)
		}
	})
}

func TestRestartPolicy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		policy  Policy
		exit    proc.Exit
		restart bool
	}{
		{"no after failure", RestartNo, proc.Exit{Code: 3}, false},
		{"on-failure after success", RestartOnFailure, proc.Exit{}, false},
		{"on-failure after failure", RestartOnFailure, proc.Exit{Code: 3}, true},
		{"on-failure after a signal", RestartOnFailure, proc.Exit{Code: -1, Signal: syscall.SIGSEGV}, true},
		{"always after success", RestartAlways, proc.Exit{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRT{started: make(chan *fakeInst, 2)}
			f := newFixture(t, rt)
			if _, err := f.r.Start(ctx, spec(1, tc.policy)); err != nil {
				t.Fatal(err)
			}
			(<-rt.started).exit(tc.exit)
			if !tc.restart {
				st := waitFinal(t, f, 1)
				if st.State != Exited || st.LastExit.String() != tc.exit.String() {
					t.Errorf("state = %s, last exit %s; want exited, %s", st.State, st.LastExit, tc.exit)
				}
				return
			}
			f.clk.WaitPending(1, nil)
			if st, _ := f.r.State(1); st.State != Starting || st.NextStart.IsZero() || st.LastExit.String() != tc.exit.String() {
				t.Errorf("in backoff: %+v; want starting with next_start and last exit", st)
			}
			f.clk.Advance(time.Second)
			<-rt.started
			u, _ := f.r.get(1)
			st := u.state()
			for deadline := time.Now().Add(10 * time.Second); st.State != Running; st = u.state() {
				if time.Now().After(deadline) {
					t.Fatalf("not running again: %+v", st)
				}
				runtimeYield()
			}
			if st.Restarts != 1 {
				t.Errorf("restarts = %d, want 1", st.Restarts)
			}
		})
	}
}

func TestStartLimit(t *testing.T) {
	ctx := context.Background()
	rt := &fakeRT{exitAtOnce: &proc.Exit{Code: 1}}
	f := newFixture(t, rt)
	sp := spec(1, RestartAlways)
	sp.StartLimit = StartLimit{Burst: 3, Interval: time.Hour}
	f.r.Start(ctx, sp)
	u, _ := f.r.get(1)
	for i := 0; ; i++ {
		if !f.clk.WaitPending(1, u.done) {
			break
		}
		f.clk.Advance(time.Minute)
	}
	st := waitFinal(t, f, 1)
	if st.State != Failed || st.Reason != "start limit hit: 3 starts within 1h0m0s" {
		t.Errorf("state = %s (%q), want failed, start limit hit", st.State, st.Reason)
	}
	if got := rt.count(); got != 3 {
		t.Errorf("starts = %d, want 3 (the burst), then nothing", got)
	}
	if st.Restarts != 2 || st.LastExit.String() != "exit 1" {
		t.Errorf("restarts %d, last exit %s; want 2, exit 1", st.Restarts, st.LastExit)
	}
	if _, err := f.r.Terminate(ctx, 1); err != nil {
		t.Errorf("Terminate of a failed run: %v", err)
	}
}

func TestTerminateDuringBackoff(t *testing.T) {
	ctx := context.Background()
	rt := &fakeRT{exitAtOnce: &proc.Exit{Code: 1}}
	f := newFixture(t, rt)
	f.r.Start(ctx, spec(1, RestartAlways))
	f.clk.WaitPending(1, nil)
	if _, err := f.r.Pause(ctx, 1); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Pause in backoff: %v, want ErrInvalidState", err)
	}
	st, err := f.r.Terminate(ctx, 1)
	if err != nil || st.State != Exited || st.LastExit.String() != "exit 1" {
		t.Errorf("Terminate in backoff = %+v, %v; want exited, exit 1", st, err)
	}
	if got := rt.count(); got != 1 {
		t.Errorf("starts = %d, want 1", got)
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("OSM_SECRET_TEST", "KEY=hunter2")
	sp := spec(7, RestartNo)
	sp.Env = map[string]string{"GREETING": "hi", "PATH": "/opt/bin"}
	sp.Data = "/LuoYun/apps/data/hello"
	got := sp.Environ("/usr/bin:/bin")
	want := []string{"GREETING=hi", "HOME=/", "LOGNAME=root", "OSM_APP_DATA=/LuoYun/apps/data/hello", "OSM_APP_ID=hello", "OSM_APP_VERSION=1.0.0", "OSM_RUNID=7", "PATH=/opt/bin", "USER=root"}
	if len(got) != len(want) {
		t.Fatalf("Environ = %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("Environ[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"bad name", map[string]string{"A-B": "x"}},
		{"OSM_ name", map[string]string{"OSM_RUNID": "1"}},
		{"NUL", map[string]string{"A": "x\x00y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := spec(1, RestartNo)
			sp.Env = tc.env
			if err := sp.Check(); !errors.Is(err, ErrBadSpec) {
				t.Errorf("Check = %v, want ErrBadSpec", err)
			}
		})
	}
}

// TestAdoptedRestart: an adopted run keeps its restart count, and its
// next start counts as a restart.
func TestAdoptedRestart(t *testing.T) {
	ctx := context.Background()
	rt := &fakeRT{started: make(chan *fakeInst, 2)}
	f := newFixture(t, rt)
	sp := spec(4, RestartAlways)
	if _, err := f.r.Adopt(ctx, sp, Record{ID: "other", RunID: 4, Pid: 77}); !errors.Is(err, ErrBadSpec) {
		t.Errorf("Adopt with another app's record = %v, want ErrBadSpec", err)
	}
	if _, err := f.r.Adopt(ctx, sp, Record{ID: "hello", RunID: 4}); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt of a gone run = %v, want ErrGone", err)
	}
	st, err := f.r.Adopt(ctx, sp, Record{ID: "hello", RunID: 4, Pid: 77, Restarts: 3})
	if err != nil || st.State != Running || st.Restarts != 3 || st.Pids[0] != 77 {
		t.Fatalf("Adopt = %+v, %v; want running, restarts 3, leader 77", st, err)
	}
	(<-rt.started).exit(proc.Exit{Code: 1})
	f.clk.WaitPending(1, nil)
	f.clk.Advance(time.Second)
	<-rt.started
	u, _ := f.r.get(4)
	for deadline := time.Now().Add(10 * time.Second); u.state().State != Running; runtimeYield() {
		if time.Now().After(deadline) {
			t.Fatalf("not running again: %+v", u.state())
		}
	}
	if got := u.state().Restarts; got != 4 {
		t.Errorf("restarts = %d, want 4", got)
	}
}
