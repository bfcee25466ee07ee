package clc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/state"
)

// joinListener makes the link listen for JOINs on loopback unicast (the
// multicast path has its own test, in a network namespace) and tells the
// test each listening address.
func joinListener(h *harness) chan netip.AddrPort {
	addrs := make(chan netip.AddrPort, 8)
	h.link.Group = netip.MustParseAddrPort("228.0.0.1:1369")
	h.link.ListenJoin = func(ctx context.Context, group netip.AddrPort) (net.PacketConn, error) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			return nil, err
		}
		addrs <- c.LocalAddr().(*net.UDPAddr).AddrPort()
		return c, nil
	}
	return addrs
}

func listening(t *testing.T, addrs chan netip.AddrPort) netip.AddrPort {
	t.Helper()
	select {
	case a := <-addrs:
		return a
	case <-time.After(waitLimit):
		t.Fatal("the link did not listen for JOINs")
		return netip.AddrPort{}
	}
}

func sendDatagram(t *testing.T, to netip.AddrPort, b []byte) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// The spec's JOIN datagram, byte for byte.
var join1369 = append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 1369"...)

// TestDiscovery: with no CLC_IP the link waits for a JOIN, ignoring
// garbage, and connects to the address the first real one gives.
func TestDiscovery(t *testing.T) {
	h := newHarness(t)
	h.link.Controller = ""
	addrs := joinListener(h)
	h.start()
	at := listening(t, addrs)
	h.waitLink("discovering", func(l state.Link) bool { return l.Status == state.LinkDiscovering })

	garbage := [][]byte{
		nil,
		[]byte("join 127.0.0.1 1369"),            // no header
		join1369[:20],                            // cut short
		append(append([]byte{}, join1369...), 0), // a NUL after
		append([]byte{101, 0, 0, 0, 5, 0, 0, 0}, "hello"...),        // JOIN type, not JOIN text
		append([]byte{0x85, 3, 0, 0, 19, 0, 0, 0}, join1369[8:]...), // ECHO_REQUEST type
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 99999"...),
		append([]byte{101, 0, 0, 0, 17, 0, 0, 0}, "join 0.0.0.0 1369"...),
		append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 228.0.0.1 1369"...),
	}
	for _, g := range garbage {
		sendDatagram(t, at, g)
	}
	waitFor(t, "every garbage datagram logged", func() (int, bool) {
		n := strings.Count(h.log.String(), "ignoring datagram that is not a JOIN")
		return n, n == len(garbage)
	})
	if !strings.Contains(h.log.String(), `level=WARN msg="ignoring datagram`) {
		t.Error("the first garbage datagram is not a warning")
	}
	h.noDial()

	sendDatagram(t, at, join1369)
	f := h.accept() // at once: the fake clock has not moved
	if f.addr != "127.0.0.1:1369" {
		t.Errorf("dialed %s, want the JOIN's 127.0.0.1:1369", f.addr)
	}
	f.handshake()
	l := h.waitLink("registered", func(l state.Link) bool { return l.Status == state.LinkRegistered })
	if l.Controller != "127.0.0.1:1369" {
		t.Errorf("controller %q", l.Controller)
	}
	// The discovered address is kept for the next reconnect.
	f.barrier()
	f.conn.Close()
	at = listening(t, addrs)
	h.backingOff("controller closed the connection")
	h.clk.Advance(time.Second)
	if f := h.accept(); f.addr != "127.0.0.1:1369" {
		t.Errorf("reconnected to %s, want the discovered address", f.addr)
	}
}

// TestJoinCutsBackoff: a JOIN seen while backing off starts the next
// attempt at once, at the JOIN's address; a flood of JOINs is held to one
// attempt per JoinGap.
func TestJoinCutsBackoff(t *testing.T) {
	h := newHarness(t)
	addrs := joinListener(h)
	h.start()
	f := h.accept()
	f.authStep1()
	f.conn.Close()
	at := listening(t, addrs)
	h.backingOff("controller closed the connection")

	b, _ := wire.Append(nil, wire.Join{Addr: netip.MustParseAddrPort("192.0.2.7:1400")})
	sendDatagram(t, at, b)
	f = h.accept()
	if f.addr != "192.0.2.7:1400" {
		t.Errorf("dialed %s, want the JOIN's address", f.addr)
	}
	f.authStep1()
	f.conn.Close()
	at = listening(t, addrs)
	h.backingOff("controller closed the connection")

	// Another JOIN right away (no time has passed): held until JoinGap.
	sendDatagram(t, at, b)
	waitFor(t, "the JOIN to be held", func() (int, bool) { n := h.clk.Pending(); return n, n >= 3 }) // status, backoff, gap
	h.noDial()
	h.clk.Advance(DefaultJoinGap)
	h.accept()
}

// TestConnectFailureDiscovers: when CLC_IP does not answer, the link
// listens for a JOIN meanwhile.
func TestConnectFailureDiscovers(t *testing.T) {
	h := newHarness(t)
	addrs := joinListener(h)
	dial := h.link.Dial
	h.link.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == "192.0.2.1:1369" {
			return nil, errors.New("connection refused")
		}
		return dial(ctx, addr)
	}
	h.start()
	at := listening(t, addrs)
	h.waitLink("discovering", func(l state.Link) bool {
		return l.Status == state.LinkDiscovering && strings.Contains(l.LastError, "connect 192.0.2.1:1369: connection refused")
	})
	sendDatagram(t, at, join1369)
	f := h.accept()
	f.handshake()
	h.waitLink("registered", func(l state.Link) bool { return l.Status == state.LinkRegistered && l.Controller == "127.0.0.1:1369" })
}

// TestJoinListenerFails: when the JOIN socket cannot be opened (no route
// to the group yet), the link says so once and keeps retrying CLC_IP.
func TestJoinListenerFails(t *testing.T) {
	h := newHarness(t)
	h.link.Group = netip.MustParseAddrPort("228.0.0.1:1369")
	h.link.ListenJoin = func(context.Context, netip.AddrPort) (net.PacketConn, error) {
		return nil, errors.New("no such device")
	}
	h.start()
	for i := range 3 {
		f := h.accept()
		f.authStep1()
		f.conn.Close()
		h.backingOff("controller closed the connection")
		h.clk.Advance(time.Second << i)
	}
	h.accept()
	if n := strings.Count(h.log.String(), `level=WARN msg="cannot listen for JOIN`); n != 1 {
		t.Errorf("%d warnings about the JOIN socket, want 1 (repeats at debug)", n)
	}
}
