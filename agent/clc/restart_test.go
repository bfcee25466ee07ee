package clc

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clcd"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestControllerRestarts runs the link against the in-tree controller on
// loopback, real time, and restarts the controller 20 times: the agent is
// back, registered and reporting, after each (the controller's JOIN at
// start-up cuts the backoff short), and the goroutine and fd counts end
// where they were after the first registration.
func TestControllerRestarts(t *testing.T) {
	joinAddr := make(chan netip.AddrPort, 1)
	udp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	joinAddr <- udp.LocalAddr().(*net.UDPAddr).AddrPort()
	udp.Close() // the port, for the controller to send JOINs to; the link reopens it

	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{testTag: testKey}, JoinTo: <-joinAddr, JoinEvery: -1}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	log, buf := testlog.New(t)
	st := &state.Store{}
	link := &Link{
		Tag: testTag, Key: testKey, Controller: addr.String(), Group: netip.MustParseAddrPort("228.0.0.1:1369"),
		// Stable at once and no JOIN spread: this test is about restarts,
		// not about a fleet or a second instance.
		StatusPeriod: time.Hour, State: st, Log: log, StableAfter: time.Millisecond, JoinSpread: -1,
		ListenJoin: func(context.Context, netip.AddrPort) (JoinConn, error) {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(srv.JoinTo))
			if err != nil {
				return nil, err
			}
			return groupConn{c, netip.MustParseAddr("228.0.0.1")}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-linkDone; err != nil {
			t.Errorf("link Run: %v", err)
		}
		noLeaks(t)
	}()

	wait, waitCancel := context.WithTimeout(context.Background(), time.Minute)
	defer waitCancel()
	runServer := func() (stop func()) {
		c, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(c) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("controller Run: %v", err)
			}
		}
	}
	// registered waits until the controller has n registrations and the
	// report that follows each, and the link says registered.
	registered := func(n int) {
		t.Helper()
		if err := srv.Wait(wait, func(s clcd.Stats) bool { return s.Registrations[testTag] >= n && s.Reports[testTag] == 2128 }); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the link to be registered", func() (state.Link, bool) {
			l := st.Link()
			return l, l.Status == state.LinkRegistered && l.LastReport != nil
		})
		// Stable (after 1 ms here): a restart is not a second instance
		// knocking it off, and the backoff starts afresh.
		waitFor(t, "the link to be stable", func() (int, bool) {
			k := strings.Count(buf.String(), "link stable")
			return k, k >= n
		})
	}
	count := func() (int, int) { return runtime.NumGoroutine(), openFDs(t) }

	stop := runServer()
	registered(1)
	g0, fd0 := count()
	for i := range 20 {
		stop()
		// The link notices at once (the connection closes), waits, finds
		// the controller down and listens for a JOIN.
		waitFor(t, "the link to listen for a JOIN", func() (state.Link, bool) {
			l := st.Link()
			return l, l.Status == state.LinkDiscovering
		})
		start := time.Now()
		stop = runServer()
		registered(i + 2)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("restart %d: re-registered after %s; the JOIN should cut the backoff", i+1, d)
		}
	}
	waitFor(t, "goroutine and fd counts to settle", func() ([2]int, bool) {
		g, fd := count()
		return [2]int{g, fd}, g == g0 && fd == fd0
	})
	stop()
	if l := st.Link(); l.Reconnects < 20 {
		t.Errorf("%d reconnects counted, want at least 20", l.Reconnects)
	}
}

// TestDeadController: the in-tree controller, told never to answer echo,
// stands for one that died without closing: the heartbeat finds out, the
// link drops the connection and comes back (real time, short periods).
func TestDeadController(t *testing.T) {
	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{testTag: testKey}, NoEcho: true}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	log, buf := testlog.New(t)
	link := &Link{Tag: testTag, Key: testKey, Controller: addr.String(), StatusPeriod: time.Hour, State: &state.Store{}, Log: log,
		Heartbeat: 20 * time.Millisecond, EchoTimeout: 50 * time.Millisecond,
		NewBackoff: func() *backoff.Backoff { return backoff.New(10*time.Millisecond, 50*time.Millisecond) }}
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()
	wait, waitCancel := context.WithTimeout(ctx, time.Minute)
	defer waitCancel()
	// Registered twice: the second time after the heartbeat gave up on the
	// first connection and the backoff ran out.
	if err := srv.WaitRegistered(wait, testTag, 2); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "controller did not answer ECHO_REQUEST within 50ms: link dead") {
		t.Error("no log line about the dead link")
	}
	cancel()
	if err := <-linkDone; err != nil {
		t.Error(err)
	}
	<-srvDone
	noLeaks(t)
}
