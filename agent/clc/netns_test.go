package clc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

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
	if ns := os.Getenv(netnsEnv); ns != "" {
		multicastDiscoveryInNetns(t)
		return
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
	cmd := exec.CommandContext(ctx, ipCmd, "netns", "exec", ns, self, "-test.run", "^TestMulticastDiscovery$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the test in the namespace failed: %v", err)
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
