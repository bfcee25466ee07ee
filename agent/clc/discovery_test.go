package clc

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clc/wire"
	"osmanager/agent/state"
)

// The spec's JOIN datagram, byte for byte.
var join1369 = append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 1369"...)

// TestDiscovery: with no CLC_IP the link waits for a JOIN, ignoring
// garbage and JOINs not sent to the group, and connects to the address the
// first real one gives; the address is kept for the next reconnect.
func TestDiscovery(t *testing.T) {
	h := newHarness(t)
	h.link.Controller = ""
	feed := h.feedJoins()
	h.start()
	h.waitLink("discovering", func(l state.Link) bool { return l.Status == state.LinkDiscovering })

	group := testGroup.Addr()
	garbage := []datagram{
		{nil, group},
		{[]byte("join 127.0.0.1 1369"), group},                               // no header
		{join1369[:20], group},                                               // cut short
		{append(append([]byte{}, join1369...), 0), group},                    // a NUL after
		{append([]byte{101, 0, 0, 0, 5, 0, 0, 0}, "hello"...), group},        // JOIN type, not JOIN text
		{append([]byte{0x85, 3, 0, 0, 19, 0, 0, 0}, join1369[8:]...), group}, // ECHO_REQUEST type
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, group},
		{append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 99999"...), group},
		{append([]byte{101, 0, 0, 0, 17, 0, 0, 0}, "join 0.0.0.0 1369"...), group},
		{append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 228.0.0.1 1369"...), group},
		{join1369, netip.MustParseAddr("127.0.0.1")},  // a good JOIN, sent unicast
		{join1369, netip.MustParseAddr("228.0.0.2")},  // to another group
		{join1369, netip.Addr{}},                      // destination unknown
		{join1369, netip.MustParseAddr("10.0.0.255")}, // broadcast
		{join1369, netip.MustParseAddr("192.0.2.1")},  // the instance's own address
		{join1369, netip.MustParseAddr("224.0.0.1")},  // all-hosts
		{join1369, netip.MustParseAddr("255.255.255.255")},
	}
	for _, g := range garbage {
		feed.send(t, g.b, g.to)
	}
	h.waitLogged("ignoring datagram that is not a JOIN to the group", len(garbage))
	if n := h.logged(`level=WARN msg="ignoring datagram`); n != 1 {
		t.Errorf("%d warnings about bad datagrams, want 1 (the rest at debug)", n)
	}
	if !strings.Contains(h.log.String(), "sent to 127.0.0.1, not to the group 228.0.0.1") {
		t.Error("no log line naming the unicast JOIN")
	}
	h.noDial()

	feed.send(t, join1369, group)
	f := h.accept() // at once: no spread in this harness
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
	h.backingOff("controller closed the connection")
	h.clk.Advance(time.Second)
	if f := h.accept(); f.addr != "127.0.0.1:1369" {
		t.Errorf("reconnected to %s, want the discovered address", f.addr)
	}
}

// TestJoinOnlyAfterConnectFailureOrClose: without CLC_IP, a JOIN ends the
// wait after a close; after an auth failure or a 1022 the link does not
// even listen while it backs off (the controller is up: a JOIN says
// nothing new), then drops the address that would not have it and waits
// for a JOIN again.
func TestJoinOnlyAfterConnectFailureOrClose(t *testing.T) {
	auth := func(f *fakeCtrl) {
		plain := f.authStep1()
		f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: testTag, Data: wire.NewUUIDChallenge()})
		f.next(wire.TypeAuthReply)
		f.next(wire.TypeRegisterRequest)
	}
	for _, tc := range []struct {
		name   string
		play   func(h *harness, f *fakeCtrl)
		want   string
		listen bool // whether a JOIN may end the backoff
	}{
		{"closed when registered", func(h *harness, f *fakeCtrl) {
			f.handshake()
			f.barrier()
			f.conn.Close()
		}, "controller closed the connection", true},
		{"REGISTER_REPLY 1022", func(h *harness, f *fakeCtrl) {
			auth(f)
			f.send(wire.RegisterReply{Result: wire.RegisterFailed})
		}, "REGISTER_REPLY 1022", false},
		{"controller failed our challenge", func(h *harness, f *fakeCtrl) {
			plain := f.authStep1()
			plain[3] ^= 1
			f.send(wire.AuthReply{Tag: testTag, Data: plain})
		}, "controller failed our challenge", false},
		{"silent at step 2", func(h *harness, f *fakeCtrl) {
			f.authStep1()
			h.clk.Advance(10 * time.Second)
		}, "controller silent: unknown TAG 1, or overloaded", false},
		{"closed after our answer (wrong KEY)", func(h *harness, f *fakeCtrl) {
			auth(f)
			f.conn.Close()
		}, "wrong KEY for this TAG?", false},
		{"hangs up after step 1", func(h *harness, f *fakeCtrl) {
			f.authStep1()
			f.conn.Close()
		}, "controller closed the connection (waiting for OSM_AUTH_REPLY", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.link.Controller = ""
			feed := h.feedJoins()
			h.start()
			feed.join(t, "127.0.0.1:1369")
			tc.play(h, h.accept())
			h.backingOff(tc.want)
			if tc.listen {
				if n := feed.listens.Load(); n != 2 {
					t.Fatalf("%d JOIN listeners opened, want 2 (at the start and in this backoff)", n)
				}
				feed.join(t, "127.0.0.1:1370")
				if f := h.accept(); f.addr != "127.0.0.1:1370" {
					t.Errorf("dialed %s, want the new JOIN's address", f.addr)
				}
				return
			}
			if n := feed.listens.Load(); n != 1 {
				t.Fatalf("%d JOIN listeners opened, want 1: none while backing off after %q", n, tc.want)
			}
			h.clk.Advance(time.Second)
			// The address is dropped: back to waiting for a JOIN.
			h.waitLink("discovering", func(l state.Link) bool { return l.Status == state.LinkDiscovering })
			h.noDial()
			feed.join(t, "127.0.0.1:1369")
			h.accept()
		})
	}
}

