package clc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clc/wire"
	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

// The spec's test vector: KEY, a challenge, and its RC4 ciphertext.
const (
	testKey    = "015e33a8-787d-457e-b84d-c2a101a816e0"
	vectorText = "30d8e15f-0db1-43c3-9bee-4e2eb85ff6c5"
	vectorHex  = "ac07ac03a3b84c916c41a12eee803825c998b2207409be06278d949727e2b8dcb20c32d247ec1351"
	testTag    = 1
	agentIP    = "10.0.0.5"
	waitLimit  = 10 * time.Second // real time; only a broken test waits this long
)

func vector() wire.Challenge {
	var c wire.Challenge
	copy(c[:], vectorText)
	return c
}

// addrConn gives a net.Pipe end TCP addresses, as the agent expects.
type addrConn struct {
	net.Conn
	local, remote net.Addr
	onClose       func()
	once          sync.Once
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
func (c *addrConn) Close() error {
	c.once.Do(c.onClose)
	return c.Conn.Close()
}

// fakeCtrl is the test's side of one connection: a scripted controller.
type fakeCtrl struct {
	t       *testing.T
	conn    net.Conn
	addr    string // what the agent dialed
	packets chan wire.Packet
	readErr chan error // the agent's close (or a framing error), once
}

func newFakeCtrl(t *testing.T, conn net.Conn, addr string) *fakeCtrl {
	f := &fakeCtrl{t: t, conn: conn, addr: addr, packets: make(chan wire.Packet, 64), readErr: make(chan error, 1)}
	go func() { // ends when the agent closes its end, or the test's cleanup closes ours
		rd := wire.NewReader(conn)
		for {
			p, err := rd.Next()
			if err != nil {
				f.readErr <- err
				return
			}
			f.packets <- p
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return f
}

// next returns the agent's next packet, skipping REPORTs unless asked for.
func (f *fakeCtrl) next(want wire.Type) wire.Packet {
	f.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case p := <-f.packets:
			if p.Type == wire.TypeReport && want != wire.TypeReport {
				continue
			}
			if p.Type != want {
				f.t.Fatalf("agent sent %s (% x), want %s", p.Type, p.Data, want)
			}
			return p
		case err := <-f.readErr:
			f.t.Fatalf("agent closed the connection (%v), want %s", err, want)
		case <-deadline.C:
			f.t.Fatalf("no %s from the agent within %s", want, waitLimit)
		}
	}
}

func (f *fakeCtrl) send(ms ...wire.Message) {
	f.t.Helper()
	var b []byte
	for _, m := range ms {
		var err error
		if b, err = wire.Append(b, m); err != nil {
			f.t.Fatal(err)
		}
	}
	f.write(b)
}

func (f *fakeCtrl) write(b []byte) {
	f.t.Helper()
	if _, err := f.conn.Write(b); err != nil {
		f.t.Fatalf("write to agent: %v", err)
	}
}

// barrier makes sure the agent has handled everything sent so far: its
// session handles packets in order, so its answer to an echo comes after.
func (f *fakeCtrl) barrier() {
	f.t.Helper()
	f.send(wire.EchoRequest{Data: []byte("barrier")})
	for {
		p := f.next(wire.TypeEchoReply)
		if string(p.Data) == "barrier" {
			return
		}
	}
}

// closed waits for the agent to close the connection (a clean close: EOF,
// with nothing but REPORTs before it).
func (f *fakeCtrl) closed() {
	f.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case p := <-f.packets:
			if p.Type != wire.TypeReport && p.Type != wire.TypeEchoReply {
				f.t.Fatalf("agent sent %s, want it to close the connection", p.Type)
			}
		case err := <-f.readErr:
			if !errors.Is(err, io.EOF) {
				f.t.Fatalf("connection ended with %v, want a clean close (EOF)", err)
			}
			return
		case <-deadline.C:
			f.t.Fatalf("agent did not close the connection within %s", waitLimit)
		}
	}
}

// authStep1 reads the agent's AUTH_REQUEST and returns the plain challenge.
func (f *fakeCtrl) authStep1() wire.Challenge {
	f.t.Helper()
	req, err := wire.ParseAuthRequest(f.next(wire.TypeAuthRequest).Data)
	if err != nil {
		f.t.Fatal(err)
	}
	if req.Tag != testTag {
		f.t.Fatalf("AUTH_REQUEST tag %d, want %d", req.Tag, testTag)
	}
	plain, _ := wire.Crypt(testKey, req.Data)
	return plain
}

