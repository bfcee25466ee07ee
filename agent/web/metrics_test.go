package web

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"osmanager/agent/state"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	fillState(e.state)
	e.do("GET", "/")
	e.do("GET", "/missing")
	e.do("GET", "/../x")
	r := e.do("GET", "/metrics")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	text := body(t, r)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	want := map[string]string{
		"osmanager_boot_step_duration_seconds":                    `step="script"} 1.5`,
		"osmanager_boot_step_status":                              `status="failed",step="script"} 1`,
		"osmanager_controller_link_state":                         `state="registered"} 1`,
		"osmanager_controller_link_state_since_timestamp_seconds": "",
		"osmanager_controller_reconnects_total":                   "osmanager_controller_reconnects_total 3",
		"osmanager_app_status_code":                               "osmanager_app_status_code 2000",
		"osmanager_app_status_checked_timestamp_seconds":          "",
		"osmanager_service_state":                                 `service="webssh",state="backoff"} 1`,
		"osmanager_service_restarts_total":                        `service="webssh"} 2`,
		"osmanager_terminal_sessions_active":                      "osmanager_terminal_sessions_active 1",
		"osmanager_terminal_sessions_total":                       "osmanager_terminal_sessions_total 5",
		"osmanager_terminal_login_failures_total":                 "osmanager_terminal_login_failures_total 2",
		"osmanager_http_requests_total":                           `handler="page"} 1`, // one of several
		"osmanager_http_request_duration_seconds":                 "",
		"osmanager_info":                                          `application="wordpress",name="osmanager",version="0.1.0",version1="0.1.0",version2="3.5.1"} 1`,
		"osmanager_apps_installed":                                "osmanager_apps_installed 3",
		"osmanager_app_state":                                     `app="hello",state="running"} 1`,
		"osmanager_app_restarts_total":                            `app="hello"} 3`,
		"go_goroutines":                                           "",
		"process_resident_memory_bytes":                           "",
	}
	for name, line := range want {
		if families[name] == nil {
			t.Errorf("no family %s", name)
			continue
		}
		if line != "" && !strings.Contains(text, line) {
			t.Errorf("%s: no sample with %s", name, line)
		}
	}
	for _, code := range []string{`code="200",handler="page"`, `code="404",handler="page"`, `code="400",handler="page"`} {
		if !strings.Contains(text, "osmanager_http_requests_total{"+code+"} 1") {
			t.Errorf("requests by code: no %s", code)
		}
	}
	if problems, err := testutil.GatherAndLint(e.srv.metrics.reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// TestAppMetrics: each app's latest run's state is one-hot in
// osmanager_app_state, its runs' restarts add up in
// osmanager_app_restarts_total, and no sample carries a runid.
func TestAppMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.state.SetApps(testApps())
	text := body(t, e.do("GET", "/metrics"))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	// samples maps "app state" (or "app") to the value.
	samples := func(name string) map[string]float64 {
		out := map[string]float64{}
		f := families[name]
		if f == nil {
			t.Fatalf("no family %s", name)
		}
		for _, m := range f.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "app" && l.GetName() != "state" {
					t.Errorf("%s has label %s", name, l.GetName())
				}
				key = append(key, l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[strings.Join(key, " ")] = v
		}
		return out
	}
	states := samples("osmanager_app_state")
	for _, c := range []struct {
		name, app, cur string // cur "": no state is 1
	}{
		{"running after a restart, an older run exited", "hello", "running"},
		{"failed for good", "crashy", "failed"},
		{"never started", "idle", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, x := range []string{"starting", "running", "paused", "stopping", "exited", "failed"} {
				got, ok := states[c.app+" "+x]
				want := 0.0
				if x == c.cur {
					want = 1
				}
				if !ok || got != want {
					t.Errorf("osmanager_app_state{app=%q,state=%q} = %v (present %v), want %v", c.app, x, got, ok, want)
				}
			}
		})
	}
	if len(states) != 3*6 {
		t.Errorf("osmanager_app_state has %d samples, want 18:\n%s", len(states), text)
	}
	if diff := cmp.Diff(map[string]float64{"hello": 3, "crashy": 4, "idle": 0}, samples("osmanager_app_restarts_total")); diff != "" {
		t.Errorf("osmanager_app_restarts_total (-want +got):\n%s", diff)
	}
	if got := families["osmanager_apps_installed"].GetMetric()[0].GetGauge().GetValue(); got != 3 {
		t.Errorf("osmanager_apps_installed = %v, want 3", got)
	}
	if got, want := families["osmanager_app_restarts_total"].GetType().String(), "COUNTER"; got != want {
		t.Errorf("osmanager_app_restarts_total is a %s, want %s", got, want)
	}
	if problems, err := testutil.GatherAndLint(e.srv.metrics.reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}

	// The manager's next record replaces the last: an app removed is gone,
	// an app with a state this agent does not know yet shows it.
	e.state.SetApps(state.Apps{Cgroups: "none", Apps: []state.AppView{
		{ID: "hello", Desired: "running", Runs: []state.RunView{{RunID: 7, State: "restarting"}}},
	}})
	m := body(t, e.do("GET", "/metrics"))
	for _, want := range []string{"osmanager_apps_installed 1", `osmanager_app_state{app="hello",state="restarting"} 1`, `osmanager_app_state{app="hello",state="running"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("after the next record: no %s", want)
		}
	}
	if strings.Contains(m, `app="crashy"`) {
		t.Error("an app no longer installed still has samples")
	}
}

func TestMetricsFollowState(t *testing.T) {
	e := newEnv(t, nil)
	scrape := func() string { return body(t, e.do("GET", "/metrics")) }
	if m := scrape(); !strings.Contains(m, `osmanager_controller_link_state{state="disconnected"} 1`) ||
		strings.Contains(m, "osmanager_app_status_code ") || strings.Contains(m, "osmanager_boot_step") {
		t.Errorf("fresh agent: want disconnected, no app code, no steps:\n%s", m)
	}
	e.state.UpdateLink(func(l *state.Link) { l.Status = state.LinkConnecting; l.Reconnects = 7 })
	m := scrape()
	for _, want := range []string{`osmanager_controller_link_state{state="connecting"} 1`, `osmanager_controller_link_state{state="disconnected"} 0`,
		"osmanager_controller_reconnects_total 7"} {
		if !strings.Contains(m, want) {
			t.Errorf("after a state change: no %s", want)
		}
	}
	// Two servers never share a registry.
	e2 := newEnv(t, nil)
	if e2.srv.metrics.reg == e.srv.metrics.reg {
		t.Error("servers share a registry")
	}
}
