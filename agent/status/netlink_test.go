package status

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

// netInterfaces is HostInterfaces as it was, through the net package (a
// dump of every address per interface): the reference the two-dump
// reading must agree with.
func netInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := []Interface{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		i := Interface{Name: ifc.Name, MAC: ifc.HardwareAddr.String(), Up: ifc.Flags&net.FlagUp != 0, Addrs: []string{}}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			i.Addrs = append(i.Addrs, a.String())
		}
		if !i.Up && len(i.Addrs) == 0 {
			continue
		}
		out = append(out, i)
	}
	return out, nil
}

// TestHostInterfacesAsNet: on this host, the same list as the net package
// gives.
func TestHostInterfacesAsNet(t *testing.T) {
	want, err := netInterfaces()
	if err != nil {
		t.Skipf("net.Interfaces: %v", err)
	}
	got, err := HostInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HostInterfaces (-net +got):\n%s", diff)
	}
}

func ipnet(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

// TestInterfacesOf: loopback and unused devices are left out, addresses
// join their links by index (a point-to-point link shows its local
// address), a tunnel's local address or an all-zero one is no MAC.
func TestInterfacesOf(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	dev := func(index int, name string, flags net.Flags, hw net.HardwareAddr, encap string) netlink.Link {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index, Name: name, Flags: flags, HardwareAddr: hw, EncapType: encap}}
	}
	links := []netlink.Link{
		dev(1, "lo", net.FlagUp|net.FlagLoopback, nil, "loopback"),
		dev(2, "eth0", net.FlagUp, mac, "ether"),
		dev(3, "eth1", 0, make(net.HardwareAddr, 6), "ether"),
		dev(4, "gre1", net.FlagUp, net.HardwareAddr{10, 9, 9, 9}, "gre"),
		dev(5, "spare0", 0, mac, "ether"),
	}
	addrs := []netlink.Addr{
		{IPNet: ipnet("127.0.0.1/8"), LinkIndex: 1},
		{IPNet: ipnet("10.0.0.12/24"), LinkIndex: 2, Label: "eth0"},
		{IPNet: ipnet("10.9.9.2/32"), Peer: ipnet("10.9.9.1/32"), LinkIndex: 4},
		{IPNet: ipnet("fe80::5054:ff:fe12:3456/64"), LinkIndex: 2},
		{IPNet: ipnet("192.168.1.5/24"), LinkIndex: 3},
		{IPNet: ipnet("10.7.7.7/24"), LinkIndex: 9}, // a link gone between the dumps
		{LinkIndex: 2}, // no address: skipped
	}
	want := []Interface{
		{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, Addrs: []string{"10.0.0.12/24", "fe80::5054:ff:fe12:3456/64"}},
		{Name: "eth1", Up: false, Addrs: []string{"192.168.1.5/24"}},
		{Name: "gre1", Up: true, Addrs: []string{"10.9.9.2/32"}},
	}
	if diff := cmp.Diff(want, interfacesOf(links, addrs)); diff != "" {
		t.Errorf("interfacesOf (-want +got):\n%s", diff)
	}
	if got := interfacesOf(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("no links: %#v, want an empty list (JSON [])", got)
	}
}
