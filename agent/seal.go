package agent

import (
	"flag"
	"fmt"
	"io"

	"osmanager/agent/instance"
	"osmanager/agent/paths"
	"osmanager/agent/sysroot"
)

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
	lines, err := instance.Seal(sys, ly, instanceFiles(paths.Default()), *dry)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if len(lines) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove: the image is sealed")
	}
	return err
}
