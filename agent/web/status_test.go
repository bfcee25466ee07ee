package web

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

	"osmanager/agent/state"
)

var update = flag.Bool("update", false, "rewrite testdata/status.schema")

// fillState gives the store one of everything.
func fillState(st *state.Store) {
	st.SetStep(state.Step{Name: "floppy", Status: state.StepOK, Started: testStart, Duration: 325 * time.Microsecond, Note: "read 633 bytes from /dev/fd0"})
	st.SetStep(state.Step{Name: "password", Status: state.StepOK, Started: testStart, Duration: 3 * time.Millisecond, Changed: []string{"/etc/shadow"}})
	st.SetStep(state.Step{Name: "network", Status: state.StepSkipped, Started: testStart, Duration: 2 * time.Microsecond, Note: "--no-network"})
	st.SetStep(state.Step{Name: "script", Status: state.StepFailed, Started: testStart, Duration: 1500 * time.Millisecond, Error: "exit status 3"})
	st.UpdateService("clc", func(s *state.Service) { s.Status, s.Since = state.ServiceRunning, testStart })
	st.UpdateService("webssh", func(s *state.Service) {
		s.Status, s.Since, s.Restarts, s.LastError, s.NextStart = state.ServiceBackoff, testStart, 2, "listen :8001: address in use", testStart.Add(4*time.Second)
	})
	st.UpdateLink(func(l *state.Link) {
		l.Status, l.Since, l.Controller, l.Reconnects = state.LinkRegistered, testStart, "10.0.0.1:1369", 3
		l.LastReport = &state.Report{Value: 2000, At: testStart}
	})
	st.SetApp(state.App{Code: 2000, Meaning: "running", Checked: testStart, Duration: "12ms"})
	st.UpdateTerminal(func(t *state.Terminal) { t.Active, t.Sessions, t.LoginFailures = 1, 5, 2 })
}

// TestStatusSchema checks the document's shape against
// testdata/status.schema: every field path with its JSON type. A field
// added or renamed must be added there (and to the README's example).
func TestStatusSchema(t *testing.T) {
	e := newEnv(t, nil)
	fillState(e.state)
	e.clock.Advance(90 * time.Second)
	r := e.do("GET", "/api/v1/status")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /api/v1/status: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
	raw := body(t, r)
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	var got []string
	walkSchema("", doc, &got)
	sort.Strings(got)
	if *update {
		if err := os.WriteFile("testdata/status.schema", []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/status.schema")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Fields(string(want)), got); diff != "" {
		t.Errorf("status schema (-testdata/status.schema +got):\n%s\ndocument:\n%s", diff, raw)
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
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	if r := e.do("HEAD", "/api/v1/status"); r.StatusCode != 200 || body(t, r) != "" {
		t.Errorf("HEAD /api/v1/status: %d", r.StatusCode)
	}
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
	e := newEnv(t, func(c *Config) {
		c.Interfaces = func() ([]Interface, error) { return nil, errors.New("netlink: permission denied") }
		c.Proc = t.TempDir() // nothing to read
		c.Terminal = Terminal{}
		c.Hostname = ""
		c.OSHostname = func() (string, error) { return "vm-1234", nil }
	})
	if err := os.Remove(filepath.Join(e.dir, "build/VERSION")); err != nil {
		t.Fatal(err)
	}
	raw := body(t, e.do("GET", "/api/v1/status"))
	for _, want := range []string{`"steps": []`, `"services": []`, `"addresses": []`, `"status": "disconnected"`, `"enabled": false`, `"hostname": "vm-1234"`,
		`"version1": "unknown"`, `"application": "unknown"`, `"version2": "unknown"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("status without state lacks %s:\n%s", want, raw)
		}
	}
}

// TestStatusHoldsNoSecret: the cookie gates the owner's pages, so neither
// the API nor the metrics may hand it out; nor the KEY or a password hash
// the state might have picked up.
func TestStatusHoldsNoSecret(t *testing.T) {
	e := newEnv(t, nil)
	fillState(e.state)
	for _, target := range []string{"/api/v1/status", "/metrics", "/"} {
		b := body(t, e.do("GET", target))
		if strings.Contains(b, testCookie) || strings.Contains(b, "9b6f2c1e") {
			t.Errorf("GET %s shows the cookie", target)
		}
	}
	// No field of the document is named like a secret.
	var doc any
	if err := json.Unmarshal([]byte(body(t, e.do("GET", "/api/v1/status"))), &doc); err != nil {
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

func TestMissingVersionFile(t *testing.T) {
	e := newEnv(t, nil)
	if err := os.Remove(filepath.Join(e.dir, "build/VERSION")); err != nil {
		t.Fatal(err)
	}
	e.write("custom/www/nocookie/index.html", "$application $version1 $version2 ${hostname}")
	if got := body(t, e.do("GET", "/")); got != "unknown unknown unknown app1.example.com" {
		t.Errorf("page without VERSION = %q", got)
	}
	// It appears later: picked up within a second.
	e.write("build/VERSION", testVersion)
	e.clock.Advance(varsTTL)
	if got := body(t, e.do("GET", "/")); got != "wordpress 0.1.0 3.5.1 app1.example.com" {
		t.Errorf("page after VERSION appeared = %q", got)
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
