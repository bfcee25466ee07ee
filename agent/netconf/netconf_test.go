package netconf

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLinks is a machine with lo, three NICs and a bridge, listed out of
// ifindex order: the Ethernet order is eth0, eth1, eth2.
func testLinks() []netlink.Link {
	return []netlink.Link{
		device(5, "eth2", "52:54:00:00:00:05", false),
		loopback(),
		device(2, "eth0", "52:54:00:00:00:02", false),
		bridge(4, "br0", "52:54:00:00:00:04"),
		device(3, "eth1", "52:54:00:ab:cd:ef", false),
	}
}

// wantErr is one entry error Apply should return.
type wantErr struct {
	index int
	is    error
	text  string // part of the message
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		links   []netlink.Link
		addrs   map[int][]netlink.Addr
		routes  []netlink.Route
		entries []Entry

		wantChanges []string
		wantErrs    []wantErr
		wantState   []string // nil: not checked
	}{
		{
			name:    "by MAC, any letter case",
			entries: []Entry{{Index: 0, MAC: "52:54:00:AB:CD:EF", IP: "10.0.1.5", Netmask: "255.255.255.0"}},
			wantChanges: []string{
				"eth1: add 10.0.1.5/24",
				"eth1: up",
			},
			wantState: []string{"eth2", "lo up", "eth0", "br0 up", "eth1 up 10.0.1.5/24"},
		},
		{
			name:        "by order skips lo and the bridge and sorts by ifindex",
			entries:     []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}, {Index: 1, IP: "10.0.1.12", Netmask: "24"}, {Index: 2, IP: "10.0.2.12", Netmask: "24"}},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up", "eth1: add 10.0.1.12/24", "eth1: up", "eth2: add 10.0.2.12/24", "eth2: up"},
		},
		{
			name: "mixed",
			entries: []Entry{
				{Index: 0, MAC: "52:54:00:00:00:05", IP: "10.0.2.12", Netmask: "24"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24"},
			},
			wantChanges: []string{"eth2: add 10.0.2.12/24", "eth2: up", "eth1: add 10.0.1.12/24", "eth1: up"},
		},
		{
			name:  "veth counts as Ethernet",
			links: []netlink.Link{loopback(), veth(7, "veth0", "52:54:00:00:00:07", true)},
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24"},
			},
			wantChanges: []string{"veth0: add 10.0.0.12/24"},
		},
		{
			name:  "entry without ip leaves its interface alone, gateway and all",
			addrs: map[int][]netlink.Addr{2: {addr("192.168.1.5/24")}},
			routes: []netlink.Route{
				defaultRoute("192.168.1.1", 2, 0),
			},
			entries: []Entry{
				{Index: 0, Netmask: "junk", Gateway: "10.9.9.9"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24", Gateway: "10.0.1.1"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantState: []string{
				"eth2", "lo up", "eth0 192.168.1.5/24", "br0 up", "eth1 up 10.0.1.12/24",
				"default via 192.168.1.1 dev eth0 metric 0",
			},
		},
		{
			name: "entry without ip still claims its interface",
			entries: []Entry{
				{Index: 0, MAC: "52:54:00:00:00:02"},
				{Index: 1, MAC: "52:54:00:00:00:02", IP: "10.0.0.12", Netmask: "24"},
			},
			wantErrs: []wantErr{{1, ErrClaimed, "match mac 52:54:00:00:00:02: eth0 already claimed by network[0]"}},
		},
		{
			name:        "netmask dotted",
			entries:     []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "255.255.255.0"}},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up"},
		},
		{
			name:        "netmask prefix length",
			entries:     []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up"},
		},
		{
			name:        "netmask slash prefix length",
			entries:     []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "/24"}},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up"},
		},
		{
			name:        "netmask /32 and white space",
			entries:     []Entry{{Index: 0, IP: " 10.0.0.12 ", Netmask: " 255.255.255.255"}},
			wantChanges: []string{"eth0: add 10.0.0.12/32", "eth0: up"},
		},
		{
			name: "bad netmask refused, the others applied",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "255.255.255.0.0"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantErrs:    []wantErr{{0, ErrInvalid, `parse netmask "255.255.255.0.0"`}},
		},
		{
			name: "prefix length out of range refused",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "33"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantErrs:    []wantErr{{0, ErrInvalid, "out of range"}},
		},
		{
			name: "non-contiguous netmask refused, the others applied",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24"},
				{Index: 1, IP: "10.0.1.12", Netmask: "255.0.255.0"},
			},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up"},
			wantErrs:    []wantErr{{1, ErrInvalid, "non-contiguous"}},
		},
		{
			name: "bad ip refused, the others applied",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.300", Netmask: "24"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantErrs:    []wantErr{{0, ErrInvalid, `parse ip "10.0.0.300": not an IPv4 address`}},
		},
		{
			name: "IPv6 ip refused",
			entries: []Entry{
				{Index: 0, IP: "fd00::12", Netmask: "64"},
			},
			wantErrs: []wantErr{{0, ErrInvalid, `parse ip "fd00::12"`}},
		},
		{
			name: "gateway not IPv4 refused, the others applied",
			entries: []Entry{
				{Index: 0, IP: "10.0.1.12", Netmask: "24"},
				{Index: 1, IP: "10.0.0.12", Netmask: "24", Gateway: "fe80::1"},
			},
			wantChanges: []string{"eth0: add 10.0.1.12/24", "eth0: up"},
			wantErrs:    []wantErr{{1, ErrInvalid, `parse gateway "fe80::1"`}},
		},
		{
			name: "unknown MAC refused, the others applied",
			entries: []Entry{
				{Index: 0, MAC: "52:54:00:99:99:99", IP: "10.0.0.12", Netmask: "24"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantErrs:    []wantErr{{0, ErrNoInterface, "match mac 52:54:00:99:99:99"}},
		},
		{
			name: "MAC of a bridge is not Ethernet",
			entries: []Entry{
				{Index: 0, MAC: "52:54:00:00:00:04", IP: "10.0.0.12", Netmask: "24"},
			},
			wantErrs: []wantErr{{0, ErrNoInterface, "match mac"}},
		},
		{
			name: "duplicate claim by MAC refused, the first kept",
			entries: []Entry{
				{Index: 0, MAC: "52:54:00:ab:cd:ef", IP: "10.0.1.12", Netmask: "24"},
				{Index: 1, MAC: "52:54:00:AB:CD:EF", IP: "10.0.1.13", Netmask: "24"},
				{Index: 2, IP: "10.0.2.12", Netmask: "24"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up", "eth2: add 10.0.2.12/24", "eth2: up"},
			wantErrs:    []wantErr{{1, ErrClaimed, "eth1 already claimed by network[0]"}},
		},
		{
			name: "MAC claim beats an earlier by-order claim",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24"},
				{Index: 1, MAC: "52:54:00:00:00:02", IP: "10.0.0.13", Netmask: "24"},
			},
			wantChanges: []string{"eth0: add 10.0.0.13/24", "eth0: up"},
			wantErrs:    []wantErr{{0, ErrClaimed, "match by order: eth0 already claimed by network[1]"}},
		},
		{
			name: "index beyond the interfaces refused, the others applied",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24"},
				{Index: 3, IP: "10.0.3.12", Netmask: "24"},
			},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up"},
			wantErrs:    []wantErr{{3, ErrNoInterface, "position 3 (there are 3)"}},
		},
		{
			name: "default route from the first entry with a gateway",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24", Gateway: "10.0.1.1"},
				{Index: 2, IP: "10.0.2.12", Netmask: "24", Gateway: "10.0.2.1"},
			},
			wantChanges: []string{
				"eth0: add 10.0.0.12/24", "eth0: up",
				"eth1: add 10.0.1.12/24", "eth1: up",
				"eth2: add 10.0.2.12/24", "eth2: up",
				"default route via 10.0.1.1 dev eth1",
			},
			wantState: []string{
				"eth2 up 10.0.2.12/24", "lo up", "eth0 up 10.0.0.12/24", "br0 up", "eth1 up 10.0.1.12/24",
				"default via 10.0.1.1 dev eth1 metric 0",
			},
		},
		{
			name:        "gateway outside the subnet is onlink",
			entries:     []Entry{{Index: 0, IP: "203.0.113.7", Netmask: "32", Gateway: "203.0.113.1"}},
			wantChanges: []string{"eth0: add 203.0.113.7/32", "eth0: up", "default route via 203.0.113.1 dev eth0 onlink"},
		},
		{
			name:   "other default route replaced",
			routes: []netlink.Route{defaultRoute("192.168.1.1", 3, 0)},
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.1"},
			},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up", "default route via 10.0.0.1 dev eth0"},
			wantState: []string{
				"eth2", "lo up", "eth0 up 10.0.0.12/24", "br0 up", "eth1",
				"default via 10.0.0.1 dev eth0 metric 0",
			},
		},
		{
			name: "default route with a higher metric gets a better one beside it",
			routes: []netlink.Route{
				defaultRoute("10.0.0.1", 2, 1024),
				defaultRoute("192.168.1.1", 3, 100),
			},
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.1"},
			},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up", "default route via 10.0.0.1 dev eth0"},
			wantState: []string{
				"eth2", "lo up", "eth0 up 10.0.0.12/24", "br0 up", "eth1",
				"default via 10.0.0.1 dev eth0 metric 1024",
				"default via 192.168.1.1 dev eth1 metric 100",
				"default via 10.0.0.1 dev eth0 metric 0",
			},
		},
		{
			name: "already configured: nothing to do",
			links: []netlink.Link{
				loopback(), device(2, "eth0", "52:54:00:00:00:02", true),
			},
			addrs: map[int][]netlink.Addr{2: {addr("10.0.0.12/24")}},
			routes: []netlink.Route{
				{Family: netlink.FAMILY_V4, Dst: addr("0.0.0.0/0").IPNet, Gw: addr("10.0.0.1/32").IP, LinkIndex: 2},
			},
			entries: []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.1"}},
		},
		{
			name: "stale addresses removed, link-scope and IPv6 kept",
			addrs: map[int][]netlink.Addr{
				2: {
					addr("10.0.0.99/24"),
					addr("10.0.0.12/16"),
					addr("169.254.3.4/16", netlink.SCOPE_LINK),
					addr("fd00::12/64"),
					addr("10.0.0.12/24"),
				},
				3: {addr("192.168.1.5/24")},
			},
			entries: []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}},
			wantChanges: []string{
				"eth0: remove 10.0.0.99/24",
				"eth0: remove 10.0.0.12/16",
				"eth0: up",
			},
			wantState: []string{
				"eth2", "lo up", "eth0 up 169.254.3.4/16 fd00::12/64 10.0.0.12/24", "br0 up", "eth1 192.168.1.5/24",
			},
		},
		{
			name:        "interrupted dumps are retried",
			entries:     []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.1"}},
			wantChanges: []string{"eth0: add 10.0.0.12/24", "eth0: up", "default route via 10.0.0.1 dev eth0"},
		},
		{
			name: "gateway entry refused: default route left alone",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.12", Netmask: "255.0.0.255", Gateway: "10.0.0.1"},
				{Index: 1, IP: "10.0.1.12", Netmask: "24", Gateway: "10.0.1.1"},
			},
			wantChanges: []string{"eth1: add 10.0.1.12/24", "eth1: up"},
			wantErrs:    []wantErr{{0, ErrInvalid, "non-contiguous"}},
		},
		{
			name: "network and broadcast addresses refused",
			entries: []Entry{
				{Index: 0, IP: "10.0.0.0", Netmask: "24"},
				{Index: 1, IP: "10.0.1.255", Netmask: "24"},
				{Index: 2, IP: "10.0.2.12", Netmask: "24", Gateway: "10.0.2.12"},
			},
			wantErrs: []wantErr{
				{0, ErrInvalid, "check ip 10.0.0.0/24"},
				{1, ErrInvalid, "check ip 10.0.1.255/24"},
				{2, ErrInvalid, "check gateway 10.0.2.12: same as the ip"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			links := tt.links
			if links == nil {
				links = testLinks()
			}
			nl := &fakeNL{links: links, addrs: tt.addrs, routes: tt.routes}
			if strings.HasPrefix(tt.name, "interrupted") {
				nl.interrupt = 2
			}
			c := &Configurator{NL: nl, Log: testLogger(t)}

			changes, err := c.Apply(t.Context(), tt.entries)
			if diff := cmp.Diff(tt.wantChanges, changes); diff != "" {
				t.Errorf("Apply changes (-want +got):\n%s", diff)
			}
			checkErrs(t, err, tt.wantErrs)
			if len(nl.calls) != len(changes) {
				t.Errorf("Apply made calls %q for changes %q; want one call per change", nl.calls, changes)
			}
			if tt.wantState != nil {
				if diff := cmp.Diff(tt.wantState, nl.state()); diff != "" {
					t.Errorf("state after Apply (-want +got):\n%s", diff)
				}
			}

			// The same entries again: nothing differs, so nothing is asked.
			before := nl.state()
			nl.calls = nil
			changes, err = c.Apply(t.Context(), tt.entries)
			if changes != nil || len(nl.calls) != 0 {
				t.Errorf("second Apply: changes %q, calls %q; want none", changes, nl.calls)
			}
			checkErrs(t, err, tt.wantErrs)
			if diff := cmp.Diff(before, nl.state()); diff != "" {
				t.Errorf("state changed by the second Apply (-first +second):\n%s", diff)
			}
		})
	}
}

