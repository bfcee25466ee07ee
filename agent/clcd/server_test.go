package clcd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
)

const (
	key       = "015e33a8-787d-457e-b84d-c2a101a816e0"
	waitLimit = 10 * time.Second
)

// syncBuffer collects the JSON event lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// events parses the JSON lines and returns the event names.
func (s *syncBuffer) events(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		var e struct {
			Event string `json:"event"`
			Time  string `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Event == "" || e.Time == "" {
			t.Fatalf("log line %q is not a JSON event (%v)", line, err)
		}
		names = append(names, e.Event)
	}
	return names
}

// start runs a server on loopback until the test ends.
func start(t *testing.T, s *Server) netip.AddrPort {
	t.Helper()
	if s.Listen == "" {
		s.Listen = "127.0.0.1:0"
	}
	if s.Instances == nil {
		s.Instances = map[int32]string{1: key, 2: key + "2"}
	}
	addr, err := s.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return")
		}
	})
	return addr
}

// agent is a scripted agent connection.
type agent struct {
	t    *testing.T
	conn net.Conn
	rd   *wire.Reader
}

func dial(t *testing.T, addr netip.AddrPort) *agent {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return &agent{t: t, conn: c, rd: wire.NewReader(c)}
}

func (a *agent) send(ms ...wire.Message) {
	a.t.Helper()
	var b []byte
	for _, m := range ms {
		b, _ = wire.Append(b, m)
	}
	if _, err := a.conn.Write(b); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agent) next() wire.Message {
	a.t.Helper()
	p, err := a.rd.Next()
	if err != nil {
		a.t.Fatalf("read: %v", err)
	}
	m, err := wire.Decode(p)
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

// closed checks the server closed the connection without sending more.
func (a *agent) closed() {
	a.t.Helper()
	p, err := a.rd.Next()
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(errString(err), "connection reset") {
		a.t.Fatalf("got %s, %v; want the server to close", p.Type, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// still checks the connection is open and nothing was sent: an echo
// comes straight back.
func (a *agent) still() {
	a.t.Helper()
	a.send(wire.EchoRequest{Data: []byte("still?")})
	if m, ok := a.next().(wire.EchoReply); !ok || string(m.Data) != "still?" {
		a.t.Fatalf("got %#v, want the echo straight back", m)
	}
}

// auth runs the agent side of the handshake; answerUpper sends the
// answer to the server's challenge in upper case (strcasecmp accepts it).
func (a *agent) auth(tag int32, k string, answerUpper bool) {
	a.t.Helper()
	mine := wire.NewChallenge()
	enc, _ := wire.Crypt(k, mine)
	a.send(wire.AuthRequest{Tag: tag, Data: enc})
	reply, ok := a.next().(wire.AuthReply)
	if !ok || reply.Tag != tag || !mine.Equal(reply.Data) {
		a.t.Fatalf("step 2: %+v", reply)
	}
	req, ok := a.next().(wire.AuthRequest)
	if !ok || req.Tag != tag {
		a.t.Fatalf("step 3: %+v", req)
	}
	plain := req.Data
	if answerUpper {
		plain = [wire.AuthDataLen]byte(bytes.ToUpper(plain[:]))
	}
	ans, _ := wire.Crypt(k, plain)
	a.send(wire.AuthReply{Tag: tag, Data: ans})
}

func (a *agent) register(tag int32) {
	a.t.Helper()
	a.send(wire.RegisterRequest{Tag: tag, Status: 7, IP: "127.0.0.1"})
	if r, ok := a.next().(wire.RegisterReply); !ok || r.Result != wire.RegisterOK {
		a.t.Fatalf("register reply %#v", r)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return c
}

func TestSession(t *testing.T) {
	log := &syncBuffer{}
	s := &Server{Log: log}
	addr := start(t, s)
	a := dial(t, addr)
	a.auth(1, key, true)
	a.register(1)
	if err := s.WaitRegistered(ctx(t), 1, 1); err != nil {
		t.Fatal(err)
	}
	a.send(wire.Report{Status: 2003})
	a.still() // a REPORT is never answered
	if err := s.Wait(ctx(t), func(st Stats) bool { return st.Reports[1] == 2003 }); err != nil {
		t.Fatal(err)
	}
	// A query on demand; the reply comes back to the caller.
	got := make(chan wire.QueryReply, 1)
	go func() {
		r, err := s.Query(ctx(t), 1)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	q, ok := a.next().(wire.QueryRequest)
	if !ok {
		t.Fatalf("want a query, got %#v", q)
	}
	a.send(wire.QueryReply{JobID: q.JobID, Tag: 1, Status: 101, IP: "127.0.0.1"})
	if r := <-got; r.Status != 101 || r.JobID != q.JobID {
		t.Errorf("query reply %+v", r)
	}
	// A second REGISTER on the connection gets no reply at all.
	a.send(wire.RegisterRequest{Tag: 1, Status: 7, IP: "127.0.0.1"})
	a.still()
	a.conn.Close()
	if err := s.Wait(ctx(t), func(st Stats) bool { return st.Sessions == 0 }); err != nil {
		t.Fatal(err)
	}
	want := []string{EventListening, EventConnected, EventAuthRequest, EventAuthenticated, EventRegistered, EventReport,
		EventEcho, EventQuerySent, EventQueryReply, EventRegisterIgnored, EventEcho, EventClosed}
	if got := log.events(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	if strings.Contains(log.String(), key) {
		t.Error("the event log shows a KEY")
	}
}

func TestControllerBehaviour(t *testing.T) {
	for _, tc := range []struct {
		name string
		play func(t *testing.T, s *Server, a *agent)
	}{
		{"unknown tag: no reply, stays open", func(t *testing.T, s *Server, a *agent) {
			enc, _ := wire.Crypt(key, wire.NewChallenge())
			a.send(wire.AuthRequest{Tag: 99, Data: enc})
			a.still()
		}},
		{"wrong answer: closed without a word", func(t *testing.T, s *Server, a *agent) {
			mine := wire.NewChallenge()
			enc, _ := wire.Crypt(key, mine)
			a.send(wire.AuthRequest{Tag: 1, Data: enc})
			a.next()
			a.next()
			a.send(wire.AuthReply{Tag: 1, Data: [wire.AuthDataLen]byte{1, 2, 3}})
			a.closed()
		}},
		{"wrong key: the agent sees a wrong answer", func(t *testing.T, s *Server, a *agent) {
			mine := wire.NewChallenge()
			enc, _ := wire.Crypt("not-the-key", mine)
			a.send(wire.AuthRequest{Tag: 1, Data: enc})
			if r := a.next().(wire.AuthReply); mine.Equal(r.Data) {
				t.Error("a wrong key passed step 2")
			}
		}},
		{"register before auth: 1022", func(t *testing.T, s *Server, a *agent) {
			a.send(wire.RegisterRequest{Tag: 1, Status: 7, IP: "127.0.0.1"})
			if r := a.next().(wire.RegisterReply); r.Result != wire.RegisterFailed {
				t.Errorf("reply %d", r.Result)
			}
		}},
		{"register with status 8: 1022", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.send(wire.RegisterRequest{Tag: 1, Status: 8, IP: "127.0.0.1"})
			if r := a.next().(wire.RegisterReply); r.Result != wire.RegisterFailed {
				t.Errorf("reply %d", r.Result)
			}
		}},
		{"register as another tag: 1022", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.send(wire.RegisterRequest{Tag: 2, Status: 7, IP: "127.0.0.1"})
			if r := a.next().(wire.RegisterReply); r.Result != wire.RegisterFailed {
				t.Errorf("reply %d", r.Result)
			}
		}},
		{"report with the register: register unanswered", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.send(wire.RegisterRequest{Tag: 1, Status: 7, IP: "127.0.0.1"}, wire.Report{Status: 2000})
			a.still()
			if n := s.Stats().Registrations[1]; n != 0 {
				t.Errorf("%d registrations", n)
			}
		}},
		{"same tag again closes the older session", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.register(1)
			b := dial(t, s.Addr())
			b.auth(1, key, false)
			b.register(1)
			a.closed()
			b.still()
		}},
		{"oversized packet: closed", func(t *testing.T, s *Server, a *agent) {
			a.conn.Write([]byte{0x85, 3, 0, 0, 0xf8, 0x9f, 0, 0}) // 40952 bytes of echo
			a.closed()
		}},
		{"largest packet: answered", func(t *testing.T, s *Server, a *agent) {
			a.send(wire.EchoRequest{Data: make([]byte, wire.MaxData)})
			if m := a.next().(wire.EchoReply); len(m.Data) != wire.MaxData {
				t.Errorf("echo of %d bytes", len(m.Data))
			}
		}},
		{"unknown type: closed", func(t *testing.T, s *Server, a *agent) {
			a.conn.Write([]byte{0x44, 0x9c, 0, 0, 0, 0, 0, 0})
			a.closed()
		}},
		{"malformed query reply: closed", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.register(1)
			go s.Query(ctx(t), 1)
			a.next()
			a.conn.Write([]byte{0x42, 0x4e, 0, 0, 3, 0, 0, 0, '1', ' ', '2'})
			a.closed()
		}},
		{"query timeout: dropped", func(t *testing.T, s *Server, a *agent) {
			a.auth(1, key, false)
			a.register(1)
			qctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			go a.rd.Next() // the query, never answered (read raw: no t.Fatal off the test goroutine)
			if _, err := s.Query(qctx, 1); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("query: %v", err)
			}
			if err := s.Wait(ctx(t), func(st Stats) bool { return st.Sessions == 0 }); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Log: &syncBuffer{}}
			addr := start(t, s)
			tc.play(t, s, dial(t, addr))
		})
	}
}

func TestNoEcho(t *testing.T) {
	s := &Server{NoEcho: true, Log: &syncBuffer{}}
	a := dial(t, start(t, s))
	a.auth(1, key, false)
	a.register(1)
	// An echo, then something the server does answer: the answer must
	// come first, since an echo reply would have been sent before it.
	enc, _ := wire.Crypt(key, wire.NewChallenge())
	a.send(wire.EchoRequest{Data: []byte("x")}, wire.AuthRequest{Tag: 1, Data: enc})
	if m, ok := a.next().(wire.AuthReply); !ok {
		t.Errorf("got %#v, want no echo reply but the AUTH_REPLY", m)
	}
	if !strings.Contains(s.Log.(*syncBuffer).String(), "not answered (NoEcho)") {
		t.Error("no event for the unanswered echo")
	}
}

func TestJoinAndRestart(t *testing.T) {
	udp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udp.SetReadDeadline(time.Now().Add(waitLimit))
	s := &Server{Listen: "127.0.0.1:0", Instances: map[int32]string{1: key}, JoinTo: udp.LocalAddr().(*net.UDPAddr).AddrPort(), JoinEvery: -1}
	buf := make([]byte, 100)
	for run := range 3 {
		addr, err := s.ListenAndAddr()
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(c) }()
		n, _, err := udp.ReadFrom(buf) // the JOIN at start-up
		if err != nil {
			t.Fatal(err)
		}
		want, _ := wire.Append(nil, wire.Join{Addr: addr})
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("run %d: JOIN % x, want % x", run, buf[:n], want)
		}
		if err := s.SendJoin(); err != nil { // on demand
			t.Error(err)
		}
		if n, _, _ := udp.ReadFrom(buf); !bytes.Equal(buf[:n], want) {
			t.Errorf("run %d: JOIN on demand % x", run, buf[:n])
		}
		a := dial(t, addr)
		a.auth(1, key, false)
		a.register(1)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		a.closed()
		if got := s.Stats().Registrations[1]; got != run+1 {
			t.Errorf("%d registrations after %d runs", got, run+1)
		}
		if run > 0 && addr != s.Addr() {
			t.Errorf("restart moved from %s to %s", addr, s.Addr())
		}
	}
}

// TestShortKeySilent: an instance whose KEY is under 5 bytes gets no reply
// at all, as from the field's controllers, whose RC4 refuses such keys.
func TestShortKeySilent(t *testing.T) {
	s := &Server{Instances: map[int32]string{3: "abcd"}, Log: &syncBuffer{}}
	a := dial(t, start(t, s))
	enc, _ := wire.Crypt("abcd", wire.NewChallenge())
	a.send(wire.AuthRequest{Tag: 3, Data: enc})
	a.still() // the echo comes back, the AUTH_REPLY never
	if !strings.Contains(s.Log.(*syncBuffer).String(), `"event":"unknown_tag"`) {
		t.Error("no unknown_tag event")
	}
}
