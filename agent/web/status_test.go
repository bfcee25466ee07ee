package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// getStatus fetches the document and decodes it.
func getStatus(t *testing.T, e *testEnv, hdr ...string) (*http.Response, string, status.Status) {
	t.Helper()
	r := e.do("GET", "/api/v1/status", hdr...)
	b := body(t, r)
	var st status.Status
	if r.StatusCode == 200 {
		if err := json.Unmarshal([]byte(b), &st); err != nil {
			t.Fatalf("document: %v\n%s", err, b)
		}
	}
	return r, b, st
}

// TestStatusFreshness: the document is built at most once a second and
// shared, but a change to the state shows at once, and cpu_percent moves
// each second.
func TestStatusFreshness(t *testing.T) {
	proc := t.TempDir()
	for _, n := range []string{"uptime", "loadavg", "meminfo", "stat"} {
		b, err := os.ReadFile(filepath.Join("../status/testdata/proc", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setStat := func(busy, idle int) {
		t.Helper()
		line := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n", busy, idle)
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setStat(1000, 3000) // 25 % since boot
	e := newEnv(t, func(c *envConfig) { c.Src.Proc = proc })
	var builds atomic.Int64
	e.srv.hooks.status = func() { builds.Add(1) }
	step := func(want int64, what string) {
		t.Helper()
		if got := builds.Load(); got != want {
			t.Errorf("%s: %d builds, want %d", what, got, want)
		}
	}

	_, first, st := getStatus(t, e)
	step(1, "first request")
	if st.System.CPUPercent != 25 {
		t.Errorf("cpu_percent = %v, want 25 (since boot)", st.System.CPUPercent)
	}
	setStat(1000+100, 3000+100) // 50 % from here
	e.clock.Advance(statusTTL - time.Millisecond)
	_, again, st := getStatus(t, e)
	step(1, "within the second")
	if again != first {
		t.Errorf("within the second the document changed:\n%s\nwant\n%s", again, first)
	}

	e.state.UpdateService("webssh", func(s *state.Service) { s.Status = state.ServiceBackoff })
	_, _, st = getStatus(t, e)
	step(2, "after a state change")
	if len(st.Services) != 1 || st.Services[0].Name != "webssh" || st.Services[0].Status != state.ServiceBackoff {
		t.Errorf("after a state change, services = %+v, want webssh in backoff", st.Services)
	}
	if st.System.CPUPercent != 25 {
		t.Errorf("cpu_percent after 999 ms = %v, want 25 still (measured over a second at least)", st.System.CPUPercent)
	}

	e.clock.Advance(time.Millisecond)
	_, _, st = getStatus(t, e)
	step(3, "a second after the first build, 1 ms after the last")
	if st.System.CPUPercent != 50 {
		t.Errorf("cpu_percent a second later = %v, want 50", st.System.CPUPercent)
	}
	if want := testStart.Add(statusTTL); !st.Time.Equal(want) {
		t.Errorf("time = %v, want %v", st.Time, want)
	}
	// An unchanged write to the state is no change: the document is kept.
	e.state.UpdateService("webssh", func(s *state.Service) { s.Status = state.ServiceBackoff })
	getStatus(t, e)
	step(3, "after a write that changed nothing")
}

// TestStatusConditional: the document's ETag answers If-None-Match with
// 304 while it stands, and no longer once it changed; HEAD has the length.
func TestStatusConditional(t *testing.T) {
	e := newEnv(t, nil)
	r, doc, _ := getStatus(t, e)
	etag := r.Header.Get("Etag")
	if etag == "" || r.Header.Get("Content-Length") != strconv.Itoa(len(doc)) {
		t.Fatalf("ETag %q, Content-Length %q (body %d bytes)", etag, r.Header.Get("Content-Length"), len(doc))
	}
	if r := e.do("HEAD", "/api/v1/status"); r.Header.Get("Content-Length") != strconv.Itoa(len(doc)) || r.Header.Get("Etag") != etag {
		t.Errorf("HEAD: Content-Length %q, ETag %q", r.Header.Get("Content-Length"), r.Header.Get("Etag"))
	}
	cases := []struct {
		name    string
		change  func()
		inm     string
		code    int
		newETag bool
	}{
		{"same document", func() {}, etag, http.StatusNotModified, false},
		{"weak and listed", func() {}, `"x", W/` + etag, http.StatusNotModified, false},
		{"other tag", func() {}, `"x"`, http.StatusOK, false},
		{"state changed", func() { e.state.SetAppHealth(state.AppHealth{Code: 2001}) }, etag, http.StatusOK, true},
		{"a second later", func() { e.clock.Advance(statusTTL) }, "", http.StatusOK, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.change()
			hdr := []string{}
			if c.inm != "" {
				hdr = []string{"If-None-Match", c.inm}
			}
			r := e.do("GET", "/api/v1/status", hdr...)
			b := body(t, r)
			if r.StatusCode != c.code {
				t.Fatalf("status %d, want %d", r.StatusCode, c.code)
			}
			if c.code == http.StatusNotModified && b != "" {
				t.Errorf("304 with a body: %q", b)
			}
			if got := r.Header.Get("Etag"); (got != etag) != c.newETag {
				t.Errorf("ETag %q (first %q), want a new one: %v", got, etag, c.newETag)
			}
			etag = r.Header.Get("Etag")
		})
	}
}

// TestStatusConcurrent: requests at once share one build; requests racing
// with state changes each get a whole document, and once the changes end
// the next request shows the last one (run with -race).
func TestStatusConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	var builds atomic.Int64
	e.srv.hooks.status = func() { builds.Add(1) }
	bodies := burst(t, e, 32, "/api/v1/status")
	for i, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("body %d differs from body 0", i)
		}
	}
	if got := builds.Load(); got != 1 {
		t.Errorf("32 requests at once: %d builds, want 1", got)
	}

	const changes = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				w := httptest.NewRecorder()
				e.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/status", nil))
				var st status.Status
				if err := json.Unmarshal(w.Body.Bytes(), &st); w.Code != 200 || err != nil {
					t.Errorf("during changes: %d, %v", w.Code, err)
					return
				}
			}
		})
	}
	for i := 1; i <= changes; i++ {
		e.state.UpdateTerminal(func(tm *state.Terminal) { tm.Sessions = i })
	}
	close(done)
	wg.Wait()
	if _, _, st := getStatus(t, e); st.Terminal.Sessions != changes {
		t.Errorf("after the changes terminal.sessions = %d, want %d", st.Terminal.Sessions, changes)
	}
}

