package netconf

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// fakeNL is an in-memory Netlink. It behaves like the kernel where the
// Configurator could notice (EEXIST on a duplicate address, default routes
// read back as 0.0.0.0/0, copies handed out) and records every mutating
// call it is asked to make, failed or not.
type fakeNL struct {
	links  []netlink.Link
	addrs  map[int][]netlink.Addr // by ifindex
	routes []netlink.Route
	calls  []string

	linkListErr error
	addrAddErr  map[string]error // by link name
	interrupt   int              // dumps to answer with ErrDumpInterrupted first
}

func device(index int, name, mac string, up bool) netlink.Link {
	return &netlink.Device{LinkAttrs: attrs(index, name, mac, up)}
}

func veth(index int, name, mac string, up bool) netlink.Link {
	return &netlink.Veth{LinkAttrs: attrs(index, name, mac, up)}
}

func bridge(index int, name, mac string) netlink.Link {
	return &netlink.Bridge{LinkAttrs: attrs(index, name, mac, true)}
}

func loopback() netlink.Link {
	a := attrs(1, "lo", "00:00:00:00:00:00", true)
	a.Flags |= net.FlagLoopback
	return &netlink.Device{LinkAttrs: a}
}

func attrs(index int, name, mac string, up bool) netlink.LinkAttrs {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	a := netlink.LinkAttrs{Index: index, Name: name, HardwareAddr: hw}
	if up {
		a.Flags |= net.FlagUp
	}
	return a
}

// addr parses "10.0.0.12/24" (the host bits kept) into a global-scope
// address; scope may override.
func addr(cidr string, scope ...netlink.Scope) netlink.Addr {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a := netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: n.Mask}}
	if len(scope) > 0 {
		a.Scope = int(scope[0])
	}
	return a
}

// defaultRoute is a default route as netlink before v1.3 read it back
// (Dst nil).
func defaultRoute(gw string, link, priority int) netlink.Route {
	return netlink.Route{Family: netlink.FAMILY_V4, LinkIndex: link, Gw: net.ParseIP(gw).To4(), Priority: priority}
}

func (f *fakeNL) dumpErr() error {
	if f.interrupt > 0 {
		f.interrupt--
		return netlink.ErrDumpInterrupted
	}
	return nil
}

func (f *fakeNL) link(l netlink.Link) netlink.Link {
	i := slices.IndexFunc(f.links, func(k netlink.Link) bool { return k.Attrs().Index == l.Attrs().Index })
	if i < 0 {
		panic(fmt.Sprintf("fake: no link %d", l.Attrs().Index))
	}
	return f.links[i]
}

func (f *fakeNL) LinkList() ([]netlink.Link, error) {
	if f.linkListErr != nil {
		return nil, f.linkListErr
	}
	var out []netlink.Link
	for _, l := range f.links {
		switch l := l.(type) {
		case *netlink.Device:
			c := *l
			out = append(out, &c)
		case *netlink.Veth:
			c := *l
			out = append(out, &c)
		case *netlink.Bridge:
			c := *l
			out = append(out, &c)
		default:
			panic(fmt.Sprintf("fake: copy %T", l))
		}
	}
	// A partial answer, as the kernel gives with an interrupted dump.
	if err := f.dumpErr(); err != nil {
		return out[:len(out)/2], err
	}
	return out, nil
}

func (f *fakeNL) LinkSetUp(l netlink.Link) error {
	f.calls = append(f.calls, "LinkSetUp "+l.Attrs().Name)
	f.link(l).Attrs().Flags |= net.FlagUp
	return nil
}

func (f *fakeNL) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	if err := f.dumpErr(); err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range f.addrs[f.link(l).Attrs().Index] {
		if family == netlink.FAMILY_V4 && a.IP.To4() == nil {
			continue
		}
		a.LinkIndex = l.Attrs().Index
		out = append(out, a)
	}
	return out, nil
}

func sameAddr(a, b netlink.Addr) bool { return a.IP.Equal(b.IP) && a.Mask.String() == b.Mask.String() }

func (f *fakeNL) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	name := l.Attrs().Name
	f.calls = append(f.calls, "AddrAdd "+name+" "+a.IPNet.String())
	if err := f.addrAddErr[name]; err != nil {
		return err
	}
	idx := f.link(l).Attrs().Index
	if slices.ContainsFunc(f.addrs[idx], func(b netlink.Addr) bool { return sameAddr(*a, b) }) {
		return errors.New("file exists")
	}
	if f.addrs == nil {
		f.addrs = map[int][]netlink.Addr{}
	}
	f.addrs[idx] = append(f.addrs[idx], netlink.Addr{IPNet: a.IPNet})
	return nil
}

func (f *fakeNL) AddrDel(l netlink.Link, a *netlink.Addr) error {
	f.calls = append(f.calls, "AddrDel "+l.Attrs().Name+" "+a.IPNet.String())
	idx := f.link(l).Attrs().Index
	i := slices.IndexFunc(f.addrs[idx], func(b netlink.Addr) bool { return sameAddr(*a, b) })
	if i < 0 {
		return errors.New("cannot assign requested address")
	}
	f.addrs[idx] = slices.Delete(f.addrs[idx], i, i+1)
	return nil
}

func (f *fakeNL) RouteList(l netlink.Link, family int) ([]netlink.Route, error) {
	if l != nil || family != netlink.FAMILY_V4 {
		return nil, fmt.Errorf("fake: RouteList(%v, %d) not faked", l, family)
	}
	if err := f.dumpErr(); err != nil {
		return nil, err
	}
	return slices.Clone(f.routes), nil
}

func (f *fakeNL) RouteReplace(r *netlink.Route) error {
	name := f.link(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: r.LinkIndex}}).Attrs().Name
	call := fmt.Sprintf("RouteReplace %s via %s dev %s", r.Dst, r.Gw, name)
	if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
		call += " onlink"
	}
	f.calls = append(f.calls, call)
	if ones, _ := r.Dst.Mask.Size(); ones != 0 {
		return fmt.Errorf("fake: only default routes are faked, not %s", r.Dst)
	}
	stored := *r
	// netlink v1.3 reads a default route back as 0.0.0.0/0 in the
	// 16-byte form of net.IPv4zero.
	stored.Dst = &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	stored.Family = netlink.FAMILY_V4
	for i, old := range f.routes {
		if isDefault(old) && old.Priority == r.Priority && old.Tos == r.Tos {
			f.routes[i] = stored
			return nil
		}
	}
	f.routes = append(f.routes, stored)
	return nil
}

// state describes the links, addresses and routes, for comparing.
func (f *fakeNL) state() []string {
	var out []string
	for _, l := range f.links {
		s := l.Attrs().Name
		if l.Attrs().Flags&net.FlagUp != 0 {
			s += " up"
		}
		for _, a := range f.addrs[l.Attrs().Index] {
			s += " " + a.IPNet.String()
		}
		out = append(out, s)
	}
	for _, r := range f.routes {
		l := f.link(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: r.LinkIndex}})
		s := fmt.Sprintf("default via %s dev %s metric %d", r.Gw, l.Attrs().Name, r.Priority)
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		out = append(out, s)
	}
	return out
}

func (f *fakeNL) String() string { return strings.Join(f.state(), "\n") }
