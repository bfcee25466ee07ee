package web

import (
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
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
	lint(t, text)
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
	lint(t, text)

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
	// Two servers never share their counters.
	e2 := newEnv(t, nil)
	if m := body(t, e2.do("GET", "/metrics")); strings.Contains(m, `handler="metrics"`) {
		t.Errorf("a new server counts another's requests:\n%s", m)
	}
}

// lint parses an exposition and runs Prometheus' own linter on it.
func lint(t *testing.T, text string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// parse parses an exposition with Prometheus' own parser.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	return families
}

// TestMetricsProcess: the go_ and process_ families are there, of the
// right type, with values that make sense for this process.
func TestMetricsProcess(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/metrics")
	if got, want := r.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; got != want {
		t.Errorf("Content-Type %q, want %q", got, want)
	}
	text := body(t, r)
	families := parse(t, text)
	lint(t, text)
	value := func(name string, typ dto.MetricType) float64 {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("%s: want one sample, have %v", name, f)
			return 0
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, f.GetType(), typ)
		}
		m := f.GetMetric()[0]
		return m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	now := float64(time.Now().Unix())
	for _, c := range []struct {
		name     string
		typ      dto.MetricType
		min, max float64
	}{
		{"go_goroutines", dto.MetricType_GAUGE, 1, 1e6},
		{"go_threads", dto.MetricType_GAUGE, 1, 1e5},
		{"go_memstats_heap_alloc_bytes", dto.MetricType_GAUGE, 1, 1 << 40},
		{"go_memstats_alloc_bytes_total", dto.MetricType_COUNTER, 1, 1 << 50},
		{"go_memstats_sys_bytes", dto.MetricType_GAUGE, 1 << 20, 1 << 40},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, 1 << 20, 1 << 40},
		{"process_virtual_memory_bytes", dto.MetricType_GAUGE, 1 << 20, 1 << 50},
		{"process_cpu_seconds_total", dto.MetricType_COUNTER, 0, 1e6},
		{"process_start_time_seconds", dto.MetricType_GAUGE, now - 86400*365, now + 1},
		{"process_open_fds", dto.MetricType_GAUGE, 3, 1e7},
		{"process_max_fds", dto.MetricType_GAUGE, 3, 1e10},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := value(c.name, c.typ); got < c.min || got > c.max {
				t.Errorf("%s = %v, want in [%v, %v]", c.name, got, c.min, c.max)
			}
		})
	}
}

