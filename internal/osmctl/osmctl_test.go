package osmctl

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/api/apitest"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type statusDoc struct{}

func (statusDoc) JSON() ([]byte, error) {
	return []byte("{\n  \"agent\": {\n    \"version\": \"1.2.3\"\n  }\n}\n"), nil
}

func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "osmctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serve runs the real API server with the fake Apps on a socket.
func serve(t *testing.T, f *apitest.Fake) string {
	t.Helper()
	return serveApps(t, f)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func osmctl(t *testing.T, sock string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), append([]string{"--socket", sock}, args...), env(nil), &out, &errb)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s output (-want +got):\n%s", name, d)
	}
}

func TestOutput(t *testing.T) {
	sock := serve(t, &apitest.Fake{})
	for _, tc := range []struct {
		name   string
		args   []string
		golden string // the golden file, or "" to compare with want
		want   string
	}{
		{"list", []string{"list"}, "list", ""},
		{"runnables", []string{"runnables"}, "list", ""},
		{"du.list", []string{"du.list"}, "list", ""},
		{"detail", []string{"detail", "hello"}, "detail", ""},
		{"du.detail", []string{"du.detail", "hello"}, "detail", ""},
		{"runners", []string{"runners"}, "runners", ""},
		{"eu.list", []string{"eu.list"}, "runners", ""},
		{"state", []string{"state", "7"}, "state", ""},
		{"eu.detail", []string{"eu.detail", "7"}, "state", ""},
		{"start", []string{"start", "hello"}, "", "hello: run 8 starting\n"},
		{"eu.start", []string{"eu.start", "hello"}, "", "hello: run 8 starting\n"},
		{"start existing", []string{"start", "single"}, "", "hello: run 7 running (already running)\n"},
		{"once", []string{"once", "hello"}, "", "hello: run 8 starting\n"},
		{"terminate runid", []string{"terminate", "7"}, "", "run 7 of hello: exited (exit 0)\n"},
		{"eu.stop", []string{"eu.stop", "7"}, "", "run 7 of hello: exited (exit 0)\n"},
		{"terminate app", []string{"terminate", "hello"}, "", "run 7 of hello: exited (exit 0)\n"},
		{"terminate app without runs", []string{"terminate", "web"}, "", "web: no live run\n"},
		{"pause", []string{"pause", "7"}, "", "run 7 of hello: paused\n"},
		{"resume", []string{"resume", "7"}, "", "run 7 of hello: running\n"},
		{"rollback", []string{"rollback", "hello"}, "", "hello: now at 1.0.0\n"},
		{"enable", []string{"enable", "hello"}, "", "hello: enabled (started at boot)\n"},
		{"disable", []string{"disable", "hello"}, "", "hello: disabled (not started at boot)\n"},
		{"uninstall", []string{"uninstall", "hello"}, "", "removed hello (its data dir is kept; --purge removes it)\n"},
		{"uninstall purge", []string{"uninstall", "--purge", "hello"}, "", "removed hello and its data\n"},
		{"logs", []string{"logs", "hello", "-n", "5"}, "", "one\ntwo\n"},
		{"status", []string{"status"}, "", "{\n  \"agent\": {\n    \"version\": \"1.2.3\"\n  }\n}\n"},
		{"status json", []string{"--json", "status"}, "", "{\n  \"agent\": {\n    \"version\": \"1.2.3\"\n  }\n}\n"},
		{"version", []string{"version"}, "", "osmctl dev\nagent  1.2.3\n"},
		{"version json", []string{"version", "--json"}, "", `{"agent":"1.2.3","osmctl":"dev"}` + "\n"},
		{"stats", []string{"stats"}, "stats", ""},
		{"stats of an app", []string{"stats", "hello"}, "stats-hello", ""},
		{"help", []string{"help"}, "help", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := osmctl(t, sock, tc.args...)
			if code != ExitOK || errb != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errb)
			}
			if tc.golden != "" {
				golden(t, tc.golden, out)
			} else if out != tc.want {
				t.Errorf("stdout = %q, want %q", out, tc.want)
			}
		})
	}
}