// checkErrs checks that err joins exactly one *EntryError per want, in order.
func checkErrs(t *testing.T, err error, want []wantErr) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("Apply error = %v; want nil", err)
		}
		return
	}
	var got []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		got = j.Unwrap()
	} else if err != nil {
		got = []error{err}
	}
	if len(got) != len(want) {
		t.Fatalf("Apply error = %v; want %d entry errors", err, len(want))
	}
	for i, w := range want {
		var ee *EntryError
		if !errors.As(got[i], &ee) || ee.Index != w.index {
			t.Errorf("error %d = %v; want an *EntryError for network[%d]", i, got[i], w.index)
			continue
		}
		if !errors.Is(ee, w.is) {
			t.Errorf("error %d = %v; want one that is %v", i, ee, w.is)
		}
		if msg := ee.Error(); !strings.HasPrefix(msg, "network[") || !strings.Contains(msg, w.text) {
			t.Errorf("error %d = %q; want network[%d]: …%s…", i, msg, w.index, w.text)
		}
	}
}

func TestApplyNetlinkErrors(t *testing.T) {
	t.Run("link list fails", func(t *testing.T) {
		boom := errors.New("boom")
		nl := &fakeNL{links: testLinks(), linkListErr: boom}
		c := &Configurator{NL: nl, Log: testLogger(t)}
		changes, err := c.Apply(t.Context(), []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}})
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "list links: ") {
			t.Errorf("Apply error = %v; want list links: boom", err)
		}
		if changes != nil || nl.calls != nil {
			t.Errorf("Apply changes %q, calls %q; want none", changes, nl.calls)
		}
	})
	t.Run("dump keeps being interrupted", func(t *testing.T) {
		nl := &fakeNL{links: testLinks(), interrupt: dumpAttempts}
		c := &Configurator{NL: nl, Log: testLogger(t)}
		_, err := c.Apply(t.Context(), []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}})
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			t.Errorf("Apply error = %v; want ErrDumpInterrupted", err)
		}
		if nl.calls != nil {
			t.Errorf("Apply calls %q on a partial link list; want none", nl.calls)
		}
	})
	t.Run("address add fails on one link", func(t *testing.T) {
		boom := errors.New("no buffer space")
		nl := &fakeNL{links: testLinks(), addrAddErr: map[string]error{"eth0": boom}}
		c := &Configurator{NL: nl, Log: testLogger(t)}
		changes, err := c.Apply(t.Context(), []Entry{
			{Index: 0, IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.1"},
			{Index: 1, IP: "10.0.1.12", Netmask: "24"},
		})
		// The link still comes up; the default route is not tried
		// through a link whose configuration failed.
		want := []string{"eth0: up", "eth1: add 10.0.1.12/24", "eth1: up"}
		if diff := cmp.Diff(want, changes); diff != "" {
			t.Errorf("Apply changes (-want +got):\n%s", diff)
		}
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Index != 0 || !errors.Is(err, boom) {
			t.Fatalf("Apply error = %v; want network[0] wrapping %v", err, boom)
		}
		if got, want := ee.Error(), "network[0]: add 10.0.0.12/24 to eth0: no buffer space"; got != want {
			t.Errorf("error = %q; want %q", got, want)
		}
	})
	t.Run("context canceled", func(t *testing.T) {
		nl := &fakeNL{links: testLinks()}
		c := &Configurator{NL: nl} // nil Log is allowed
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		changes, err := c.Apply(ctx, []Entry{{Index: 0, IP: "10.0.0.12", Netmask: "24"}})
		if !errors.Is(err, context.Canceled) || changes != nil || nl.calls != nil {
			t.Errorf("Apply = %q, %v with calls %q; want nothing done and context.Canceled", changes, err, nl.calls)
		}
	})
}

// cancelingNL cancels a context on the first mutating call, to show that
// Apply stops between operations.
type cancelingNL struct {
	*fakeNL
	cancel context.CancelFunc
}

func (c cancelingNL) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	c.cancel()
	return c.fakeNL.AddrAdd(l, a)
}

func TestApplyStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	nl := &fakeNL{links: testLinks()}
	c := &Configurator{NL: cancelingNL{nl, cancel}, Log: testLogger(t)}
	changes, err := c.Apply(ctx, []Entry{
		{Index: 0, IP: "10.0.0.12", Netmask: "24"},
		{Index: 1, IP: "10.0.1.12", Netmask: "24"},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply error = %v; want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"eth0: add 10.0.0.12/24"}, changes); diff != "" {
		t.Errorf("Apply changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"AddrAdd eth0 10.0.0.12/24"}, nl.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
