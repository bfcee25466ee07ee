package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

// fakeService is a service the test drives through channels: each Run
// hands the test a fakeRun and returns what the test sends on its exit
// channel, or nil once its ctx ends.
type fakeService struct {
	runs chan *fakeRun
}

type fakeRun struct {
	exit     chan error    // send to make this run return the error
	returned chan struct{} // closed as Run returns
}

func newFake() *fakeService { return &fakeService{runs: make(chan *fakeRun, 16)} }

func (f *fakeService) Run(ctx context.Context) error {
	r := &fakeRun{exit: make(chan error), returned: make(chan struct{})}
	defer close(r.returned)
	f.runs <- r
	select {
	case err := <-r.exit:
		return err
	case <-ctx.Done():
		return nil
	}
}

// configError declares itself permanent the way a service's own error
// types do, without the supervisor's constructor.
type configError struct{ permanent bool }

func (e configError) Error() string   { return "bad config" }
func (e configError) Permanent() bool { return e.permanent }

var errDown = errors.New("link down")

// noJitter backs off 1 s, 2 s, 4 s, … up to 30 s.
func noJitter() *backoff.Backoff {
	return &backoff.Backoff{Min: time.Second, Max: 30 * time.Second, Factor: 2, Rand: func() float64 { return 0 }}
}

var t0 = time.Unix(1000, 0)

