package clc

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// ListenMulticast opens the socket JOINs arrive on: UDP, bound to the
// group's address and port (SO_REUSEADDR), so that the kernel hands it only
// datagrams sent to the group, never unicast ones to the port; joined to
// the group on the interface the kernel routes it to; and with IP_PKTINFO,
// so that ReadJoin reports each datagram's destination for a second check.
// (net.ListenMulticastUDP binds the wildcard address, which takes unicast
// too.) It fails while no interface can reach the group (network not up
// yet); the link retries at its next wait.
func ListenMulticast(_ context.Context, group netip.AddrPort) (JoinConn, error) {
	if !group.Addr().Is4() || !group.Addr().IsMulticast() {
		return nil, fmt.Errorf("listen for JOIN on %s: not an IPv4 multicast group", group)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("listen for JOIN on %s: socket: %w", group, err)
	}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return fmt.Errorf("IP_PKTINFO: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(group.Port()), Addr: group.Addr().As4()}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		// Interface 0.0.0.0: the one the kernel routes the group to.
		if err := unix.SetsockoptIPMreq(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreq{Multiaddr: group.Addr().As4()}); err != nil {
			return fmt.Errorf("join group: %w", err)
		}
		return nil
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen for JOIN on %s: %w", group, err)
	}
	f := os.NewFile(uintptr(fd), "join "+group.String())
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("listen for JOIN on %s: %w", group, err)
	}
	return &mcastConn{pc.(*net.UDPConn)}, nil
}

// mcastConn is ListenMulticast's socket.
type mcastConn struct{ *net.UDPConn }

func (c *mcastConn) ReadJoin(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	return n, from, pktinfoDst(oob[:oobn]), nil
}

// pktinfoDst is the header destination (ipi_addr) of an IP_PKTINFO control
// message: struct in_pktinfo is ifindex int32, spec_dst [4], addr [4].
func pktinfoDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo {
			return netip.AddrFrom4([4]byte(m.Data[8:12]))
		}
	}
	return netip.Addr{}
}
