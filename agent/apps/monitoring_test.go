package apps

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/monitor"
	"osmanager/agent/apps/runner"
	"osmanager/agent/state"
)

// newMonFixture is a fixture that samples every 10 ms.
func newMonFixture(t *testing.T, alertFile string) *fixture {
	return newMonFixtureCg(t, alertFile, nil)
}

func newMonFixtureCg(t *testing.T, alertFile string, cg *runner.Cgroups) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, state: &state.Store{}, mon: monitor.Config{Interval: 10 * time.Millisecond, Window: 50 * time.Millisecond}}
	if alertFile != "" {
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "conf/alerts.json"), []byte(alertFile), 0o644); err != nil {
			t.Fatal(err)
		}
		f.alert = "/conf/alerts.json"
	}
	g := newFixture(t, cg, dir)
	g.stop()
	g.mon, g.alert, g.state = f.mon, f.alert, f.state
	g.start()
	return g
}

// waitStats polls the stats verb until ok, with a deadline.
func (f *fixture) waitStats(id, what string, ok func(apitypes.Stats) bool) apitypes.Stats {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := f.m.Stats(ctxT(f.t), id)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("stats %q: not %s: %+v, %v", id, what, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStatsVerb: a running app's figures from the monitor, by app and by
// runid; an unknown one is not_found; the run's end takes it out.
func TestStatsVerb(t *testing.T) {
	f := newMonFixture(t, "")
	f.mustInstall(pkg("hello", "1.0.0", ticker), false)
	runid := f.mustStart("hello").RunID
	st := f.waitStats("", "showing hello", func(st apitypes.Stats) bool {
		return len(st.Apps) == 1 && st.Apps[0].ID == "hello" && len(st.Apps[0].Runs) == 1 && st.Apps[0].Pids > 0 && st.Apps[0].MemoryBytes > 0
	})
	if r := st.Apps[0].Runs[0]; r.RunID != runid || r.Source != "proc" || r.Error != "" {
		t.Errorf("run figures: %+v; want run %d from proc (no cgroups here)", r, runid)
	}
	if st.Interval != 0.01 || st.System.MemoryTotal == 0 || st.System.DiskTotal == 0 {
		t.Errorf("interval %v, system %+v", st.Interval, st.System)
	}
	for _, id := range []string{"hello", "1"} {
		if st, err := f.m.Stats(ctxT(t), id); err != nil || len(st.Apps) != 1 || st.Apps[0].Runs[0].RunID != runid {
			t.Errorf("Stats(%q) = %+v, %v", id, st, err)
		}
	}
	for _, id := range []string{"nope", "99"} {
		if _, err := f.m.Stats(ctxT(t), id); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("Stats(%q) = %v, want not_found", id, err)
		}
	}
	if _, err := f.m.Terminate(ctxT(t), runid); err != nil {
		t.Fatal(err)
	}
	f.waitStats("", "without hello", func(st apitypes.Stats) bool { return len(st.Apps) == 0 })
}

// TestAlertEvents: an alert in the manifest and one in the alert file
// are raised as events on the stream and in the state; the app's end
// clears them (its figures drop to 0, or its last run ends). A bad rule in the alert file is left out, the others
// hold.
func TestAlertEvents(t *testing.T) {
	f := newMonFixture(t, `{"system": {"memory": {"above": "1K"}, "load": {"above": 1}}, "apps": {"hello": {"memory": {"above": "1K"}}}}`)
	f.mustInstall(pkg("hello", "1.0.0", ticker, `"alerts": {"pids": {"above": 0, "for": "20ms"}}`), false)
	ctx := ctxT(t)
	evs := f.m.Subscribe(ctx, 64)
	runid := f.mustStart("hello").RunID
	want := map[string]bool{"hello pids raised": true, "hello memory raised": true}
	deadline := time.After(15 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-evs:
			if ev.Type == apitypes.EventAlert && ev.ID == "hello" && ev.Alert.Raised {
				delete(want, "hello "+ev.Alert.Metric+" raised")
			}
		case <-deadline:
			t.Fatalf("no events for %v", want)
		}
	}
	st := f.state.Stats()
	var got []string
	for _, a := range st.Alerts {
		got = append(got, a.ID+":"+a.Metric)
	}
	// The system's memory is above 1K too (the file's rule; its bad
	// "load" rule is left out).
	if g := strings.Join(got, " "); g != ":memory hello:memory hello:pids" {
		t.Errorf("raised alerts in the state: %q, want :memory hello:memory hello:pids", g)
	}
	if _, err := f.m.Terminate(ctx, runid); err != nil {
		t.Fatal(err)
	}
	cleared := map[string]bool{}
	for len(cleared) < 2 {
		select {
		case ev := <-evs:
			if ev.Type == apitypes.EventAlert && ev.ID == "hello" && !ev.Alert.Raised {
				cleared[ev.Alert.Metric] = true // by the value going to 0, or by the run's end
			}
		case <-deadline:
			t.Fatalf("cleared only %v", cleared)
		}
	}
}

