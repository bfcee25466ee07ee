package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

func TestRunSteps(t *testing.T) {
	log, _ := testlog.New(t)
	st := &state.Store{}
	s := &Supervisor{State: st, Log: log}
	var ran []string
	step := func(name string, changed []string, err error) Step {
		return Step{Name: name, Run: func(context.Context) ([]string, string, error) {
			ran = append(ran, name)
			return changed, "", err
		}}
	}
	err := s.RunSteps(context.Background(), []Step{
		step("floppy", nil, errors.New("no medium")),
		step("conf", []string{"/LuoYun/conf/luoyun.conf"}, nil),
		step("script", nil, Skip("no custom/scripts/config")),
		{Name: "boom", Run: func(context.Context) ([]string, string, error) { ran = append(ran, "boom"); panic("bad") }},
		step("last", nil, nil),
	})
	if got := strings.Join(ran, ","); got != "floppy,conf,script,boom,last" {
		t.Errorf("ran %s; every step must run", got)
	}
	if err == nil || !strings.Contains(err.Error(), "floppy: no medium") || !strings.Contains(err.Error(), "boom: panic: bad") {
		t.Errorf("err = %v, want floppy and boom failures", err)
	}
	want := map[string]state.StepStatus{"floppy": state.StepFailed, "conf": state.StepOK, "script": state.StepSkipped, "boom": state.StepFailed, "last": state.StepOK}
	for _, r := range st.Steps() {
		if r.Status != want[r.Name] {
			t.Errorf("step %s status %s, want %s", r.Name, r.Status, want[r.Name])
		}
	}
	if got := st.Steps()[1].Changed; len(got) != 1 {
		t.Errorf("conf changed = %v", got)
	}
}

// waitFor waits, on the store's change signal, until cond holds for a
// service, or fails the test after 10 s.
func waitFor(t *testing.T, st *state.Store, what string, cond func(state.Service) bool) state.Service {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		ch := st.Changed() // before reading, so no change is missed
		for _, sv := range st.Services() {
			if cond(sv) {
				return sv
			}
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; services: %+v", what, st.Services())
		}
	}
}

func TestServeRestartsWithBackoff(t *testing.T) {
	log, _ := testlog.New(t)
	st := &state.Store{}
	fake := clock.NewFake(time.Unix(1000, 0))
	s := &Supervisor{State: st, Log: log, Clock: fake, NewBackoff: func() *backoff.Backoff {
		return &backoff.Backoff{Min: time.Second, Max: 30 * time.Second, Factor: 2, Rand: func() float64 { return 0 }}
	}}
	starts := make(chan int, 10)
	n := 0
	flaky := ServiceFunc(func(ctx context.Context) error {
		n++
		starts <- n
		if n <= 2 {
			return errors.New("link down")
		}
		<-ctx.Done()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, []Named{{Name: "clc", Service: flaky}}) }()

	<-starts
	sv := waitFor(t, st, "backoff", func(sv state.Service) bool { return sv.Status == state.ServiceBackoff })
	if sv.LastError != "link down" || !sv.NextStart.Equal(time.Unix(1001, 0)) {
		t.Errorf("after first failure: %+v, want last error and restart in 1s", sv)
	}
	fake.WaitPending(1, nil)
	fake.Advance(time.Second)
	<-starts
	waitFor(t, st, "second backoff", func(sv state.Service) bool {
		return sv.Status == state.ServiceBackoff && sv.NextStart.Equal(time.Unix(1003, 0))
	})
	fake.WaitPending(1, nil)
	fake.Advance(2 * time.Second)
	<-starts
	sv = waitFor(t, st, "running", func(sv state.Service) bool { return sv.Status == state.ServiceRunning && sv.Restarts == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil on cancel", err)
	}
	if got := st.Services()[0].Status; got != state.ServiceStopped {
		t.Errorf("status after cancel = %s, want stopped", got)
	}
}

func TestServePermanentAndPanic(t *testing.T) {
	log, _ := testlog.New(t)
	st := &state.Store{}
	s := &Supervisor{State: st, Log: log, Clock: clock.NewFake(time.Unix(0, 0))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- s.Serve(ctx, []Named{
			{Name: "clc", Service: ServiceFunc(func(context.Context) error { return Permanent(errors.New("no TAG in luoyun.conf")) })},
			{Name: "web", Service: ServiceFunc(func(context.Context) error { panic("nil map") })},
			{Name: "ok", Service: ServiceFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })},
		})
	}()
	sv := waitFor(t, st, "clc failed", func(sv state.Service) bool { return sv.Name == "clc" && sv.Status == state.ServiceFailed })
	if !strings.Contains(sv.LastError, "no TAG") {
		t.Errorf("clc last error %q", sv.LastError)
	}
	sv = waitFor(t, st, "web backoff", func(sv state.Service) bool { return sv.Name == "web" && sv.Status == state.ServiceBackoff })
	if !strings.Contains(sv.LastError, "panic: nil map") {
		t.Errorf("web last error %q", sv.LastError)
	}
	waitFor(t, st, "ok running", func(sv state.Service) bool { return sv.Name == "ok" && sv.Status == state.ServiceRunning })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// TestQuietSteps: with QuietSteps the step lines are logged at debug level
// (the caller prints the summary), failures included.
func TestQuietSteps(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("quiet=%v", quiet), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			s := &Supervisor{State: &state.Store{}, Log: log, QuietSteps: quiet}
			s.RunSteps(context.Background(), []Step{
				{Name: "good", Run: func(context.Context) ([]string, string, error) { return nil, "", nil }},
				{Name: "bad", Run: func(context.Context) ([]string, string, error) { return nil, "", errors.New("boom") }},
			})
			got := strings.Count(buf.String(), `msg="boot step"`)
			want := 2
			if quiet {
				want = 0
			}
			if got != want {
				t.Errorf("%d step lines at info level and above, want %d:\n%s", got, want, buf.String())
			}
		})
	}
}
