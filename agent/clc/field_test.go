package clc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clc/wire"
	"osmanager/agent/clcd"
	"osmanager/agent/clock"
	"osmanager/agent/conf"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

// TestKickedBacksOffToCap: a session the controller closes soon after
// registering, twice in a row, is another instance with our TAG: said once,
// and the link waits out the cap (30 s) instead of knocking it off again
// within a second. A session that stays registered for a minute starts
// the backoff afresh.
func TestKickedBacksOffToCap(t *testing.T) {
	h := newHarness(t)
	h.start()
	kick := func() *fakeCtrl {
		t.Helper()
		f := h.accept()
		f.handshake()
		f.barrier()
		h.clk.Advance(time.Second)
		f.conn.Close()
		return f
	}
	kick()
	h.backingOff("controller closed the connection 1s after registering")
	h.clk.Advance(time.Second)
	kick()
	h.backingOff("controller closed the connection 1s after registering, 2 times in a row: another instance with TAG 1 is registered?")
	h.clk.Advance(30*time.Second - time.Millisecond)
	h.noDial()
	h.clk.Advance(time.Millisecond)
	kick()
	h.backingOff("3 times in a row: another instance with TAG 1 is registered?")
	if n := h.logged(`level=WARN msg="controller link down" service=clc err="controller closed the connection 1s after registering, `); n != 1 {
		t.Errorf("%d warnings about another instance, want 1 (repeats at debug)", n)
	}
	h.clk.Advance(30 * time.Second)

	// This time it stays: answer the heartbeats for a minute.
	f := h.accept()
	f.handshake()
	f.barrier()
	for range 2 {
		h.clk.Advance(27 * time.Second) // 0.9 × 30 s with this harness's Rand
		p := f.next(wire.TypeEchoRequest)
		f.send(wire.EchoReply(wire.EchoRequest{Data: p.Data}))
		f.barrier()
	}
	h.clk.Advance(6 * time.Second)
	h.waitLogged("link stable", 1)
	f.conn.Close()
	h.backingOff("controller closed the connection")
	h.clk.Advance(time.Second) // afresh: 1 s
	f = h.accept()
	f.handshake()
	f.barrier()
	lines := strings.Split(strings.TrimSpace(h.log.String()), "\n")
	var regs []string
	for _, l := range lines {
		if strings.Contains(l, `msg="registered with controller"`) {
			regs = append(regs, l)
		}
	}
	for i, l := range regs {
		if !strings.Contains(l, "attempts=1") {
			t.Errorf("registration %d: %s: want attempts=1 (one attempt in each outage)", i+1, l)
		}
	}
}

// TestHeartbeatJitter: each heartbeat period is drawn within ±10 % of
// Heartbeat, so a fleet registered in the same second does not stay in
// phase. The link's Rand is fixed here: 0 gives 27 s, 0.99 gives 32.94 s.
func TestHeartbeatJitter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        float64
		min, max int // the second of the first ECHO_REQUEST
	}{
		{"low", 0, 27, 27},
		{"high", 0.99, 33, 33},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.link.Rand = func() float64 { return tc.r }
			h.start()
			f := h.accept()
			f.handshake()
			// The report timer is set by the first REPORT, which waits for
			// the status loop's first result: under load that may come
			// after the registration.
			h.waitLink("the first report", func(l state.Link) bool { return l.LastReport != nil })
			f.barrier()
			// Registered: the status loop's, the stable, the heartbeat and
			// the report timers wait. The heartbeat's firing is the first
			// to leave that set, within the Advance that passes it.
			if n := h.clk.Pending(); n != 4 {
				t.Fatalf("%d timers pending, want 4", n)
			}
			at := 0
			for sec := 1; sec <= 40 && at == 0; sec++ {
				h.clk.Advance(time.Second)
				if h.clk.Pending() != 4 { // 3 as it fired, 5 once handled (echo timer)
					at = sec
				}
			}
			f.next(wire.TypeEchoRequest)
			if at < tc.min || at > tc.max {
				t.Errorf("first heartbeat at %d s, want %d..%d s", at, tc.min, tc.max)
			}
		})
	}
}

