package pack

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"512", 512, ""},
		{"64K", 64 << 10, ""},
		{"256M", 256 << 20, ""},
		{"256MiB", 256 << 20, ""},
		{"256mb", 256 << 20, ""},
		{"1.5G", 3 << 29, ""},
		{"2T", 2 << 40, ""},
		{" 10 M ", 10 << 20, ""},
		{"100B", 100, ""},
		{"", 0, "want a number"},
		{"M", 0, "want a number"},
		{"-1M", 0, "want a number"},
		{"1e3", 0, "want a number"},
		{"0x10", 0, "want a number"},
		{"12Q", 0, `unknown unit "Q"`},
		{"256MM", 0, "unknown unit"},
		{"NaN", 0, "unknown unit"},
		{"99999999999T", 0, "too large"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestManifestLimitsAndAlerts(t *testing.T) {
	base := `"id": "hello", "version": "1.0.0", "exec": "bin/hello"`
	m, err := ParseManifest([]byte(`{` + base + `, "limits": {"memory": "256M", "cpu": 0.5, "pids": 128, "soft": true},
		"alerts": {"cpu": {"above": 80, "for": "30s"}, "memory": {"above": "200M", "for": "10s"}, "pids": {"above": 100}}}`))
	if err != nil {
		t.Fatal(err)
	}
	wantL := &ResourceLimits{Memory: 256 << 20, CPU: 0.5, Pids: 128, Soft: true}
	if d := cmp.Diff(wantL, m.Limits); d != "" {
		t.Errorf("limits (-want +got):\n%s", d)
	}
	wantA := Alerts{
		"cpu":    {Above: Threshold{Value: 80}, For: Duration(30 * time.Second)},
		"memory": {Above: Threshold{Value: 200 << 20, Sized: true}, For: Duration(10 * time.Second)},
		"pids":   {Above: Threshold{Value: 100}},
	}
	if d := cmp.Diff(wantA, m.Alerts); d != "" {
		t.Errorf("alerts (-want +got):\n%s", d)
	}
	m, err = ParseManifest([]byte(`{` + base + `, "limits": {"memory": 268435456}}`))
	if err != nil || m.Limits.Memory != 256<<20 {
		t.Errorf("memory as a number: %+v, %v", m, err)
	}

	for _, tc := range []struct{ name, json, want string }{
		{"limit unparsable", `"limits": {"memory": "lots"}`, `"limits.memory": size "lots": unknown unit`},
		{"limit unit unknown", `"limits": {"memory": "256Q"}`, `unknown unit "Q"`},
		{"limit memory tiny", `"limits": {"memory": "256"}`, `"limits.memory" 256 bytes: want at least 1M`},
		{"limit memory negative", `"limits": {"memory": "-5M"}`, `want a number`},
		{"limit cpu negative", `"limits": {"cpu": -1}`, `"limits.cpu" -1`},
		{"limit cpu too small", `"limits": {"cpu": 0.001}`, `"limits.cpu" 0.001: want at least 0.01`},
		{"limit cpu string", `"limits": {"cpu": "half"}`, `"limits.cpu"`},
		{"limit pids negative", `"limits": {"pids": -3}`, `"limits.pids" -3`},
		{"limit pids fraction", `"limits": {"pids": 1.5}`, `"limits.pids"`},
		{"limits empty", `"limits": {"soft": true}`, `"limits": no memory, cpu or pids given`},
		{"limit unknown key", `"limits": {"memroy": "1G"}`, `unknown key "limits.memroy"`},
		{"alert unknown metric", `"alerts": {"temperature": {"above": 80}}`, `"alerts.temperature": unknown metric "temperature"`},
		{"alert system metric on app", `"alerts": {"net:eth0": {"above": 80}}`, `unknown metric "net:eth0"`},
		{"alert unknown key", `"alerts": {"cpu": {"above": 80, "fro": "1s"}}`, `unknown key "alerts.cpu.fro"`},
		{"alert twice", `"alerts": {"cpu": {"above": 80}, "cpu": {"above": 90}}`, `"alerts.cpu" given twice`},
		{"alert bad hold", `"alerts": {"cpu": {"above": 80, "for": "soon"}}`, `not a duration`},
		{"alert negative hold", `"alerts": {"cpu": {"above": 80, "for": "-1s"}}`, `"for" -1s`},
		{"alert bad threshold", `"alerts": {"memory": {"above": "much"}}`, `alert "memory": size "much": unknown unit`},
		{"alert threshold object", `"alerts": {"memory": {"above": {}}}`, `alert "memory": want a number`},
		{"alert negative threshold", `"alerts": {"cpu": {"above": -5}}`, `want a number at least 0`},
		{"alert percent on bytes", `"alerts": {"memory": {"above": "50%"}}`, `a percentage does not fit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(`{` + base + `, ` + tc.json + `}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one with %q", err, tc.want)
			}
		})
	}
}

