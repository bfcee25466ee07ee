package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
	"osmanager/agent/status"
)

// testEnv is a LuoYun dir in a temp dir with a server over it.
type testEnv struct {
	t     testing.TB
	dir   string // the LuoYun root
	www   string
	clock *clock.Fake
	state *state.Store
	src   *status.Source
	srv   *Server
	cfg   envConfig
}

// envConfig is what a test may change before the server is built: the
// server's Config and its status source's.
type envConfig struct {
	Config
	Src status.Config
}

const (
	testCookie  = "9b6f2c1e-cookie+/=&x"
	testVersion = "osmanager 0.1.0\nwordpress: 3.5.1\n"
)

var testStart = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// newEnv builds a test environment; edit the Config in cfgFn.
func newEnv(t testing.TB, cfgFn func(*envConfig)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, www: filepath.Join(dir, "custom/www"), clock: clock.NewFake(testStart), state: &state.Store{}}
	for _, d := range []string{"custom/www/nocookie", "custom/www/withcookie", "build"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.write("build/VERSION", testVersion)
	log, _ := testlog.New(t)
	e.cfg = envConfig{
		Config: Config{
			Addr:     "127.0.0.1:0",
			WWW:      e.www,
			Cookie:   testCookie,
			State:    e.state,
			Log:      log,
			Clock:    e.clock,
			Location: time.UTC,
		},
		Src: status.Config{
			VersionFile:  filepath.Join(dir, "build/VERSION"),
			Hostname:     "app1.example.com",
			Terminal:     status.Terminal{Enabled: true, Port: 8001},
			State:        e.state,
			AgentVersion: "0.1.0",
			Log:          log,
			Proc:         "../status/testdata/proc", // the status package's fixed /proc
			Disk:         dir,
			Interfaces: func() ([]status.Interface, error) {
				return []status.Interface{{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, Addrs: []string{"10.0.0.12/24", "fe80::5054:ff:fe12:3456/64"}}}, nil
			},
			Clock: e.clock,
		},
	}
	if cfgFn != nil {
		cfgFn(&e.cfg)
	}
	src, err := status.New(e.cfg.Src)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Status = src
	srv, err := New(e.cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.src, e.srv = src, srv
	return e
}

// write puts a file under the LuoYun root.
func (e *testEnv) write(name, body string) {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// do runs one request through the handler.
func (e *testEnv) do(method, target string, hdr ...string) *http.Response {
	e.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// run starts Run and returns the bound address; the server stops when the
// test ends, and the test fails if Run does not return nil.
func (e *testEnv) run() (addr string, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	srv := e.srv
	srv.cfg.OnListen = func(a net.Addr) { listening <- a }
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var a net.Addr
	select {
	case a = <-listening:
	case err := <-done:
		e.t.Fatalf("Run: %v", err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			e.t.Error("Run did not return after cancel")
		}
	}
	e.t.Cleanup(stop)
	return a.String(), stop
}
