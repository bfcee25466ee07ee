package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"osmanager/agent/api/apitest"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/paths"
)

type statusDoc struct{}

func (statusDoc) JSON() ([]byte, error) {
	return []byte("{\n  \"agent\": {\"version\": \"1.2.3\"}\n}\n"), nil
}

// testDir is a short (sun_path is 108 bytes), world-searchable dir.
func testDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve runs a Server for the test and returns its socket; the cleanup
// stops it and checks that the socket is gone.
func serve(t *testing.T, cfg Config) (string, *logBuf) {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(testDir(t), "osm.sock")
	}
	if cfg.Apps == nil {
		cfg.Apps = &apitest.Fake{}
	}
	if cfg.Status == nil {
		cfg.Status = statusDoc{}
	}
	lb := &logBuf{t: t}
	cfg.Log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if _, err := os.Lstat(cfg.Socket); !os.IsNotExist(err) {
			t.Errorf("socket left behind after Run: %v", err)
		}
	})
	waitFor(t, func() bool {
		c, err := net.Dial("unix", cfg.Socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, done)
	return cfg.Socket, lb
}

func waitFor(t *testing.T, ok func() bool, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

func httpClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func do(t *testing.T, hc *http.Client, method, path, ctype string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://x"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// noLength hides a body's length, so it is sent chunked.
type noLength struct{ io.Reader }

func TestRoutes(t *testing.T) {
	sock, _ := serve(t, Config{MaxArchive: 1024})
	hc := httpClient(sock)
	type tc struct {
		name, method, path, ctype string
		body                      io.Reader
		status                    int
		code                      string // the error code, "" for success
		want                      string // in the body
	}
	cases := []tc{
		{"install body", "POST", "/v1/apps?sha256=ab&force=1", "application/x-tar", strings.NewReader("tar"), 201, "", `"id": "hello"`},
		{"install gzip", "POST", "/v1/apps", "application/gzip", strings.NewReader("tgz"), 201, "", `"version": "1.0.0"`},
		{"install url", "POST", "/v1/apps", "application/json", strings.NewReader(`{"url":"https://x/a.tar","sha256":"ab"}`), 201, "", `"id": "hello"`},
		{"install url missing", "POST", "/v1/apps", "application/json", strings.NewReader(`{"sha256":"ab"}`), 400, "bad_request", `\"url\" is required`},
		{"install malformed json", "POST", "/v1/apps", "application/json", strings.NewReader(`{"url":`), 400, "bad_request", "malformed JSON"},
		{"install trailing json", "POST", "/v1/apps", "application/json", strings.NewReader(`{"url":"u"} {}`), 400, "bad_request", "data after"},
		{"install unknown key", "POST", "/v1/apps", "application/json", strings.NewReader(`{"url":"u","sha":"x"}`), 400, "bad_request", `unknown field \"sha\"`},
		{"install json over cap", "POST", "/v1/apps", "application/json", strings.NewReader(`{"url":"` + strings.Repeat("a", MaxJSON) + `"}`), 413, "too_large", "over 65536"},
		{"install body over cap", "POST", "/v1/apps", "application/octet-stream", strings.NewReader(strings.Repeat("a", 2048)), 413, "too_large", "over the cap"},
		{"install chunked over cap", "POST", "/v1/apps", "application/octet-stream", noLength{strings.NewReader(strings.Repeat("a", 2048))}, 413, "too_large", "over 1024"},
		{"install empty", "POST", "/v1/apps", "application/octet-stream", strings.NewReader(""), 400, "bad_request", "empty body"},
		{"install no type", "POST", "/v1/apps", "", strings.NewReader("x"), 400, "bad_request", "Content-Type"},
		{"install form type", "POST", "/v1/apps", "application/x-www-form-urlencoded", strings.NewReader("x"), 400, "bad_request", "want application/json"},
		{"install bad force", "POST", "/v1/apps?force=yes", "application/x-tar", strings.NewReader("x"), 400, "bad_request", "force="},
		{"install unknown query", "POST", "/v1/apps?forse=1", "application/x-tar", strings.NewReader("x"), 400, "bad_request", "unknown query parameter"},
		{"list", "GET", "/v1/apps", "", nil, 200, "", `"id": "web"`},
		{"stats", "GET", "/v1/stats", "", nil, 200, "", `"error": "cgroup gone"`},
		{"stats of an app", "GET", "/v1/stats?id=hello", "", nil, 200, "", `"memory_peak_bytes": 67108864`},
		{"stats unknown", "GET", "/v1/stats?id=404", "", nil, 404, "not_found", "no run 404"},
		{"stats bad id", "GET", "/v1/stats?id=a/b", "", nil, 400, "bad_request", "bad id"},
		{"stats unknown query", "GET", "/v1/stats?app=x", "", nil, 400, "bad_request", "unknown query parameter"},
		{"stats post", "POST", "/v1/stats", "", nil, 405, "bad_request", "not allowed"},
		{"detail", "GET", "/v1/apps/hello", "", nil, 200, "", `"runid": 7`},
		{"detail bad id", "GET", "/v1/apps/Hello", "", nil, 400, "bad_request", "bad app id"},
		{"uninstall", "DELETE", "/v1/apps/hello?purge=1", "", nil, 200, "", `"purged": true`},
		{"start", "POST", "/v1/apps/hello/start", "", nil, 201, "", `"runid": 8`},
		{"start existing", "POST", "/v1/apps/single/start", "", nil, 200, "", `"existing": true`},
		{"once", "POST", "/v1/apps/hello/once", "", nil, 201, "", `"state": "starting"`},
		{"rollback", "POST", "/v1/apps/hello/rollback", "", nil, 200, "", `"id": "hello"`},
		{"enable", "POST", "/v1/apps/hello/enable", "", nil, 200, "", `"enabled": true`},
		{"disable", "POST", "/v1/apps/hello/disable", "", nil, 200, "", `"enabled": false`},
		{"logs", "GET", "/v1/apps/hello/logs?n=5", "", nil, 200, "", "one\ntwo\n"},
		{"logs bad n", "GET", "/v1/apps/hello/logs?n=-1", "", nil, 400, "bad_request", "n="},
		{"logs not found", "GET", "/v1/apps/not_found/logs", "", nil, 404, "not_found", "fake not_found"},
		{"runs", "GET", "/v1/runs", "", nil, 200, "", `"state": "exited"`},
		{"run", "GET", "/v1/runs/7", "", nil, 200, "", `"pids": [`},
		{"pause", "POST", "/v1/runs/7/pause", "", nil, 200, "", `"state": "paused"`},
		{"resume", "POST", "/v1/runs/7/resume", "", nil, 200, "", `"state": "running"`},
		{"terminate", "POST", "/v1/runs/7/terminate", "", nil, 200, "", `"pids": []`},
		{"bad runid word", "GET", "/v1/runs/abc", "", nil, 400, "bad_request", "bad runid"},
		{"bad runid zero", "POST", "/v1/runs/0/pause", "", nil, 400, "bad_request", "bad runid"},
		{"bad runid negative", "POST", "/v1/runs/-1/terminate", "", nil, 400, "bad_request", "bad runid"},
		{"bad runid huge", "GET", "/v1/runs/99999999999999999999", "", nil, 400, "bad_request", "bad runid"},
		{"run not found", "GET", "/v1/runs/404", "", nil, 404, "not_found", "no run 404"},
		{"pause exited", "POST", "/v1/runs/409/pause", "", nil, 409, "invalid_state", "has exited"},
		{"terminate twice", "POST", "/v1/runs/409/terminate", "", nil, 409, "invalid_state", "has exited"},
		{"status", "GET", "/v1/status", "", nil, 200, "", `"version": "1.2.3"`},
		{"no route", "GET", "/v2/apps", "", nil, 404, "not_found", "no such route"},
		{"wrong method", "PUT", "/v1/apps", "", nil, 405, "bad_request", "method PUT not allowed"},
		{"wrong method on id", "GET", "/v1/apps/hello/start", "", nil, 405, "bad_request", "not allowed"},
		{"plain error is internal", "GET", "/v1/apps/plain", "", nil, 500, "internal", "without a code"},
	}
	for _, c := range apitest.Codes {
		cases = append(cases,
			tc{"detail " + string(c), "GET", "/v1/apps/" + string(c), "", nil, c.HTTPStatus(), string(c), "fake " + string(c)},
			tc{"start " + string(c), "POST", "/v1/apps/" + string(c) + "/start", "", nil, c.HTTPStatus(), string(c), "fake " + string(c)},
			tc{"uninstall " + string(c), "DELETE", "/v1/apps/" + string(c), "", nil, c.HTTPStatus(), string(c), "fake " + string(c)},
			tc{"install " + string(c), "POST", "/v1/apps", "application/octet-stream", strings.NewReader(string(c)), c.HTTPStatus(), string(c), "fake " + string(c)},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, hc, c.method, c.path, c.ctype, c.body)
			if status != c.status {
				t.Errorf("status = %d, want %d; body %s", status, c.status, body)
			}
			if !bytes.Contains(body, []byte(c.want)) {
				t.Errorf("body = %s, want it to contain %q", body, c.want)
			}
			var eb apitypes.ErrorBody
			_ = json.Unmarshal(body, &eb)
			if eb.Error.Code != c.code {
				t.Errorf("error code = %q, want %q (body %s)", eb.Error.Code, c.code, body)
			}
		})
	}
}

func TestInstallArgs(t *testing.T) {
	f := &apitest.Fake{}
	sock, _ := serve(t, Config{Apps: f})
	c := client.New(sock)
	defer c.Close()
	if _, err := c.InstallArchive(t.Context(), strings.NewReader("ARCHIVE"), "abcd", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Install(t.Context(), apitypes.InstallRequest{URL: "https://h/p.tar", SHA256: "ef"}); err != nil {
		t.Fatal(err)
	}
	want := []apitypes.InstallRequest{{SHA256: "abcd", Force: true}, {URL: "https://h/p.tar", SHA256: "ef"}}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if fmt.Sprint(f.Installs) != fmt.Sprint(want) || f.Bodies[0] != "ARCHIVE" || f.Bodies[1] != "" {
		t.Errorf("installs = %+v bodies %q, want %+v and the archive once", f.Installs, f.Bodies, want)
	}
}

func TestClientErrors(t *testing.T) {
	sock, _ := serve(t, Config{})
	c := client.New(sock)
	defer c.Close()
	_, err := c.Detail(t.Context(), "conflict")
	if got := apperr.CodeOf(err); got != apperr.Conflict || !strings.Contains(err.Error(), "fake conflict") {
		t.Errorf("Detail err = %v (code %q), want conflict", err, got)
	}
	missing := client.New(filepath.Join(testDir(t), "none.sock"))
	_, err = missing.List(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no agent listening at") || !strings.Contains(err.Error(), "OSMANAGER_SOCKET") {
		t.Errorf("missing socket err = %v", err)
	}
}

func TestEvents(t *testing.T) {
	f := &apitest.Fake{}
	sock, _ := serve(t, Config{Apps: f})
	c := client.New(sock)
	defer c.Close()
	ev, err := c.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	// The answer's header came after Subscribe: publishing now reaches it.
	f.Publish(apitypes.Event{Type: apitypes.EventInstalled, ID: "hello", Version: "1.0.0"})
	f.Publish(apitypes.Event{Type: apitypes.EventState, ID: "hello", RunID: 1, State: apitypes.Active})
	for _, want := range []apitypes.EventType{apitypes.EventInstalled, apitypes.EventState} {
		got, line, err := ev.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want || bytes.Contains(line, []byte("\n")) {
			t.Errorf("event = %q (%s), want %q on one line", got.Type, line, want)
		}
	}
}

func TestEventsSlowReaderDropped(t *testing.T) {
	f := &apitest.Fake{}
	sock, logs := serve(t, Config{Apps: f, EventBuffer: 4, WriteTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	// The reader reads nothing more: the socket fills, the server's
	// write blocks, the hub's buffer fills, and the reader is dropped.
	big := strings.Repeat("x", 4096)
	published := 0
	deadline := time.Now().Add(20 * time.Second)
	for f.Subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reader not dropped after %d events", published)
		}
		f.Publish(apitypes.Event{Type: apitypes.EventChanged, Message: big})
		published++
	}
	// The stream ends: what was sent can be read, then the end.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("stream still open after the drop (read %d bytes)", n)
	}
	if n >= int64(published*len(big)) {
		t.Errorf("read %d bytes of %d events: nothing was dropped?", n, published)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "api events reader dropped") }, nil)
}

