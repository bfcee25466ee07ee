package netconf

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// spec is an Entry that passed validation.
type spec struct {
	index   int
	mac     net.HardwareAddr // nil: match by order
	addr    netip.Prefix     // address and prefix length (host bits kept); invalid: leave the interface alone
	gateway netip.Addr       // invalid: none
}

// onlink reports whether the gateway lies outside the entry's subnet, so
// the kernel must be told it is reachable on the link anyway.
func (s *spec) onlink() bool {
	return s.gateway.IsValid() && !s.addr.Contains(s.gateway)
}

// invalidError is the reason a field is refused; it matches ErrInvalid.
type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// parseEntry validates e. Surrounding white space is forgiven; nothing else
// is guessed. An entry without an ip is not checked further than its MAC:
// its netmask and gateway are not used.
func parseEntry(e Entry) (spec, error) {
	s := spec{index: e.Index}
	if e.Index < 0 {
		return s, fmt.Errorf("check index %d: %w", e.Index, invalidError("negative"))
	}
	if m := strings.TrimSpace(e.MAC); m != "" {
		hw, err := net.ParseMAC(m)
		if err != nil || len(hw) != 6 {
			return s, fmt.Errorf("parse mac %q: %w", e.MAC, invalidError("not a 6-byte Ethernet address"))
		}
		s.mac = hw
	}
	if strings.TrimSpace(e.IP) == "" {
		return s, nil
	}
	ip, err := parseIPv4(e.IP)
	if err != nil {
		return s, fmt.Errorf("parse ip %q: %w", e.IP, err)
	}
	bits, err := parseNetmask(e.Netmask)
	if err != nil {
		return s, fmt.Errorf("parse netmask %q: %w", e.Netmask, err)
	}
	p := netip.PrefixFrom(ip, bits)
	if isNetOrBroadcast(p, ip) {
		return s, fmt.Errorf("check ip %s: %w", p, invalidError("network or broadcast address of its subnet"))
	}
	s.addr = p
	if strings.TrimSpace(e.Gateway) == "" {
		return s, nil
	}
	gw, err := parseIPv4(e.Gateway)
	if err != nil {
		return s, fmt.Errorf("parse gateway %q: %w", e.Gateway, err)
	}
	switch {
	case gw == ip:
		return s, fmt.Errorf("check gateway %s: %w", gw, invalidError("same as the ip"))
	case p.Contains(gw) && isNetOrBroadcast(p, gw):
		return s, fmt.Errorf("check gateway %s: %w", gw, invalidError("network or broadcast address of "+p.Masked().String()))
	}
	s.gateway = gw
	return s, nil
}

// parseIPv4 parses a unicast IPv4 address in dotted-quad form (no leading
// zeros, no IPv4-mapped IPv6).
func parseIPv4(str string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(str))
	if err != nil || !a.Is4() {
		return netip.Addr{}, invalidError("not an IPv4 address")
	}
	if !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
		return netip.Addr{}, invalidError("not a unicast address")
	}
	return a, nil
}

// parseNetmask returns the prefix length of a dotted-quad netmask
// ("255.255.255.0") or of a prefix length ("24", "/24").
func parseNetmask(str string) (int, error) {
	str = strings.TrimSpace(str)
	var bits int
	switch {
	case str == "":
		return 0, invalidError("missing")
	case strings.Contains(str, "."):
		a, err := netip.ParseAddr(str)
		if err != nil || !a.Is4() {
			return 0, invalidError("not a dotted-quad netmask or a prefix length")
		}
		ones, size := net.IPMask(a.AsSlice()).Size()
		if size == 0 {
			return 0, invalidError("non-contiguous mask")
		}
		bits = ones
	default:
		digits := strings.TrimPrefix(str, "/")
		if len(digits) == 0 || len(digits) > 2 || strings.Trim(digits, "0123456789") != "" {
			return 0, invalidError("not a dotted-quad netmask or a prefix length")
		}
		for _, d := range digits {
			bits = bits*10 + int(d-'0')
		}
	}
	if bits < 1 || bits > 32 {
		return 0, invalidError(fmt.Sprintf("prefix length %d out of range 1-32", bits))
	}
	return bits, nil
}

// isNetOrBroadcast reports whether a is the network or the broadcast
// address of p; /31 and /32 have neither.
func isNetOrBroadcast(p netip.Prefix, a netip.Addr) bool {
	if p.Bits() > 30 {
		return false
	}
	b := a.As4()
	v := binary.BigEndian.Uint32(b[:])
	host := uint32(1)<<(32-p.Bits()) - 1
	return v&host == 0 || v&host == host
}
