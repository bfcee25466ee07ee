// Package osconfig brings the guest OS in line with the instance config:
// root's password hash, root's SSH keys, the host name and the name
// servers. (Interfaces are agent/netconf's.)
//
// Each configurator is a reconciler: it reads what is there, computes what
// the config wants, and writes only what differs, through a sysroot.Root, so
// a second boot with the same config writes nothing and a crash leaves every
// file old or new. Each returns the list of things it changed.
//
// Values are checked here, where their meaning is known; a bad value is
// refused with an error naming it and nothing is written for it.
package osconfig

import (
	"log/slog"

	"osmanager/agent/paths"
	"osmanager/agent/sysroot"
)

// Config is what every configurator needs.
type Config struct {
	Root  *sysroot.Root
	Paths paths.Paths
	Log   *slog.Logger
}
