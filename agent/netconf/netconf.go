// Package netconf configures the instance's network interfaces at boot from
// the "network" entries of the cloud's JSON payload (see
// shared/spec/instance-config.md), over netlink.
//
// It is a reconciler: [Configurator.Apply] reads the kernel's state, changes
// only what differs from the entries, and reports each change, so a second
// boot with the same payload makes no netlink change at all.
//
// How an entry finds its interface: by MAC address (case-insensitive) when
// the entry has one, else entry i takes the i-th Ethernet interface in
// ifindex order. "Ethernet" means not loopback, a 6-byte hardware address,
// and a link type of "device" (a physical or virtio NIC: netlink reports a
// link with no IFLA_INFO_KIND as a Device) or "veth" (so that the package
// can be exercised in containers and network namespaces, where interfaces
// are veth pairs). Bridges, bonds, dummies, tunnels and the like are never
// matched. MAC claims are settled before by-order claims, so an explicit MAC
// wins over a by-order guess for the same interface.
//
// What is done to a matched interface with an "ip": the address ip/netmask is
// added if missing; every other global-scope IPv4 address on that interface
// is removed (the payload is authoritative); the link is set up if it is
// down. An entry without "ip" means "DHCP, leave the interface as the image
// has it": nothing is touched. IPv6 is never touched, nor are interfaces no
// entry names.
//
// The default route belongs to the first entry (in payload order) that has
// a gateway. If that entry has no ip (DHCP), is refused, or its interface
// could not be configured, the default route is left as it is rather than
// taken from a later entry. It is replaced only when the route the kernel
// uses (the lowest-metric IPv4 default of the main table) differs in
// gateway or interface; a gateway outside the entry's subnet is installed
// with the onlink flag.
//
// NICs that come late: at boot the interfaces may not exist yet (a driver
// not in the initramfs, udev still at work). [Wait] waits, up to a limit,
// for the interfaces the entries name by MAC, on the kernel's link updates
// (subscribed before the links are listed, so none is missed); [Pending]
// takes the not-there-yet failures of those still missing out of Apply's
// error, and a [Watcher] applies the entries again when they appear.
package netconf

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// Entry is one element of the JSON payload's "network" array, as strings.
type Entry struct {
	Index   int    // position in the array (0-based): by-order matching and error messages
	MAC     string // "52:54:00:12:34:56"; empty: match by order
	IP      string // IPv4 address; empty: leave this interface as the image has it (DHCP)
	Netmask string // "255.255.255.0", or a prefix length "24" or "/24"
	Gateway string // optional IPv4 address
}

// Netlink is the part of *netlink.Handle the Configurator uses. Tests pass a
// fake that keeps the state in memory and records the changes asked of it.
type Netlink interface {
	LinkList() ([]netlink.Link, error)
	LinkSetUp(link netlink.Link) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
}

var _ Netlink = (*netlink.Handle)(nil)

// Configurator applies network entries through NL. Log may be nil.
type Configurator struct {
	NL  Netlink
	Log *slog.Logger
}

var (
	// ErrInvalid is wrapped by every error about an entry's own fields
	// (address, netmask, gateway, MAC, index).
	ErrInvalid = errors.New("invalid entry")
	// ErrNoInterface is wrapped when no Ethernet interface has the entry's
	// MAC, or the entry's index is beyond the Ethernet interfaces.
	ErrNoInterface = errors.New("no such Ethernet interface")
	// ErrClaimed is wrapped when an entry matches an interface another entry
	// already claimed.
	ErrClaimed = errors.New("already claimed")
)