func TestLogsFollow(t *testing.T) {
	pr, pw := io.Pipe()
	closed := make(chan struct{})
	f := &apitest.Fake{LogsFunc: func(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error) {
		return &closeNote{ReadCloser: pr, closed: closed}, nil
	}}
	sock, _ := serve(t, Config{Apps: f})
	c := client.New(sock)
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rc, err := c.Logs(ctx, "hello", 10, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	for _, line := range []string{"first\n", "second\n"} {
		go pw.Write([]byte(line))
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("read %q, %v; want %q (flushed as written)", got, err, line)
		}
	}
	f.Mu.Lock()
	args := f.LastArgs
	f.Mu.Unlock()
	if args != "logs hello 10 true" {
		t.Errorf("Logs called as %q", args)
	}
	cancel() // the caller goes: the server closes the log reader
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("log reader not closed after the caller left")
	}
}

type closeNote struct {
	io.ReadCloser
	once   sync.Once
	closed chan struct{}
}

func (c *closeNote) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.ReadCloser.Close()
}

func TestSocketMode(t *testing.T) {
	sock, _ := serve(t, Config{})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want socket 0660", fi.Mode())
	}
	if _, err := os.Lstat(sock + ".new"); !os.IsNotExist(err) {
		t.Errorf("temporary socket name left: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	t.Run("stale removed", func(t *testing.T) {
		sock := filepath.Join(testDir(t), "osm.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		serve(t, Config{Socket: sock}) // it listens, so the stale file went
	})
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"live socket kept", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, "another process listens"},
		{"regular file kept", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(testDir(t), "osm.sock")
			tc.make(t, sock)
			before, _ := os.Lstat(sock)
			s, err := New(Config{Socket: sock, Apps: &apitest.Fake{}})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want %q", err, tc.want)
			}
			after, err := os.Lstat(sock)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("the file at the socket path was touched: %v", err)
			}
		})
	}
}

