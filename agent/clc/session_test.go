package clc

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/state"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw returns the bytes a packet had on the wire.
func raw(t *testing.T, p wire.Packet) []byte {
	t.Helper()
	b, err := wire.AppendPacket(nil, p.Type, p.Data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nextAny returns the agent's next packet, whatever it is.
func (f *fakeCtrl) nextAny() wire.Packet {
	f.t.Helper()
	select {
	case p := <-f.packets:
		return p
	case err := <-f.readErr:
		f.t.Fatalf("agent closed the connection: %v", err)
	case <-time.After(waitLimit):
		f.t.Fatal("agent sent nothing")
	}
	return wire.Packet{}
}

// TestInteropSession replays a whole session in the spec's exact bytes:
// the RC4 test vector both ways, the register text, the 4-byte report, a
// query and an echo.
func TestInteropSession(t *testing.T) {
	h := newHarness(t)
	h.link.newChallenge = vector
	h.start()
	waitFor(t, "the first status check", func() (state.AppHealth, bool) { a := h.link.State.AppHealth(); return a, !a.Checked.IsZero() })
	f := h.accept()

	// Step 1: AUTH_REQUEST(tag 1, RC4(KEY, challenge)) is the spec's vector.
	step := func(name, want string) {
		t.Helper()
		p := f.nextAny()
		if got := raw(t, p); !bytes.Equal(got, unhex(t, want)) {
			t.Fatalf("%s:\n got % x\nwant %s", name, got, want)
		}
	}
	step("auth step 1", "4b9c0000 2c000000 01000000 "+vectorHex)
	// Steps 2 and 3 in one write, as the controller sends them: our
	// challenge in plain text, then its own (the same vector, so the
	// agent's answer must be the vector's ciphertext).
	plain := hex.EncodeToString(append([]byte(vectorText), 0, 0, 0, 0))
	f.write(unhex(t, "4c9c0000 2c000000 01000000 "+plain+" 4b9c0000 2c000000 01000000 "+plain))
	step("auth step 3 answer", "4c9c0000 2c000000 01000000 "+vectorHex)
	step("register", "419c0000 0c000000 "+hex.EncodeToString([]byte("1 7 10.0.0.5")))
	f.write(unhex(t, "429c0000 04000000 fd030000")) // REGISTER_REPLY 1021
	step("report (no status script: 2128)", "439c0000 04000000 50080000")
	f.write(unhex(t, "414e0000 04000000 4d000000")) // QUERY_REQUEST job 77
	step("query reply", "424e0000 11000000 "+hex.EncodeToString([]byte("77 1 100 10.0.0.5")))
	f.write(unhex(t, "85030000 05000000 68656c6c6f")) // ECHO_REQUEST "hello"
	step("echo reply", "86030000 05000000 68656c6c6f")

	l := h.waitLink("registered", func(l state.Link) bool { return l.Status == state.LinkRegistered })
	if l.Controller != "192.0.2.1:1369" || l.LastReport == nil || l.LastReport.Value != 2128 {
		t.Errorf("link state %+v", l)
	}
	if strings.Contains(h.log.String(), testKey) || strings.Contains(h.log.String(), vectorText) {
		t.Error("the log shows the KEY or a challenge")
	}
}

// TestFramingFromController: packets split byte by byte, and several in
// one write, are all read right.
func TestFramingFromController(t *testing.T) {
	t.Run("split byte by byte", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		f := h.accept()
		plain := f.authStep1()
		mine := wire.NewChallenge()
		b, _ := wire.Append(nil, wire.AuthReply{Tag: testTag, Data: plain})
		b, _ = wire.Append(b, wire.AuthRequest{Tag: testTag, Data: mine})
		for i := range b {
			f.write(b[i : i+1])
		}
		f.next(wire.TypeAuthReply)
		f.next(wire.TypeRegisterRequest)
		b, _ = wire.Append(nil, wire.RegisterReply{Result: wire.RegisterOK})
		for i := range b {
			f.write(b[i : i+1])
		}
		h.waitLink("registered", func(l state.Link) bool { return l.Status == state.LinkRegistered })
	})
	t.Run("three packets in one write", func(t *testing.T) {
		h := newHarness(t)
		h.start()
		f := h.accept()
		plain := f.authStep1()
		f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: testTag, Data: wire.NewChallenge()})
		f.next(wire.TypeAuthReply)
		f.next(wire.TypeRegisterRequest)
		f.send(wire.RegisterReply{Result: wire.RegisterOK}, wire.EchoRequest{Data: []byte("e")}, wire.QueryRequest{JobID: 9})
		if p := f.next(wire.TypeEchoReply); string(p.Data) != "e" {
			t.Errorf("echo reply %q", p.Data)
		}
		q, err := wire.ParseQueryReply(f.next(wire.TypeQueryReply).Data)
		if err != nil || q.JobID != 9 || q.Tag != testTag || q.IP != agentIP {
			t.Errorf("query reply %+v, %v", q, err)
		}
	})
}