func TestParseAlertFile(t *testing.T) {
	f, err := ParseAlertFile([]byte(`{"system": {"cpu": {"above": 90, "for": "1m"}, "memory": {"above": "95%"}, "disk": {"above": "20G"}, "net:eth0": {"above": "10M", "for": "5s"}},
		"apps": {"hello": {"memory": {"above": "100M"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.System) != 4 || f.System["memory"].Above != (Threshold{Value: 95, Percent: true}) || f.System["net:eth0"].Above.Value != 10<<20 {
		t.Errorf("system rules: %+v", f.System)
	}
	if f.Apps["hello"]["memory"].Above.Value != 100<<20 {
		t.Errorf("app rules: %+v", f.Apps)
	}

	t.Run("bad entries dropped, good kept", func(t *testing.T) {
		f, err := ParseAlertFile([]byte(`{"system": {"cpu": {"above": 90}, "load": {"above": 3}, "net:a/b": {"above": 1}, "memory": {"above": 150}},
			"apps": {"hello": {"cpu": {"above": 50}, "heat": {"above": 1}}, "Bad": {"cpu": {"above": 1}}}}`))
		for _, want := range []string{`"system.load": unknown system metric`, `"system.net:a/b": unknown system metric`, `"system.memory": 150: a percentage is at most 100`,
			`"apps.hello.heat": unknown metric "heat"`, `"apps.Bad": not an app id`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v; want it to hold %q", err, want)
			}
		}
		if _, ok := f.System["cpu"]; !ok || len(f.System) != 1 {
			t.Errorf("system rules kept: %+v; want cpu only", f.System)
		}
		if _, ok := f.Apps["hello"]["cpu"]; !ok || len(f.Apps) != 1 || len(f.Apps["hello"]) != 1 {
			t.Errorf("app rules kept: %+v; want hello.cpu only", f.Apps)
		}
	})
	for _, tc := range []struct{ name, json, want string }{
		{"not json", `alerts`, "not valid JSON"},
		{"unknown top key", `{"sytem": {}}`, `unknown key "sytem"`},
		{"unknown rule key", `{"system": {"cpu": {"abvoe": 1}}}`, `unknown key "system.cpu.abvoe"`},
		{"trailing", `{} {}`, "data after the JSON object"},
		{"too large", `{"system": {}}` + strings.Repeat(" ", MaxAlertFile), "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAlertFile([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one with %q", err, tc.want)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "256M", "1.5G", "12Q", "", "-1", "9e99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, a negative size", s, n)
		}
	})
}

func FuzzParseAlertFile(f *testing.F) {
	f.Add([]byte(`{"system": {"cpu": {"above": 90, "for": "1m"}, "net:eth0": {"above": "10M"}}, "apps": {"a": {"memory": {"above": "1G"}}}}`))
	f.Add([]byte(`{"system": {"memory": {"above": "95%"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		af, err := ParseAlertFile(data)
		if err != nil {
			return
		}
		if err := CheckSystemAlerts(af.System, "system"); err != nil {
			t.Fatalf("accepted system rules fail their check: %v", err)
		}
		for id, a := range af.Apps {
			if err := CheckAppAlerts(a, "apps."+id); err != nil {
				t.Fatalf("accepted app rules fail their check: %v", err)
			}
		}
	})
}