// TestMetricsHistogram: the request histogram parses as a histogram whose
// buckets are cumulative and end at the count, with the sum of the times.
func TestMetricsHistogram(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		e.do("GET", "/")
	}
	e.srv.metrics.observe("api", 200, 300*time.Microsecond)
	e.srv.metrics.observe("api", 200, 2*time.Second) // over the last bound: +Inf only
	f := parse(t, body(t, e.do("GET", "/metrics")))["osmanager_http_request_duration_seconds"]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no histogram: %v", f)
	}
	got := map[string]*dto.Histogram{}
	for _, m := range f.GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetHistogram()
	}
	for _, c := range []struct {
		handler string
		count   uint64
	}{{"page", 3}, {"api", 2}} {
		t.Run(c.handler, func(t *testing.T) {
			h := got[c.handler]
			if h == nil {
				t.Fatalf("no histogram for %s", c.handler)
			}
			if h.GetSampleCount() != c.count {
				t.Errorf("count %d, want %d", h.GetSampleCount(), c.count)
			}
			var prev uint64
			for _, b := range h.GetBucket() {
				if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > c.count {
					t.Errorf("bucket le=%v: %d after %d, count %d", b.GetUpperBound(), b.GetCumulativeCount(), prev, c.count)
				}
				prev = b.GetCumulativeCount()
			}
			if n := len(h.GetBucket()); n != len(durationBuckets)+1 { // and +Inf
				t.Errorf("%d buckets, want %d", n, len(durationBuckets)+1)
			}
		})
	}
	api := got["api"]
	if s := api.GetSampleSum(); s < 2.0003-1e-9 || s > 2.0003+1e-9 {
		t.Errorf("api sum %v, want 2.0003", s)
	}
	for _, b := range api.GetBucket() {
		want := uint64(0)
		switch {
		case math.IsInf(b.GetUpperBound(), 1):
			want = 2
		case b.GetUpperBound() >= .0005:
			want = 1 // 300 µs falls in le=0.0005
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("api le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

// TestMetricsEscaping: label values and help texts with quotes,
// backslashes, line breaks and invalid UTF-8 come out as a parser reads
// them back.
func TestMetricsEscaping(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain", "hello", "hello"},
		{"quote", `say "hi"`, `say "hi"`},
		{"backslash", `C:\dir\`, `C:\dir\`},
		{"line feed", "two\nlines", "two\nlines"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"empty", "", ""},
		{"brace and comma", `x},y="z`, `x},y="z`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &expo{}
			e.family("osm_test", "gauge", "Help with \\ and \n and \"quotes\".")
			e.sample("", 1, "app", c.in, "state", "running")
			f := parse(t, string(e.b))["osm_test"]
			if f == nil || len(f.GetMetric()) != 1 {
				t.Fatalf("no sample:\n%s", e.b)
			}
			if got := f.GetMetric()[0].GetLabel()[0].GetValue(); got != c.want {
				t.Errorf("label value %q, want %q\n%s", got, c.want, e.b)
			}
			if got, want := f.GetHelp(), "Help with \\ and \n and \"quotes\"."; got != want {
				t.Errorf("help %q, want %q", got, want)
			}
		})
	}
}

// TestMetricsFloats: values are written as Prometheus' clients write them.
func TestMetricsFloats(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {3, "3"}, {1.5, "1.5"}, {2000, "2000"}, {1.7645e9, "1.7645e+09"},
		{math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"}, {.00025, "0.00025"},
	} {
		if got := formatFloat(c.in); got != c.want {
			t.Errorf("formatFloat(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestMetricsScrapeLimit: with maxScrapes scrapes in flight, one more is
// refused with 503 instead of queueing.
func TestMetricsScrapeLimit(t *testing.T) {
	e := newEnv(t, nil)
	for range maxScrapes {
		e.srv.metrics.scrapes <- struct{}{}
	}
	if r := e.do("GET", "/metrics"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("scrape %d: %d, want 503", maxScrapes+1, r.StatusCode)
	}
	<-e.srv.metrics.scrapes
	if r := e.do("GET", "/metrics"); r.StatusCode != http.StatusOK {
		t.Errorf("with a slot free: %d, want 200", r.StatusCode)
	}
}

// FuzzMetricsLabel: any label value (an app's id, a step's name)
// round-trips through Prometheus' parser (invalid UTF-8 replaced).
func FuzzMetricsLabel(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, "\n", "\xff", `a\"b`, "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		e := &expo{}
		e.family("osm_fuzz", "counter", "A fuzzed label.")
		e.sample("", 2, "app", value)
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(e.b)))
		if err != nil {
			t.Fatalf("does not parse: %v\n%q", err, e.b)
		}
		m := fams["osm_fuzz"]
		if m == nil || len(m.GetMetric()) != 1 {
			t.Fatalf("no sample: %q", e.b)
		}
		if got, want := m.GetMetric()[0].GetLabel()[0].GetValue(), strings.ToValidUTF8(value, "\uFFFD"); got != want {
			t.Errorf("label %q, want %q", got, want)
		}
	})
}

// TestReadMemStats: the go_memstats_ figures read from runtime/metrics
// agree with runtime.ReadMemStats (which the server no longer calls: it
// stops the world and costs resident memory for good).
func TestReadMemStats(t *testing.T) {
	runtime.GC()
	got := readMemStats()
	var want runtime.MemStats
	runtime.ReadMemStats(&want)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"Sys", got.Sys, want.Sys},
		{"HeapSys", got.HeapSys, want.HeapSys},
		{"HeapAlloc", got.HeapAlloc, want.HeapAlloc},
		{"HeapInuse", got.HeapInuse, want.HeapInuse},
		{"StackSys", got.StackSys, want.StackSys},
		{"TotalAlloc", got.TotalAlloc, want.TotalAlloc},
		{"Mallocs", got.Mallocs, want.Mallocs},
		{"NextGC", got.NextGC, want.NextGC},
		{"GCSys", got.GCSys, want.GCSys},
	} {
		if f.got == 0 || f.got < f.want/2 || f.got > f.want*2 {
			t.Errorf("%s = %d, ReadMemStats says %d", f.name, f.got, f.want)
		}
	}
	if d := time.Duration(want.LastGC - got.LastGC); got.LastGC == 0 || d < 0 || d > time.Minute {
		t.Errorf("LastGC = %d, ReadMemStats says %d", got.LastGC, want.LastGC)
	}
}
