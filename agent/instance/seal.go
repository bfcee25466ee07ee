package instance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"osmanager/agent/paths"
	"osmanager/agent/sysroot"
)

// Seal removes the instance state from an image before it is captured, so
// that no clone inherits the builder's config, pins or identity:
//
//   - in the LuoYun dir: conf/luoyun.conf (the builder's TAG and KEY),
//     the recorded instance identity, the web terminal's host-key pin, its
//     self-signed TLS certificate and key, and its list of live shells;
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
func Seal(sys, ly *sysroot.Root, p paths.Paths, dryRun bool) ([]string, error) {
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
	for _, name := range []string{p.Conf, p.InstanceID, p.KnownHosts, p.WebSSHCert, p.WebSSHKey, p.WebSSHShells} {
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

// SealCommand is "osmanager seal": it parses its flags, seals, and prints
// what it removed, one line each.
func SealCommand(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("osmanager seal", flag.ContinueOnError)
	fset.SetOutput(stderr)
	root := fset.String("root", paths.DefaultRoot, "the LuoYun dir (conf/, custom/, build/)")
	sysdir := fset.String("sysroot", "/", "root of the system to seal (/etc, /var/log, …)")
	dry := fset.Bool("dry-run", false, "list what would be removed, remove nothing")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: osmanager seal [--root DIR] [--sysroot DIR] [--dry-run]")
		fmt.Fprintln(stderr, "removes the instance state before the image is captured (stop the agent first)")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("seal: unexpected arguments %q", fset.Args())
	}
	sys, err := sysroot.New(*sysdir)
	if err != nil {
		return err
	}
	ly, err := sysroot.New(*root)
	if err != nil {
		return err
	}
	lines, err := Seal(sys, ly, paths.Default(), *dry)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if len(lines) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove: the image is sealed")
	}
	return err
}
