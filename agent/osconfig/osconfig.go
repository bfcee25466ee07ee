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

	"osmanager/agent/sysroot"
)

// Config is what every configurator needs.
type Config struct {
	Root  *sysroot.Root
	Files Files
	Log   *slog.Logger
}

// Files names the files the configurators read and write, as slash paths
// in Root.
type Files struct {
	Shadow     string
	ShadowLock string // lckpwdf(3)'s lock file
	SSHDir     string // root's .ssh
	AuthKeys   string // root's authorized_keys, in SSHDir
	RootUID    int    // owner of SSHDir and AuthKeys (0; tests use their own uid)
	RootGID    int
	Hostname   string
	Hosts      string
	Resolv     string
}