func TestParseGroups(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string
		err      bool
	}{
		{"some", "Name:\tx\nGroups:\t4 24 27 \nNSpid:\t1\n", "[4 24 27]", false},
		{"none", "Groups:\t\n", "[]", false},
		{"missing", "Name:\tx\n", "", true},
		{"bad", "Groups:\t4 x\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGroups([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && fmt.Sprint(got) != tc.want && !(tc.want == "[]" && got == nil) {
				t.Errorf("groups = %v, want %s", got, tc.want)
			}
		})
	}
}

func FuzzParseGroups(f *testing.F) {
	f.Add([]byte("Groups:\t4 24 27\n"))
	f.Add([]byte("Groups:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gs, err := parseGroups(b)
		if err != nil && gs != nil {
			t.Errorf("groups %v with error %v", gs, err)
		}
	})
}

func TestNewGroup(t *testing.T) {
	if _, err := New(Config{Socket: "/x", Apps: &apitest.Fake{}, Group: "osmapi"}); err == nil {
		t.Error("a group without Sys: no error")
	}
}

func TestDefaultSocket(t *testing.T) {
	if got, want := client.DefaultSocket, paths.Default().APISocket; got != want {
		t.Errorf("client.DefaultSocket = %q, paths.Default().APISocket = %q: osmctl would miss the agent", got, want)
	}
}

