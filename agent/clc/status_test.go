package clc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/script"
	"osmanager/agent/state"
)

func writeScript(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAppCode runs real status scripts and maps how they end.
func TestAppCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		mode    os.FileMode
		timeout time.Duration
		want    int32
		meaning string
	}{
		{"exit 0", "#!/bin/sh\nexit 0\n", 0o755, 0, 2000, "running"},
		{"exit 3", "#!/bin/sh\nexit 3\n", 0o755, 0, 2003, "not serving (exit 3)"},
		{"exit 127", "#!/bin/sh\nexit 127\n", 0o755, 0, 2127, "not serving (exit 127)"},
		{"exit 200", "#!/bin/sh\nexit 200\n", 0o755, 0, 2128, "unknown (exit 200)"},
		{"killed by a signal", "#!/bin/sh\nkill -9 $$\n", 0o755, 0, 2128, "killed by a signal"},
		{"hangs", "#!/bin/sh\nexec sleep 60\n", 0o755, 200 * time.Millisecond, 2128, "timed out"},
		{"floods stdout", "#!/bin/sh\nexec yes flood\n", 0o755, 300 * time.Millisecond, 2128, "timed out"},
		{"not executable", "#!/bin/sh\nexit 0\n", 0o644, 0, 2128, "no executable status script"},
		{"bad interpreter", "#!/nonexistent/sh\nexit 0\n", 0o755, 0, 2128, "status script failed"},
		{"missing", "", 0, 0, 2128, "no executable status script"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := testlog.New(t)
			p := filepath.Join(t.TempDir(), "missing")
			if tc.mode != 0 {
				p = writeScript(t, tc.body, tc.mode)
			}
			s := &script.Script{Path: p, Timeout: tc.timeout, MaxLog: 4 << 10, Log: log}
			if s.Timeout == 0 {
				s.Timeout = 10 * time.Second
			}
			res, err := s.Run(context.Background())
			code, meaning := appCode(res, err)
			if code != tc.want || !strings.Contains(meaning, tc.meaning) {
				t.Errorf("appCode = %d %q, want %d %q (result %+v, err %v)", code, meaning, tc.want, tc.meaning, res, err)
			}
			// Output is logged up to MaxLog bytes, then drained unlogged.
			if n := strings.Count(buf.String(), "script output"); n > (4<<10)/len("flood\n")+2 { // and the "truncated" line
				t.Errorf("a flooding script got %d log lines", n)
			}
		})
	}
}

// TestReports: REPORT after registration, on every change, not when
// unchanged, at least hourly, and again on reconnect.
func TestReports(t *testing.T) {
	codeFile := filepath.Join(t.TempDir(), "code")
	os.WriteFile(codeFile, []byte("0"), 0o644)
	h := newHarness(t)
	h.link.StatusScript = writeScript(t, "#!/bin/sh\nexit $(cat "+codeFile+")\n", 0o755)
	h.link.StatusPeriod = 30 * time.Second
	h.link.Heartbeat = 1000 * time.Hour
	h.start()
	checked := func(after time.Time) state.AppHealth {
		t.Helper()
		return waitFor(t, "a status check", func() (state.AppHealth, bool) {
			a := h.link.State.AppHealth()
			return a, a.Checked.After(after)
		})
	}
	first := checked(time.Time{})
	f := h.accept()
	f.handshake()
	report := func(want int32) {
		t.Helper()
		r, err := wire.ParseReport(f.next(wire.TypeReport).Data)
		if err != nil || r.Status != want {
			t.Fatalf("REPORT %d (%v), want %d", r.Status, err, want)
		}
	}
	report(2000)

	os.WriteFile(codeFile, []byte("3"), 0o644)
	h.clk.Advance(30 * time.Second)
	report(2003)
	if a := h.link.State.AppHealth(); a.Code != 2003 || a.Meaning != "not serving (exit 3)" {
		t.Errorf("app state %+v", a)
	}

	// Unchanged: the script runs, nothing is sent.
	last := checked(first.Checked)
	h.clk.Advance(30 * time.Second)
	checked(last.Checked)
	f.barrier()
	select {
	case p := <-f.packets:
		t.Fatalf("agent sent %s for an unchanged status", p.Type)
	default:
	}

	// Hourly, even unchanged.
	h.clk.Advance(time.Hour)
	report(2003)
	if l := h.link.State.Link(); l.LastReport == nil || l.LastReport.Value != 2003 {
		t.Errorf("last report %+v", l.LastReport)
	}

	// On reconnect.
	f.conn.Close()
	h.backingOff("controller closed the connection")
	h.clk.Advance(time.Second)
	f = h.accept()
	f.handshake()
	report(2003)
}

