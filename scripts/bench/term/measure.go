package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"osmanager/agent/webssh"
)

// terminal is a session of any side, as the measurements see it.
type terminal interface {
	send(keys string) error
	// recv returns the next output bytes.
	recv(timeout time.Duration) ([]byte, error)
	close()
}

type result struct {
	mbps, cpuPer100 float64
	err             error
}

// waitFor reads output until it contains s.
func waitFor(t terminal, s string, timeout time.Duration) (int, error) {
	n, _, err := until(t, s, timeout)
	return n, err
}

// until reads output until it contains s, and returns how many bytes it
// read and those after s in the last read.
func until(t terminal, s string, timeout time.Duration) (int, []byte, error) {
	deadline := time.Now().Add(timeout)
	var tail []byte
	n := 0
	for {
		b, err := t.recv(time.Until(deadline))
		if err != nil {
			return n, nil, err
		}
		n += len(b)
		tail = append(tail, b...)
		if i := bytes.Index(tail, []byte(s)); i >= 0 {
			return n, tail[i+len(s):], nil
		}
		if len(tail) > 64 {
			tail = tail[len(tail)-64:]
		}
	}
}

// thenPrompt reads on after a marker until the shell's prompt, unless the
// bytes after the marker (rest) hold it already.
func thenPrompt(t terminal, rest []byte) error {
	if bytes.Contains(rest, []byte("$ ")) {
		return nil
	}
	_, err := waitFor(t, "$ ", 10*time.Second)
	return err
}

// prompt waits until the shell answers, and gives it a plain prompt.
func prompt(t terminal) error {
	for i := 0; ; i++ {
		if err := t.send("PS1='$ '; echo RE''ADY\r"); err != nil {
			return err
		}
		_, rest, err := until(t, "READY", 5*time.Second)
		if err == nil {
			// The prompt after READY; then nothing more comes.
			return thenPrompt(t, rest)
		}
		if i == 3 {
			return fmt.Errorf("no shell: %w", err)
		}
	}
}

func throughput(t terminal, file string, size int, pids []int, names ...string) result {
	c0 := cpuTime(pids, names...)
	start := time.Now()
	if err := t.send("cat " + file + "; echo " + typedEnd + "\r"); err != nil {
		return result{err: err}
	}
	n, rest, err := until(t, marker, 10*time.Minute)
	if err != nil {
		return result{err: err}
	}
	d := time.Since(start)
	cpu := (cpuTime(pids, names...) - c0).Seconds()
	if n < size {
		return result{err: fmt.Errorf("received %d bytes, file has %d", n, size)}
	}
	if err := thenPrompt(t, rest); err != nil {
		return result{err: err}
	}
	return result{mbps: float64(size) / 1e6 / d.Seconds(), cpuPer100: cpu * 100e6 / float64(size)}
}

