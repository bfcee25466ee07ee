// Command osmctl is the command-line client of a running osmanager. It
// starts small: the local API it will speak arrives with the app manager.
package main

import (
	"fmt"
	"io"
	"os"

	"osmanager/agent"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "osmctl:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 1 && args[0] == "version" {
		fmt.Fprintln(stdout, "osmctl", agent.Version)
		return nil
	}
	return fmt.Errorf("usage: osmctl version")
}