// TestInstallLimits: limits the host cannot apply are refused at install
// (nothing installed), unless soft; limits that cannot be parsed are a
// bad_request naming the key.
func TestInstallLimits(t *testing.T) {
	f := newMonFixture(t, "") // process groups only: no cgroups
	_, err := f.install(pkg("capped", "1.0.0", ticker, `"limits": {"memory": "64M", "pids": 16}`), false)
	if apperr.CodeOf(err) != apperr.CantStart || !strings.Contains(err.Error(), `its "limits" cannot be applied on this host (cgroup mode none)`) || !strings.Contains(err.Error(), `"soft": true`) {
		t.Fatalf("install with hard limits and no cgroups = %v", err)
	}
	if _, err := f.m.Detail(ctxT(t), "capped"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("refused app installed after all: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(f.dir, "apps/.staging"))
	if len(ents) != 0 {
		t.Errorf("staging left: %v", ents)
	}
	f.mustInstall(pkg("soft", "1.0.0", ticker, `"limits": {"memory": "64M", "soft": true}`), false)
	f.mustStart("soft")
	_, err = f.install(pkg("typo", "1.0.0", ticker, `"limits": {"memory": "64 megs"}`), false)
	var e *apperr.Error
	if !errors.As(err, &e) || e.Code != apperr.BadRequest || !strings.Contains(err.Error(), `"limits.memory": size "64 megs"`) {
		t.Errorf("unparsable limit: %v", err)
	}
	_, err = f.install(pkg("typo", "1.0.0", ticker, `"alerts": {"heat": {"above": 1}}`), false)
	if apperr.CodeOf(err) != apperr.BadRequest || !strings.Contains(err.Error(), `unknown metric "heat"`) {
		t.Errorf("alert on an unknown metric: %v", err)
	}
}

// TestStatsDocSameJSON: the API's Stats document and the state's Stats
// have the same JSON, field for field.
func TestStatsDocSameJSON(t *testing.T) {
	st := state.Stats{Time: time.Unix(1, 0).UTC(), Interval: 1, Window: 10,
		System: state.SystemStats{CPUPercent: 1, CPUAvg: 2, MemoryTotal: 3, MemoryUsed: 4, MemoryPercent: 5, DiskPath: "/", DiskTotal: 6, DiskUsed: 7, DiskPercent: 8,
			Net: []state.NetStats{{Name: "eth0", RxRate: 1, TxRate: 2, RxAvg: 3, TxAvg: 4, RxBytes: 5, TxBytes: 6}}},
		Apps: []state.AppStats{{ID: "a", Figures: state.Figures{CPUPercent: 1, CPUAvg: 2, MemoryBytes: 3, MemoryAvg: 4, MemoryPeak: 5, Pids: 6, IOBytes: 7, IORate: 8, IOAvg: 9},
			DiskBytes: 10, DiskChecked: time.Unix(2, 0).UTC(), DiskPartial: true,
			Runs: []state.RunStats{{RunID: 1, Figures: state.Figures{CPUPercent: 1}, Source: "cgroup", Error: "cgroup gone"}}}},
		Alerts: []state.AlertView{{ID: "a", Metric: "cpu", Value: 90, Threshold: 80, Since: time.Unix(3, 0).UTC()}},
	}
	a, _ := json.Marshal(st)
	b, _ := json.Marshal(statsDoc(st))
	if string(a) != string(b) {
		t.Errorf("state's JSON:\n%s\nAPI's:\n%s", a, b)
	}
}

// TestCgroupVanishesUnderRun: the processes of a run are moved out of its
// cgroup and the cgroup removed (as a careless admin or a cleanup tool
// would): the monitor says so, and the run is still running.
func TestCgroupVanishesUnderRun(t *testing.T) {
	cg := testCgroups(t)
	f := newMonFixtureCg(t, "", cg)
	f.mustInstall(pkg("hello", "1.0.0", "#!/bin/sh\nexec sleep 600\n"), false)
	runid := f.mustStart("hello").RunID
	f.waitStats("hello", "sampled from its cgroup", func(st apitypes.Stats) bool {
		return len(st.Apps) == 1 && st.Apps[0].Runs[0].Source != "proc" && st.Apps[0].Pids == 1
	})
	leaf := filepath.Join(cg.Base, fmt.Sprintf("app-hello-%d", runid))
	procs, err := os.ReadFile(filepath.Join(leaf, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(procs))
	t.Cleanup(func() {
		for _, p := range pids {
			if n, err := strconv.Atoi(p); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})
	// Into a sibling leaf (a parent with controllers may hold no process).
	elsewhere := filepath.Join(cg.Base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if err := os.WriteFile(filepath.Join(elsewhere, "cgroup.procs"), []byte(p), 0); err != nil {
			t.Skipf("cannot move a process out of its cgroup here: %v", err)
		}
	}
	if err := os.Remove(leaf); err != nil {
		t.Fatal(err)
	}
	st := f.waitStats("hello", "showing the cgroup gone", func(st apitypes.Stats) bool {
		return len(st.Apps) == 1 && st.Apps[0].Runs[0].Error == "cgroup gone"
	})
	if r := st.Apps[0].Runs[0]; r.Figures != (apitypes.Figures{}) {
		t.Errorf("figures of the vanished cgroup: %+v, want zero", r.Figures)
	}
	if r, err := f.m.Run(ctxT(t), runid); err != nil || r.State != apitypes.RunState(runner.Running) {
		t.Errorf("run after its cgroup vanished: %+v, %v; want running", r, err)
	}
}