var _ Apps = (*apitest.Fake)(nil)

// TestMaxConns: a connection over the cap waits until one closes.
func TestMaxConns(t *testing.T) {
	sock, _ := serve(t, Config{MaxConns: 1})
	// serve's readiness probe closed its connection; take the one slot.
	first, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(first, "GET /v1/apps HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first: %v %v", resp, err)
	}
	answered := make(chan int, 1)
	go func() {
		c := client.New(sock)
		defer c.Close()
		_, err := c.List(context.Background())
		answered <- map[bool]int{true: 1, false: 0}[err == nil]
	}()
	select {
	case <-answered:
		t.Fatal("second connection served while the first holds the only slot")
	case <-time.After(200 * time.Millisecond): // the absence of an answer: bounded
	}
	first.Close()
	select {
	case ok := <-answered:
		if ok != 1 {
			t.Error("second call failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second connection not served after the first closed")
	}
}

// BenchmarkList is one GET /v1/apps through the socket, on a kept-alive
// connection.
func BenchmarkList(b *testing.B) {
	dir, err := os.MkdirTemp("", "apib")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := New(Config{Socket: dir + "/s", Apps: &apitest.Fake{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := client.New(dir + "/s")
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.List(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("server not up")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.List(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// noStats is an Apps without the stats verb.
type noStats struct{ Apps }

func TestStatsWithoutMonitor(t *testing.T) {
	sock, _ := serve(t, Config{Apps: noStats{&apitest.Fake{}}})
	_, err := client.New(sock).Stats(t.Context(), "")
	if apperr.CodeOf(err) != apperr.NotFound || !strings.Contains(err.Error(), "no monitor") {
		t.Errorf("stats without a monitor: %v", err)
	}
}
