package status

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
	"osmanager/agent/state/statetest"
)

var update = flag.Bool("update", false, "rewrite testdata/status.schema")

var testStart = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

const testVersion = "osmanager 0.1.0\nwordpress: 3.5.1\n"

// testSource is a Source over a temp dir holding build/VERSION, the fixed
// testdata/proc and a fake clock.
type testSource struct {
	dir   string
	clock *clock.Fake
	state *state.Store
	src   *Source
}

// newSource builds a test Source; edit the Config in cfgFn.
func newSource(t *testing.T, cfgFn func(*Config)) *testSource {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "build/VERSION"), []byte(testVersion), 0o644); err != nil {
		t.Fatal(err)
	}
	log, _ := testlog.New(t)
	e := &testSource{dir: dir, clock: clock.NewFake(testStart), state: &state.Store{}}
	cfg := Config{
		VersionFile:  filepath.Join(dir, "build/VERSION"),
		Hostname:     "app1.example.com",
		Terminal:     Terminal{Enabled: true, Port: 8001},
		State:        e.state,
		AgentVersion: "0.1.0",
		Log:          log,
		Proc:         "testdata/proc",
		Disk:         dir,
		Interfaces: func() ([]Interface, error) {
			return []Interface{{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, Addrs: []string{"10.0.0.12/24", "fe80::5054:ff:fe12:3456/64"}}}, nil
		},
		Clock: e.clock,
	}
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.src = src
	return e
}

