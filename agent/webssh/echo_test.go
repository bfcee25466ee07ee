package webssh

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"osmanager/agent/clock"
)

// pipeShell is a pollShell whose output is a pipe the test writes to; it
// records the input and how often its fd was polled without waiting.
type pipeShell struct {
	r, w  int
	polls atomic.Int32
	mu    sync.Mutex
	in    []byte
}

func newPipeShell(t *testing.T) *pipeShell {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	s := &pipeShell{r: fds[0], w: fds[1]}
	t.Cleanup(func() { unix.Close(s.r); unix.Close(s.w) })
	return s
}

func (s *pipeShell) print(t *testing.T, out string) {
	t.Helper()
	if _, err := unix.Write(s.w, []byte(out)); err != nil {
		t.Fatal(err)
	}
}

func (s *pipeShell) Read(p []byte) (int, error) { return unix.Read(s.r, p) }
func (s *pipeShell) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in = append(s.in, p...)
	return len(p), nil
}
func (s *pipeShell) Resize(cols, rows uint16) error { return nil }
func (s *pipeShell) Hangup()                        {}
func (s *pipeShell) Kill()                          {}
func (s *pipeShell) Wait() (int, error)             { return 0, nil }
func (s *pipeShell) readWhenReady(read func(fd int) bool) error {
	read(s.r)
	return nil
}
func (s *pipeShell) withFd(f func(fd int)) error {
	s.polls.Add(1)
	f(s.r)
	return nil
}
func (s *pipeShell) tryWrite(p []byte) (int, error) { return s.Write(p) }

// wsPair is a websocket over loopback: the server's end and the client's.
func wsPair(t *testing.T) (srv, cli *websocket.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{WriteBufferSize: maxFrame + 64}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	cli, _, err = websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	select {
	case srv = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no websocket")
	}
	t.Cleanup(func() { srv.Close() })
	return srv, cli
}

// echoTerm is a term on a pipeShell with a websocket attached; no
// goroutine of its own runs, so what input does is all there is.
func echoTerm(t *testing.T, window int) (*term, *pipeShell, *websocket.Conn) {
	t.Helper()
	if !multiCPU() {
		t.Skip("the echo is not awaited with one CPU")
	}
	sc, cc := wsPair(t)
	sh := newPipeShell(t)
	srv := &Server{cfg: Config{Window: window, InWindow: 64 << 10, Clock: clock.Real{}}}
	tm := newTerm(srv, SessionID{1}, nil, sh)
	if err := tm.attach(&attachment{conn: sc}, 0, false); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, cc); m.Type() != MsgAttached {
		t.Fatalf("first message %#v, want Attached", m)
	}
	return tm, sh, cc
}

func readMsg(t *testing.T, c *websocket.Conn) Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

// TestAwaitEcho: a keystroke whose echo is there is sent by input itself,
// as one frame at the right offset, after the key reached the shell.
func TestAwaitEcho(t *testing.T) {
	tm, sh, cc := echoTerm(t, DefaultWindow)
	sh.print(t, "a")
	if err := tm.input([]byte("a")); err != nil {
		t.Fatal(err)
	}
	tm.mu.Lock()
	sent, end := tm.att.sent, tm.buf.end
	tm.mu.Unlock()
	if sent != 1 || end != 1 {
		t.Fatalf("after input: sent %d, buffered up to %d; want both 1 (echo sent by input)", sent, end)
	}
	m := readMsg(t, cc)
	if o, ok := m.(Output); !ok || o.Offset != 0 || string(o.Data) != "a" {
		t.Fatalf("got %#v, want Output{0, \"a\"}", m)
	}
	// The next key's echo follows at the next offset.
	sh.print(t, "b")
	tm.input([]byte("b"))
	if o, ok := readMsg(t, cc).(Output); !ok || o.Offset != 1 || string(o.Data) != "b" {
		t.Fatalf("got %#v, want Output{1, \"b\"}", o)
	}
	if got := string(sh.in); got != "ab" {
		t.Errorf("shell got %q, want %q", got, "ab")
	}
}