// TestFaults: every way a controller can misbehave ends in a clear log
// line, a clean close, a backoff, and then a good reconnect; never a
// second connection (the dialer checks) or a leak (the cleanup checks).
func TestFaults(t *testing.T) {
	auth := func(f *fakeCtrl) {
		plain := f.authStep1()
		f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: testTag, Data: wire.NewChallenge()})
		f.next(wire.TypeAuthReply)
		f.next(wire.TypeRegisterRequest)
	}
	for _, tc := range []struct {
		name string
		// play misbehaves; it returns true if the controller closed the
		// connection itself.
		play func(h *harness, f *fakeCtrl) (ctrlClosed bool)
		want string // in the log line and the link's last error
	}{
		{"oversized length", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.write([]byte{0x85, 0x03, 0, 0, 0x18, 0xa0, 0, 0}) // ECHO_REQUEST of 40984 bytes
			return false
		}, "packet too long"},
		{"unknown type", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.write([]byte{0x44, 0x9c, 0, 0, 0, 0, 0, 0}) // type 40004
			return false
		}, "unknown packet type 40004"},
		{"truncated packet", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.write([]byte{0x4c, 0x9c, 0, 0, 44, 0, 0, 0, 1, 0, 0, 0, 'a'})
			f.conn.Close()
			return true
		}, "truncated packet"},
		{"wrong tag in auth reply", func(h *harness, f *fakeCtrl) bool {
			plain := f.authStep1()
			f.send(wire.AuthReply{Tag: 2, Data: plain})
			return false
		}, "for tag 2; we are tag 1"},
		{"wrong tag in auth request", func(h *harness, f *fakeCtrl) bool {
			plain := f.authStep1()
			f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: 3, Data: wire.NewChallenge()})
			return false
		}, "auth step 3 for tag 3"},
		{"wrong challenge answer", func(h *harness, f *fakeCtrl) bool {
			plain := f.authStep1()
			plain[0] ^= 0x20
			f.send(wire.AuthReply{Tag: testTag, Data: plain}, wire.AuthRequest{Tag: testTag, Data: wire.NewChallenge()})
			return false
		}, "controller failed our challenge"},
		{"challenge before answer", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.send(wire.AuthRequest{Tag: testTag, Data: wire.NewChallenge()})
			return false
		}, "unexpected OSM_AUTH_REQUEST"},
		{"silent at step 2 (unknown tag)", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			h.clk.Advance(10 * time.Second)
			return false
		}, "no OSM_AUTH_REPLY (auth step 2) within 10s: controller silent: unknown TAG 1, or overloaded"},
		{"silent at step 3", func(h *harness, f *fakeCtrl) bool {
			plain := f.authStep1()
			f.send(wire.AuthReply{Tag: testTag, Data: plain})
			f.barrier()
			h.clk.Advance(10 * time.Second)
			return false
		}, "no OSM_AUTH_REQUEST (auth step 3) within 10s"},
		{"silent at register", func(h *harness, f *fakeCtrl) bool {
			auth(f)
			h.clk.Advance(10 * time.Second)
			return false
		}, "no OSM_REGISTER_REPLY within 10s"},
		{"closes at step 2", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.conn.Close()
			return true
		}, "controller closed the connection (waiting for OSM_AUTH_REPLY, auth step 2)"},
		{"closes at step 3", func(h *harness, f *fakeCtrl) bool {
			plain := f.authStep1()
			f.send(wire.AuthReply{Tag: testTag, Data: plain})
			f.barrier()
			f.conn.Close()
			return true
		}, "controller closed the connection (waiting for OSM_AUTH_REQUEST, auth step 3)"},
		{"closes after our answer (rejected it)", func(h *harness, f *fakeCtrl) bool {
			auth(f)
			f.conn.Close()
			return true
		}, "it does that when it rejects our auth answer"},
		{"register reply 1022", func(h *harness, f *fakeCtrl) bool {
			auth(f)
			f.send(wire.RegisterReply{Result: wire.RegisterFailed})
			return false
		}, "controller refused registration (REGISTER_REPLY 1022)"},
		{"register reply 1022 then close", func(h *harness, f *fakeCtrl) bool {
			auth(f)
			f.send(wire.RegisterReply{Result: wire.RegisterFailed})
			f.conn.Close()
			return true
		}, "controller refused registration (REGISTER_REPLY 1022)"},
		{"register reply of 3 bytes", func(h *harness, f *fakeCtrl) bool {
			auth(f)
			f.write([]byte{0x42, 0x9c, 0, 0, 3, 0, 0, 0, 1, 2, 3})
			return false
		}, "bad packet from controller"},
		{"report from the controller", func(h *harness, f *fakeCtrl) bool {
			f.authStep1()
			f.send(wire.Report{Status: 2000})
			return false
		}, "unexpected OSM_REPORT"},
		{"echo never answered", func(h *harness, f *fakeCtrl) bool {
			f.handshake()
			f.barrier() // registered: the heartbeat timer runs
			h.clk.Advance(30 * time.Second)
			f.next(wire.TypeEchoRequest)
			h.clk.Advance(10 * time.Second)
			return false
		}, "controller did not answer ECHO_REQUEST within 10s: link dead"},
		{"closes when registered", func(h *harness, f *fakeCtrl) bool {
			f.handshake()
			f.barrier()
			f.conn.Close()
			return true
		}, "controller closed the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			f := h.accept()
			if tc.play(h, f) {
				waitFor(t, "the agent to close its end", func() (int32, bool) { n := h.open.Load(); return n, n == 0 })
			} else {
				f.closed()
			}
			h.backingOff(tc.want)
			h.clk.Advance(time.Second) // the first backoff, without jitter
			f2 := h.accept()
			f2.handshake()
			l := h.waitLink("registered again", func(l state.Link) bool { return l.Status == state.LinkRegistered })
			if l.Reconnects != 1 || l.LastError != "" {
				t.Errorf("link state %+v: want 1 reconnect and the last error cleared", l)
			}
			// attempts counts this outage: 2 when the first session never
			// registered, else 1.
			var regs []string
			for _, line := range strings.Split(h.log.String(), "\n") {
				if strings.Contains(line, `msg="registered with controller"`) {
					regs = append(regs, line)
				}
			}
			want := "attempts=2"
			if len(regs) == 2 {
				want = "attempts=1"
			}
			if len(regs) == 0 || !strings.Contains(regs[len(regs)-1], want) {
				t.Errorf("registration log lines %q: want the last with %s", regs, want)
			}
			if n := h.dials.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestBackoffGrows: failures in a row wait 1 s, 2 s, 4 s; a registration
// that the controller ends at once does not reset the backoff (8 s next).
func TestBackoffGrows(t *testing.T) {
	h := newHarness(t)
	h.start()
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		f := h.accept()
		f.authStep1()
		f.send(wire.Report{Status: 1}) // any protocol error
		f.closed()
		h.backingOff("unexpected OSM_REPORT")
		h.clk.Advance(d - time.Millisecond)
		h.noDial()
		h.clk.Advance(time.Millisecond)
		if i == 2 {
			f = h.accept()
			f.handshake()
			f.barrier()
			f.conn.Close()
			h.backingOff("controller closed the connection")
			h.clk.Advance(8*time.Second - time.Millisecond)
			h.noDial()
			h.clk.Advance(time.Millisecond)
			h.accept()
			return
		}
	}
}

