package osconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"osmanager/agent/sysroot"
)

const resolvHeader = "# Name servers from the instance config, set by osmanager at boot."

// SplitNameservers turns the JSON's space-separated lists into unique,
// valid addresses in order; each bad word is an error.
func SplitNameservers(lists ...string) (servers []string, err error) {
	var errs []error
	seen := map[string]bool{}
	for _, l := range lists {
		for _, w := range strings.Fields(strings.ReplaceAll(l, ",", " ")) {
			a, perr := netip.ParseAddr(w)
			if perr != nil || a.Zone() != "" {
				errs = append(errs, fmt.Errorf("name server %q refused: not an IP address", w))
				continue
			}
			if s := a.String(); !seen[s] {
				seen[s] = true
				servers = append(servers, s)
			}
		}
	}
	return servers, errors.Join(errs...)
}

// SetNameservers makes resolv.conf list servers, keeping its other lines
// (search, options). A resolv.conf that is a symlink belongs to another
// resolver (systemd-resolved, resolvconf): it is left alone and the note
// says so.
func (c *Config) SetNameservers(servers []string) (changed []string, note string, err error) {
	if len(servers) == 0 {
		return nil, "no name servers in the config", nil
	}
	fi, err := c.Root.Lstat(c.Files.Resolv)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target := "?"
		if p, perr := c.Root.Path(c.Files.Resolv); perr == nil {
			target, _ = os.Readlink(p)
		}
		note = fmt.Sprintf("%s is a symlink to %s, owned by another resolver; left alone", c.Files.Resolv, target)
		c.Log.Warn("resolv.conf left alone", "file", c.Files.Resolv, "target", target, "reason", "symlink owned by another resolver")
		return nil, note, nil
	}
	old, err := c.Root.ReadFile(c.Files.Resolv, 1<<20)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	var w lines
	w.add("resolv.conf header", resolvHeader)
	for _, l := range splitLines(old) {
		t := strings.TrimSpace(string(l))
		if t == "" && len(l) <= 2 {
			continue
		}
		if t == resolvHeader || strings.HasPrefix(t, "nameserver ") || strings.HasPrefix(t, "nameserver\t") {
			continue
		}
		w.keep(l)
	}
	for _, s := range servers {
		w.add("name server", "nameserver ", s)
	}
	if err := w.err(); err != nil {
		return nil, "", err
	}
	if len(servers) > 3 {
		note = fmt.Sprintf("%d name servers; the C library uses the first 3", len(servers))
	}
	did, err := c.Root.WriteFile(c.Files.Resolv, w.bytes(), sysroot.WriteOptions{Mode: 0o644, Owner: sysroot.Keep, KeepMeta: true})
	if err != nil || !did {
		return nil, note, err
	}
	c.Log.Info("name servers set", "file", c.Files.Resolv, "servers", strings.Join(servers, " "))
	return []string{c.Files.Resolv}, note, nil
}
