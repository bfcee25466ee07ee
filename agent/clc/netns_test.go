package clc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/clcd"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

// netnsEnv names the namespace a re-executed test binary runs in.
const netnsEnv = "OSM_CLC_TEST_NETNS"

// TestMulticastDiscovery finds the controller by a real multicast JOIN:
// the link has no CLC_IP, joins group 228.0.0.1 with the default listener,
// and the in-tree controller multicasts its JOIN from 127.0.0.1. It runs in
// a network namespace it creates (lo up, a route for 224.0.0.0/4 on lo), by
// re-running this test binary there with `ip netns exec`, so every socket
// of the link and the controller lives in it and the host is untouched.
// Skipped without root or iproute2.
func TestMulticastDiscovery(t *testing.T) {
	if inNetns(t, "TestMulticastDiscovery") {
		multicastDiscoveryInNetns(t)
	}
}

// TestUnicastJoinRefused: with the default listener, a JOIN sent unicast
// to the agent's address and CLC_MCAST_PORT never reaches the link (the
// socket is bound to the group); one sent to the group does. The unicast
// one goes first and names a decoy controller, which must see no
// connection. Same namespace set-up as TestMulticastDiscovery.
func TestUnicastJoinRefused(t *testing.T) {
	if inNetns(t, "TestUnicastJoinRefused") {
		unicastJoinRefusedInNetns(t)
	}
}

// inNetns reports whether this is the run inside the network namespace;
// outside, it makes one, re-runs the test named there and reports false.
func inNetns(t *testing.T, name string) bool {
	if ns := os.Getenv(netnsEnv); ns != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs ip (iproute2)")
	}
	var b [4]byte
	rand.Read(b[:])
	ns := "osm-clc-test-" + hex.EncodeToString(b[:])
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipCmd, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command(ipCmd, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(ipCmd, "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ipCmd, "netns", "exec", ns, self, "-test.run", "^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the test in the namespace failed: %v", err)
	}
	return false
}

func unicastJoinRefusedInNetns(t *testing.T) {
	group := netip.MustParseAddrPort("228.0.0.1:1369")
	srv := &clcd.Server{Listen: "127.0.0.1:1401", Instances: map[int32]string{testTag: testKey}, Log: os.Stderr}
	if _, err := srv.ListenAndAddr(); err != nil {
		t.Fatal(err)
	}
	decoy, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:1400")))
	if err != nil {
		t.Fatal(err)
	}
	defer decoy.Close()
	log, buf := testlog.New(t)
	st := &state.Store{}
	link := &Link{Tag: testTag, Key: testKey, Group: group, State: st, Log: log, StatusPeriod: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	waitFor(t, "the link to listen for JOINs", func() (state.Link, bool) {
		l := st.Link()
		return l, l.Status == state.LinkDiscovering
	})
	send := func(to, announce string) {
		t.Helper()
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(to)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := wire.Append(nil, wire.Join{Addr: netip.MustParseAddrPort(announce)})
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	send("127.0.0.1:1369", "127.0.0.1:1400") // unicast: must not count
	send("228.0.0.1:1369", "127.0.0.1:1401")
	wait, waitCancel := context.WithTimeout(ctx, waitLimit)
	defer waitCancel()
	if err := srv.WaitRegistered(wait, testTag, 1); err != nil {
		t.Fatal(err)
	}
	// Had the link followed the unicast JOIN, which came first, its
	// connection would be queued at the decoy by now.
	decoy.SetDeadline(time.Now())
	if c, err := decoy.Accept(); err == nil {
		c.Close()
		t.Error("the link connected to the address a unicast JOIN announced")
	}
	if strings.Contains(buf.String(), "127.0.0.1:1400") {
		t.Error("the log mentions the unicast JOIN's address")
	}
	cancel()
	if err := <-linkDone; err != nil {
		t.Error(err)
	}
	if err := <-srvDone; err != nil {
		t.Error(err)
	}
}

func multicastDiscoveryInNetns(t *testing.T) {
	group := netip.MustParseAddrPort("228.0.0.1:1369")
	srv := &clcd.Server{
		Listen: "127.0.0.1:1369", Instances: map[int32]string{testTag: testKey},
		JoinTo: group, JoinEvery: 50 * time.Millisecond, Log: os.Stderr,
	}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testlog.New(t)
	st := &state.Store{}
	link := &Link{Tag: testTag, Key: testKey, Group: group, State: st, Log: log, StatusPeriod: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()
	// Discovering means the group is joined: the controller's first JOIN
	// will be heard.
	waitFor(t, "the link to listen for JOINs", func() (state.Link, bool) {
		l := st.Link()
		return l, l.Status == state.LinkDiscovering
	})
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	wait, waitCancel := context.WithTimeout(ctx, waitLimit)
	defer waitCancel()
	if err := srv.WaitRegistered(wait, testTag, 1); err != nil {
		t.Fatal(err)
	}
	l := waitFor(t, "registered", func() (state.Link, bool) { l := st.Link(); return l, l.Status == state.LinkRegistered })
	if l.Controller != addr.String() {
		t.Errorf("controller %q, want %s from the JOIN", l.Controller, addr)
	}
	cancel()
	if err := <-linkDone; err != nil {
		t.Error(err)
	}
	if err := <-srvDone; err != nil {
		t.Error(err)
	}
}
