package webssh

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// allowedOrigins lists the origins the terminal's own page may have: the
// scheme of the connection, and every host:port the listening socket is
// reached at. An unspecified listen address means every address of the
// machine (looked up now: DHCP may change them), its host names
// (the kernel's and the configured one) and localhost; a specific one
// means that address (and localhost for a loopback one), with the host
// names; a listen address given as a name adds that name. Behind NAT or a proxy (another host or port) the address the
// browser uses must be added with --webssh-origin.
func (s *Server) allowedOrigins(secure bool) []string {
	s.mu.Lock()
	la := s.listen
	s.mu.Unlock()
	tcp, ok := la.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ap := tcp.AddrPort()
	ip := ap.Addr().Unmap().WithZone("")
	var hosts []string
	addIP := func(a netip.Addr) {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !a.IsUnspecified() {
			if a.Is6() {
				hosts = append(hosts, "["+a.String()+"]")
			} else {
				hosts = append(hosts, a.String())
			}
		}
	}
	if ip.IsUnspecified() {
		hosts = append(hosts, "localhost")
		addrs, _ := s.ifaceAddrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok {
					addIP(a)
				}
			}
		}
	} else {
		if ip.IsLoopback() {
			hosts = append(hosts, "localhost")
		}
		addIP(ip)
	}
	if h, err := os.Hostname(); err == nil {
		if h, ok := dnsName(h); ok {
			hosts = append(hosts, h)
		}
	}
	if h, ok := dnsName(s.cfg.Hostname); ok {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(s.cfg.Addr); err == nil {
		if h, ok := dnsName(h); ok {
			hosts = append(hosts, h) // --listen-webssh named the host
		}
	}
	scheme, defPort := "http", uint16(80)
	if secure {
		scheme, defPort = "https", 443
	}
	port := strconv.Itoa(int(ap.Port()))
	out := make([]string, 0, 2*len(hosts))
	for _, h := range hosts {
		out = append(out, scheme+"://"+h+":"+port)
		if ap.Port() == defPort {
			out = append(out, scheme+"://"+h)
		}
	}
	return out
}

// dnsName returns h as a certificate or origin DNS name: lower case, no
// final dot, letters, digits and inner hyphens in labels of 1 to 63 bytes,
// 253 bytes at most. IP literals and anything else (non-ASCII names,
// underscores, wildcards) are not DNS names.
func dnsName(h string) (string, bool) {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return "", false
	}
	for _, l := range strings.Split(h, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	return h, true
}