// TestJoinIgnoredWhileControllerReachable: with CLC_IP set and answering, a
// close leaves no JOIN listener open (a stray JOIN cannot take the link
// away), and the link goes back to CLC_IP.
func TestJoinIgnoredWhileControllerReachable(t *testing.T) {
	h := newHarness(t)
	feed := h.feedJoins()
	h.start()
	f := h.accept()
	f.handshake()
	f.barrier()
	f.conn.Close()
	h.backingOff("controller closed the connection")
	if n := feed.listens.Load(); n != 0 {
		t.Fatalf("%d JOIN listeners opened while CLC_IP answers, want 0", n)
	}
	if l := h.link.State.Link(); l.Status != state.LinkDisconnected {
		t.Errorf("link %s, want disconnected (not discovering)", l.Status)
	}
	h.clk.Advance(time.Second)
	if f := h.accept(); f.addr != "192.0.2.1:1369" {
		t.Errorf("dialed %s, want CLC_IP", f.addr)
	}
}

// TestDiscoveredDroppedOnFailure: when CLC_IP refuses, a JOIN's address is
// followed; when that fails, the link goes back to CLC_IP.
func TestDiscoveredDroppedOnFailure(t *testing.T) {
	h := newHarness(t)
	feed := h.feedJoins()
	h.refuse("192.0.2.1:1369", true)
	h.start()
	h.waitLink("discovering after CLC_IP refused", func(l state.Link) bool {
		return l.Status == state.LinkDiscovering && strings.Contains(l.LastError, "connect 192.0.2.1:1369: connection refused")
	})
	feed.join(t, "127.0.0.1:1369")
	f := h.accept()
	if f.addr != "127.0.0.1:1369" {
		t.Fatalf("dialed %s, want the JOIN's address", f.addr)
	}
	f.handshake()
	h.waitLink("registered", func(l state.Link) bool { return l.Status == state.LinkRegistered && l.Controller == "127.0.0.1:1369" })
	f.barrier()
	f.conn.Close()
	h.backingOff("controller closed the connection")
	h.refuse("192.0.2.1:1369", false)
	h.clk.Advance(2 * time.Second) // the second failure: not reset by so short a registration
	if f := h.accept(); f.addr != "192.0.2.1:1369" {
		t.Errorf("dialed %s, want CLC_IP again", f.addr)
	}
	if !strings.Contains(h.log.String(), "dropping the address a JOIN announced") {
		t.Error("no log line about dropping the discovered address")
	}
}

