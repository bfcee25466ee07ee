package webssh

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"osmanager/agent/sysroot"
)

func mustRoot(t *testing.T, dir string) *sysroot.Root {
	t.Helper()
	r, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEchoAndExit(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	w := c.open()
	if w.att.Flags != 0 || w.att.ID.IsZero() || w.att.Window != DefaultWindow {
		t.Errorf("Attached = %+v", w.att)
	}
	w.typeIn("echo he''llo\n")
	w.expect("hello", 10*time.Second)
	if got := e.st.Terminal(); got.Active != 1 || got.Sessions != 1 {
		t.Errorf("terminal state %+v, want 1 active, 1 started", got)
	}
	w.typeIn("exit 3\n")
	ex := w.waitExit(10 * time.Second)
	if ex.Code != 3 {
		t.Errorf("Exit = %+v, want status 3", ex)
	}
	if code := w.closeCode(5 * time.Second); code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want %d", code, websocket.CloseNormalClosure)
	}
	waitFor(t, "the session to go", 5*time.Second, func() bool { return e.st.Terminal().Active == 0 })
	if !strings.Contains(e.log.String(), `msg="terminal session end" user=root addr=127.0.0.1`) {
		t.Error("no audit line for the session end")
	}
	if strings.Contains(e.log.String(), "hello") {
		t.Error("keystrokes or output reached the log")
	}
}

func TestLoginShellAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	e := newEnv(t)
	w := e.mustLogin("alice").open()
	w.typeIn("echo \"U=$(id -u) G=$(id -g) GS=$(id -G) H=$HOME L=$LOGNAME T=$TERM\"\n")
	w.expect("T=xterm-256color\r\n", 10*time.Second)
	out := w.out.String()
	line := out[strings.LastIndex(out, "U="):]
	line = line[:strings.Index(line, "\r")]
	want := "U=65534 G=65534 GS=65534 100 H=" + e.dir + " L=alice T=xterm-256color"
	if line != want {
		t.Errorf("got %q, want %q", line, want)
	}
}

func TestWebsocketRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Origins = []string{"https://console.example.com"} })
	anon := e.client()
	if _, resp, err := anon.dial(e.url); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a session: %v, %v; want 401", err, resp)
	}
	c := e.mustLogin("root")
	for _, origin := range []string{"", "http://evil.example", "https://console.example.com.evil", "http://" + e.host + ".evil", "null"} {
		if _, resp, err := c.dial(origin); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, %v; want 403", origin, err, resp)
		}
	}
	conn, _, err := c.dial("https://console.example.com")
	if err != nil {
		t.Fatalf("allowlisted origin: %v", err)
	}
	conn.Close()
	if code, _ := c.post("/logout", nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if _, resp, err := c.dial(e.url); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %v, %v; want 401", err, resp)
	}
}

func TestResize(t *testing.T) {
	e := newEnv(t)
	w := e.mustLogin("root").open()
	w.typeIn("stty size\n")
	w.expect("24 80", 10*time.Second)
	w.send(Resize{Cols: 123, Rows: 45})
	w.typeIn("stty size\n")
	w.expect("45 123", 10*time.Second)
}

func TestSessionLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessions = 2 })
	c := e.mustLogin("root")
	c.open()
	c.open()
	conn, _, err := c.dial(e.url)
	if err != nil {
		t.Fatal(err)
	}
	w := &wsConn{t: t, conn: conn}
	w.send(Hello{Version: ProtocolVersion, Cols: 80, Rows: 24})
	ex, ok := w.next(10 * time.Second).(Exit)
	if !ok || !strings.Contains(ex.Reason, "too many") {
		t.Errorf("third session: got %+v, want an Exit for the limit", ex)
	}
	if code := w.closeCode(5 * time.Second); code != websocket.CloseTryAgainLater {
		t.Errorf("close code %d, want %d", code, websocket.CloseTryAgainLater)
	}
}

func TestLogoutEndsSessions(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	w := c.open()
	w.typeIn("echo re''ady\n")
	w.expect("ready", 10*time.Second)
	if code, _ := c.post("/logout", nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if ex := w.waitExit(10 * time.Second); ex.Code != -1 || ex.Reason != "logged out" {
		t.Errorf("Exit = %+v, want -1 logged out", ex)
	}
	waitFor(t, "the session to go", 5*time.Second, func() bool { return e.st.Terminal().Active == 0 })
}

func TestPage(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	page := c.get("/")
	for _, want := range []string{`action="/login"`, "/assets/xterm.js", "/assets/term.js", "not encrypted"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, a := range []string{"xterm.js", "xterm.css", "term.js", "term.css", "addon-fit.js", "addon-webgl.js", "LICENSE.xterm"} {
		resp, err := http.Get(e.url + "/assets/" + a)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", a, resp.Status)
		}
	}
	resp, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, p := range []string{"/nope", "/assets/../x", "/ws?x=1"} {
		resp, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 || resp.StatusCode == 101 {
			t.Errorf("GET %s: %s", p, resp.Status)
		}
	}
}
