package web

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/state"
	"osmanager/agent/state/statetest"
	"osmanager/agent/status"
)

// fillState gives the store one of everything, with this package's apps.
func fillState(st *state.Store) { statetest.Fill(st, testStart, testApps()) }

// testApps is an app manager's record: one app running after a restart
// (with an older run that exited), one failed for good, one installed and
// never started.
func testApps() state.Apps {
	return state.Apps{Cgroups: "hybrid", Apps: []state.AppView{
		{ID: "crashy", Version: "0.2.0", Desired: "running", Runs: []state.RunView{
			{RunID: 4, State: "failed", Since: testStart, Restarts: 4, LastExit: "exit 2", Reason: "start limit hit: 5 starts in 10s"}}},
		{ID: "hello", Version: "1.0.0", Desired: "running", Enabled: true, Runs: []state.RunView{
			{RunID: 1, State: "exited", Since: testStart, Restarts: 2, LastExit: "signal TERM"},
			{RunID: 3, State: "running", Since: testStart, Restarts: 1, LastExit: "exit 1"}}},
		{ID: "idle", Version: "2.0", Desired: "stopped"},
	}}
}

// TestStatusServed: GET /api/v1/status is the status source's document,
// byte for byte, as JSON that no cache keeps; HEAD has no body. (The
// document's shape and values are agent/status's tests.)
func TestStatusServed(t *testing.T) {
	e := newEnv(t, nil)
	fillState(e.state)
	e.clock.Advance(90 * time.Second)
	r := e.do("GET", "/api/v1/status")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /api/v1/status: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
	got := body(t, r)
	want, err := e.src.JSON()
	if err != nil {
		t.Fatal(err)
	}
	// The same but for the disk's figures, which are the real file
	// system's and move between two reads.
	sameDoc := func(a, b string) bool {
		var x, y status.Status
		if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
			return false
		}
		x.System.Disk, y.System.Disk = status.Disk{}, status.Disk{}
		return cmp.Equal(x, y) && strings.Count(a, "\n") == strings.Count(b, "\n")
	}
	if !sameDoc(got, string(want)) {
		t.Errorf("GET /api/v1/status:\n%s\nwant the source's document:\n%s", got, want)
	}
	if !strings.Contains(got, `"uptime_seconds": 90`) || !strings.Contains(got, `"hostname": "app1.example.com"`) {
		t.Errorf("document lacks the agent's uptime or the host name:\n%s", got)
	}
	if r := e.do("HEAD", "/api/v1/status"); r.StatusCode != 200 || body(t, r) != "" {
		t.Errorf("HEAD /api/v1/status: %d", r.StatusCode)
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
	e.clock.Advance(status.IdentityTTL)
	if got := body(t, e.do("GET", "/")); got != "wordpress 0.1.0 3.5.1 app1.example.com" {
		t.Errorf("page after VERSION appeared = %q", got)
	}
}