// handshake plays a correct controller up to REGISTER_REPLY 1021.
func (f *fakeCtrl) handshake() {
	f.t.Helper()
	plain := f.authStep1()
	mine := wire.NewChallenge()
	f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: testTag, Data: mine})
	ans, err := wire.ParseAuthReply(f.next(wire.TypeAuthReply).Data)
	if err != nil {
		f.t.Fatal(err)
	}
	if dec, _ := wire.Crypt(testKey, ans.Data); !mine.Equal(dec) {
		f.t.Fatal("agent answered our challenge wrongly")
	}
	reg, err := wire.ParseRegisterRequest(f.next(wire.TypeRegisterRequest).Data)
	if err != nil {
		f.t.Fatal(err)
	}
	if want := (wire.RegisterRequest{Tag: testTag, Status: 7, IP: agentIP}); reg != want {
		f.t.Fatalf("REGISTER %+v, want %+v", reg, want)
	}
	f.send(wire.RegisterReply{Result: wire.RegisterOK})
}

// harness runs a Link against scripted controllers through net.Pipe.
type harness struct {
	t     *testing.T
	link  *Link
	clk   *clock.Fake
	log   *testlog.Buffer
	conns chan *fakeCtrl
	open  atomic.Int32 // agent-side connections not yet closed
	dials atomic.Int32
	stop  func()

	mu      sync.Mutex
	refused map[string]bool // addresses whose dial fails: connection refused
	dialed  []dialRecord
}

type dialRecord struct {
	addr string
	at   time.Time // on the fake clock
}

// refuse makes dials to addr fail (on) or work again (off).
func (h *harness) refuse(addr string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused == nil {
		h.refused = map[string]bool{}
	}
	h.refused[addr] = on
}

// dialLog returns the dials so far.
func (h *harness) dialLog() []dialRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]dialRecord(nil), h.dialed...)
}

type option func(*harness)

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	log, buf := testlog.New(t)
	h := &harness{t: t, clk: clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), log: buf, conns: make(chan *fakeCtrl, 4)}
	h.link = &Link{
		Tag: testTag, Key: testKey, Controller: "192.0.2.1:1369",
		StatusPeriod: 1000 * time.Hour, // tests that want it to run again say so
		State:        &state.Store{}, Log: log.With("service", "clc"), Clock: h.clk,
		NewBackoff: func() *backoff.Backoff {
			b := backoff.New(time.Second, 30*time.Second)
			b.Rand = func() float64 { return 0 } // no jitter: delays are 1 s, 2 s, 4 s, …
			return b
		},
		// No JOIN spread; heartbeats at 0.9 × 30 s = 27 s. Tests that
		// want otherwise say so.
		Rand: func() float64 { return 0 },
		Dial: h.dial,
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *harness) dial(ctx context.Context, addr string) (net.Conn, error) {
	h.dials.Add(1)
	h.mu.Lock()
	h.dialed = append(h.dialed, dialRecord{addr, h.clk.Now()})
	refused := h.refused[addr]
	h.mu.Unlock()
	if refused {
		return nil, syscall.ECONNREFUSED
	}
	if n := h.open.Load(); n != 0 {
		h.t.Errorf("agent dials %s with %d connection(s) still open", addr, n)
	}
	a, b := net.Pipe()
	h.open.Add(1)
	ac := &addrConn{Conn: a,
		local:   net.TCPAddrFromAddrPort(netip.MustParseAddrPort(agentIP + ":40000")),
		remote:  net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:1369")),
		onClose: func() { h.open.Add(-1) }}
	h.conns <- newFakeCtrl(h.t, b, addr)
	return ac, nil
}

// start runs the link; the test's cleanup stops it and checks that Run
// returned and left no goroutine behind.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.link.Run(ctx) }()
	h.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(waitLimit):
			h.t.Fatal("Run did not return after cancel")
		}
		if n := h.open.Load(); n != 0 {
			h.t.Errorf("%d connection(s) left open after Run returned", n)
		}
		noLeaks(h.t)
	}
	h.t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
	})
}

// accept returns the next connection the agent makes.
func (h *harness) accept() *fakeCtrl {
	h.t.Helper()
	select {
	case f := <-h.conns:
		return f
	case <-time.After(waitLimit):
		h.t.Fatalf("agent did not connect within %s", waitLimit)
		return nil
	}
}

