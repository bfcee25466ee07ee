package runner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestAdopt: a run outlives its agent (a Runner whose Run ended) and the
// next agent (a second Runner) adopts it from its record.
func TestAdopt(t *testing.T) {
	t.Run("cgroup", func(t *testing.T) { testAdopt(t, newEnv(t, testCgroups(t))) })
	t.Run("group after a crash", func(t *testing.T) {
		e := newEnv(t, nil)
		e.keep = true // what an agent killed by SIGKILL leaves
		e.cancel()
		<-e.ran
		e.r = e.runner()
		testAdopt(t, e)
	})
}

func testAdopt(t *testing.T, e *env) {
	ctx := context.Background()
	e.keep = true
	sp := e.spec(1, "tick")
	st, err := e.r.Start(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	rec := *st.Record
	waitLog(t, e, sp, "tick 3")
	if _, err := e.r.Pause(ctx, 1); err != nil {
		t.Fatal(err)
	}
	e.cancel() // the agent stops, the run paused
	<-e.ran
	if !alive(rec.Pid) {
		t.Fatalf("run %d's leader %d did not outlive its agent", rec.RunID, rec.Pid)
	}
	before, _ := e.sys.Lstat(sp.Log)

	r2 := e.runner()
	e.r = r2
	st, err = r2.Adopt(ctx, sp, rec)
	if err != nil || st.State != Paused || len(st.Pids) == 0 || st.Pids[0] != rec.Pid {
		t.Fatalf("Adopt = %+v, %v; want paused (as left), leader %d", st, err, rec.Pid)
	}
	if st, err := r2.Resume(ctx, 1); err != nil || st.State != Running {
		t.Fatalf("Resume of an adopted run = %s, %v", st.State, err)
	}
	// The output written meanwhile waited in the pipe; the log goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, _ := e.sys.Lstat(sp.Log)
		if fi != nil && before != nil && fi.Size() > before.Size()+100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log did not grow after adoption")
		}
		runtimeYield()
	}
	if st, err := r2.Pause(ctx, 1); err != nil || st.State != Paused {
		t.Errorf("Pause of an adopted run = %s, %v", st.State, err)
	}
	st, err = r2.Terminate(ctx, 1)
	if err != nil || st.State != Exited || !st.LastExit.Unknown {
		t.Errorf("Terminate = %+v, %v; want exited, exit unknown (not our child)", st, err)
	}
	if alive(rec.Pid) {
		t.Errorf("leader %d alive after terminate", rec.Pid)
	}
	// The same record again: the run is gone.
	if _, err := r2.Adopt(ctx, sp, rec); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt of a gone run = %v, want ErrGone", err)
	}
	reused := rec
	reused.StartTime++
	reused.Pid = os.Getpid()
	if _, err := r2.Adopt(ctx, sp, reused); !errors.Is(err, ErrGone) {
		t.Errorf("Adopt with another start time = %v, want ErrGone", err)
	}
}

// TestSweep: a process in an app cgroup of no known run is stopped.
func TestSweep(t *testing.T) {
	e := newEnv(t, testCgroups(t))
	ctx := context.Background()
	st, err := e.r.Start(ctx, e.spec(1, "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	stray := cgroup(filepath.Join(e.cg.Base, "app-stray-9"))
	if err := stray.make(); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(string(stray))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.exe)
	cmd.Env = []string{"RUNNER_HELPER=sleep"}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd()), Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()

	got := e.r.Sweep(nil)
	if !slices.Equal(got, []string{string(stray)}) {
		t.Errorf("Sweep = %q, want %q", got, stray)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatalf("stray %d not stopped", cmd.Process.Pid)
	}
	if _, err := os.Stat(string(stray)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray cgroup left: %v", err)
	}
	if now, _ := e.r.State(1); now.State != Running || !alive(st.Pids[0]) {
		t.Errorf("known run %s after Sweep, want running", now.State)
	}
}

// TestAdoptGone: the leader died while no agent ran; its child is still
// there. The next agent reports the run gone and stops the child.
func TestAdoptGone(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.cancel()
		<-e.ran
		e.keep = true
		e.r = e.runner()
		sp := e.spec(1, "forkwait")
		st, err := e.r.Start(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		rec := *st.Record
		pids := waitPids(t, e.r, 1, 2)
		e.cancel()
		<-e.ran
		syscall.Kill(rec.Pid, syscall.SIGKILL) // the leader dies, its child stays
		for deadline := time.Now().Add(10 * time.Second); alive(rec.Pid); runtimeYield() {
			if time.Now().After(deadline) {
				t.Fatalf("leader %d did not die", rec.Pid)
			}
		}
		r2 := e.runner()
		e.r = r2
		if _, err := r2.Adopt(ctx, sp, rec); !errors.Is(err, ErrGone) {
			t.Fatalf("Adopt = %v, want ErrGone", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for alive(pids[1]) {
			if time.Now().After(deadline) {
				t.Fatalf("child %d of a gone run alive", pids[1])
			}
			runtimeYield()
		}
		if rec.Cgroup != "" {
			if _, err := os.Stat(rec.Cgroup); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("gone run's cgroup left: %v", err)
			}
		}
	})
}

// TestStopWithAgent: a run marked StopWithAgent (it holds the agent's
// sockets) is terminated when the runner stops, where other runs are
// left for the next agent.
func TestStopWithAgent(t *testing.T) {
	test := func(t *testing.T, e *env) {
		ctx := context.Background()
		sp := e.spec(1, "sleep")
		sp.StopWithAgent = true
		st, err := e.r.Start(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := e.r.Start(ctx, e.spec(2, "sleep"))
		if err != nil {
			t.Fatal(err)
		}
		e.cancel()
		<-e.ran
		if alive(st.Record.Pid) {
			t.Errorf("run 1 (StopWithAgent) outlived its agent")
		}
		if got, _ := e.r.State(1); got.State != Exited {
			t.Errorf("run 1 is %s, want exited", got.State)
		}
		if !alive(kept.Record.Pid) {
			t.Errorf("run 2 did not outlive its agent")
		}
		syscall.Kill(kept.Record.Pid, syscall.SIGKILL)
	}
	t.Run("cgroup", func(t *testing.T) { test(t, newEnv(t, testCgroups(t))) })
	t.Run("group kept", func(t *testing.T) {
		e := newEnv(t, nil)
		e.keep = true
		e.cancel()
		<-e.ran
		e.r = e.runner()
		test(t, e)
	})
}