// TestChallengesCarryNoStructure: a fake controller that hangs up after
// step 1 collects our challenges (decrypting them with the KEY, which a
// fake does not have: it stands for the keystream it would learn). Over
// many handshakes every byte position is uniform (chi-square over the 16
// values of each nibble, 15 degrees of freedom, bound at p ≈ 1e-7), so
// the ciphertexts leak nothing of the keystream; the old UUID challenges
// fail at once. The agent never answers a challenge of such a fake.
func TestChallengesCarryNoStructure(t *testing.T) {
	h := newHarness(t)
	h.start()
	const n = 400
	var hi, lo [wire.AuthDataLen][16]int
	for range n {
		f := h.accept()
		plain := f.authStep1()
		for i, b := range plain {
			hi[i][b>>4]++
			lo[i][b&15]++
		}
		f.conn.Close()
		waitFor(t, "the agent to close", func() (int32, bool) { n := h.open.Load(); return n, n == 0 })
		h.waitLink("backing off", func(l state.Link) bool { return l.Status == state.LinkDisconnected && l.LastError != "" })
		h.clk.Advance(time.Minute) // past the cap and the attempt limit
	}
	chi := func(c [16]int) float64 {
		want := float64(n) / 16
		x := 0.0
		for _, v := range c {
			x += (float64(v) - want) * (float64(v) - want) / want
		}
		return x
	}
	for i := range wire.AuthDataLen {
		if x := chi(hi[i]); x > 60 {
			t.Errorf("byte %d: high nibbles chi-square %.1f > 60: the challenge has structure", i, x)
		}
		if x := chi(lo[i]); x > 60 {
			t.Errorf("byte %d: low nibbles chi-square %.1f > 60: the challenge has structure", i, x)
		}
	}
	if strings.Contains(h.log.String(), "OSM_AUTH_REPLY to") {
		t.Error("the agent answered something")
	}
}

