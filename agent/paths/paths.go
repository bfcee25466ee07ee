// Package paths names every file and directory the agent touches, in one
// place, so an odd image or a test can move any of them.
//
// System names are slash paths inside the system root (a sysroot.Root for
// "/" in production); LuoYun names are inside the LuoYun root (/LuoYun).
package paths

// Paths lists the agent's files. Start from Default and change what differs.
type Paths struct {
	Floppy string // the instance floppy: a block device or an image file

	// In the system root.
	Shadow     string
	ShadowLock string // lckpwdf(3)'s lock file
	RootHome   string // root's home; .ssh lives here
	RootUID    int    // owner of root's .ssh (0; tests use their own uid)
	RootGID    int
	Hostname   string
	Hosts      string
	Resolv     string

	// In the LuoYun root.
	Conf         string // the kept copy of luoyun.ini
	ConfigScript string
	StatusScript string
	WWW          string
	Version      string
}

// Default returns the production paths.
func Default() Paths {
	return Paths{
		Floppy:     "/dev/fd0",
		Shadow:     "/etc/shadow",
		ShadowLock: "/etc/.pwd.lock",
		RootHome:   "/root",
		Hostname:   "/etc/hostname",
		Hosts:      "/etc/hosts",
		Resolv:     "/etc/resolv.conf",

		Conf:         "/conf/luoyun.conf",
		ConfigScript: "/custom/scripts/config",
		StatusScript: "/custom/scripts/status",
		WWW:          "/custom/www",
		Version:      "/build/VERSION",
	}
}

// SSHDir is root's .ssh directory.
func (p Paths) SSHDir() string { return p.RootHome + "/.ssh" }

// AuthorizedKeys is root's authorized_keys file.
func (p Paths) AuthorizedKeys() string { return p.SSHDir() + "/authorized_keys" }