// TestJSON: --json prints the API's answer byte for byte.
func TestJSON(t *testing.T) {
	sock := serve(t, &apitest.Fake{})
	c := client.New(sock)
	defer c.Close()
	for _, tc := range []struct {
		args []string
		req  client.Request
	}{
		{[]string{"list"}, client.Request{Method: "GET", Path: "/v1/apps"}},
		{[]string{"detail", "hello"}, client.Request{Method: "GET", Path: "/v1/apps/hello"}},
		{[]string{"runners"}, client.Request{Method: "GET", Path: "/v1/runs"}},
		{[]string{"state", "7"}, client.Request{Method: "GET", Path: "/v1/runs/7"}},
		{[]string{"start", "hello"}, client.Request{Method: "POST", Path: "/v1/apps/hello/start"}},
		{[]string{"pause", "7"}, client.Request{Method: "POST", Path: "/v1/runs/7/pause"}},
		{[]string{"stats"}, client.Request{Method: "GET", Path: "/v1/stats"}},
		{[]string{"stats", "7"}, client.StatsRequest("7")},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			want, err := c.Call(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			code, out, _ := osmctl(t, sock, append([]string{"--json"}, tc.args...)...)
			if code != 0 || out != string(want) {
				t.Errorf("exit %d, stdout %q; want 0, %q", code, out, want)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	f := &apitest.Fake{}
	sock := serve(t, f)
	pkg := filepath.Join(tempDir(t), "hello.tar")
	if err := os.WriteFile(pkg, []byte("ARCHIVE"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"install", pkg, "--sha256", "ab", "--force"},
		{"install", "https://example.com/hello.tar", "--sha256", "cd"},
	} {
		code, out, errb := osmctl(t, sock, args...)
		if code != 0 || out != "installed hello 1.0.0\n" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errb)
		}
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	want := []apitypes.InstallRequest{{SHA256: "ab", Force: true}, {URL: "https://example.com/hello.tar", SHA256: "cd"}}
	if d := cmp.Diff(want, f.Installs); d != "" || f.Bodies[0] != "ARCHIVE" {
		t.Errorf("installs (-want +got):\n%s\nbodies %q", d, f.Bodies)
	}
}

func TestExitStatus(t *testing.T) {
	sock := serve(t, &apitest.Fake{})
	missing := filepath.Join(tempDir(t), "none.sock")
	for _, tc := range []struct {
		name   string
		socket string
		args   []string
		code   int
		stderr string
	}{
		{"not found", sock, []string{"detail", "not_found"}, ExitFail, "osmctl: fake not_found (not_found)\n"},
		{"conflict", sock, []string{"start", "conflict"}, ExitFail, "osmctl: fake conflict (conflict)\n"},
		{"cant start", sock, []string{"once", "cant_start"}, ExitFail, "osmctl: fake cant_start (cant_start)\n"},
		{"pause exited", sock, []string{"pause", "409"}, ExitFail, "osmctl: run 409 has exited (invalid_state)\n"},
		{"terminate unknown app", sock, []string{"terminate", "not_found"}, ExitFail, "osmctl: fake not_found (not_found)\n"},
		{"install missing file", sock, []string{"install", "/nonexistent/p.tar"}, ExitFail, "osmctl: install: open /nonexistent/p.tar: no such file or directory\n"},
		{"missing socket", missing, []string{"list"}, ExitFail, "osmctl: no agent listening at " + missing + ": is osmanager running (systemctl status osmanager)? set --socket or OSMANAGER_SOCKET\n"},
		{"version without agent", missing, []string{"version"}, ExitOK, ""},
		{"unknown verb", sock, []string{"bogus"}, ExitUsage, "osmctl: unknown command \"bogus\"\nrun 'osmctl help' for the commands\n"},
		{"missing arg", sock, []string{"start"}, ExitUsage, "osmctl: usage: osmctl start ID\nrun 'osmctl help' for the commands\n"},
		{"extra arg", sock, []string{"list", "x"}, ExitUsage, "osmctl: usage: osmctl list \nrun 'osmctl help' for the commands\n"},
		{"bad runid", sock, []string{"pause", "abc"}, ExitUsage, "osmctl: bad runid \"abc\": a positive integer\nrun 'osmctl help' for the commands\n"},
		{"bad flag", sock, []string{"list", "--bogus"}, ExitUsage, "osmctl: list: flag provided but not defined: -bogus\nrun 'osmctl help' for the commands\n"},
		{"url without sha256", sock, []string{"install", "https://x/p.tar"}, ExitUsage, "osmctl: install https://x/p.tar: a URL needs --sha256\nrun 'osmctl help' for the commands\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errb := osmctl(t, tc.socket, tc.args...)
			if code != tc.code || errb != tc.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errb, tc.code, tc.stderr)
			}
		})
	}
	t.Run("no command", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := Main(t.Context(), nil, env(nil), &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "usage: osmctl") {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	})
}

func TestSocketFromEnv(t *testing.T) {
	sock := serve(t, &apitest.Fake{})
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"start", "hello"}, env(map[string]string{SocketEnv: sock}), &out, &errb)
	if code != 0 || out.String() != "hello: run 8 starting\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestRefused: a 403 from the agent reads as what to do about it.