// EntryError is an error about one entry; Apply's error joins one per
// failed entry, so callers can find which entries failed with errors.As.
type EntryError struct {
	Index int // the entry's Index
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("network[%d]: %v", e.Index, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// dumpAttempts bounds the retries of a netlink dump that the kernel
// interrupted because the table changed under it (the partial result is
// never used).
const dumpAttempts = 5

// Apply makes the interfaces match entries. It returns a description of each
// change it made ("eth0: remove 192.168.1.5/24", "eth0: add 10.0.0.12/24",
// "eth0: up", "default route via 10.0.0.1 dev eth0"), nil when nothing
// differed.
//
// Each bad entry is refused with an *EntryError naming it, and the other
// entries are still applied; all errors are joined with errors.Join. Apply
// checks ctx before every change and stops when it is done.
func (c *Configurator) Apply(ctx context.Context, entries []Entry) (changes []string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	links, err := dump(ctx, c.NL.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	eth := ethernet(links)

	// entryErrs[i] gathers the errors of entries[i], so the joined error
	// reads in payload order.
	entryErrs := make([][]error, len(entries))
	fail := func(i int, err error) { entryErrs[i] = append(entryErrs[i], err) }
	joined := func(extra ...error) error {
		var errs []error
		for i, es := range entryErrs {
			if len(es) > 0 {
				errs = append(errs, &EntryError{Index: entries[i].Index, Err: errors.Join(es...)})
			}
		}
		return errors.Join(append(errs, extra...)...)
	}

	specs := make([]*spec, len(entries))
	for i, e := range entries {
		s, err := parseEntry(e)
		if err != nil {
			fail(i, err)
			continue
		}
		specs[i] = &s
	}
	targets := make([]netlink.Link, len(entries))
	for i, err := range match(specs, eth, targets) {
		if err != nil {
			fail(i, err)
		}
	}

	a := applier{nl: c.NL, log: c.logger()}
	for i, s := range specs {
		if s == nil || targets[i] == nil {
			continue
		}
		if !s.addr.IsValid() {
			a.log.Debug("leave interface as the image has it", "entry", s.index, "link", targets[i].Attrs().Name)
			continue
		}
		if err := a.configure(ctx, targets[i], s.addr); err != nil {
			fail(i, err)
		}
		if ctx.Err() != nil {
			return a.changes, joined(ctx.Err())
		}
	}

	if i := gatewayEntry(entries); i >= 0 {
		s, link := specs[i], targets[i]
		switch {
		case s == nil || link == nil || len(entryErrs[i]) > 0:
			a.log.Warn("default route left as it is: the entry with the gateway failed", "entry", entries[i].Index)
		case !s.addr.IsValid():
			a.log.Info("default route left as it is: the entry with the gateway has no ip", "entry", s.index)
		default:
			if err := a.defaultRoute(ctx, link, s); err != nil {
				fail(i, err)
			}
		}
	}
	return a.changes, joined(ctx.Err())
}

func (c *Configurator) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// gatewayEntry returns the position of the first entry with a gateway, or -1.
func gatewayEntry(entries []Entry) int {
	return slices.IndexFunc(entries, func(e Entry) bool { return strings.TrimSpace(e.Gateway) != "" })
}

// ethernet returns the Ethernet links (see the package comment) in ifindex
// order. The kernel's dump order is not promised to be ifindex order (older
// kernels walk a hash table), so sort.
func ethernet(links []netlink.Link) []netlink.Link {
	var eth []netlink.Link
	for _, l := range links {
		at := l.Attrs()
		if at.Flags&net.FlagLoopback != 0 || len(at.HardwareAddr) != 6 {
			continue
		}
		if t := l.Type(); t != "device" && t != "veth" {
			continue
		}
		eth = append(eth, l)
	}
	slices.SortFunc(eth, func(a, b netlink.Link) int { return cmp.Compare(a.Attrs().Index, b.Attrs().Index) })
	return eth
}

// match fills targets[i] with the interface of specs[i] (nil specs are
// skipped) and returns the matching error of each position. MAC claims go
// first: an explicit MAC is surer than a position in a list.
func match(specs []*spec, eth []netlink.Link, targets []netlink.Link) []error {
	errs := make([]error, len(specs))
	claimedBy := map[int]int{} // ifindex → Entry.Index
	claim := func(i int, l netlink.Link, how string) {
		if other, ok := claimedBy[l.Attrs().Index]; ok {
			errs[i] = fmt.Errorf("match %s: %s %w by network[%d]", how, l.Attrs().Name, ErrClaimed, other)
			return
		}
		claimedBy[l.Attrs().Index] = specs[i].index
		targets[i] = l
	}
	for i, s := range specs {
		if s == nil || s.mac == nil {
			continue
		}
		j := slices.IndexFunc(eth, func(l netlink.Link) bool { return bytes.Equal(l.Attrs().HardwareAddr, s.mac) })
		if j < 0 {
			errs[i] = fmt.Errorf("match mac %s: %w", s.mac, ErrNoInterface)
			continue
		}
		claim(i, eth[j], "mac "+s.mac.String())
	}
	for i, s := range specs {
		if s == nil || s.mac != nil {
			continue
		}
		if s.index >= len(eth) {
			errs[i] = fmt.Errorf("match by order: %w at position %d (there are %d)", ErrNoInterface, s.index, len(eth))
			continue
		}
		claim(i, eth[s.index], "by order")
	}
	return errs
}

// applier makes changes and records them.
type applier struct {
	nl      Netlink
	log     *slog.Logger
	changes []string
}

// configure gives link the address want (and no other global IPv4 address)
// and sets it up. It goes on after a failed change, so that one failure
// costs as little as it can; the failures are joined. It stops when ctx is
// done, leaving Apply to report that once.
func (a *applier) configure(ctx context.Context, link netlink.Link, want netip.Prefix) error {
	name := link.Attrs().Name
	have, stale, err := a.addrs(ctx, link, want)
	if err != nil {
		return err
	}
	var errs []error
	// Remove before adding: deleting a primary address makes the kernel
	// delete the secondaries of its subnet too (unless promote_secondaries
	// is set), so an address added first could vanish with a stale one.
	for _, old := range stale {
		if ctx.Err() != nil {
			return errors.Join(errs...)
		}
		p, _ := addrPrefix(old)
		if err := a.nl.AddrDel(link, &old); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", p, name, err))
			continue
		}
		a.log.Info("removed stale address", "link", name, "addr", p)
		a.changes = append(a.changes, fmt.Sprintf("%s: remove %s", name, p))
	}
	if have && len(stale) > 0 {
		// The deletions may have taken the wanted address along (see above).
		if have, _, err = a.addrs(ctx, link, want); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	if !have {
		if ctx.Err() != nil {
			return errors.Join(errs...)
		}
		if err := a.nl.AddrAdd(link, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", want, name, err))
		} else {
			a.log.Info("added address", "link", name, "addr", want)
			a.changes = append(a.changes, fmt.Sprintf("%s: add %s", name, want))
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if ctx.Err() != nil {
			return errors.Join(errs...)
		}
		if err := a.nl.LinkSetUp(link); err != nil {
			errs = append(errs, fmt.Errorf("set %s up: %w", name, err))
		} else {
			a.log.Info("set link up", "link", name)
			a.changes = append(a.changes, name+": up")
		}
	}
	return errors.Join(errs...)
}

// addrs reports whether link has want, and its other global-scope IPv4
// addresses.
func (a *applier) addrs(ctx context.Context, link netlink.Link, want netip.Prefix) (have bool, stale []netlink.Addr, err error) {
	list, err := dump(ctx, func() ([]netlink.Addr, error) { return a.nl.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return false, nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, addr := range list {
		p, ok := addrPrefix(addr)
		switch {
		case !ok:
		case p == want:
			have = true
		case addr.Scope == int(netlink.SCOPE_UNIVERSE):
			stale = append(stale, addr)
		}
	}
	return have, stale, nil
}

// defaultRoute points the IPv4 default route at s.gateway through link,
// unless the route the kernel uses (the default with the lowest metric in
// the main table) already does.
func (a *applier) defaultRoute(ctx context.Context, link netlink.Link, s *spec) error {
	routes, err := dump(ctx, func() ([]netlink.Route, error) { return a.nl.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var cur *netlink.Route
	for i, r := range routes {
		if isDefault(r) && (cur == nil || r.Priority < cur.Priority) {
			cur = &routes[i]
		}
	}
	gw := net.IP(s.gateway.AsSlice())
	if cur != nil && cur.LinkIndex == link.Attrs().Index && cur.Gw.Equal(gw) {
		return nil
	}
	if ctx.Err() != nil {
		return nil // Apply reports it
	}
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gw,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	desc := fmt.Sprintf("default route via %s dev %s", s.gateway, link.Attrs().Name)
	if s.onlink() {
		r.SetFlag(netlink.FLAG_ONLINK)
		desc += " onlink"
	}
	if err := a.nl.RouteReplace(r); err != nil {
		return fmt.Errorf("replace %s: %w", desc, err)
	}
	a.log.Info("replaced default route", "gateway", s.gateway, "link", link.Attrs().Name, "onlink", s.onlink())
	a.changes = append(a.changes, desc)
	return nil
}

// isDefault reports whether r is an IPv4 default route. netlink v1.3 reads
// a default route back with Dst 0.0.0.0/0 (as iproute2 does); older
// versions left Dst nil, so accept both.
func isDefault(r netlink.Route) bool {
	if r.Tos != 0 {
		return false
	}
	if r.Dst == nil {
		return r.Family == 0 || r.Family == netlink.FAMILY_V4
	}
	ones, bits := r.Dst.Mask.Size()
	return ones == 0 && bits == 32
}

// addrPrefix returns the address and prefix length of an IPv4 netlink.Addr.
func addrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP.To4())
	ones, bits := a.Mask.Size()
	if !ok || bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}

// ipNet converts p, keeping the host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// dump runs a netlink dump, again if the kernel interrupted it.
func dump[T any](ctx context.Context, f func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		v, err := f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == dumpAttempts {
			return v, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}
