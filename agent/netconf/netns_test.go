package netconf

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newNetns returns a handle on a fresh, anonymous network namespace that
// lives until the test ends. It skips the test without root or when
// namespaces cannot be made (an unprivileged container). The calling
// thread enters the new namespace only for the unshare and is put back
// at once; the host's namespace is never touched.
func newNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	h, _ := newNetnsNS(t)
	return h
}

// newNetnsNS is newNetns that also returns the namespace (valid until the
// test ends), for subscribing to its link updates.
func newNetnsNS(t *testing.T) (*netlink.Handle, netns.NsHandle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Skipf("get current network namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		// netns.New fails before or at the unshare, but make sure.
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the test
			// goroutine exits, namespace and all.
			t.Fatalf("restore network namespace: %v", err)
		}
		runtime.UnlockOSThread()
		t.Skipf("create network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		t.Fatalf("restore network namespace: %v", err) // thread stays locked, see above
	}
	runtime.UnlockOSThread()
	// The namespace is anonymous: it goes away with the last reference,
	// this descriptor or the handle's sockets, and its links with it.
	t.Cleanup(func() { ns.Close() })

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in new namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return h, ns
}

// nsState describes the namespace for comparing: each link (admin state,
// IPv4 addresses, global IPv6 addresses) and the IPv4 routes of the main
// table. IPv6 link-local addresses and carrier-dependent route flags are
// left out: the kernel changes them on its own after a link comes up.
func nsState(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	slices.SortFunc(links, func(a, b netlink.Link) int { return a.Attrs().Index - b.Attrs().Index })
	names := map[int]string{}
	var out []string
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		s := fmt.Sprintf("%s %s", l.Attrs().Name, l.Type())
		if l.Attrs().Flags&net.FlagUp != 0 {
			s += " up"
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatalf("list addresses of %s: %v", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.IP.To4() == nil || a.IP.IsLoopback() {
				continue
			}
			s += " " + a.IPNet.String()
		}
		out = append(out, s)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	for _, r := range routes {
		dst := "default"
		if ones, _ := r.Dst.Mask.Size(); r.Dst != nil && ones != 0 {
			dst = r.Dst.String()
		}
		s := fmt.Sprintf("route %s dev %s", dst, names[r.LinkIndex])
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		out = append(out, s)
	}
	return out
}

func TestApplyInNetns(t *testing.T) {
	h := newNetns(t)

	// Two veth pairs; the ens* ends play the instance's NICs.
	pairs := []struct{ name, mac, peer string }{
		{"ens3", "52:54:00:00:00:01", "peer3"},
		{"ens4", "52:54:00:00:00:02", "peer4"},
	}
	for _, p := range pairs {
		mac, _ := net.ParseMAC(p.mac)
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.name, HardwareAddr: mac}, PeerName: p.peer}
		if err := h.LinkAdd(v); err != nil {
			t.Fatalf("add veth %s: %v", p.name, err)
		}
		if _, err := netlink.LinkByName(p.name); err == nil {
			t.Errorf("%s is in the test's own namespace; want it only in the new one", p.name)
		}
	}

	// Entry 0 goes by order, so it takes the first Ethernet link by
	// ifindex: an end of the first pair (the kernel registers a veth's
	// peer before the veth itself, so that is peer3, not ens3).
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	byName := map[string]netlink.Link{}
	var first netlink.Link
	for _, l := range links {
		byName[l.Attrs().Name] = l
		if l.Type() == "veth" && (first == nil || l.Attrs().Index < first.Attrs().Index) {
			first = l
		}
	}
	t.Logf("first Ethernet link: %s (ifindex %d, type %s)", first.Attrs().Name, first.Attrs().Index, first.Type())
	f, other := first.Attrs().Name, "ens3"
	switch f {
	case "ens3":
		other = "peer3"
	case "peer3":
	default:
		t.Fatalf("first veth by ifindex is %s; want an end of the first pair", f)
	}
	// The far ends are up, so that the configured ends get a carrier once
	// Apply sets them up.
	for _, name := range []string{other, "peer4"} {
		if err := h.LinkSetUp(byName[name]); err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
	}
	// What an image might have left on ens4: a stale IPv4 address, to be
	// removed, and an IPv6 one, to be kept.
	for _, a := range []string{"192.168.9.9/24", "fd00::2/64"} {
		ip, n, _ := net.ParseCIDR(a)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: n.Mask}, Flags: syscall.IFA_F_NODAD}
		if err := h.AddrAdd(byName["ens4"], addr); err != nil {
			t.Fatalf("add %s to ens4: %v", a, err)
		}
	}

	c := &Configurator{NL: h, Log: testLogger(t)}
	entries := []Entry{
		{Index: 0, IP: "10.0.1.2", Netmask: "24", Gateway: "10.0.1.1"},
		{Index: 1, MAC: "52:54:00:00:00:02", IP: "10.0.2.2", Netmask: "255.255.255.0", Gateway: "10.0.2.1"},
	}
	changes, err := c.Apply(t.Context(), entries)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	wantChanges := []string{
		f + ": add 10.0.1.2/24",
		f + ": up",
		"ens4: remove 192.168.9.9/24",
		"ens4: add 10.0.2.2/24",
		"ens4: up",
		"default route via 10.0.1.1 dev " + f,
	}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("Apply changes (-want +got):\n%s", diff)
	}

	// Check the kernel's view directly, not through the package.
	state := nsState(t, h)
	wantState := map[string]bool{
		"lo device":                                true, // a new namespace's lo is down, and no entry names it
		f + " veth up 10.0.1.2/24":                 true,
		other + " veth up":                         true,
		"ens4 veth up 10.0.2.2/24 fd00::2/64":      true,
		"peer4 veth up":                            true,
		"route default dev " + f + " via 10.0.1.1": true,
		"route 10.0.1.0/24 dev " + f:               true,
		"route 10.0.2.0/24 dev ens4":               true,
	}
	var got []string
	for _, s := range state {
		if !wantState[s] {
			got = append(got, s)
		}
		delete(wantState, s)
	}
	if len(got) > 0 || len(wantState) > 0 {
		t.Errorf("namespace after Apply:\n%s\nunexpected: %q\nmissing: %v", strings.Join(state, "\n"), got, wantState)
	}

	// Again: nothing differs, nothing changes.
	changes, err = c.Apply(t.Context(), entries)
	if err != nil || changes != nil {
		t.Errorf("second Apply = %q, %v; want nil, nil", changes, err)
	}
	if diff := cmp.Diff(state, nsState(t, h)); diff != "" {
		t.Errorf("namespace changed by the second Apply (-first +second):\n%s", diff)
	}

	// The gateway moves outside the subnet: the default route is replaced,
	// not doubled, and carries the onlink flag.
	entries[0].Gateway = "10.9.9.1"
	changes, err = c.Apply(t.Context(), entries)
	if err != nil {
		t.Fatalf("Apply with an onlink gateway: %v", err)
	}
	if diff := cmp.Diff([]string{"default route via 10.9.9.1 dev " + f + " onlink"}, changes); diff != "" {
		t.Errorf("Apply changes (-want +got):\n%s", diff)
	}
	state = nsState(t, h)
	var defaults []string
	for _, s := range state {
		if strings.HasPrefix(s, "route default") {
			defaults = append(defaults, s)
		}
	}
	if diff := cmp.Diff([]string{"route default dev " + f + " via 10.9.9.1 onlink"}, defaults); diff != "" {
		t.Errorf("default routes (-want +got):\n%s", diff)
	}
	if changes, err := c.Apply(t.Context(), entries); err != nil || changes != nil {
		t.Errorf("Apply after the onlink change = %q, %v; want nil, nil", changes, err)
	}
	if diff := cmp.Diff(state, nsState(t, h)); diff != "" {
		t.Errorf("namespace changed by a repeated Apply (-first +second):\n%s", diff)
	}
}
