package web

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"osmanager/agent/state"
)

// fillStats puts the monitor's figures of two apps, the system and two
// raised alerts into st.
func fillStats(st *state.Store) {
	st.UpdateStats(func(s *state.Stats) bool {
		*s = state.Stats{Time: testStart, Interval: 1, Window: 10,
			System: state.SystemStats{CPUPercent: 25, MemoryUsed: 1 << 30, MemoryTotal: 4 << 30, MemoryPercent: 25, DiskPath: "/", DiskUsed: 10 << 30, DiskTotal: 40 << 30, DiskPercent: 25,
				Net: []state.NetStats{{Name: "eth0", RxRate: 1500, TxRate: 300}}},
			Apps: []state.AppStats{
				{ID: "hello", Figures: state.Figures{CPUPercent: 12.5, MemoryBytes: 50 << 20, MemoryPeak: 64 << 20, Pids: 3, IOBytes: 4096, IORate: 2048}, DiskBytes: 5 << 20, DiskChecked: testStart,
					Runs: []state.RunStats{{RunID: 7, Source: "cgroup"}, {RunID: 9, Source: "cgroup"}}},
				{ID: "web", Runs: []state.RunStats{{RunID: 8, Source: "cgroup", Error: "cgroup gone"}}},
			},
			Alerts: []state.AlertView{{Metric: "cpu", Value: 95, Threshold: 90, Since: testStart}, {ID: "hello", Metric: "memory", Value: 50 << 20, Threshold: 40 << 20, Since: testStart.Add(time.Second)}},
		}
		return true
	})
}

func TestMetricsStats(t *testing.T) {
	e := newEnv(t, nil)
	fillState(e.state)
	fillStats(e.state)
	text := body(t, e.do("GET", "/metrics"))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(text)); err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	for _, want := range []string{
		`osmanager_app_cpu_percent{app="hello"} 12.5`,
		`osmanager_app_memory_bytes{app="hello"} 5.24288e+07`,
		`osmanager_app_memory_peak_bytes{app="hello"} 6.7108864e+07`,
		`osmanager_app_pids{app="hello"} 3`,
		`osmanager_app_io_bytes_per_second{app="hello"} 2048`,
		`osmanager_app_io_bytes{app="hello"} 4096`,
		`osmanager_app_disk_bytes{app="hello"} 5.24288e+06`,
		`osmanager_app_cpu_percent{app="web"} 0`,
		`osmanager_alert_raised{app="",metric="cpu"} 1`,
		`osmanager_alert_raised{app="hello",metric="memory"} 1`,
		`osmanager_system_cpu_percent 25`,
		`osmanager_system_network_bytes_per_second{direction="rx",interface="eth0"} 1500`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no sample %s", want)
		}
	}
	for _, bad := range []string{"runid", `osmanager_app_disk_bytes{app="web"}`} {
		if strings.Contains(text, bad) {
			t.Errorf("exposition holds %q", bad)
		}
	}
}

// TestMetricsNoStats: before the monitor's first sample, no family of it.
func TestMetricsNoStats(t *testing.T) {
	e := newEnv(t, nil)
	text := body(t, e.do("GET", "/metrics"))
	if strings.Contains(text, "osmanager_app_cpu_percent") || strings.Contains(text, "osmanager_system_cpu_percent") {
		t.Errorf("monitor families without a sample:\n%s", text)
	}
}
