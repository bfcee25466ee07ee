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
func CheckHostname(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host name %q: want 1 to 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name %q: bad label %q", name, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host name %q: character %q not allowed", name, c)
			}
		}
	}
	return nil
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
		a, perr := netip.ParseAddr(ip)
		if perr != nil {
			err = fmt.Errorf("domain.ip %q refused: not an IP address", ip)
		} else {
			addr = a
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	did, werr := c.Root.WriteFile(c.Paths.Hostname, []byte(short+"\n"), sysroot.WriteOptions{Mode: 0o644, Owner: sysroot.Keep, KeepMeta: true})
	if werr != nil {
		errs = append(errs, werr)
	} else if did {
		changed = append(changed, c.Paths.Hostname)
	}
	names := short
	if name != short {
		names = name + " " + short
	}
	if did, werr := c.setHostsLine(addr.String() + "\t" + names + " " + hostsMark); werr != nil {
		errs = append(errs, werr)
	} else if did {
		changed = append(changed, c.Paths.Hosts)
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

// setHostsLine makes line the one line of /etc/hosts that ends in hostsMark,
// keeping every other line; a missing file gets the usual localhost lines.
func (c *Config) setHostsLine(line string) (bool, error) {
	old, err := c.Root.ReadFile(c.Paths.Hosts, 4<<20)
	if errors.Is(err, fs.ErrNotExist) {
		old, err = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), nil
	}
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	placed := false
	for _, l := range bytes.SplitAfter(old, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if bytes.HasSuffix(bytes.TrimRight(l, "\r\n"), []byte(hostsMark)) {
			if !placed {
				out.WriteString(line + "\n")
				placed = true
			}
			continue
		}
		out.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	if !placed {
		out.WriteString(line + "\n")
	}
	return c.Root.WriteFile(c.Paths.Hosts, out.Bytes(), sysroot.WriteOptions{Mode: 0o644, Owner: sysroot.Keep, KeepMeta: true})
}