// latency types n keys at the shell's prompt, each timed until its echo
// (readline's), each followed by an untimed backspace (awaited: its echo
// holds \b), so the line stays short. Returns µs per key.
func latency(t terminal, n int) ([]float64, error) {
	const warm = 10
	ds := make([]float64, 0, n)
	for i := range n + warm {
		k := string(rune('a' + i%26))
		start := time.Now()
		if err := t.send(k); err != nil {
			return nil, err
		}
		if _, err := waitFor(t, k, 10*time.Second); err != nil {
			return nil, err
		}
		d := time.Since(start)
		if i >= warm {
			ds = append(ds, float64(d.Nanoseconds())/1e3)
		}
		if err := t.send("\x7f"); err != nil {
			return nil, err
		}
		if _, err := waitFor(t, "\b", 10*time.Second); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// interrupt floods the terminal with `yes`, presses Ctrl-C and times until
// a command typed after it answers: what the user waits for, with whatever
// output was in flight read through. It returns the median of 5, in ms.
func interrupt(t terminal) (float64, error) {
	if err := prompt(t); err != nil {
		return 0, err
	}
	var ds []float64
	for range 5 {
		if err := t.send("yes\r"); err != nil {
			return 0, err
		}
		if _, err := waitFor(t, "y\r\ny\r\ny\r\ny", 10*time.Second); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := t.send("\x03"); err != nil {
			return 0, err
		}
		if err := t.send("echo ST''OPPED\r"); err != nil {
			return 0, err
		}
		if _, err := waitFor(t, "STOPPED", 30*time.Second); err != nil {
			return 0, fmt.Errorf("no prompt after Ctrl-C: %w", err)
		}
		ds = append(ds, float64(time.Since(start).Microseconds())/1000)
	}
	return median(ds), nil
}

// agentClient logs in to the agent's terminal.
type agentClient struct {
	base string
	jar  *cookiejar.Jar
}

func (a *agentClient) login() error {
	a.jar, _ = cookiejar.New(nil)
	hc := &http.Client{Jar: a.jar}
	resp, err := hc.Get(a.base + "/")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`data-csrf="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		return errors.New("no CSRF token in the page")
	}
	req, _ := http.NewRequest("POST", a.base+"/login", strings.NewReader(url.Values{"user": {"root"}, "password": {password}, "csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.base) // as a browser does
	resp, err = hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("login: %s", resp.Status)
	}
	return nil
}

// agentSession is a websocket session. Its reader hands each Output on to
// recv first and acks after, with the page's policy (term.js): 32 kB or
// more not yet acked at once, less at most 50 ms later, so the Ack is not
// on the timed path.
type agentSession struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	out  chan []byte
	errc chan error

	amu      sync.Mutex
	rx       uint64 // output handed on
	acked    uint64
	ackTimer *time.Timer
}

const (
	ackNow  = 32 << 10
	ackIdle = 50 * time.Millisecond
)

func (s *agentSession) ack() {
	s.amu.Lock()
	s.ackTimer = nil
	off := s.rx
	send := off > s.acked
	s.acked = off
	s.amu.Unlock()
	if send {
		s.write(webssh.Ack{Offset: off})
	}
}

func (s *agentSession) handedOn(end uint64) {
	s.amu.Lock()
	s.rx = end
	now := s.rx-s.acked >= ackNow
	if !now && s.ackTimer == nil {
		s.ackTimer = time.AfterFunc(ackIdle, s.ack)
	}
	s.amu.Unlock()
	if now {
		s.ack()
	}
}

func (a *agentClient) open() (*agentSession, error) {
	d := websocket.Dialer{Jar: a.jar, ReadBufferSize: 256 << 10}
	conn, _, err := d.Dial(strings.Replace(a.base, "http", "ws", 1)+"/ws", http.Header{"Origin": {a.base}})
	if err != nil {
		return nil, err
	}
	s := &agentSession{conn: conn, out: make(chan []byte, 64), errc: make(chan error, 1)}
	if err := s.write(webssh.Hello{Version: webssh.ProtocolVersion, Cols: 120, Rows: 40}); err != nil {
		conn.Close()
		return nil, err
	}
	go s.read()
	return s, nil
}

func (s *agentSession) write(m webssh.Msg) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteMessage(websocket.BinaryMessage, m.Append(nil))
}

func (s *agentSession) read() {
	for {
		_, data, err := s.conn.ReadMessage()
		if err == nil {
			var m webssh.Msg
			m, err = webssh.Parse(data)
			switch m := m.(type) {
			case webssh.Output:
				s.out <- m.Data
				s.handedOn(m.Offset + uint64(len(m.Data)))
			case webssh.Exit:
				err = fmt.Errorf("session ended: %s", m.Reason)
			}
		}
		if err != nil {
			s.errc <- err
			return
		}
	}
}

func (s *agentSession) close() { s.conn.Close() }

func (s *agentSession) send(keys string) error { return s.write(webssh.Input{Data: []byte(keys)}) }

func (s *agentSession) recv(timeout time.Duration) ([]byte, error) {
	return recvOutput(s.out, s.errc, timeout)
}

// recvOutput is a session's next output: what is ready now, else what
// comes within timeout, or the session's error.
func recvOutput(out <-chan []byte, errc <-chan error, timeout time.Duration) ([]byte, error) {
	select {
	case b := <-out:
		return b, nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case b := <-out:
		return b, nil
	case err := <-errc:
		return nil, err
	case <-t.C:
		return nil, errors.New("timeout")
	}
}