// TestConfigErrors: a KEY under 5 bytes is a configuration error named as
// such (the field's RC4 refuses it and the controller stays silent); an
// empty CLC_IP or a CLC_PORT of 0 means discovery.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		want string
	}{
		{"4 bytes", "abcd", "KEY shorter than 5 bytes"},
		{"1 byte", "k", "KEY shorter than 5 bytes"},
		{"a colon", "abc:def", "KEY contains ':'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.Store{}
			err := (&Link{Tag: 1, Key: tc.key, State: st}).Run(context.Background())
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want ErrConfig saying %q", err, tc.want)
			}
			if l := st.Link(); !strings.Contains(l.LastError, tc.want) {
				t.Errorf("link state %+v", l)
			}
		})
	}
	if err := (&Link{Tag: 1, Key: "abcde", Controller: "127.0.0.1:1"}).check(); err != nil {
		t.Errorf("5-byte KEY refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		c    conf.Config
		want string
	}{
		{"CLC_IP and port", conf.Config{CLCIP: "10.0.0.1", CLCPort: 1369}, "10.0.0.1:1369"},
		{"CLC_PORT 0: discover", conf.Config{CLCIP: "10.0.0.1", CLCPort: 0}, ""},
		{"no CLC_IP: discover", conf.Config{CLCPort: 1369}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromConf(&tc.c).Controller; got != tc.want {
				t.Errorf("Controller = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestClonedInstances: two links with the same TAG and KEY (a cloned VM)
// against the in-tree controller, which closes the older session when a
// new one authenticates, as the field's does. Over five minutes of fake
// time they register about once per 30 s between them, not once a
// second, and each says "another instance?" at most once.
func TestClonedInstances(t *testing.T) {
	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{testTag: testKey}}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	type inst struct {
		st   *state.Store
		log  *testlog.Buffer
		clk  *clock.Fake // one each: its pending timers tell what it waits for
		done chan error
	}
	start := func() *inst {
		log, buf := testlog.New(t)
		i := &inst{st: &state.Store{}, log: buf, clk: clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), done: make(chan error, 1)}
		l := &Link{Tag: testTag, Key: testKey, Controller: addr.String(), State: i.st, Log: log, Clock: i.clk,
			StatusPeriod: 1000 * time.Hour, Heartbeat: 1000 * time.Hour,
			NewBackoff: func() *backoff.Backoff {
				b := backoff.New(time.Second, 30*time.Second)
				b.Rand = func() float64 { return 0 }
				return b
			},
		}
		go func() { i.done <- l.Run(ctx) }()
		return i
	}
	var insts []*inst
	defer func() {
		cancel()
		for _, i := range insts {
			if err := <-i.done; err != nil {
				t.Error(err)
			}
		}
		<-srvDone
		noLeaks(t)
	}()
	// quiet: each link waits (its backoff timer and the status loop's
	// set) or is registered (status, heartbeat, report and maybe the
	// stable timer), and the controller's sessions are the links that say
	// registered (a kick has been noticed).
	quiet := func() {
		t.Helper()
		waitFor(t, "the links to settle", func() (string, bool) {
			reg := 0
			var s []string
			for _, i := range insts {
				l := i.st.Link()
				p := i.clk.Pending()
				s = append(s, fmt.Sprint(l.Status, p))
				switch {
				case l.Status == state.LinkRegistered && p >= 3:
					reg++
				case l.Status == state.LinkDisconnected && p == 2:
				default:
					return strings.Join(s, ","), false
				}
			}
			st := srv.Stats()
			return fmt.Sprint(s, st.Sessions), st.Sessions == reg && len(st.Registered) == reg
		})
	}
	insts = append(insts, start())
	wait, waitCancel := context.WithTimeout(ctx, waitLimit)
	defer waitCancel()
	if err := srv.WaitRegistered(wait, testTag, 1); err != nil {
		t.Fatal(err)
	}
	quiet()
	insts[0].clk.Advance(time.Minute) // the first is stable
	waitFor(t, "stable", func() (int, bool) { n := strings.Count(insts[0].log.String(), "link stable"); return n, n == 1 })
	insts = append(insts, start())
	if err := srv.WaitRegistered(wait, testTag, 2); err != nil {
		t.Fatal(err)
	}
	quiet()
	before := srv.Stats().Registrations[testTag]
	for range 300 {
		for _, i := range insts {
			i.clk.Advance(time.Second)
		}
		quiet()
	}
	regs := srv.Stats().Registrations[testTag] - before
	if regs > 20 {
		t.Errorf("%d registrations in 5 minutes, want at most 20 (about one per 30 s)", regs)
	}
	warned := 0
	for n, i := range insts {
		w := 0
		for _, line := range strings.Split(i.log.String(), "\n") {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "another instance with TAG 1 is registered?") {
				w++
			}
		}
		if w > 1 {
			t.Errorf("instance %d: %d warnings about another instance, want at most 1 (repeats at debug)", n, w)
		}
		warned += w
	}
	if warned == 0 {
		t.Error("no instance said another instance with TAG 1 is registered")
	}
}

// joinHub passes the in-tree controller's JOINs (sent to one loopback UDP
// port) to every link's listener, as a multicast group would.
type joinHub struct {
	udp  *net.UDPConn
	mu   sync.Mutex
	subs map[chan []byte]bool
	wg   sync.WaitGroup
}

func newJoinHub(t *testing.T) *joinHub {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	h := &joinHub{udp: c, subs: map[chan []byte]bool{}}
	h.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			h.mu.Lock()
			for ch := range h.subs {
				select {
				case ch <- append([]byte(nil), buf[:n]...):
				default:
				}
			}
			h.mu.Unlock()
		}
	})
	t.Cleanup(func() { c.Close(); h.wg.Wait() })
	return h
}

