package webssh

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"osmanager/agent/clock"
)

// between returns the output between the first start marker line and the
// end marker line after it.
func between(t *testing.T, out, start, end string) string {
	t.Helper()
	i := strings.Index(out, start+"\n")
	if i < 0 {
		t.Fatalf("no %q in the output", start)
	}
	rest := out[i+len(start)+1:]
	j := strings.Index(rest, end+"\n")
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return rest[:j]
}

// rawMode turns off echo and \n → \r\n so output is the shell's bytes.
func rawMode(w *wsConn) {
	w.t.Helper()
	w.typeIn("stty -echo -onlcr; echo RA''W\n")
	w.expect("RAW\n", 10*time.Second)
}

func TestOutputIntegrity(t *testing.T) {
	e := newEnv(t)
	raw := make([]byte, 10<<20*3/4)
	rand.Read(raw)
	data := []byte(base64.StdEncoding.EncodeToString(raw))
	data = append(data, '\n')
	file := filepath.Join(e.dir, "random.b64")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w := e.mustLogin("root").open()
	rawMode(w)
	w.out.Reset()
	w.typeIn("printf 'ST''ART\\n'; cat " + file + "; printf 'E''ND\\n'\n")
	w.expect("\nEND\n", 60*time.Second)
	got := between(t, w.out.String(), "START", "END")
	if sha256.Sum256([]byte(got)) != sha256.Sum256(data) {
		t.Fatalf("got %d bytes, want %d; SHA-256 differs", len(got), len(data))
	}
	t.Logf("%d bytes in %d frames", len(got), w.frames)
}

func TestUTF8(t *testing.T) {
	e := newEnv(t)
	w := e.mustLogin("root").open()
	rawMode(w)
	w.out.Reset()
	frames := w.frames
	// A character split across two writes with a pause between: the
	// frame boundary must not cut it.
	w.typeIn("printf '<\\344\\270'; sleep 0.2; printf '\\255>\\n'\n")
	err := w.pump(10*time.Second, func() bool { return strings.Contains(w.out.String(), ">\n") })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.out.String(), "<中>") {
		t.Errorf("output %q lacks <中>", w.out.String())
	}
	if w.frames-frames < 2 {
		t.Errorf("%d frames: the pause should split the output", w.frames-frames)
	}
	// Input split inside a character arrives whole too.
	in := []byte("echo 'ü中€😀'\n")
	w.send(Input{Data: in[:7]})
	w.send(Input{Data: in[7:]})
	w.expect("ü中€😀\n", 10*time.Second)
}

func TestUTF8FramesValid(t *testing.T) {
	e := newEnv(t)
	w := e.mustLogin("root").open()
	rawMode(w)
	// Many multi-byte characters through a pipe, so pty reads end at
	// arbitrary bytes; every frame must still be valid UTF-8 on its own.
	w.out.Reset()
	w.typeIn("printf 'ST''ART\\n'; i=0; while [ $i -lt 3000 ]; do printf 'ä中😀'; i=$((i+1)); done; printf '\\nE''ND\\n'\n")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(w.out.String(), "\nEND\n") {
		m := w.next(time.Until(deadline))
		if o, ok := m.(Output); ok && !utf8.Valid(o.Data) {
			t.Fatalf("frame at %d is not valid UTF-8 on its own: ends % x", o.Offset, o.Data[max(0, len(o.Data)-4):])
		}
		w.handle(m)
	}
	got := between(t, w.out.String(), "START", "END")
	if want := strings.Repeat("ä中😀", 3000) + "\n"; got != want {
		t.Errorf("got %d bytes, want %d", len(got), len(want))
	}
}

func TestPaste(t *testing.T) {
	e := newEnv(t)
	w := e.mustLogin("root").open()
	rawMode(w)
	// 1 MB pasted into cat > file, in window-sized pieces, respecting the
	// input credit as the page does.
	paste := make([]byte, 1<<20)
	for i := range paste {
		paste[i] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[i%37]
	}
	file := filepath.Join(e.dir, "paste.txt")
	w.typeIn("cat > " + file + "; echo PA''STED\n")
	for off := 0; off < len(paste); {
		for w.inSent-w.inAck+16<<10 > uint64(w.att.InWindow) {
			w.handle(w.next(10 * time.Second))
		}
		n := min(16<<10, len(paste)-off)
		w.send(Input{Data: paste[off : off+n]})
		w.inSent += uint64(n)
		off += n
	}
	for w.inSent-w.inAck+2 > uint64(w.att.InWindow) { // the EOFs need credit too
		w.handle(w.next(10 * time.Second))
	}
	w.typeIn("\x04\x04") // the first ends the last (partial) line, the second is EOF
	w.expect("PASTED\n", 30*time.Second)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, paste) {
		t.Errorf("pasted file: %d bytes, want %d", len(got), len(paste))
	}
}

func TestInputPastWindowRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InWindow = 1024 })
	w := e.mustLogin("root").open()
	w.typeIn("stty -echo; sleep 100\n")
	// Nothing reads the terminal: a client ignoring the input credit
	// fills the queue and is cut off, not buffered without end.
	for range 1000 {
		if err := w.conn.WriteMessage(2, Input{Data: bytes.Repeat([]byte("x"), 1000)}.Append(nil)); err != nil {
			break
		}
	}
	if code := w.closeCode(10 * time.Second); code != 1002 {
		t.Errorf("close code %d, want 1002 (protocol error)", code)
	}
}

func TestFloodBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Window = 128 << 10 })
	c := e.mustLogin("root")
	w := c.open()
	w.noAck = true
	w.typeIn("yes\n")
	// Without acknowledgements the server sends the window and stops.
	if err := w.pump(10*time.Second, func() bool { return w.rx >= 128<<10 }); err != nil {
		t.Fatal(err)
	}
	if w.rx != 128<<10 {
		t.Fatalf("received %d bytes without acknowledging, window %d", w.rx, 128<<10)
	}
	waitFor(t, "the buffer to fill", 5*time.Second, func() bool {
		s := e.srv.Sessions()
		return len(s) == 1 && s[0].Unacked == 128<<10
	})
	// The other session is not starved by the flood.
	w2 := c.open()
	start := time.Now()
	w2.typeIn("echo qu''ick\n")
	w2.expect("quick", 5*time.Second)
	t.Logf("echo in a second session during a flood: %v", time.Since(start))

	// Acknowledge and let it flow for a while: memory stays bounded.
	w.noAck = false
	w.send(Ack{Offset: w.rx})
	w.out.Reset()
	flowed := w.rx + 4<<20
	if err := w.pump(30*time.Second, func() bool {
		w.out.Reset()
		for _, s := range e.srv.Sessions() {
			if s.Unacked > 128<<10 || s.Buffered > 128<<10+2*chunkSize {
				t.Fatalf("session holds %d bytes (%d unacknowledged), window %d", s.Buffered, s.Unacked, 128<<10)
			}
		}
		return w.rx >= flowed
	}); err != nil {
		t.Fatal(err)
	}
	// Ctrl-C stops it: with at most a window of output in flight the prompt
	// comes back at once. How fast is a benchmark figure (scripts/bench/term),
	// not an assertion here: a loaded CI machine must not fail the test.
	w.typeIn("\x03")
	start = time.Now()
	w.typeIn("echo STO''PPED\n")
	w.expect("STOPPED", 10*time.Second)
	t.Logf("Ctrl-C to prompt: %v", time.Since(start))
}

func TestResume(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	w := c.open()
	rawMode(w)
	w.out.Reset()
	w.typeIn("printf 'ST''ART\\n'; seq 1 200000; printf 'E''ND\\n'\n")
	// Read some, without acknowledging, then drop the connection.
	w.noAck = true
	if err := w.pump(10*time.Second, func() bool { return w.out.Len() > 100<<10 }); err != nil {
		t.Fatal(err)
	}
	w.conn.Close()
	waitFor(t, "the server to see the drop", 5*time.Second, func() bool {
		s := e.srv.Sessions()
		return len(s) == 1 && !s[0].Attached
	})
	w2 := c.resume(Hello{Version: ProtocolVersion, ID: w.att.ID, Offset: w.rx, Cols: 80, Rows: 24})
	if w2.att.Flags != FlagResumed || w2.att.Offset != w.rx || w2.att.ID != w.att.ID {
		t.Fatalf("Attached %+v, want resumed at %d", w2.att, w.rx)
	}
	w2.out.Write(w.out.Bytes())
	w2.expect("\nEND\n", 30*time.Second)
	var want strings.Builder
	for i := 1; i <= 200000; i++ {
		want.WriteString(strconv.Itoa(i) + "\n")
	}
	if got := between(t, w2.out.String(), "START", "END"); got != want.String() {
		t.Errorf("resumed output: %d bytes, want %d", len(got), want.Len())
	}
	// Same shell: its variables are still there.
	w2.typeIn("echo pid=$$\n")
	w2.expect("pid=", 5*time.Second)
	if got := e.st.Terminal().Sessions; got != 1 {
		t.Errorf("%d sessions started, want 1", got)
	}
}

func TestTakeover(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	w := c.open()
	w2 := c.resume(Hello{Version: ProtocolVersion, ID: w.att.ID, Offset: w.rx, Cols: 80, Rows: 24})
	if code := w.closeCode(5 * time.Second); code != 1008 {
		t.Errorf("old connection closed with %d, want 1008", code)
	}
	w2.typeIn("echo st''ill\n")
	w2.expect("still", 5*time.Second)
	// Another login cannot resume this session.
	other := e.mustLogin("root")
	w3 := other.resume(Hello{Version: ProtocolVersion, ID: w.att.ID, Cols: 80, Rows: 24})
	if w3.att.ID == w.att.ID || w3.att.Flags&FlagResumed != 0 {
		t.Errorf("another login resumed the session: %+v", w3.att)
	}
}

// pidState returns the state letter of pid, or "" when it is gone.
func pidState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