// noDial checks that the agent has not connected again (it is backing off).
func (h *harness) noDial() {
	h.t.Helper()
	select {
	case <-h.conns:
		h.t.Fatal("agent reconnected without waiting out its backoff")
	default:
	}
}

// waitLink polls the link state until cond holds.
func (h *harness) waitLink(what string, cond func(state.Link) bool) state.Link {
	h.t.Helper()
	return waitFor(h.t, what, func() (state.Link, bool) {
		l := h.link.State.Link()
		return l, cond(l)
	})
}

// backingOff waits until the agent waits out a backoff after a failure
// whose text contains want, and checks the log line that names it.
func (h *harness) backingOff(want string) {
	h.t.Helper()
	h.waitLink("backoff after: "+want, func(l state.Link) bool {
		return (l.Status == state.LinkDisconnected || l.Status == state.LinkDiscovering) && strings.Contains(l.LastError, want)
	})
	if !strings.Contains(h.log.String(), "controller link down") || !strings.Contains(h.log.String(), want) {
		h.t.Errorf("no log line saying %q", want)
	}
	h.noDial()
}

// waitFor polls f (every millisecond, up to waitLimit) until it says ok.
func waitFor[T any](t testing.TB, what string, f func() (T, bool)) T {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(waitLimit)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last: %+v)", what, v)
		}
		<-tick.C
	}
}

// noLeaks checks that no goroutine of this package is left. The tests of
// this package do not run in parallel, so any such goroutine is a leak.
func noLeaks(t testing.TB) {
	t.Helper()
	waitFor(t, "the link's goroutines to end", func() (string, bool) {
		buf := make([]byte, 1<<20)
		all := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(all, "\n\n") {
			if strings.Contains(g, "osmanager/agent/clc.") && !strings.Contains(g, "_test.go") && !strings.Contains(g, "clc.noLeaks") {
				return g, false
			}
		}
		return "", true
	})
}

// testGroup is the JOIN group of the tests.
var testGroup = netip.MustParseAddrPort("228.0.0.1:1369")

// joinFeed stands for the network the link's JOIN socket listens on: the
// test hands it datagrams and says where each was sent to.
type joinFeed struct {
	in      chan datagram
	listens atomic.Int32 // ListenJoin calls
}

type datagram struct {
	b  []byte
	to netip.Addr
}

// feedJoins makes the link listen for JOINs on a joinFeed.
func (h *harness) feedJoins() *joinFeed {
	f := &joinFeed{in: make(chan datagram)}
	h.link.Group = testGroup
	h.link.ListenJoin = func(context.Context, netip.AddrPort) (JoinConn, error) {
		f.listens.Add(1)
		return &feedConn{f: f, closed: make(chan struct{})}, nil
	}
	return f
}

// send hands one datagram to the link's listener, once one reads. The
// link's reader hands each JOIN on before it reads the next, so once send
// returns, every JOIN sent before it has reached the link's wait.
func (f *joinFeed) send(t testing.TB, b []byte, to netip.Addr) {
	t.Helper()
	select {
	case f.in <- datagram{b, to}:
	case <-time.After(waitLimit):
		t.Fatal("the link is not listening for JOINs")
	}
}

// join sends a JOIN announcing addr to the group.
func (f *joinFeed) join(t testing.TB, addr string) {
	t.Helper()
	b, err := wire.Append(nil, wire.Join{Addr: netip.MustParseAddrPort(addr)})
	if err != nil {
		t.Fatal(err)
	}
	f.send(t, b, testGroup.Addr())
}

type feedConn struct {
	f      *joinFeed
	closed chan struct{}
	once   sync.Once
}

func (c *feedConn) ReadJoin(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	select {
	case d := <-c.f.in:
		return copy(b, d.b), netip.MustParseAddrPort("192.0.2.99:1369"), d.to, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, netip.Addr{}, net.ErrClosed
	}
}

func (c *feedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// groupConn is a unicast UDP socket whose datagrams count as sent to the
// group: for tests where a controller sends its JOINs to loopback.
type groupConn struct {
	*net.UDPConn
	group netip.Addr
}

func (c groupConn) ReadJoin(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	return n, from, c.group, err
}

// logged counts the log lines containing s.
func (h *harness) logged(s string) int { return strings.Count(h.log.String(), s) }

// waitLogged waits until n log lines contain s.
func (h *harness) waitLogged(s string, n int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d log lines with %q", n, s), func() (int, bool) { c := h.logged(s); return c, c >= n })
}