// TestStatusStaleWhileBuilding: once the document is a second old, the
// request that notices builds the next one, and requests meanwhile get
// the old one without waiting; a change of the state is never served
// stale.
func TestStatusStaleWhileBuilding(t *testing.T) {
	e := newEnv(t, nil)
	var block atomic.Bool
	building, release := make(chan struct{}), make(chan struct{})
	e.srv.hooks.status = func() {
		if block.Load() {
			building <- struct{}{}
			<-release
		}
	}
	_, first, _ := getStatus(t, e)
	e.clock.Advance(statusTTL)
	block.Store(true)
	next := make(chan string, 1)
	go func() {
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/status", nil))
		next <- w.Body.String()
	}()
	<-building
	if _, during, _ := getStatus(t, e); during != first {
		t.Errorf("during the build: a document other than the old one:\n%s\nwant\n%s", during, first)
	}
	close(release)
	built := <-next
	block.Store(false)
	if built == first {
		t.Error("the request that built got the old document")
	}
	if _, after, _ := getStatus(t, e); after != built {
		t.Errorf("after the build:\n%s\nwant the new one\n%s", after, built)
	}
	e.clock.Advance(statusTTL)
	e.state.SetAppHealth(state.AppHealth{Code: 2001})
	if _, _, st := getStatus(t, e); st.Application.Code != 2001 {
		t.Errorf("a second later with a state change: application code %d, want 2001 (never stale)", st.Application.Code)
	}
}