// TestJoinSpread: a JOIN after a connect failure starts the next attempt
// after a random 0..JoinSpread, not at once.
func TestJoinSpread(t *testing.T) {
	h := newHarness(t)
	feed := h.feedJoins()
	h.link.Rand = func() float64 { return 0.5 } // half of the 2 s default
	h.link.NewBackoff = func() *backoff.Backoff {
		b := backoff.New(20*time.Second, 30*time.Second)
		b.Rand = func() float64 { return 0 }
		return b
	}
	h.refuse("192.0.2.1:1369", true)
	h.start()
	h.waitLink("discovering", func(l state.Link) bool { return l.Status == state.LinkDiscovering })
	feed.join(t, "127.0.0.1:1369")
	h.waitLogged("JOIN seen", 1)
	h.noDial()
	h.clk.Advance(999 * time.Millisecond)
	h.noDial()
	h.clk.Advance(time.Millisecond)
	if f := h.accept(); f.addr != "127.0.0.1:1369" {
		t.Errorf("dialed %s", f.addr)
	}
}

// TestJoinFlood: however many JOINs arrive, at most 6 connections start in
// any minute (fake time), whether connecting fails or the controller
// hangs up after step 1.
func TestJoinFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clcIP   string
		refused bool
	}{
		{"connect refused everywhere", "192.0.2.1:1369", true},
		{"fake controller hangs up after step 1, no CLC_IP", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.link.Controller = tc.clcIP
			feed := h.feedJoins()
			if tc.refused {
				h.refuse("192.0.2.1:1369", true)
				h.refuse("192.0.2.7:1400", true)
			}
			stop := make(chan struct{})
			served := make(chan struct{})
			go func() { // the fake: read step 1, hang up
				defer close(served)
				for {
					select {
					case f := <-h.conns:
						select {
						case <-f.packets:
						case <-time.After(waitLimit):
						}
						f.conn.Close()
					case <-stop:
						return
					}
				}
			}()
			defer func() { close(stop); <-served }()
			h.start()
			b, _ := wire.Append(nil, wire.Join{Addr: netip.MustParseAddrPort("192.0.2.7:1400")})
			const steps = 1800 // 3 minutes of 100 ms, a JOIN in each
			for range steps {
				// Once the link waits (its timer and the status loop's set),
				// a JOIN, if it listens; else the datagram is lost.
				waitFor(t, "the link to wait", func() (state.LinkStatus, bool) {
					s := h.link.State.Link().Status
					if s != state.LinkDisconnected && s != state.LinkDiscovering || h.clk.Pending() != 2 {
						return s, false
					}
					if s == state.LinkDisconnected {
						return s, true
					}
					select {
					case feed.in <- datagram{b, testGroup.Addr()}:
						return s, true
					default:
						return s, false
					}
				})
				h.clk.Advance(100 * time.Millisecond)
			}
			dials := h.dialLog()
			for i := range dials {
				n := 0
				for _, d := range dials[i:] {
					if d.at.Sub(dials[i].at) < time.Minute {
						n++
					}
				}
				if n > 6 {
					t.Fatalf("%d connections within a minute from %s, want at most 6 (all: %v)", n, dials[i].at.Format(time.TimeOnly), dials)
				}
			}
			if len(dials) < 6 {
				t.Errorf("%d connections in 3 minutes: the link should keep trying", len(dials))
			}
		})
	}
}