// harness runs a Supervisor on a fake clock until the test ends.
type harness struct {
	t      *testing.T
	st     *state.Store
	clock  *clock.Fake
	sup    *Supervisor
	logs   *testlog.Buffer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, specs ...Spec) *harness {
	t.Helper()
	log, buf := testlog.New(t)
	h := &harness{t: t, st: &state.Store{}, clock: clock.NewFake(t0), logs: buf, done: make(chan error, 1)}
	h.sup = &Supervisor{State: h.st, Log: log, Clock: h.clock, NewBackoff: noJitter}
	for _, sp := range specs {
		if err := h.sup.Add(sp); err != nil {
			t.Fatalf("Add(%s) = %v", sp.Name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sup.Run(ctx) }()
	t.Cleanup(func() { h.shutdown() })
	return h
}

// shutdown cancels Run and waits for it; safe to call twice.
func (h *harness) shutdown() {
	h.t.Helper()
	h.cancel()
	if err, ok := <-h.done; ok {
		if err != nil {
			h.t.Errorf("Run = %v, want nil", err)
		}
		close(h.done)
	}
}

// wait waits for the named service's state to satisfy cond.
func (h *harness) wait(name, what string, cond func(state.Service) bool) state.Service {
	h.t.Helper()
	return waitFor(h.t, h.st, name+" "+what, func(sv state.Service) bool { return sv.Name == name && cond(sv) })
}

// next waits for f's next run.
func (h *harness) next(f *fakeService) *fakeRun {
	h.t.Helper()
	select {
	case r := <-f.runs:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatalf("timed out waiting for a run; services: %+v", h.st.Services())
		return nil
	}
}

// noRun checks that f has not been started again and that no restart is
// pending.
func (h *harness) noRun(f *fakeService) {
	h.t.Helper()
	select {
	case <-f.runs:
		h.t.Error("started again")
	default:
	}
	if n := h.clock.Pending(); n != 0 {
		h.t.Errorf("%d restart timers pending, want none", n)
	}
}

// restartAfter waits for the backoff timer, advances the clock by d and
// returns the run that follows.
func (h *harness) restartAfter(f *fakeService, d time.Duration) *fakeRun {
	h.t.Helper()
	h.clock.WaitPending(1, nil)
	h.clock.Advance(d)
	return h.next(f)
}

func status(want state.ServiceStatus) func(state.Service) bool {
	return func(sv state.Service) bool { return sv.Status == want }
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPolicies(t *testing.T) {
	tests := []struct {
		name       string
		policy     Policy
		ret        error // what the first run returns
		restart    bool
		want       state.ServiceStatus // when not restarted
		wantReason string
	}{
		{"default is always: restarted after nil", "", nil, true, "", ""},
		{"always restarted after nil", Always, nil, true, "", ""},
		{"always restarted after an error", Always, errDown, true, "", ""},
		{"on-failure restarted after an error", OnFailure, errDown, true, "", ""},
		{"on-failure not restarted after nil", OnFailure, nil, false, state.ServiceStopped, "exited"},
		{"never after an error", Never, errDown, false, state.ServiceFailed, "failed; restart policy never"},
		{"never after nil", Never, nil, false, state.ServiceStopped, "exited"},
		{"permanent error under always", Always, Permanent(errDown), false, state.ServiceFailed, "permanent: restarting will not help"},
		{"wrapped permanent error under on-failure", OnFailure, fmt.Errorf("dial: %w", Permanent(errDown)), false, state.ServiceFailed, "permanent: restarting will not help"},
		{"service's own permanent error type", Always, fmt.Errorf("web: %w", configError{true}), false, state.ServiceFailed, "permanent: restarting will not help"},
		{"error saying Permanent() false is restarted", Always, configError{false}, true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			h := newHarness(t, Spec{Name: "svc", Service: f, Policy: tc.policy})
			h.next(f).exit <- tc.ret
			if tc.restart {
				sv := h.wait("svc", "backoff", status(state.ServiceBackoff))
				if want := t0.Add(time.Second); !sv.NextStart.Equal(want) {
					t.Errorf("next start %v, want %v", sv.NextStart, want)
				}
				if tc.ret != nil && sv.LastError != tc.ret.Error() {
					t.Errorf("last error %q, want %q", sv.LastError, tc.ret.Error())
				}
				h.restartAfter(f, time.Second)
				sv = h.wait("svc", "running again", func(sv state.Service) bool { return sv.Status == state.ServiceRunning && sv.Restarts == 1 })
				if !sv.Since.Equal(t0.Add(time.Second)) {
					t.Errorf("since %v, want %v", sv.Since, t0.Add(time.Second))
				}
				return
			}
			sv := h.wait("svc", string(tc.want), status(tc.want))
			if sv.Reason != tc.wantReason || sv.Restarts != 0 {
				t.Errorf("reason %q, restarts %d; want %q, 0", sv.Reason, sv.Restarts, tc.wantReason)
			}
			if tc.ret != nil && !strings.Contains(sv.LastError, "link down") && !strings.Contains(sv.LastError, "bad config") {
				t.Errorf("last error %q, want the service's error", sv.LastError)
			}
			h.noRun(f)
		})
	}
}

func TestStartLimit(t *testing.T) {
	tests := []struct {
		name     string
		limit    StartLimit
		delays   []time.Duration // the backoffs waited before each restart
		wantFail bool
		want     string
	}{
		{"hit: 3 starts within 10s", StartLimit{Burst: 3, Interval: 10 * time.Second}, []time.Duration{time.Second, 2 * time.Second}, true, "start limit hit: 3 starts within 10s"},
		{"hit with the default interval", StartLimit{Burst: 2}, []time.Duration{time.Second}, true, "start limit hit: 2 starts within 10s"},
		{"spread out: not hit", StartLimit{Burst: 2, Interval: time.Second}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, false, ""},
		{"no limit", StartLimit{}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			h := newHarness(t, Spec{Name: "app", Service: f, StartLimit: tc.limit})
			r := h.next(f)
			for _, d := range tc.delays {
				r.exit <- errDown
				r = h.restartAfter(f, d)
			}
			r.exit <- fmt.Errorf("crash %d", len(tc.delays)+1)
			if !tc.wantFail {
				h.wait("app", "backoff", status(state.ServiceBackoff))
				return
			}
			sv := h.wait("app", "failed", status(state.ServiceFailed))
			if sv.Reason != tc.want || sv.LastError != fmt.Sprintf("crash %d", len(tc.delays)+1) || sv.Restarts != len(tc.delays) {
				t.Errorf("got reason %q, last error %q, restarts %d; want %q, the last crash, %d", sv.Reason, sv.LastError, sv.Restarts, tc.want, len(tc.delays))
			}
			h.noRun(f)
			if !strings.Contains(h.logs.String(), "service=app") || !strings.Contains(h.logs.String(), tc.want) {
				t.Errorf("log lacks the reason with service=app:\n%s", h.logs.String())
			}
			// A start by request clears the count.
			if err := h.sup.Start(ctx10s(t), "app"); err != nil {
				t.Fatalf("Start = %v", err)
			}
			h.next(f).exit <- errDown
			h.wait("app", "backoff after start by request", status(state.ServiceBackoff))
		})
	}
}

func TestStableAfterResetsBackoff(t *testing.T) {
	tests := []struct {
		name string
		ran  time.Duration // how long the third run lasts
		want time.Duration // the backoff that follows
	}{
		{"short run: backoff keeps growing", 4 * time.Second, 4 * time.Second},
		{"stable run: backoff starts over", 5 * time.Second, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			h := newHarness(t, Spec{Name: "clc", Service: f, Policy: OnFailure, StableAfter: 5 * time.Second, Backoff: noJitter})
			r := h.next(f)
			r.exit <- errDown
			r = h.restartAfter(f, time.Second)
			r.exit <- errDown
			r = h.restartAfter(f, 2*time.Second)
			h.wait("clc", "third run", func(sv state.Service) bool { return sv.Status == state.ServiceRunning && sv.Restarts == 2 })
			h.clock.Advance(tc.ran)
			failed := h.clock.Now()
			r.exit <- errDown
			sv := h.wait("clc", "backoff", status(state.ServiceBackoff))
			if got := sv.NextStart.Sub(failed); got != tc.want {
				t.Errorf("backoff %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStopStartRestart(t *testing.T) {
	f := newFake()
	h := newHarness(t, Spec{Name: "web", Service: f})
	ctx := ctx10s(t)
	r := h.next(f)
	h.wait("web", "running", status(state.ServiceRunning))

	t.Run("stop a running service", func(t *testing.T) {
		if err := h.sup.Stop(ctx, "web"); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		select {
		case <-r.returned:
		default:
			t.Error("Stop returned before the service did")
		}
		if sv := h.st.Services()[0]; sv.Status != state.ServiceStopped || sv.Reason != "stopped by request" {
			t.Errorf("after Stop: %+v", sv)
		}
		h.noRun(f)
	})
	t.Run("stop a stopped service", func(t *testing.T) {
		v := h.st.Version()
		if err := h.sup.Stop(ctx, "web"); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if h.st.Version() != v {
			t.Errorf("state changed: %+v", h.st.Services())
		}
	})
	t.Run("start a stopped service", func(t *testing.T) {
		if err := h.sup.Start(ctx, "web"); err != nil {
			t.Fatalf("Start = %v", err)
		}
		if sv := h.st.Services()[0]; sv.Status != state.ServiceRunning || sv.Reason != "" {
			t.Errorf("after Start: %+v, want running", sv)
		}
		r = h.next(f)
	})
	t.Run("start a running service", func(t *testing.T) {
		if err := h.sup.Start(ctx, "web"); err != nil {
			t.Fatalf("Start = %v", err)
		}
		h.noRun(f)
	})
	t.Run("restart a running service", func(t *testing.T) {
		h.clock.Advance(time.Minute)
		if err := h.sup.Restart(ctx, "web"); err != nil {
			t.Fatalf("Restart = %v", err)
		}
		select {
		case <-r.returned:
		default:
			t.Error("the old run had not returned")
		}
		r = h.next(f)
		if sv := h.st.Services()[0]; sv.Status != state.ServiceRunning || !sv.Since.Equal(t0.Add(time.Minute)) || sv.Restarts != 0 {
			t.Errorf("after Restart: %+v, want running since the restart, no automatic restart counted", sv)
		}
	})
	t.Run("stop in backoff", func(t *testing.T) {
		r.exit <- errDown
		h.wait("web", "backoff", status(state.ServiceBackoff))
		h.clock.WaitPending(1, nil)
		if err := h.sup.Stop(ctx, "web"); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if sv := h.st.Services()[0]; sv.Status != state.ServiceStopped || !sv.NextStart.IsZero() || sv.LastError != "link down" {
			t.Errorf("after Stop: %+v", sv)
		}
		h.noRun(f)
	})
	t.Run("start in backoff starts at once", func(t *testing.T) {
		if err := h.sup.Start(ctx, "web"); err != nil {
			t.Fatalf("Start = %v", err)
		}
		h.next(f).exit <- errDown
		h.wait("web", "backoff", status(state.ServiceBackoff))
		h.clock.WaitPending(1, nil)
		if err := h.sup.Start(ctx, "web"); err != nil {
			t.Fatalf("Start = %v", err)
		}
		r = h.next(f)
		if h.clock.Pending() != 0 {
			t.Error("the backoff timer is still pending")
		}
	})
	t.Run("restart a failed service", func(t *testing.T) {
		r.exit <- Permanent(errors.New("no TAG"))
		h.wait("web", "failed", status(state.ServiceFailed))
		if err := h.sup.Stop(ctx, "web"); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if sv := h.st.Services()[0]; sv.Status != state.ServiceFailed {
			t.Errorf("Stop changed a failed service: %+v", sv)
		}
		if err := h.sup.Restart(ctx, "web"); err != nil {
			t.Fatalf("Restart = %v", err)
		}
		r = h.next(f)
	})
	t.Run("unknown name", func(t *testing.T) {
		for name, op := range map[string]func(context.Context, string) error{
			"Stop": h.sup.Stop, "Start": h.sup.Start, "Restart": h.sup.Restart, "Remove": h.sup.Remove,
		} {
			if err := op(ctx, "nope"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "nope") {
				t.Errorf("%s(nope) = %v, want ErrUnknown naming it", name, err)
			}
		}
	})
	t.Run("after Run", func(t *testing.T) {
		h.shutdown()
		if sv := h.st.Services()[0]; sv.Status != state.ServiceStopped {
			t.Errorf("after shutdown: %+v", sv)
		}
		if err := h.sup.Start(ctx, "web"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Start after Run = %v, want ErrNotRunning", err)
		}
		if err := h.sup.Add(Spec{Name: "late", Service: newFake()}); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Add after Run = %v, want ErrNotRunning", err)
		}
	})
}

// TestControlBeforeRun checks that control works on services added before
// Run: a service stopped then is not started by Run, one removed is gone.
func TestControlBeforeRun(t *testing.T) {
	log, _ := testlog.New(t)
	st := &state.Store{}
	s := &Supervisor{State: st, Log: log, Clock: clock.NewFake(t0)}
	web, clc, gone := newFake(), newFake(), newFake()
	for _, sp := range []Spec{{Name: "web", Service: web}, {Name: "clc", Service: clc}, {Name: "gone", Service: gone}} {
		if err := s.Add(sp); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctx10s(t)
	for _, step := range []struct {
		op   func(context.Context, string) error
		name string
	}{{s.Stop, "web"}, {s.Stop, "clc"}, {s.Start, "clc"}, {s.Remove, "gone"}} {
		if err := step.op(ctx, step.name); err != nil {
			t.Fatalf("before Run: %v", err)
		}
	}
	got := map[string]state.ServiceStatus{}
	for _, sv := range st.Services() {
		got[sv.Name] = sv.Status
	}
	if want := map[string]state.ServiceStatus{"web": state.ServiceStopped, "clc": state.ServiceStarting}; !maps.Equal(got, want) {
		t.Errorf("state before Run: %v, want %v", got, want)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	<-clc.runs
	if err := s.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	<-web.runs
	select {
	case <-gone.runs:
		t.Error("a service removed before Run ran")
	default:
	}
}

// TestStopWithDeadline checks that a caller's deadline bounds Stop, and
// that the stop still completes.
func TestStopWithDeadline(t *testing.T) {
	release := make(chan struct{})
	stopping := make(chan struct{})
	returned := make(chan struct{})
	stubborn := ServiceFunc(func(ctx context.Context) error {
		defer close(returned)
		<-ctx.Done()
		close(stopping)
		<-release
		return nil
	})
	h := newHarness(t, Spec{Name: "app", Service: stubborn})
	h.wait("app", "running", status(state.ServiceRunning))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stopping; cancel() }() // the caller gives up while the service is stopping
	if err := h.sup.Stop(ctx, "app"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop = %v, want context.Canceled", err)
	}
	close(release)
	<-returned
	h.wait("app", "stopped", status(state.ServiceStopped))
}

func TestAddRemove(t *testing.T) {
	web := newFake()
	h := newHarness(t, Spec{Name: "web", Service: web})
	ctx := ctx10s(t)
	h.next(web)

	app := newFake()
	if err := h.sup.Add(Spec{Name: "app-hello-1", Service: app, Policy: OnFailure}); err != nil {
		t.Fatalf("Add = %v", err)
	}
	r := h.next(app)
	h.wait("app-hello-1", "running", status(state.ServiceRunning))
	if err := h.sup.Add(Spec{Name: "app-hello-1", Service: newFake()}); !errors.Is(err, ErrExists) {
		t.Errorf("second Add = %v, want ErrExists", err)
	}

	v := h.st.Version()
	if err := h.sup.Remove(ctx, "app-hello-1"); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	select {
	case <-r.returned:
	default:
		t.Error("Remove returned before the service did")
	}
	if h.st.Version() == v {
		t.Error("Remove published no change")
	}
	if got := h.st.Services(); len(got) != 1 || got[0].Name != "web" || got[0].Status != state.ServiceRunning {
		t.Errorf("services after Remove: %+v, want web alone, running", got)
	}
	if err := h.sup.Remove(ctx, "app-hello-1"); !errors.Is(err, ErrUnknown) {
		t.Errorf("second Remove = %v, want ErrUnknown", err)
	}

	// The name is free again; a service in backoff is removed too.
	again := newFake()
	if err := h.sup.Add(Spec{Name: "app-hello-1", Service: again}); err != nil {
		t.Fatalf("Add again = %v", err)
	}
	h.next(again).exit <- errDown
	h.wait("app-hello-1", "backoff", status(state.ServiceBackoff))
	if err := h.sup.Remove(ctx, "app-hello-1"); err != nil {
		t.Fatalf("Remove in backoff = %v", err)
	}
	h.noRun(again)
	if got := len(h.st.Services()); got != 1 {
		t.Errorf("%d services after the second Remove, want 1", got)
	}
}

func TestAddChecksSpec(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"no name", Spec{Service: newFake()}, "without a name"},
		{"no service", Spec{Name: "x"}, "no Service"},
		{"bad policy", Spec{Name: "x", Service: newFake(), Policy: "sometimes"}, `"sometimes" is not always, on-failure or never`},
		{"negative burst", Spec{Name: "x", Service: newFake(), StartLimit: StartLimit{Burst: -1}}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Supervisor{State: &state.Store{}}
			if err := s.Add(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Add = %v, want an error containing %q", err, tc.want)
			}
			if got := s.State.Services(); len(got) != 0 {
				t.Errorf("a refused spec left state: %+v", got)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	base := errors.New("no TAG in luoyun.conf")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"Permanent", Permanent(base), true},
		{"wrapped", fmt.Errorf("clc: %w", Permanent(base)), true},
		{"joined", errors.Join(errDown, Permanent(base)), true},
		{"own type", configError{true}, true},
		{"own type, wrapped", fmt.Errorf("web: %w", &wrapper{configError{true}}), true},
		{"own type saying no", configError{false}, false},
		{"outermost decides", &vetoed{Permanent(base)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPermanent(tc.err); got != tc.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if got := Permanent(base).Error(); got != base.Error() {
		t.Errorf("Permanent changed the message: %q", got)
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent(err) does not wrap err")
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

// vetoed wraps a permanent error but says restarting will help.
type vetoed struct{ err error }

func (v *vetoed) Error() string   { return v.err.Error() }
func (v *vetoed) Unwrap() error   { return v.err }
func (v *vetoed) Permanent() bool { return false }

type wrapper struct{ err error }

func (w *wrapper) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapper) Unwrap() error { return w.err }

// loggedService takes its logger from the supervisor.
type loggedService struct {
	mu  sync.Mutex
	log *slog.Logger
}

func (s *loggedService) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = l
}

func (s *loggedService) Run(ctx context.Context) error {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	log.Info("listening", "addr", ":8080")
	return errors.New("listen: address in use")
}

func TestSetLogger(t *testing.T) {
	svc := &loggedService{}
	h := newHarness(t, Spec{Name: "web", Service: svc})
	h.wait("web", "backoff", status(state.ServiceBackoff))
	var lines []string
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, "listening") || strings.Contains(line, "restarting") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want the service's line and the supervisor's, got:\n%s", h.logs.String())
	}
	for _, line := range lines {
		if n := strings.Count(line, "service=web"); n != 1 {
			t.Errorf("line has service=web %d times, want once: %s", n, line)
		}
	}
}

// TestRunWaitsForServices checks that Run returns only once every service
// has returned, and leaves no goroutine behind.
func TestRunWaitsForServices(t *testing.T) {
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	var returned atomic.Int32
	slow := ServiceFunc(func(ctx context.Context) error {
		defer returned.Add(1)
		<-ctx.Done()
		<-release // shut down slowly
		return nil
	})
	f := newFake()
	var specs []Spec
	for i := range 4 {
		specs = append(specs, Spec{Name: fmt.Sprint("slow", i), Service: slow})
	}
	h := newHarness(t, append(specs, Spec{Name: "flaky", Service: f})...)
	h.next(f).exit <- errDown // one in backoff
	h.wait("flaky", "backoff", status(state.ServiceBackoff))
	for i := range 4 {
		h.wait(fmt.Sprint("slow", i), "running", status(state.ServiceRunning))
	}
	if err := h.sup.Add(Spec{Name: "added", Service: newFake()}); err != nil {
		t.Fatal(err)
	}
	h.cancel()
	select {
	case err := <-h.done:
		close(h.done)
		close(release)
		t.Fatalf("Run returned (%v) while services were still stopping", err)
	default:
	}
	close(release)
	h.shutdown()
	if n := returned.Load(); n != 4 {
		t.Errorf("Run returned when %d of 4 services had", n)
	}
	for _, sv := range h.st.Services() {
		if sv.Status != state.ServiceStopped {
			t.Errorf("%s is %s after Run, want stopped", sv.Name, sv.Status)
		}
	}
	// Only this test's helper goroutines may still be on their way out.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Run, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestControlConcurrent drives one service from many goroutines at once,
// for -race, and checks that it ends in the state the last command asked.
func TestControlConcurrent(t *testing.T) {
	var mu sync.Mutex
	running := 0
	svc := ServiceFunc(func(ctx context.Context) error {
		mu.Lock()
		running++
		n := running
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		if n > 1 {
			t.Error("two runs at once")
		}
		<-ctx.Done()
		return nil
	})
	h := newHarness(t, Spec{Name: "svc", Service: svc})
	h.wait("svc", "running", status(state.ServiceRunning))
	ctx := ctx10s(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				var err error
				switch (i + j) % 3 {
				case 0:
					err = h.sup.Stop(ctx, "svc")
				case 1:
					err = h.sup.Start(ctx, "svc")
				default:
					err = h.sup.Restart(ctx, "svc")
				}
				if err != nil {
					t.Errorf("control: %v", err)
				}
				_ = h.st.Services()
			}
		}()
	}
	wg.Wait()
	if err := h.sup.Start(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if sv := h.st.Services()[0]; sv.Status != state.ServiceRunning {
		t.Errorf("after Start: %+v", sv)
	}
}

func TestRunTwice(t *testing.T) {
	f := newFake()
	h := newHarness(t, Spec{Name: "web", Service: f})
	h.next(f) // the first Run is running
	if err := h.sup.Run(context.Background()); err == nil {
		t.Error("a second Run ran")
	}
}