// TestHangingStatusScript: a status script that never ends blocks nothing:
// the link registers, answers queries and echoes, and stops promptly.
func TestHangingStatusScript(t *testing.T) {
	h := newHarness(t)
	h.link.StatusScript = writeScript(t, "#!/bin/sh\nexec sleep 3600\n", 0o755)
	h.link.StatusTimeout = time.Hour
	h.start()
	f := h.accept()
	f.handshake()
	f.send(wire.QueryRequest{JobID: 5})
	q, _ := wire.ParseQueryReply(f.next(wire.TypeQueryReply).Data)
	if q.Status != wire.StateAppUnknown {
		t.Errorf("query status %d, want %d (unknown)", q.Status, wire.StateAppUnknown)
	}
	f.barrier()
	select {
	case p := <-f.packets:
		t.Errorf("agent sent %s with no status known", p.Type)
	default:
	}
	start := time.Now()
	h.stop()
	h.stop = nil
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s with a hanging status script", d)
	}
}

// apps builds an app manager's record: each app as "id desired state…",
// one run per state (runids counting up, so the last is the latest);
// "none" means no run.
func apps(specs ...string) state.Apps {
	a := state.Apps{Cgroups: "hybrid"}
	runid := uint64(0)
	for _, sp := range specs {
		f := strings.Fields(sp)
		app := state.AppView{ID: f[0], Version: "1.0.0", Desired: f[1]}
		for _, st := range f[2:] {
			if st == "none" {
				continue
			}
			runid++
			r := state.RunView{RunID: runid, State: st}
			if st == "failed" {
				r.Reason = "start limit hit: 5 starts in 10s"
			}
			app.Runs = append(app.Runs, r)
		}
		a.Apps = append(a.Apps, app)
	}
	return a
}

// TestAppsCode: without a status script, the app manager's record
// decides the REPORT value.
func TestAppsCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apps    state.Apps
		want    int32
		meaning string
	}{
		{"no app manager", state.Apps{}, wire.AppUnknown, "unknown (no executable status script)"},
		{"no app installed", state.Apps{Cgroups: "unified"}, wire.AppUnknown, "unknown (no executable status script, no app installed)"},
		{"all running", apps("a running running", "b running running"), wire.AppRunning, "running (every app meant to run is running)"},
		{"stopped as wanted", apps("a running running", "b stopped exited", "c stopped none"), wire.AppRunning, "running"},
		{"one run of several running", apps("a running exited running exited"), wire.AppRunning, "running"},
		{"exited", apps("a running running", "b running exited"), wire.AppStopped, "not running (b: exited)"},
		{"never started", apps("a running none"), wire.AppStopped, "not running (a: not started)"},
		{"starting", apps("a running starting"), wire.AppStopped, "not running (a: starting)"},
		{"paused", apps("a running paused"), wire.AppStopped, "not running (a: paused)"},
		{"stopping", apps("a running stopping"), wire.AppStopped, "not running (a: stopping)"},
		{"failed", apps("a running failed"), wire.AppFailed, "failed (a: failed, start limit hit: 5 starts in 10s)"},
		{"failed beats stopped", apps("a running exited", "b running failed"), wire.AppFailed, "failed (a: exited; b: failed, start limit hit"},
		{"an old run failed, the latest exited", apps("a running failed exited"), wire.AppStopped, "not running (a: exited)"},
		{"many down", apps("a running exited", "b running exited", "c running exited", "d running exited", "e running none"), wire.AppStopped,
			"not running (a: exited; b: exited; c: exited; 2 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, meaning := appsCode(tc.apps)
			if code != tc.want || !strings.HasPrefix(meaning, tc.meaning) {
				t.Errorf("appsCode = %d %q, want %d %q…", code, meaning, tc.want, tc.meaning)
			}
		})
	}
}

