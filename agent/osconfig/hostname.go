package osconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"osmanager/agent/internal/hostname"
	"osmanager/agent/sysroot"
)

// Kernel is the kernel's host name. The agent passes HostKernel only when
// the system root is the real "/"; tests and the demo pass a fake or nil.
type Kernel interface {
	Hostname() (string, error)
	SetHostname(name string) error
}

// HostKernel is the running kernel.
type HostKernel struct{}

// Hostname returns the kernel's host name.
func (HostKernel) Hostname() (string, error) { return os.Hostname() }

// SetHostname sets the kernel's host name.
func (HostKernel) SetHostname(name string) error { return unix.Sethostname([]byte(name)) }

// hostsMark ends the /etc/hosts line the agent owns.
const hostsMark = "# osmanager"

// CheckHostname accepts an RFC 1123 host or domain name.
func CheckHostname(name string) error { return hostname.Check(name) }

// ParseHostsIP checks domain.ip for the hosts line: an IPv4 or IPv6
// address without a zone. A zone ("fe80::1%eth0") is refused: netip takes
// any bytes after the '%', newlines included, and the C library does not
// read zones in /etc/hosts anyway.
func ParseHostsIP(ip string) (netip.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("an IPv6 zone is not allowed")
	}
	return a, nil
}

// SetHostname names the host: the short name (first label) goes into
// /etc/hostname and the kernel (when k is not nil), and a hosts line maps
// ip (127.0.1.1 when empty, the Debian convention) to the full name and the
// short one, so `hostname -f` answers the full name.
func (c *Config) SetHostname(name, ip string, k Kernel) (changed []string, err error) {
	if err := CheckHostname(name); err != nil {
		return nil, fmt.Errorf("domain.name refused: %w", err)
	}
	name = strings.ToLower(name)
	short, _, _ := strings.Cut(name, ".")
	addr := netip.MustParseAddr("127.0.1.1")
	if ip != "" {
		a, perr := ParseHostsIP(ip)
		if perr != nil {
			err = fmt.Errorf("domain.ip %q refused: %w", ip, perr)
		} else {
			addr = a
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	var hn lines
	hn.add("host name", short)
	did, werr := false, hn.err()
	if werr == nil {
		did, werr = c.Root.WriteFile(c.Files.Hostname, hn.bytes(), sysroot.WriteOptions{Mode: 0o644, Owner: sysroot.Keep, KeepMeta: true})
	}
	if werr != nil {
		errs = append(errs, werr)
	} else if did {
		changed = append(changed, c.Files.Hostname)
	}
	names := short
	if name != short {
		names = name + " " + short
	}
	if did, werr := c.setHostsLine(addr.String(), names); werr != nil {
		errs = append(errs, werr)
	} else if did {
		changed = append(changed, c.Files.Hosts)
	}
	if k != nil {
		cur, kerr := k.Hostname()
		if kerr == nil && cur != short {
			kerr = k.SetHostname(short)
			if kerr == nil {
				changed = append(changed, "kernel hostname")
			}
		}
		if kerr != nil {
			errs = append(errs, fmt.Errorf("set kernel hostname: %w", kerr))
		}
	}
	if len(changed) > 0 {
		c.Log.Info("host name set", "name", name, "changed", strings.Join(changed, ","))
	}
	return changed, errors.Join(errs...)
}

// setHostsLine makes "addr<TAB>names # osmanager" the one marked line of
// /etc/hosts, keeping every other line; a missing file gets the usual
// localhost lines. The marked line is rewritten whole every boot: every
// line ending in the mark is dropped and ours takes the first one's
// place. So are the leftovers of agents before this check, which put
// domain.ip into the line unchecked: a zone with newlines in it made extra
// lines, from one starting "<IPv6>%" down to the marked one (see
// injectedLines).
func (c *Config) setHostsLine(addr, names string) (bool, error) {
	old, err := c.Root.ReadFile(c.Files.Hosts, 4<<20)
	if errors.Is(err, fs.ErrNotExist) {
		old, err = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), nil
	}
	if err != nil {
		return false, err
	}
	var w lines
	placed := false
	ls := splitLines(old)
	drop := injectedLines(ls)
	for i, l := range ls {
		// Ours goes where the first marked line was, but above any line
		// with a zoned address, so the next boot never takes such a line
		// for the start of an old agent's block: one pass is final.
		if !placed && (drop[i] || hostsMarked(l) || zoned(l)) {
			w.add("hosts line", addr, "\t", names, " ", hostsMark)
			placed = true
		}
		if !drop[i] && !hostsMarked(l) {
			w.keep(l)
		}
	}
	if !placed {
		w.add("hosts line", addr, "\t", names, " ", hostsMark)
	}
	if err := w.err(); err != nil {
		return false, err
	}
	return c.Root.WriteFile(c.Files.Hosts, w.bytes(), sysroot.WriteOptions{Mode: 0o644, Owner: sysroot.Keep, KeepMeta: true})
}

// hostsMarked reports whether a hosts line is one the agent owns.
func hostsMarked(l []byte) bool {
	return bytes.HasSuffix(bytes.TrimRight(l, " \t\r\n"), []byte(hostsMark))
}

// injectedLines marks the lines an unchecked domain.ip made. The old agent
// wrote addr.String()+"\t"+names+" # osmanager" in one go, in place of the
// first marked line, dropping the others; so a zone holding newlines left
// a line "<IPv6>%<first piece of the zone>", then whatever lines the zone
// held (marked ones among them), and the marked line last, and no other
// marked line in the file. The block therefore runs from the nearest
// line with a zoned address above the first marked line down to the last
// marked line. (glibc does not read zones in /etc/hosts, so the line that
// starts the block was never a working entry.)
func injectedLines(ls [][]byte) []bool {
	drop := make([]bool, len(ls))
	first, last := -1, -1
	for i, l := range ls {
		if hostsMarked(l) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	for j := first - 1; j >= 0; j-- {
		if zoned(ls[j]) {
			for k := j; k < last; k++ {
				drop[k] = true
			}
			break
		}
	}
	return drop
}

// zoned reports whether a line starts with an IPv6 address and a '%'.
func zoned(l []byte) bool {
	ip, _, ok := bytes.Cut(l, []byte("%"))
	if !ok || bytes.ContainsAny(ip, " \t#") {
		return false
	}
	a, err := netip.ParseAddr(string(ip))
	return err == nil && a.Is6()
}
