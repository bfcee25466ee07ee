package instance

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"osmanager/agent/sysroot"
)

// Seal removes the instance state from an image before it is captured, so
// that no clone inherits the builder's config, pins or identity:
//
//   - in the LuoYun dir: conf/luoyun.conf (the builder's TAG and KEY),
//     the recorded instance identity and a pending machine-id reset, the
//     web terminal's host-key pin, its self-signed TLS certificate and
//     key, and its list of live shells;
//   - in the system root: the agent's log file and its rotated copies
//     (/var/log/osmanager.log*), a D-Bus machine-id that is a file of its
//     own; and /etc/machine-id is emptied (not removed: an empty file
//     makes systemd create a new ID at the next boot, a missing one can
//     make it run first-boot setup).
//
// The SSH host keys are left: with the identity gone the first boot of a
// clone is a new instance and makes new ones before sshd starts, and the
// builder's own session to the image keeps working until it powers off.
//
// Seal returns one line per file: "removed <path>", "emptied <path>", or
// with dryRun "would remove <path>", "would empty <path>", changing
// nothing. Sealing a sealed image finds nothing and says nothing. It goes
// on after a failure; the failures are joined.
func Seal(sys, ly *sysroot.Root, p Files, dryRun bool) ([]string, error) {
	var lines []string
	var errs []error
	say := func(verb, dryVerb string, root *sysroot.Root, name string) {
		v := verb
		if dryRun {
			v = dryVerb
		}
		lines = append(lines, v+" "+path.Join(root.Dir(), name))
	}
	remove := func(root *sysroot.Root, name string) {
		if fi, err := root.Lstat(name); err != nil || fi.IsDir() {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		if !dryRun {
			if _, err := root.Remove(name); err != nil {
				errs = append(errs, err)
				return
			}
		}
		say("removed", "would remove", root, name)
	}
	for _, name := range []string{p.Conf, p.InstanceID, p.MachineIDReset, p.KnownHosts, p.WebSSHCert, p.WebSSHKey, p.WebSSHShells} {
		remove(ly, name)
	}
	logs, err := rotated(sys, p.AgentLog)
	errs = append(errs, err)
	for _, name := range logs {
		remove(sys, name)
	}
	if regular(sys, p.DBusMachineID) {
		remove(sys, p.DBusMachineID)
	}
	if fi, err := sys.Lstat(p.MachineID); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		if !dryRun {
			if _, err := emptyMachineID(sys, p.MachineID); err != nil {
				errs = append(errs, err)
			}
		}
		say("emptied", "would empty", sys, p.MachineID)
	}
	return lines, errors.Join(errs...)
}

// rotated returns name and its rotated copies (name.1, name.2.gz, …)
// that exist, sorted.
func rotated(root *sysroot.Root, name string) ([]string, error) {
	dir, base := path.Split(name)
	names, err := root.ReadDirNames(path.Clean(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if n == base || strings.HasPrefix(n, base+".") {
			out = append(out, path.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}