// TestReportsFollowApps: with no status script, the link reports 2000
// while every app meant to run runs, and another value as soon as one
// stops or fails: on the state's change, not at the next period.
func TestReportsFollowApps(t *testing.T) {
	h := newHarness(t)                                         // StatusPeriod 1000 h: nothing but a change can wake the loop
	h.link.StatusScript = filepath.Join(t.TempDir(), "status") // missing
	h.link.Heartbeat = 1000 * time.Hour
	st := h.link.State
	st.SetApps(apps("hello running running", "idle stopped none"))
	h.start()
	f := h.accept()
	f.handshake()
	report := func(want int32) {
		t.Helper()
		r, err := wire.ParseReport(f.next(wire.TypeReport).Data)
		if err != nil || r.Status != want {
			t.Fatalf("REPORT %d (%v), want %d", r.Status, err, want)
		}
	}
	health := func(want int32, meaning string) {
		t.Helper()
		a := waitFor(t, "the application status", func() (state.AppHealth, bool) {
			a := st.AppHealth()
			return a, a.Code == want
		})
		if !strings.HasPrefix(a.Meaning, meaning) {
			t.Errorf("application meaning %q, want %q…", a.Meaning, meaning)
		}
	}
	quiet := func(why string) {
		t.Helper()
		f.barrier()
		select {
		case p := <-f.packets:
			t.Fatalf("agent sent %s after %s", p.Type, why)
		default:
		}
	}
	report(2000)
	health(2000, "running")

	for _, c := range []struct {
		name    string
		apps    state.Apps
		want    int32
		meaning string
	}{
		{"the app exits", apps("hello running exited", "idle stopped none"), wire.AppStopped, "not running (hello: exited)"},
		{"it hits its start limit", apps("hello running exited failed", "idle stopped none"), wire.AppFailed, "failed (hello: failed"},
		{"it runs again", apps("hello running exited failed running", "idle stopped none"), wire.AppRunning, "running"},
		{"an app is started and has not come up yet", apps("hello running exited failed running", "idle running starting"), wire.AppStopped, "not running (idle: starting)"},
		{"it is up", apps("hello running exited failed running", "idle running running"), wire.AppRunning, "running"},
	} {
		st.SetApps(c.apps)
		report(c.want)
		health(c.want, c.meaning)
		h.waitLink(c.name+": last_report "+fmt.Sprint(c.want), func(l state.Link) bool { return l.LastReport != nil && l.LastReport.Value == c.want })
	}

	// A change elsewhere in the state, or to the apps that leaves the
	// verdict as it was, sends nothing.
	st.UpdateTerminal(func(t *state.Terminal) { t.Sessions++ })
	quiet("an unrelated state change")
	st.SetApps(apps("hello running exited failed running", "idle running running", "new stopped none"))
	quiet("a change that leaves every app meant to run running")
}

// TestScriptDecidesOverApps: with a status script, its exit decides, and
// the apps' state changes report nothing.
func TestScriptDecidesOverApps(t *testing.T) {
	for _, tc := range []struct {
		name string
		exit int
		apps state.Apps
		want int32
	}{
		{"script serving, an app down", 0, apps("hello running exited"), 2000},
		{"script not serving, every app up", 3, apps("hello running running"), 2003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.link.StatusScript = writeScript(t, fmt.Sprintf("#!/bin/sh\nexit %d\n", tc.exit), 0o755)
			h.link.Heartbeat = 1000 * time.Hour
			h.link.State.SetApps(tc.apps)
			h.start()
			f := h.accept()
			f.handshake()
			r, err := wire.ParseReport(f.next(wire.TypeReport).Data)
			if err != nil || r.Status != tc.want {
				t.Fatalf("REPORT %d (%v), want %d (the script's)", r.Status, err, tc.want)
			}
			// The apps flip; the script still decides, so nothing is sent.
			for _, a := range []state.Apps{apps("hello running failed"), apps("hello running running"), apps("hello running exited")} {
				h.link.State.SetApps(a)
			}
			f.barrier()
			select {
			case p := <-f.packets:
				t.Fatalf("agent sent %s for an app change while a status script decides", p.Type)
			default:
			}
			if a := h.link.State.AppHealth(); a.Code != tc.want {
				t.Errorf("application status %d %q, want the script's %d", a.Code, a.Meaning, tc.want)
			}
		})
	}
}