// TestAwaitEchoSkipped: cases where input leaves the output to the reader
// and does not touch the pty.
func TestAwaitEchoSkipped(t *testing.T) {
	tests := []struct {
		name   string
		window int
		setup  func(tm *term)
		input  string
	}{
		{name: "paste", window: DefaultWindow, input: strings.Repeat("x", echoMax+1)},
		{name: "output pending", window: DefaultWindow, input: "a", setup: func(tm *term) {
			tm.mu.Lock()
			tm.buf.append([]byte("unsent"))
			tm.mu.Unlock()
		}},
		{name: "output unacknowledged", window: DefaultWindow, input: "a", setup: func(tm *term) {
			tm.mu.Lock()
			tm.buf.append(make([]byte, maxFrame/2))
			tm.att.sent = tm.buf.end
			tm.mu.Unlock()
		}},
		{name: "window full", window: 8, input: "a", setup: func(tm *term) {
			tm.mu.Lock()
			tm.buf.append([]byte("12345678"))
			tm.att.sent = tm.buf.end
			tm.mu.Unlock()
		}},
		{name: "reader reading", window: DefaultWindow, input: "a", setup: func(tm *term) { tm.rmu.Lock() }},
		{name: "session ending", window: DefaultWindow, input: "a", setup: func(tm *term) {
			tm.mu.Lock()
			tm.hangup = "test"
			tm.mu.Unlock()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm, sh, _ := echoTerm(t, tc.window)
			sh.print(t, "echo")
			if tc.setup != nil {
				tc.setup(tm)
			}
			before := tm.buf.end
			if err := tm.input([]byte(tc.input)); err != nil {
				t.Fatal(err)
			}
			if tm.buf.end != before {
				t.Errorf("input read the shell's output (%d bytes)", tm.buf.end-before)
			}
			if string(sh.in) != tc.input {
				t.Errorf("shell got %q, want %q", sh.in, tc.input)
			}
		})
	}
}

// TestAwaitEchoMiss: a key with no echo (a password prompt) is polled for
// once; later keys are not, until the shell prints again.
func TestAwaitEchoMiss(t *testing.T) {
	tm, sh, cc := echoTerm(t, DefaultWindow)
	tm.input([]byte("p"))
	if n := sh.polls.Load(); n == 0 {
		t.Fatal("the first key was not polled for")
	}
	if !tm.echoMiss.Load() {
		t.Fatal("a poll that saw nothing did not stop the next")
	}
	n := sh.polls.Load()
	tm.input([]byte("w"))
	if got := sh.polls.Load(); got != n {
		t.Errorf("polled %d more times after a miss, want 0", got-n)
	}
	// The shell prints (the reader's read): keys are polled for again.
	sh.print(t, "\r\n$ ")
	if err := tm.readPoll(sh); err != nil {
		t.Fatal(err)
	}
	if o, ok := readMsg(t, cc).(Output); !ok || string(o.Data) != "\r\n$ " {
		t.Fatalf("got %#v, want the prompt", o)
	}
	if tm.echoMiss.Load() {
		t.Fatal("output did not re-enable the poll")
	}
	sh.print(t, "l")
	tm.input([]byte("l"))
	if got := sh.polls.Load(); got == n {
		t.Error("a key after output was not polled for")
	}
	if o, ok := readMsg(t, cc).(Output); !ok || o.Offset != 4 || string(o.Data) != "l" {
		t.Fatalf("got %#v, want Output{4, \"l\"}", o)
	}
}

// TestKeystrokesInOrder types lines one key per message into a real
// shell, with a small output window the client acknowledges: every echo
// comes back, in order, whichever goroutine read it.
func TestKeystrokesInOrder(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Window = 4 << 10 })
	w := e.mustLogin("root").open()
	w.typeIn("PS1='$ '; echo RE''ADY\n")
	w.expect("READY\r\n$ ", 10*time.Second)
	for n := range 5 {
		var line strings.Builder
		for i := range 60 {
			line.WriteByte(byte('a' + (n+i)%26))
		}
		for _, k := range line.String() {
			w.typeIn(string(k))
		}
		w.typeIn("\n")
		// The terminal echoes the line; the shell reports the unknown
		// command and prompts again.
		w.expect(line.String()+": not found\r\n$ ", 20*time.Second)
		if !strings.Contains(w.out.String(), "$ "+line.String()+"\r\n") {
			t.Fatalf("line %d: the echo is not whole and in order: output ends %q", n, tail(w.out.String()))
		}
	}
}

// TestAwaitEchoWindow: the awaited echo takes no more than the window's
// room; the rest stays in the pty for the reader.
func TestAwaitEchoWindow(t *testing.T) {
	tm, sh, cc := echoTerm(t, 8)
	tm.mu.Lock()
	tm.buf.append([]byte("123456")) // sent, not yet acknowledged
	tm.att.sent = tm.buf.end
	tm.mu.Unlock()
	sh.print(t, "abcdef")
	tm.input([]byte("a"))
	if o, ok := readMsg(t, cc).(Output); !ok || o.Offset != 6 || string(o.Data) != "ab" {
		t.Fatalf("got %#v, want Output{6, \"ab\"}: the window's room", o)
	}
	rest := make([]byte, 16)
	n, _ := sh.Read(rest)
	if got := string(rest[:max(n, 0)]); got != "cdef" {
		t.Errorf("left in the pty %q, want %q", got, "cdef")
	}
}