func gone(pid int) bool {
	st := pidState(pid)
	return st == "" || st == "Z" || st == "X"
}

// startSleeper runs a background job and a foreground job in the shell
// and returns the shell's and the jobs' pids.
func startSleeper(t *testing.T, w *wsConn) (shell, fg, bg int) {
	t.Helper()
	w.typeIn("sleep 1000 & echo B\"G=$!\"; echo S\"H=$$\"; sh -c 'echo F\"G=$$\"; exec sleep 1000'\n")
	re := regexp.MustCompile(`FG=(\d+)\r?\n`)
	if err := w.pump(10*time.Second, func() bool { return re.MatchString(w.out.String()) }); err != nil {
		t.Fatal(err)
	}
	out := w.out.String()
	num := func(key string) int {
		m := regexp.MustCompile(key + `=(\d+)\r?\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s pid in %q", key, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return num("SH"), num("FG"), num("BG")
}

func TestHangupAfterResumeWindow(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	e := newEnv(t, func(c *Config) { c.Clock = clk })
	c := e.mustLogin("root")
	w := c.open()
	sh, fg, bg := startSleeper(t, w)
	for _, p := range []int{sh, fg, bg} {
		if gone(p) {
			t.Fatalf("pid %d not running", p)
		}
	}
	w.conn.Close()
	waitFor(t, "the server to see the drop", 5*time.Second, func() bool {
		s := e.srv.Sessions()
		return len(s) == 1 && !s[0].Attached
	})
	// Within the window nothing happens.
	clk.Advance(DefaultResumeWindow - time.Second)
	if len(e.srv.Sessions()) != 1 || gone(sh) || gone(fg) {
		t.Fatal("session ended inside the resume window")
	}
	clk.Advance(time.Second)
	waitFor(t, "the processes to be hung up", 10*time.Second, func() bool { return gone(sh) && gone(fg) && gone(bg) })
	waitFor(t, "the session to go", 5*time.Second, func() bool { return len(e.srv.Sessions()) == 0 })
	if !strings.Contains(e.log.String(), `reason="not resumed in time"`) {
		t.Error("no audit line with the reason")
	}
}

func TestIdleTimeout(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	e := newEnv(t, func(c *Config) { c.Clock = clk })
	w := e.mustLogin("root").open()
	w.typeIn("echo re''ady\n")
	w.expect("ready", 10*time.Second)
	clk.Advance(DefaultIdleTimeout - time.Minute)
	w.typeIn("echo st''ill\n") // input restarts the idle clock
	w.expect("still", 10*time.Second)
	clk.Advance(2 * time.Minute)
	if len(e.srv.Sessions()) != 1 {
		t.Fatal("session ended though it had input a minute ago")
	}
	clk.Advance(DefaultIdleTimeout)
	ex := w.waitExit(10 * time.Second)
	if ex.Code != -1 || ex.Reason != "idle timeout" {
		t.Errorf("Exit = %+v, want -1 idle timeout", ex)
	}
	waitFor(t, "the session to go", 5*time.Second, func() bool { return len(e.srv.Sessions()) == 0 })
}

func TestMaxSession(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	e := newEnv(t, func(c *Config) { c.Clock = clk; c.MaxSession = time.Hour; c.IdleTimeout = 2 * time.Hour })
	w := e.mustLogin("root").open()
	w.typeIn("echo re''ady\n")
	w.expect("ready", 10*time.Second)
	clk.Advance(time.Hour)
	if ex := w.waitExit(10 * time.Second); ex.Reason != "maximum session length reached" {
		t.Errorf("Exit = %+v", ex)
	}
}

func TestHangupKillsStubborn(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	e := newEnv(t, func(c *Config) { c.Clock = clk })
	w := e.mustLogin("root").open()
	// The shell becomes a program that ignores SIGHUP and never reads
	// the terminal, so it outlives the hang-up.
	w.typeIn("trap '' HUP; echo P\"ID=$$\"; exec sleep 1000\n")
	m := regexp.MustCompile(`PID=(\d+)\r?\n`)
	if err := w.pump(10*time.Second, func() bool { return m.MatchString(w.out.String()) }); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(m.FindStringSubmatch(w.out.String())[1])
	waitFor(t, "the exec", 10*time.Second, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return string(b) == "sleep\n"
	})
	e.srv.mu.Lock()
	for _, t := range e.srv.terms {
		t.end("test")
	}
	e.srv.mu.Unlock()
	// SIGHUP is ignored; SIGKILL comes once the grace period has passed.
	var advanced time.Duration
	waitFor(t, "SIGKILL", 20*time.Second, func() bool {
		if gone(pid) {
			return true
		}
		clk.Advance(250 * time.Millisecond)
		advanced += 250 * time.Millisecond
		return false
	})
	if advanced < 5*time.Second-250*time.Millisecond {
		t.Errorf("shell gone after %v of the 5s grace period", advanced)
	}
	waitFor(t, "the session to go", 5*time.Second, func() bool { return len(e.srv.Sessions()) == 0 })
}
