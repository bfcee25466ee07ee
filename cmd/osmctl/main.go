// Command osmctl is the command-line client of a running osmanager. It
// starts small: the local API it will speak arrives with the app manager.
// It links only osmanager/internal/version, not the agent.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"osmanager/internal/version"
)

const usage = `usage: osmctl <command>

commands:
  version  print the version
  help     print this help
`

// errUsage is returned after the usage went to stderr.
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "osmctl:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "-version", "--version":
		if len(rest) > 0 {
			return fmt.Errorf("version: unexpected arguments %q", rest)
		}
		fmt.Fprintln(stdout, "osmctl", version.String())
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