// doc is the document as a reader gets it.
func (e *testSource) doc(t *testing.T) string {
	t.Helper()
	b, err := e.src.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fillState gives the store one of everything, with this package's apps.
func fillState(st *state.Store) { statetest.Fill(st, testStart, testApps()) }

// testApps is an app manager's record: one app running after a restart,
// one failed for good, one installed and never started.
func testApps() state.Apps {
	return state.Apps{Cgroups: "hybrid", Apps: []state.AppView{
		{ID: "crashy", Version: "0.2.0", Desired: "running", Runs: []state.RunView{
			{RunID: 4, State: "failed", Since: testStart, Restarts: 4, LastExit: "exit 2", Reason: "start limit hit: 5 starts in 10s"}}},
		{ID: "hello", Version: "1.0.0", Desired: "running", Enabled: true, Runs: []state.RunView{
			{RunID: 3, State: "running", Since: testStart.In(time.FixedZone("CEST", 2*3600)), Restarts: 1, LastExit: "exit 1"}}},
		{ID: "idle", Version: "2.0", Desired: "stopped"},
	}}
}

// TestStatusSchema checks the document's shape against
// testdata/status.schema: every field path with its JSON type. A field
// added or renamed must be added there (and to the README's example).
func TestStatusSchema(t *testing.T) {
	e := newSource(t, nil)
	fillState(e.state)
	e.clock.Advance(90 * time.Second)
	raw := e.doc(t)
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	var got []string
	walkSchema("", doc, &got)
	sort.Strings(got)
	file, err := os.ReadFile("testdata/status.schema")
	if err != nil {
		t.Fatal(err)
	}
	want, notes := parseSchema(string(file))
	if *update {
		if err := os.WriteFile("testdata/status.schema", formatSchema(got, notes), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status schema (-testdata/status.schema +got):\n%s\ndocument:\n%s", diff, raw)
	}
	if n := notes[".application.duration:string"]; !strings.HasPrefix(n, "deprecated") {
		t.Errorf("testdata/status.schema: application.duration noted %q, want it deprecated", n)
	}

	// And the values.
	var s Status
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"schema", s.Schema, 1},
		{"hostname", s.Hostname, "app1.example.com"},
		{"version", s.Version, Version{"osmanager", "0.1.0", "wordpress", "3.5.1"}},
		{"agent uptime", s.Agent.UptimeSeconds, 90.0},
		{"uptime", s.System.UptimeSeconds, 3725.5},
		{"cpus", s.System.CPUs, 2},
		{"cpu", s.System.CPUPercent, 20.0},
		{"load", s.System.Load, [3]float64{0.25, 0.5, 0.75}},
		{"memory", s.System.Memory, Memory{2048000 * 1024, 1536000 * 1024, 25}},
		{"boot ok", s.Boot.OK, false},
		{"steps", len(s.Boot.Steps), 4},
		{"link", s.Controller.Status, state.LinkRegistered},
		{"app", s.Application.Meaning, "running"},
		{"terminal", s.Terminal, TerminalStatus{Terminal{true, 8001, false, "/"}, 1, 5, 2}},
		{"addresses", s.Addresses[0].Addrs[0], "10.0.0.12/24"},
		{"refresh", s.RefreshSeconds, 5.0},
		{"apps", s.Apps, func() state.Apps {
			a := testApps()
			a.Apps[1].Runs[0].Since = testStart // times are UTC
			a.Apps[2].Runs = []state.RunView{}  // never null
			return a
		}()},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestApplicationDurationNS: application.duration_ns is there, in
// nanoseconds like every other duration, and says what the deprecated
// application.duration says.
func TestApplicationDurationNS(t *testing.T) {
	for _, c := range []struct {
		name string
		took time.Duration
	}{
		{"milliseconds", 12 * time.Millisecond},
		{"microseconds", 1234567 * time.Nanosecond},
		{"seconds", 1500 * time.Millisecond},
		{"instant", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSource(t, nil)
			e.state.SetAppHealth(state.AppHealth{Code: 2000, Meaning: "running", Checked: testStart, Duration: c.took})
			var doc struct {
				Application map[string]json.RawMessage `json:"application"`
			}
			if err := json.Unmarshal([]byte(e.doc(t)), &doc); err != nil {
				t.Fatal(err)
			}
			rawNS, ok := doc.Application["duration_ns"]
			if !ok {
				t.Fatalf("application has no duration_ns: %s", doc.Application)
			}
			ns, err := strconv.ParseInt(string(rawNS), 10, 64)
			if err != nil {
				t.Fatalf("duration_ns = %s, not an integer", rawNS)
			}
			var text string
			if err := json.Unmarshal(doc.Application["duration"], &text); err != nil {
				t.Fatalf("application.duration: %v", err)
			}
			old, err := time.ParseDuration(text)
			if err != nil {
				t.Fatalf("application.duration = %q: %v", text, err)
			}
			if ns != int64(c.took) || ns != int64(old) {
				t.Errorf("duration_ns = %d, duration = %q (%d ns); want both %d ns", ns, text, int64(old), int64(c.took))
			}
		})
	}
	t.Run("not checked yet", func(t *testing.T) {
		raw := newSource(t, nil).doc(t)
		if !strings.Contains(raw, `"duration_ns": 0`) || strings.Contains(raw, `"duration":`) {
			t.Errorf("before the first check: want duration_ns 0 and no duration:\n%s", raw)
		}
	})
}

// parseSchema reads testdata/status.schema: one "path:type" a line, each
// maybe followed by "# note" (a deprecation, say); lines that start with
// # are comments.
func parseSchema(file string) (fields []string, notes map[string]string) {
	notes = map[string]string{}
	for line := range strings.Lines(file) {
		field, note, _ := strings.Cut(line, "#")
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		fields = append(fields, field)
		if note = strings.TrimSpace(note); note != "" {
			notes[field] = note
		}
	}
	return fields, notes
}

// formatSchema writes fields in parseSchema's format, with the header and
// the notes that fields kept.
func formatSchema(fields []string, notes map[string]string) []byte {
	var b strings.Builder
	b.WriteString("# The status document's fields (path:type), checked by TestStatusSchema;\n# go test -run TestStatusSchema -update rewrites it, keeping the notes.\n")
	for _, f := range fields {
		b.WriteString(f)
		if n := notes[f]; n != "" {
			b.WriteString("  # " + n)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// walkSchema lists "path:type" for every field of a JSON value; array
// elements are "path[]".
func walkSchema(path string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		*out = append(*out, path+":object")
		for k, c := range x {
			walkSchema(path+"."+k, c, out)
		}
	case []any:
		*out = append(*out, path+":array")
		seen := map[string]bool{}
		for _, c := range x {
			var sub []string
			walkSchema(path+"[]", c, &sub)
			for _, s := range sub {
				if !seen[s] {
					seen[s] = true
					*out = append(*out, s)
				}
			}
		}
	case string:
		*out = append(*out, path+":string")
	case float64:
		*out = append(*out, path+":number")
	case bool:
		*out = append(*out, path+":bool")
	case nil:
		*out = append(*out, path+":null")
	}
}

func TestStatusEmptyState(t *testing.T) {
	e := newSource(t, func(c *Config) {
		c.Interfaces = func() ([]Interface, error) { return nil, errors.New("netlink: permission denied") }
		c.Proc = t.TempDir() // nothing to read
		c.Terminal = Terminal{}
		c.Hostname = ""
		c.OSHostname = func() (string, error) { return "vm-1234", nil }
	})
	if err := os.Remove(filepath.Join(e.dir, "build/VERSION")); err != nil {
		t.Fatal(err)
	}
	raw := e.doc(t)
	for _, want := range []string{`"steps": []`, `"services": []`, `"apps": {
    "cgroups": "",
    "apps": []
  }`, `"addresses": []`, `"status": "disconnected"`, `"enabled": false`, `"hostname": "vm-1234"`,
		`"version1": "unknown"`, `"application": "unknown"`, `"version2": "unknown"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("status without state lacks %s:\n%s", want, raw)
		}
	}
}

// TestStatusFieldsNotSecret: no field of the document is named like a
// secret (agent/web checks that the served bytes hold no cookie).
func TestStatusFieldsNotSecret(t *testing.T) {
	e := newSource(t, nil)
	fillState(e.state)
	var doc any
	if err := json.Unmarshal([]byte(e.doc(t)), &doc); err != nil {
		t.Fatal(err)
	}
	var fields []string
	walkSchema("", doc, &fields)
	for _, f := range fields {
		name, _, _ := strings.Cut(f, ":")
		name = strings.ToLower(name[strings.LastIndex(name, ".")+1:])
		for _, bad := range []string{"key", "cookie", "passwd", "password", "hash", "secret", "token"} {
			if strings.Contains(name, bad) {
				t.Errorf("status field %s looks secret", f)
			}
		}
	}
}

// TestIdentityReread: the host name and VERSION are read at most once per
// IdentityTTL, and the same *Identity is handed out meanwhile.
func TestIdentityReread(t *testing.T) {
	reads := 0
	e := newSource(t, func(c *Config) {
		c.Hostname = ""
		c.OSHostname = func() (string, error) { reads++; return "vm-" + strconv.Itoa(reads), nil }
	})
	first := e.src.Identity(e.clock.Now())
	if again := e.src.Identity(e.clock.Now().Add(IdentityTTL - time.Nanosecond)); again != first || reads != 1 {
		t.Errorf("within the TTL: same identity %v, %d reads; want the same and 1", again == first, reads)
	}
	e.clock.Advance(IdentityTTL)
	if later := e.src.Identity(e.clock.Now()); later == first || later.Hostname != "vm-2" {
		t.Errorf("after the TTL: host %q (same identity %v), want vm-2 in a new one", later.Hostname, later == first)
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Version
	}{
		{"spec", "osmanager 0.1.0\nwordpress: 3.5.1\n", Version{"osmanager", "0.1.0", "wordpress", "3.5.1"}},
		{"crlf", "osmanager 0.1.0\r\nwordpress: 3.5.1\r\n", Version{"osmanager", "0.1.0", "wordpress", "3.5.1"}},
		{"extra spaces and fields", "  lyos   2.0  beta\n\tgitlab:   8.1 extra\n", Version{"lyos", "2.0", "gitlab", "8.1"}},
		{"empty", "", Version{Unknown, Unknown, Unknown, Unknown}},
		{"one line", "osmanager 0.1.0\n", Version{"osmanager", "0.1.0", Unknown, Unknown}},
		{"short lines", "osmanager\nwordpress:\n", Version{"osmanager", Unknown, "wordpress", Unknown}},
		{"colon only", "a b\n: 1\n", Version{"a", "b", Unknown, "1"}},
		{"no space after colon", "a b\nwordpress:3.5\n", Version{"a", "b", "wordpress:3.5", Unknown}},
		{"repo's build/VERSION", "osmanager 0.1.0\nAPPLICATION: none\n", Version{"osmanager", "0.1.0", "APPLICATION", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ParseVersion([]byte(tc.in))); diff != "" {
				t.Errorf("ParseVersion(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestVersionField(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"3.5.1", "3.5.1"}, {"1:2.3~rc1+dfsg-4", "1:2.3~rc1+dfsg-4"}, {"WordPress_x", "WordPress_x"}, {"a,b", "unknown"}, {"a b", "unknown"},
		{"", "unknown"}, {strings.Repeat("1", 64), strings.Repeat("1", 64)}, {strings.Repeat("1", 65), "unknown"},
		{"3.5<1", "unknown"}, {"ünicode", "unknown"},
	} {
		if got := VersionField(c.in); got != c.want {
			t.Errorf("VersionField(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCPUPercentIsARate(t *testing.T) {
	dir := t.TempDir()
	write := func(busy, idle int) {
		t.Helper()
		line := "cpu  " + strconv.Itoa(busy) + " 0 0 " + strconv.Itoa(idle) + " 0 0 0 0 0 0\ncpu0 0 0 0 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &sysReader{proc: dir, disk: dir}
	write(100, 900)
	s, _ := r.read(testStart)
	if s.CPUPercent != 10 {
		t.Errorf("first sample: %v%%, want 10 (since boot)", s.CPUPercent)
	}
	write(150, 950) // +50 busy, +50 idle
	s, _ = r.read(testStart.Add(time.Second / 2))
	if s.CPUPercent != 10 {
		t.Errorf("half a second later: %v%%, want the last rate (10)", s.CPUPercent)
	}
	s, _ = r.read(testStart.Add(2 * time.Second))
	if s.CPUPercent != 50 {
		t.Errorf("two seconds later: %v%%, want 50", s.CPUPercent)
	}
}

// TestStatusStats: the app monitor's figures are in the document once it
// has sampled, with empty lists as [], and absent before.
func TestStatusStats(t *testing.T) {
	e := newSource(t, nil)
	if raw := e.doc(t); strings.Contains(raw, `"stats"`) {
		t.Errorf("stats before a sample:\n%s", raw)
	}
	e.state.UpdateStats(func(s *state.Stats) bool {
		s.Time, s.Interval, s.Window = testStart.Add(1500*time.Microsecond), 1, 10
		s.Apps = []state.AppStats{{ID: "hello", Figures: state.Figures{CPUPercent: 12.5, MemoryBytes: 1 << 20}, Runs: []state.RunStats{{RunID: 7, Source: "cgroup"}}}}
		return false
	})
	st := e.src.Status()
	if st.Stats == nil || len(st.Stats.Apps) != 1 || st.Stats.Alerts == nil || !st.Stats.Time.Equal(testStart.Add(2*time.Millisecond)) {
		t.Fatalf("stats in the document: %+v", st.Stats)
	}
	for _, want := range []string{`"stats": {`, `"cpu_percent": 12.5`, `"memory_bytes": 1048576`, `"source": "cgroup"`, `"alerts": []`} {
		if raw := e.doc(t); !strings.Contains(raw, want) {
			t.Errorf("document lacks %s", want)
		}
	}
}
