package netconf

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestParseNetmask(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "255.255.255.0", want: 24},
		{in: "255.255.255.252", want: 30},
		{in: "255.255.255.255", want: 32},
		{in: "128.0.0.0", want: 1},
		{in: "24", want: 24},
		{in: "/24", want: 24},
		{in: " /8 ", want: 8},
		{in: "", wantErr: "missing"},
		{in: "0", wantErr: "out of range"},
		{in: "/0", wantErr: "out of range"},
		{in: "0.0.0.0", wantErr: "out of range"},
		{in: "33", wantErr: "out of range"},
		{in: "255.0.255.0", wantErr: "non-contiguous"},
		{in: "0.255.255.255", wantErr: "non-contiguous"},
		{in: "255.255.255.0.0", wantErr: "not a dotted-quad"},
		{in: "+24", wantErr: "not a dotted-quad"},
		{in: "024", wantErr: "not a dotted-quad"},
		{in: "//24", wantErr: "not a dotted-quad"},
		{in: "/", wantErr: "not a dotted-quad"},
		{in: "ffff:ff00::", wantErr: "not a dotted-quad"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseNetmask(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Errorf("parseNetmask(%q) = %d, %v; want an ErrInvalid error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseNetmask(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseEntry(t *testing.T) {
	tests := []struct {
		name       string
		e          Entry
		wantAddr   string // "" for none
		wantGW     string
		wantOnlink bool
		wantErr    string
	}{
		{name: "full", e: Entry{MAC: "52:54:00:12:34:56", IP: "10.0.0.12", Netmask: "255.255.255.0", Gateway: "10.0.0.1"}, wantAddr: "10.0.0.12/24", wantGW: "10.0.0.1"},
		{name: "no ip ignores the rest", e: Entry{IP: " ", Netmask: "x", Gateway: "y"}},
		{name: "bad MAC even without ip", e: Entry{MAC: "52:54:00:12:34"}, wantErr: `parse mac "52:54:00:12:34"`},
		{name: "EUI-64 MAC", e: Entry{MAC: "02:00:5e:10:00:00:00:01", IP: "10.0.0.12", Netmask: "24"}, wantErr: "not a 6-byte"},
		{name: "negative index", e: Entry{Index: -1}, wantErr: "check index -1: negative"},
		{name: "onlink gateway", e: Entry{IP: "10.0.0.12", Netmask: "/24", Gateway: "10.0.9.1"}, wantAddr: "10.0.0.12/24", wantGW: "10.0.9.1", wantOnlink: true},
		{name: "/31 has no broadcast", e: Entry{IP: "10.0.0.0", Netmask: "31", Gateway: "10.0.0.1"}, wantAddr: "10.0.0.0/31", wantGW: "10.0.0.1"},
		{name: "missing netmask", e: Entry{IP: "10.0.0.12"}, wantErr: `parse netmask "": missing`},
		{name: "leading zeros", e: Entry{IP: "010.0.0.12", Netmask: "8"}, wantErr: "not an IPv4 address"},
		{name: "IPv4-mapped", e: Entry{IP: "::ffff:10.0.0.12", Netmask: "8"}, wantErr: "not an IPv4 address"},
		{name: "loopback", e: Entry{IP: "127.0.0.2", Netmask: "8"}, wantErr: "not a unicast address"},
		{name: "multicast gateway", e: Entry{IP: "10.0.0.12", Netmask: "8", Gateway: "224.0.0.1"}, wantErr: `parse gateway "224.0.0.1": not a unicast address`},
		{name: "unspecified", e: Entry{IP: "0.0.0.0", Netmask: "8"}, wantErr: "not a unicast address"},
		{name: "gateway is the broadcast", e: Entry{IP: "10.0.0.12", Netmask: "24", Gateway: "10.0.0.255"}, wantErr: "network or broadcast address of 10.0.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseEntry(tt.e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Errorf("parseEntry(%+v) error = %v; want an ErrInvalid error containing %q", tt.e, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEntry(%+v) error = %v", tt.e, err)
			}
			var gotAddr, gotGW string
			if s.addr.IsValid() {
				gotAddr = s.addr.String()
			}
			if s.gateway.IsValid() {
				gotGW = s.gateway.String()
			}
			if gotAddr != tt.wantAddr || gotGW != tt.wantGW || s.onlink() != tt.wantOnlink {
				t.Errorf("parseEntry(%+v) = addr %q gateway %q onlink %v; want %q %q %v",
					tt.e, gotAddr, gotGW, s.onlink(), tt.wantAddr, tt.wantGW, tt.wantOnlink)
			}
		})
	}
}

// FuzzParseEntry checks that no input panics, that every refusal is an
// ErrInvalid, and that what is accepted is sane and reads back the same from
// its canonical forms.
func FuzzParseEntry(f *testing.F) {
	for _, seed := range [][4]string{
		{"52:54:00:12:34:56", "10.0.0.12", "255.255.255.0", "10.0.0.1"},
		{"", "10.0.0.12", "/24", ""},
		{"", "10.0.0.12", "24", "10.9.9.9"},
		{"52-54-00-AB-CD-EF", "192.168.1.1", "255.0.255.0", ""},
		{"", "10.0.0.300", "33", "fe80::1"},
		{"", "::ffff:1.2.3.4", "0.0.0.0", "1.2.3.4%eth0"},
		{"", "", "junk", "junk"},
		{"0000.0000.0000", "10.0.0.0", "31", "10.0.0.1"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, mac, ip, netmask, gateway string) {
		e := Entry{Index: 1, MAC: mac, IP: ip, Netmask: netmask, Gateway: gateway}
		s, err := parseEntry(e)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parseEntry(%+v) error = %v; want ErrInvalid", e, err)
			}
			return
		}
		if s.mac != nil && len(s.mac) != 6 {
			t.Fatalf("parseEntry(%+v) mac = %v; want 6 bytes", e, s.mac)
		}
		if !s.addr.IsValid() {
			if strings.TrimSpace(ip) != "" || s.gateway.IsValid() {
				t.Fatalf("parseEntry(%+v) = no address, gateway %v; want none only for an empty ip", e, s.gateway)
			}
			return
		}
		if !s.addr.Addr().Is4() || s.addr.Bits() < 1 || s.addr.Bits() > 32 {
			t.Fatalf("parseEntry(%+v) addr = %v; want IPv4 with a prefix length 1-32", e, s.addr)
		}
		if s.gateway.IsValid() && (!s.gateway.Is4() || s.gateway == s.addr.Addr()) {
			t.Fatalf("parseEntry(%+v) gateway = %v; want IPv4 other than the ip", e, s.gateway)
		}

		canon := Entry{Index: 1, IP: s.addr.Addr().String(), Netmask: strconv.Itoa(s.addr.Bits())}
		if s.mac != nil {
			canon.MAC = strings.ToUpper(s.mac.String())
		}
		if s.gateway.IsValid() {
			canon.Gateway = s.gateway.String()
		}
		dotted := canon
		dotted.Netmask = net.IP(net.CIDRMask(s.addr.Bits(), 32)).String()
		for _, c := range []Entry{canon, dotted} {
			s2, err := parseEntry(c)
			if err != nil || s2.addr != s.addr || s2.gateway != s.gateway || !bytes.Equal(s2.mac, s.mac) {
				t.Fatalf("parseEntry(%+v) = %+v, %v; want %+v as from %+v", c, s2, err, s, e)
			}
		}
	})
}