func TestRefused(t *testing.T) {
	sock := filepath.Join(tempDir(t), "osm.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"forbidden","message":"permission denied: only root may use this API"}}`)
	})}
	go srv.Serve(l)
	defer srv.Close()
	code, _, errb := osmctl(t, sock, "list")
	if want := "osmctl: " + client.DeniedMessage + "\n"; code != ExitFail || errb != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, errb, want)
	}
}

// syncBuf is a buffer that says when a line arrived.
type syncBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	lines chan struct{}
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := s.b.Write(p)
	for range bytes.Count(p, []byte("\n")) {
		s.lines <- struct{}{}
	}
	return n, nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
		want string
	}{
		{"human", false, "2026-01-02 03:04:05Z installed hello 1.0.0\n2026-01-02 03:04:05Z state     hello run 7 exited (exit 3): crashed\n"},
		{"json", true, `{"type":"installed","time":"2026-01-02T03:04:05Z","id":"hello","version":"1.0.0"}` + "\n" +
			`{"type":"state","time":"2026-01-02T03:04:05Z","id":"hello","runid":7,"state":"exited","exit":{"code":3},"reason":"crashed"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &apitest.Fake{}
			sock := serve(t, f)
			ctx, cancel := context.WithCancel(t.Context())
			out := &syncBuf{lines: make(chan struct{}, 10)}
			var errb bytes.Buffer
			args := []string{"--socket", sock, "events"}
			if tc.json {
				args = append(args, "--json")
			}
			done := make(chan int, 1)
			go func() { done <- Main(ctx, args, env(nil), out, &errb) }()
			deadline := time.Now().Add(10 * time.Second)
			for f.Subscribers() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("osmctl events did not subscribe")
				}
				time.Sleep(5 * time.Millisecond) // polling with a deadline
			}
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			f.Publish(apitypes.Event{Type: apitypes.EventInstalled, Time: at, ID: "hello", Version: "1.0.0"})
			f.Publish(apitypes.Event{Type: apitypes.EventState, Time: at, ID: "hello", RunID: 7, State: apitypes.Exited, Exit: &apitypes.Exit{Code: 3}, Reason: "crashed"})
			for range 2 {
				select {
				case <-out.lines:
				case <-time.After(10 * time.Second):
					t.Fatalf("events printed %q", out.String())
				}
			}
			cancel()
			if code := <-done; code != ExitOK {
				t.Errorf("exit %d after the interrupt, stderr %q", code, errb.String())
			}
			if got := out.String(); got != tc.want {
				t.Errorf("stdout = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLogsArgs(t *testing.T) {
	f := &apitest.Fake{}
	sock := serve(t, f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "hello"}, "logs hello 100 false"},
		{[]string{"logs", "-f", "hello", "-n", "3"}, "logs hello 3 true"},
		{[]string{"logs", "hello", "--follow"}, "logs hello 100 true"},
	} {
		code, out, errb := osmctl(t, sock, tc.args...)
		f.Mu.Lock()
		got := f.LastArgs
		f.Mu.Unlock()
		if code != 0 || out != "one\ntwo\n" || got != tc.want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q, called %q; want %q", tc.args, code, out, errb, got, tc.want)
		}
	}
}

// TestStatsWatch: --watch shows the figures again after each sample
// until interrupted, then exits 0; a bad id fails.
func TestStatsWatch(t *testing.T) {
	f := &apitest.Fake{}
	sock := serve(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--socket", sock, "stats", "--watch"}, env(nil), pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	shown := 0
	for sc.Scan() {
		if strings.Contains(sc.Text(), "system: cpu") {
			shown++
			if shown == 2 {
				cancel()
				break
			}
		}
	}
	go io.Copy(io.Discard, pr)
	if code := <-done; code != ExitOK || shown != 2 {
		t.Errorf("watch: exit %d after %d showings; want 0 after 2", code, shown)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"stats", "404"}, ExitFail, "osmctl: no app 404 and no run 404 (not_found)\n"},
		{[]string{"stats", "Bad/Id"}, ExitFail, "osmctl: bad id \"Bad/Id\": an app id or a runid (bad_request)\n"},
		{[]string{"stats", "a", "b"}, ExitUsage, "osmctl: usage: osmctl stats [ID|RUNID] [--watch]\nrun 'osmctl help' for the commands\n"},
	} {
		code, _, errb := osmctl(t, sock, tc.args...)
		if code != tc.code || errb != tc.err {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tc.args, code, errb, tc.code, tc.err)
		}
	}
}
