package webssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"osmanager/agent/internal/testlog"
	"osmanager/agent/proc"
	"osmanager/agent/state"
	"osmanager/agent/sysroot"
)

// Test accounts: every hash kind, locked, passwordless and expired ones.
// The hashes were made by libxcrypt (Debian 12's crypt(3)) for testPassword.
const testPassword = "s3cret pass"

var testHashes = map[string]string{
	"root":    "$6$saltsalt$osX/3U830g/zrFjlLO4TCL7anTNnqPEtGZkQlCTVqQ4pIrvUWJgcB5qXW3Wio7X4AzYGVHZaxr6U8FI7Xf77C/",
	"alice":   "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$9D5RovS/HuknGI0.ktF/JBj1lhaH1xkbCFp3CJ3OVL/",
	"sha256":  "$5$saltsalt$PSOaQ1.uAjoqVUkrZPH7nqXa/TZbB4/.vAbfkDlIjN2",
	"md5":     "$1$saltsalt$5lF22gyv5RCQWSRkctJIT0",
	"rounds":  "$6$rounds=5000$abc$7RLe4M0NwNWv0G3EcD6mMnJJnZnK6cG1bYv9WLKS6sUPfrii69ympYVtpJ5Bruvah5b9iN3nXQl3D2SCNK50O1",
	"locked":  "!$6$saltsalt$osX/3U830g/zrFjlLO4TCL7anTNnqPEtGZkQlCTVqQ4pIrvUWJgcB5qXW3Wio7X4AzYGVHZaxr6U8FI7Xf77C/",
	"star":    "*",
	"nopass":  "",
	"expired": "$6$saltsalt$osX/3U830g/zrFjlLO4TCL7anTNnqPEtGZkQlCTVqQ4pIrvUWJgcB5qXW3Wio7X4AzYGVHZaxr6U8FI7Xf77C/",
}

// testEnv is a server on loopback with a scratch system root.
type testEnv struct {
	t    *testing.T
	srv  *Server
	url  string
	host string
	log  *testlog.Buffer
	st   *state.Store
	dir  string // a directory every test user can read
	done chan struct{}
}

type envOpt func(*Config)

// newEnv starts a login-mode server. As root, shells run as the account's
// user (alice is uid 65534); otherwise every shell runs as the test's own
// user (AsSelf).
func newEnv(t *testing.T, opts ...envOpt) *testEnv {
	t.Helper()
	return newEnvAt(t, t.TempDir(), opts...)
}

// newEnvAt is newEnv with its files under root (kept from an earlier env
// on the same root, the LuoYun dir included).
func newEnvAt(t *testing.T, root string, opts ...envOpt) *testEnv {
	t.Helper()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(root, "sys", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	pub := filepath.Join(root, "pub")
	if err := os.MkdirAll(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	var shadow, passwd strings.Builder
	for _, name := range []string{"root", "alice", "sha256", "md5", "rounds", "locked", "star", "nopass", "expired"} {
		uid := 0
		home := pub
		if name == "alice" {
			uid = 65534
		}
		expire := ""
		if name == "expired" {
			expire = "1"
		}
		fmt.Fprintf(&shadow, "%s:%s:19000:0:99999:7::%s:\n", name, testHashes[name], expire)
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:/bin/sh\n", name, uid, uid, name, home)
	}
	write("etc/shadow", shadow.String(), 0o640)
	write("etc/passwd", passwd.String(), 0o644)
	write("etc/group", "root:x:0:\ntty:x:5:\nusers:x:100:alice\nnogroup:x:65534:\n", 0o644)
	write("etc/default/locale", "LANG=C.UTF-8\n", 0o644)
	if err := os.MkdirAll(filepath.Join(root, "ly/conf"), 0o700); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	sys, err := sysroot.New(filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	ly, err := sysroot.New(filepath.Join(root, "ly"))
	if err != nil {
		t.Fatal(err)
	}
	log, buf := testlog.New(t)
	st := &state.Store{}
	cfg := Config{
		Mode: ModeLogin, AsSelf: os.Geteuid() != 0, Sys: sys, Conf: ly,
		FailDelay: -1, KillGrace: 5 * time.Second, State: st, Log: log,
		SSHAddr: "127.0.0.1:1", // nothing there: auto means login
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &testEnv{t: t, srv: srv, url: "http://" + ln.Addr().String(), host: ln.Addr().String(), log: buf, st: st, dir: pub, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln, false); close(e.done) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if a := st.Terminal().Active; a != 0 {
			t.Errorf("after Serve: %d sessions active, want 0", a)
		}
	})
	return e
}

// client is a browser stand-in: a cookie jar, the CSRF token from the page.
type client struct {
	e    *testEnv
	jar  *cookiejar.Jar
	hc   *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`data-csrf="([0-9a-f]{32})"`)

func (e *testEnv) client() *client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{e: e, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	page := c.get("/")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	c.csrf = m[1]
	return c
}

func (c *client) get(path string) string {
	c.e.t.Helper()
	resp, err := c.hc.Get(c.e.url + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.e.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return string(b)
}

// post sends a form with the CSRF token and returns the status and body.
func (c *client) post(path string, form url.Values, hdr map[string]string) (int, string) {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.url) // as a browser does; hdr "Origin": "" drops it
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *client) login(user, password string) int {
	c.e.t.Helper()
	code, _ := c.post("/login", url.Values{"user": {user}, "password": {password}}, nil)
	return code
}

// mustLogin logs in as user with the test password.
func (e *testEnv) mustLogin(user string) *client {
	e.t.Helper()
	c := e.client()
	if code := c.login(user, testPassword); code != http.StatusNoContent {
		e.t.Fatalf("login %s: status %d, want 204", user, code)
	}
	return c
}

// wsConn is a websocket to the terminal, read inline by the test.
type wsConn struct {
	t      *testing.T
	conn   *websocket.Conn
	att    Attached
	rx     uint64 // output received up to here
	out    bytes.Buffer
	frames int
	noAck  bool // do not acknowledge output
	inSent uint64
	inAck  uint64
	exit   *Exit
}

func (c *client) dial(origin string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Jar: c.jar, HandshakeTimeout: 10 * time.Second}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return d.Dial("ws://"+c.e.host+"/ws", h)
}

// open opens a terminal websocket (new session, 80x24, own origin).
func (c *client) open() *wsConn {
	c.e.t.Helper()
	return c.resume(Hello{Version: ProtocolVersion, Cols: 80, Rows: 24})
}

func (c *client) resume(h Hello) *wsConn {
	c.e.t.Helper()
	conn, resp, err := c.dial(c.e.url)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		c.e.t.Fatalf("websocket: %v %s", err, status)
	}
	w := &wsConn{t: c.e.t, conn: conn, rx: h.Offset}
	c.e.t.Cleanup(func() { conn.Close() })
	w.send(h)
	m := w.next(10 * time.Second)
	att, ok := m.(Attached)
	if !ok {
		c.e.t.Fatalf("first message %#v, want Attached", m)
	}
	w.att, w.rx = att, att.Offset
	return w
}

