package status

import (
	"encoding/binary"
	"net"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// nlmsg is one netlink message: header, fixed part, attributes.
func nlmsg(typ uint16, fixed []byte, attrs ...[]byte) []byte {
	body := append([]byte(nil), fixed...)
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := make([]byte, syscall.NLMSG_HDRLEN, syscall.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(b[0:], uint32(syscall.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	return append(b, body...)
}

func rtattr(typ uint16, v []byte) []byte {
	n := syscall.SizeofRtAttr + len(v)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], v)
	return b
}

func ifinfo(arphrd uint16, index int32, flags uint32) []byte {
	b := make([]byte, syscall.SizeofIfInfomsg)
	binary.NativeEndian.PutUint16(b[2:], arphrd)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	return b
}

func ifaddr(family byte, bits byte, index int32) []byte {
	b := make([]byte, syscall.SizeofIfAddrmsg)
	b[0], b[1] = family, bits
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

func TestParseInterfaces(t *testing.T) {
	name := func(s string) []byte { return rtattr(syscall.IFLA_IFNAME, append([]byte(s), 0)) }
	mac := rtattr(syscall.IFLA_ADDRESS, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56})
	links := append(append(append(append(append(
		nlmsg(syscall.RTM_NEWLINK, ifinfo(772, 1, syscall.IFF_UP|syscall.IFF_LOOPBACK), name("lo")),
		nlmsg(syscall.RTM_NEWLINK, ifinfo(1, 2, syscall.IFF_UP), name("eth0"), mac)...),
		nlmsg(syscall.RTM_NEWLINK, ifinfo(1, 3, 0), name("eth1"), rtattr(syscall.IFLA_ADDRESS, make([]byte, 6)))...),
		nlmsg(syscall.RTM_NEWLINK, ifinfo(778, 4, syscall.IFF_UP), name("gre1"), rtattr(syscall.IFLA_ADDRESS, []byte{10, 9, 9, 9}))...),
		nlmsg(syscall.RTM_NEWLINK, ifinfo(1, 5, 0), name("spare0"), mac)...),
		nlmsg(syscall.NLMSG_DONE, make([]byte, 4))...)
	addrs := append(append(append(append(append(
		nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET, 8, 1), rtattr(syscall.IFA_ADDRESS, []byte{127, 0, 0, 1})),
		nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET, 24, 2), rtattr(syscall.IFA_ADDRESS, []byte{10, 0, 0, 12}), rtattr(syscall.IFA_LABEL, []byte("eth0\x00")))...),
		nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET, 32, 4), rtattr(syscall.IFA_ADDRESS, []byte{10, 9, 9, 1}), rtattr(syscall.IFA_LOCAL, []byte{10, 9, 9, 2}))...),
		nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET6, 64, 2), rtattr(syscall.IFA_ADDRESS, net.ParseIP("fe80::5054:ff:fe12:3456")))...),
		nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET, 24, 3), rtattr(syscall.IFA_ADDRESS, []byte{192, 168, 1, 5}))...),
		nlmsg(syscall.NLMSG_DONE, make([]byte, 4))...)
	got, err := parseInterfaces(links, addrs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Interface{
		{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, Addrs: []string{"10.0.0.12/24", "fe80::5054:ff:fe12:3456/64"}},
		{Name: "eth1", Up: false, Addrs: []string{"192.168.1.5/24"}}, // all-zero MAC: none
		{Name: "gre1", Up: true, Addrs: []string{"10.9.9.2/32"}},     // a tunnel's IPv4 "MAC" is none; point-to-point: the local address
	} // lo: loopback; spare0: down without addresses
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseInterfaces (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name         string
		links, addrs []byte
	}{
		{"truncated link dump", links[:30], addrs},
		{"truncated address dump", links, addrs[:30]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseInterfaces(tc.links, tc.addrs); err == nil {
				t.Error("no error")
			}
		})
	}
}

// FuzzParseInterfaces: any bytes give a list or an error, never a panic.
func FuzzParseInterfaces(f *testing.F) {
	name := rtattr(syscall.IFLA_IFNAME, []byte("eth0\x00"))
	f.Add(nlmsg(syscall.RTM_NEWLINK, ifinfo(1, 2, syscall.IFF_UP), name), nlmsg(syscall.RTM_NEWADDR, ifaddr(syscall.AF_INET, 24, 2), rtattr(syscall.IFA_ADDRESS, []byte{10, 0, 0, 1})))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, links, addrs []byte) {
		ifs, err := parseInterfaces(links, addrs)
		if err == nil {
			for _, i := range ifs {
				if i.Addrs == nil {
					t.Fatalf("%s: nil Addrs", i.Name)
				}
			}
		}
	})
}