func (h *joinHub) addr() netip.AddrPort { return h.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

func (h *joinHub) listen(context.Context, netip.AddrPort) (JoinConn, error) {
	c := &hubConn{h: h, ch: make(chan []byte, 4), closed: make(chan struct{})}
	h.mu.Lock()
	h.subs[c.ch] = true
	h.mu.Unlock()
	return c, nil
}

type hubConn struct {
	h      *joinHub
	ch     chan []byte
	closed chan struct{}
	once   sync.Once
}

func (c *hubConn) ReadJoin(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	select {
	case d := <-c.ch:
		return copy(b, d), c.h.addr(), testGroup.Addr(), nil
	case <-c.closed:
		return 0, netip.AddrPort{}, netip.Addr{}, net.ErrClosed
	}
}

func (c *hubConn) Close() error {
	c.once.Do(func() {
		c.h.mu.Lock()
		delete(c.h.subs, c.ch)
		c.h.mu.Unlock()
		close(c.closed)
	})
	return nil
}

// TestFleetRestart: 50 links (real time, the defaults) against one
// in-tree controller that is stopped and started again: after its JOIN
// the connection attempts stay spread (at most 20 in any 100 ms, over at
// least a second), and all are registered again within 5 s.
func TestFleetRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("real time, 5 s")
	}
	const n = 50
	hub := newJoinHub(t)
	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{}, JoinTo: hub.addr(), JoinEvery: -1}
	for tag := range int32(n) {
		srv.Instances[tag+1] = fmt.Sprintf("%s-%d", testKey, tag+1)
	}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	runServer := func() (stop func()) {
		c, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(c) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller Run: %v", err)
			}
		}
	}
	stopSrv := runServer()
	var (
		mu    sync.Mutex
		dials []time.Time
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stores := make([]*state.Store, n)
	for i := range n {
		stores[i] = &state.Store{}
		l := &Link{Tag: int32(i + 1), Key: srv.Instances[int32(i+1)], Controller: addr.String(), Group: testGroup,
			StatusPeriod: time.Hour, State: stores[i], ListenJoin: hub.listen,
			Dial: func(ctx context.Context, a string) (net.Conn, error) {
				mu.Lock()
				dials = append(dials, time.Now())
				mu.Unlock()
				var d net.Dialer
				return d.DialContext(ctx, "tcp", a)
			},
		}
		wg.Go(func() {
			if err := l.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		noLeaks(t)
	}()
	wait, waitCancel := context.WithTimeout(ctx, time.Minute)
	defer waitCancel()
	all := func(k int) error {
		return srv.Wait(wait, func(s clcd.Stats) bool {
			for tag := range int32(n) {
				if s.Registrations[tag+1] < k {
					return false
				}
			}
			return true
		})
	}
	if err := all(1); err != nil {
		t.Fatal(err)
	}
	stopSrv()
	// Every link finds the controller down and listens for its JOIN.
	waitFor(t, "all links discovering", func() (int, bool) {
		k := 0
		for _, st := range stores {
			if st.Link().Status == state.LinkDiscovering {
				k++
			}
		}
		return k, k == n
	})
	restart := time.Now()
	stopSrv = runServer()
	defer func() { stopSrv() }()
	if err := all(2); err != nil {
		t.Fatal(err)
	}
	took := time.Since(restart)
	mu.Lock()
	var after []time.Time
	for _, d := range dials {
		if d.After(restart) {
			after = append(after, d)
		}
	}
	mu.Unlock()
	slices.SortFunc(after, func(a, b time.Time) int { return a.Compare(b) })
	peak, j := 0, 0
	for i := range after {
		for after[i].Sub(after[j]) >= 100*time.Millisecond {
			j++
		}
		peak = max(peak, i-j+1)
	}
	t.Logf("%d links re-registered %s after the restart; %d attempts, peak %d per 100 ms, over %s",
		n, took.Round(time.Millisecond), len(after), peak, after[len(after)-1].Sub(after[0]).Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("all re-registered after %s, want within 5 s", took)
	}
	if peak > 20 {
		t.Errorf("%d connection attempts within 100 ms, want at most 20: the fleet comes back as a herd", peak)
	}
	if span := after[len(after)-1].Sub(after[0]); span < time.Second {
		t.Errorf("the attempts after the restart span %s, want at least 1 s", span)
	}
}