func (w *wsConn) send(m Msg) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.BinaryMessage, m.Append(nil)); err != nil {
		w.t.Fatalf("send %c: %v", m.Type(), err)
	}
}

// typeIn sends keystrokes.
func (w *wsConn) typeIn(s string) {
	w.t.Helper()
	w.send(Input{Data: []byte(s)})
	w.inSent += uint64(len(s))
}

// next reads one message (handling none of them).
func (w *wsConn) next(timeout time.Duration) Msg {
	w.t.Helper()
	m, err := w.read(timeout)
	if err != nil {
		w.t.Fatalf("read: %v (output so far: %q)", err, tail(w.out.String()))
	}
	return m
}

func (w *wsConn) read(timeout time.Duration) (Msg, error) {
	w.conn.SetReadDeadline(time.Now().Add(timeout))
	typ, data, err := w.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.BinaryMessage {
		return nil, fmt.Errorf("message type %d", typ)
	}
	m, err := Parse(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	return m, nil
}

// pump reads messages, keeping output and acknowledging it, until done
// reports true or the timeout passes.
func (w *wsConn) pump(timeout time.Duration, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("timed out; output ends %q", tail(w.out.String()))
		}
		m, err := w.read(left)
		if err != nil {
			return fmt.Errorf("%w; output ends %q", err, tail(w.out.String()))
		}
		w.handle(m)
	}
	return nil
}

func (w *wsConn) handle(m Msg) {
	switch m := m.(type) {
	case Output:
		if m.Offset != w.rx {
			w.t.Errorf("output at offset %d, want %d", m.Offset, w.rx)
		}
		w.out.Write(m.Data)
		w.rx += uint64(len(m.Data))
		w.frames++
		if !w.noAck {
			w.conn.WriteMessage(websocket.BinaryMessage, Ack{Offset: w.rx}.Append(nil)) // a closing server may be gone
		}
	case InputAck:
		w.inAck = m.Offset
	case Exit:
		w.exit = &m
	}
}

// expect pumps until the output contains s.
func (w *wsConn) expect(s string, timeout time.Duration) {
	w.t.Helper()
	if err := w.pump(timeout, func() bool { return strings.Contains(w.out.String(), s) }); err != nil {
		w.t.Fatalf("waiting for %q: %v", s, err)
	}
}

// waitExit pumps until the Exit message and the close.
func (w *wsConn) waitExit(timeout time.Duration) Exit {
	w.t.Helper()
	err := w.pump(timeout, func() bool { return w.exit != nil })
	if err != nil {
		w.t.Fatalf("waiting for exit: %v", err)
	}
	return *w.exit
}

// closeCode reads until the websocket closes and returns the close code.
func (w *wsConn) closeCode(timeout time.Duration) int {
	w.t.Helper()
	for {
		m, err := w.read(timeout)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			w.t.Fatalf("waiting for close: %v", err)
		}
		w.handle(m)
	}
}

func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// bootID is this boot's id, as the shells file records it.
func bootID() string { return proc.Table{}.BootID() }