// TestQueryAndEchoAnyTime: the agent answers ECHO in every phase, and
// QUERY, with the state of that phase, once the controller has passed our
// challenge (never before: the field's controllers query registered
// sessions only). A repeated answer is logged at debug.
func TestQueryAndEchoAnyTime(t *testing.T) {
	h := newHarness(t)
	h.start()
	f := h.accept()
	query := func(job int32, want int32) {
		t.Helper()
		f.send(wire.EchoRequest{Data: []byte{byte(job)}}, wire.QueryRequest{JobID: job})
		if p := f.next(wire.TypeEchoReply); !bytes.Equal(p.Data, []byte{byte(job)}) {
			t.Errorf("echo reply % x", p.Data)
		}
		q, err := wire.ParseQueryReply(f.next(wire.TypeQueryReply).Data)
		if err != nil {
			t.Fatal(err)
		}
		if want := (wire.QueryReply{JobID: job, Tag: testTag, Status: want, IP: agentIP}); q != want {
			t.Errorf("query reply %+v, want %+v", q, want)
		}
	}
	plain := f.authStep1()
	f.send(wire.QueryRequest{JobID: 1}, wire.EchoRequest{Data: []byte("after")})
	if p := f.next(wire.TypeEchoReply); string(p.Data) != "after" { // not the QUERY_REPLY
		t.Errorf("echo reply %q", p.Data)
	}
	f.send(wire.AuthReply{Tag: testTag, Data: plain})
	query(2, wire.StateAuthenticating)
	f.send(wire.AuthRequest{Tag: testTag, Data: wire.NewChallenge()})
	f.next(wire.TypeAuthReply)
	f.next(wire.TypeRegisterRequest)
	query(3, wire.StateRegistering)
	f.send(wire.RegisterReply{Result: wire.RegisterOK})
	query(4, wire.StateAppUnknown) // no status script
	for job := range int32(5) {
		query(5+job, wire.StateAppUnknown)
	}
	// Info for each new answer (5, 8, 100), debug for the repeats.
	if n, all := h.logged(`level=INFO msg="query answered"`), h.logged(`msg="query answered"`); n != 3 || all != 8 {
		t.Errorf("%d of %d query lines at info, want 3 of 8", n, all)
	}
	if !strings.Contains(h.log.String(), "ignoring OSM_QUERY_REQUEST") {
		t.Error("no debug line for the query before the controller passed our challenge")
	}
}
