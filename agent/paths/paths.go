// Package paths names every file and directory the agent touches, in one
// place, so an odd image or a test can move any of them.
//
// System names are slash paths inside the system root (a sysroot.Root for
// "/" in production); LuoYun names are inside the LuoYun root (/LuoYun);
// kernel names (/proc, /sys/fs/cgroup) are of the running host.
//
// Only the wiring (agent) reads this table: each package declares the
// small struct or fields of the files it uses, and agent fills them from
// here, so no other package imports paths.
package paths

// Production locations that are also flag defaults.
const (
	DefaultFloppy = "/dev/fd0" // the floppy the compute node attaches (floppy.DefaultPath)
	DefaultRoot   = "/LuoYun"  // the LuoYun dir
)

// Paths lists the agent's files. Start from Default and change what differs.
type Paths struct {
	Floppy string // the instance floppy: a block device or an image file

	// In the system root.
	Shadow     string
	ShadowLock string // lckpwdf(3)'s lock file
	Passwd     string
	Group      string
	Locale     string // LANG for login shells of the web terminal
	RootHome   string // root's home; .ssh lives here
	RootUID    int    // owner of root's .ssh (0; tests use their own uid)
	RootGID    int
	Hostname   string
	Hosts      string
	Resolv     string
	APISocket  string // the local API's Unix socket (osmctl's default), 0660
	Binary     string // where osmanager is installed; the init files start it from there (filled in by the build)

	// Of the running host, whatever the system root.
	Proc   string // procfs: system figures, process scans
	Cgroup string // cgroup v2 hierarchy, for the app manager

	// Commands and the environment of children.
	Modprobe string // the modprobe command, for "modprobe floppy"
	PATH     string // PATH of the appliance's scripts and of root's login shells
	UserPATH string // PATH of other accounts' login shells (login(1)'s)

	// In the LuoYun root.
	Conf         string // the kept copy of luoyun.ini
	ConfigScript string
	StatusScript string
	WWW          string
	Version      string
	WebSSHCert   string // the web terminal's self-signed certificate (PEM), 0600
	WebSSHKey    string // its private key (PEM), 0600
	KnownHosts   string // the local sshd's host key, pinned on first use, 0600
	WebSSHShells string // the web terminal's live login shells (to end after a crash), 0600
	AppsDir      string // installed applications: <id>/<tree>/, .staging/, state.json
	AppsData     string // per-app data dirs, <id>/, kept across versions and on uninstall without purge
	AppsD        string // declared services: *.json, read at start and on reload (SIGHUP, osmctl reload)
	AlertsFile   string // the app monitor's system alert file (agent/apps/pack.AlertFile)

	// Per instance (agent/instance).
	InstanceID     string // LuoYun root: the instance identity last acted on (a hash, never the KEY)
	MachineIDReset string // LuoYun root: a machine-id reset due at the next shutdown
	SystemdRun     string // running host: exists when systemd is PID 1 (sd_booted(3))
	SSHHostKeys    string // system root: the directory of sshd's host keys
	MachineID      string // system root: systemd's machine ID
	DBusMachineID  string // system root: D-Bus's copy, when a file of its own
	SSHDPid        string // system root: sshd's pid file, for SIGHUP without systemd
	AgentLog       string // system root: the agent's log file under sysvinit (rotated copies beside it)
}

// Default returns the production paths.
func Default() Paths {
	return Paths{
		Floppy:     DefaultFloppy,
		Shadow:     "/etc/shadow",
		ShadowLock: "/etc/.pwd.lock",
		Passwd:     "/etc/passwd",
		Group:      "/etc/group",
		Locale:     "/etc/default/locale",
		RootHome:   "/root",
		Hostname:   "/etc/hostname",
		Hosts:      "/etc/hosts",
		Resolv:     "/etc/resolv.conf",
		APISocket:  "/run/osmanager.sock",
		Binary:     "/usr/local/sbin/osmanager",

		Proc:   "/proc",
		Cgroup: "/sys/fs/cgroup",

		Modprobe: "modprobe",
		PATH:     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		UserPATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",

		Conf:         "/conf/luoyun.conf",
		ConfigScript: "/custom/scripts/config",
		StatusScript: "/custom/scripts/status",
		WWW:          "/custom/www",
		Version:      "/build/VERSION",
		WebSSHCert:   "/conf/webssh-cert.pem",
		WebSSHKey:    "/conf/webssh-key.pem",
		KnownHosts:   "/conf/webssh-known-hosts",
		WebSSHShells: "/conf/webssh-shells",
		AppsDir:      "/apps",
		AppsData:     "/apps-data",
		AppsD:        "/apps.d",
		AlertsFile:   "/conf/alerts.json",

		InstanceID:     "/conf/instance-id",
		MachineIDReset: "/conf/machine-id-reset",
		SystemdRun:     "/run/systemd/system",
		SSHHostKeys:    "/etc/ssh",
		MachineID:      "/etc/machine-id",
		DBusMachineID:  "/var/lib/dbus/machine-id",
		SSHDPid:        "/run/sshd.pid",
		AgentLog:       "/var/log/osmanager.log",
	}
}

// SSHDir is root's .ssh directory.
func (p Paths) SSHDir() string { return p.RootHome + "/.ssh" }

// AuthorizedKeys is root's authorized_keys file.
func (p Paths) AuthorizedKeys() string { return p.SSHDir() + "/authorized_keys" }

// AppsState is the app store's state file (installed apps, desired
// states, runid counter).
func (p Paths) AppsState() string { return p.AppsDir + "/state.json" }

// AppsStaging holds the app store's staging dirs, one per install in
// progress; whatever is there at start was left by a crash.
func (p Paths) AppsStaging() string { return p.AppsDir + "/.staging" }

// AppsRuns is the app manager's records of the live runs, for adoption
// by the next agent (a dot name: never an app id, never swept).
func (p Paths) AppsRuns() string { return p.AppsDir + "/.runs.json" }

// AppsLogs holds the runs' log files, <id>/<runid>.log and rotated
// copies.
func (p Paths) AppsLogs() string { return p.AppsDir + "/.logs" }

// AppsOCI holds the OCI runs' own bundle dirs, osm-<id>-<runid>/
// (config.json of the run, the runtime's log), in the LuoYun root.
func (p Paths) AppsOCI() string { return p.AppsDir + "/.oci" }

// OCIState is the OCI runtime's state dir (its --root), in the system
// root: the agent's own, so its sweep touches no other user's containers.
func (p Paths) OCIState() string { return "/run/osmanager/oci" }
