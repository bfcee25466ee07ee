package agent

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"osmanager/agent/clc"
	"osmanager/agent/netconf"
	"osmanager/agent/osconfig"
	"osmanager/agent/paths"
	"osmanager/agent/sysroot"
	"osmanager/agent/web"
	"osmanager/agent/webssh"
)

// DefaultScriptTimeout is custom/scripts/config's time limit. It is the
// one default of Options the agent fills itself; the others are the
// parts' own (floppy.DefaultWait, clc.DefaultPeriod, web.DefaultAddr,
// webssh's limits), and the flags show the same values.
const DefaultScriptTimeout = 5 * time.Minute

// Options configure an Agent. The zero value plus a Log is production.
type Options struct {
	Floppy        string        // device or image; default paths.DefaultFloppy
	Root          string        // the LuoYun dir; default paths.DefaultRoot
	Sysroot       string        // root for /etc, /root, …; default /
	ScriptTimeout time.Duration // custom/scripts/config's limit; default DefaultScriptTimeout
	FloppyWait    time.Duration // how long to wait for the device after modprobe; default floppy.DefaultWait
	ReadyFile     string        // run: created once the boot steps are done (sysvinit)

	// A system root other than "/" is not a sandbox: these three act on
	// the real host whatever the root, so each is off with such a root
	// unless set to SwitchOn (see Switch).
	Network     Switch // the network step: interfaces and routes via netlink
	Modprobe    Switch // "modprobe floppy" when the floppy device is missing
	LoginShells Switch // web terminal shells in login mode, as a uid from <sysroot>/etc/passwd

	// Controller link (agent/clc).
	StatusPeriod time.Duration // how often custom/scripts/status runs; default clc.DefaultPeriod
	Heartbeat    time.Duration // ECHO_REQUEST period; default clc.DefaultPeriod
	// Status web server (agent/web).
	ListenWeb string // default web.DefaultAddr
	// Web terminal (agent/webssh).
	ListenWebSSH  string   // overrides the JSON's webssh.port; default ":<port>"
	WebSSHMode    string   // "ssh", "login" or "auto" (webssh.ModeAuto, the default)
	WebSSHCert    string   // TLS certificate file; with WebSSHKey
	WebSSHKey     string   //
	WebSSHTLS     bool     // serve TLS with a self-signed certificate kept under <root>/conf
	WebSSHOrigins []string // extra allowed Origins (the cloud console)
	WebSSHAsSelf  bool     // demo: run shells as the agent's own user, never switching users
	// Web terminal limits; 0 takes webssh's default.
	WebSSHMaxShells   int // shells at once, all accounts
	WebSSHUserShells  int // shells at once per account
	WebSSHMaxLogins   int // logins at once; more are refused
	WebSSHUserLogins  int // logins per account; more replace its oldest
	WebSSHLoginBudget int // password checks per minute, all clients

	Log *slog.Logger
	Out io.Writer // one summary line per boot step; nil for none

	// Paths overrides file locations; nil means paths.Default().
	Paths *paths.Paths
	// Kernel is set for the host name; nil means the running kernel when
	// Sysroot is "/" and none otherwise.
	Kernel osconfig.Kernel
	// Netlink configures interfaces; nil means a handle on the current
	// network namespace.
	Netlink netconf.Netlink
	// WriteHook is handed to both roots (crash tests).
	WriteHook func(sysroot.Stage, string)
}

// Switch turns on or off something the agent does to the real host
// whatever its system root: changing network interfaces, loading the
// floppy driver, starting login shells as users of the system root's
// passwd file. SwitchAuto, the zero value, is on when the system root is
// "/" and off otherwise, so a scratch system root (a test, an image being
// prepared) does not reach out to the host running the agent.
type Switch string

// The values of a Switch.
const (
	SwitchAuto Switch = ""
	SwitchOn   Switch = "on"
	SwitchOff  Switch = "off"
)

// ParseSwitch reads a Switch flag: "auto", "on" or "off".
func ParseSwitch(v string) (Switch, error) {
	switch v {
	case "auto", "":
		return SwitchAuto, nil
	case "on", "off":
		return Switch(v), nil
	}
	return "", fmt.Errorf("%q: want auto, on or off", v)
}

// BootFlags registers the flags of the boot steps on fs, each defaulting
// to the value the agent would use anyway.
func (o *Options) BootFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Floppy, "floppy", paths.DefaultFloppy, "instance floppy: block device or image file")
	fs.StringVar(&o.Root, "root", paths.DefaultRoot, "the LuoYun dir (conf/, custom/, build/)")
	fs.StringVar(&o.Sysroot, "sysroot", "/", "root of the system to configure (/etc, /root, …)")
	switchFlag(fs, &o.Network, "network", "change network interfaces: auto (only when --sysroot is /), on or off")
	fs.BoolFunc("no-network", "the same as --network=off", func(v string) error {
		off, err := strconv.ParseBool(v)
		if off {
			o.Network = SwitchOff
		}
		return err
	})
	switchFlag(fs, &o.Modprobe, "modprobe", "run 'modprobe floppy' when the floppy device is missing: auto (only when --sysroot is /), on or off")
	fs.DurationVar(&o.ScriptTimeout, "script-timeout", DefaultScriptTimeout, "time limit for custom/scripts/config")
}

// Flags registers BootFlags and the flags of the services on fs: the
// flags of `osmanager run`.
func (o *Options) Flags(fs *flag.FlagSet) {
	o.BootFlags(fs)
	fs.StringVar(&o.ReadyFile, "ready-file", "", "create this file once the boot steps are done (for sysvinit)")
	fs.DurationVar(&o.StatusPeriod, "status-period", clc.DefaultPeriod, "how often custom/scripts/status runs")
	fs.DurationVar(&o.Heartbeat, "heartbeat", clc.DefaultPeriod, "controller heartbeat (ECHO_REQUEST) period")
	fs.StringVar(&o.ListenWeb, "listen-web", web.DefaultAddr, "status web server address")
	fs.StringVar(&o.ListenWebSSH, "listen-webssh", "", fmt.Sprintf("web terminal address (default: the config's webssh.port, else %d)", webssh.DefaultPort))
	fs.StringVar(&o.WebSSHMode, "webssh-mode", string(webssh.ModeAuto), "web terminal login: ssh (via the local sshd), login (shadow + pty) or auto")
	switchFlag(fs, &o.LoginShells, "webssh-login-shells", "web terminal shells in login mode, as users of <sysroot>/etc/passwd: auto (only when --sysroot is /), on or off")
	fs.StringVar(&o.WebSSHCert, "webssh-cert", "", "web terminal TLS certificate file (with -webssh-key)")
	fs.StringVar(&o.WebSSHKey, "webssh-key", "", "web terminal TLS key file")
	fs.BoolVar(&o.WebSSHTLS, "webssh-tls", false, "serve the web terminal over TLS with a self-signed certificate kept under <root>/conf")
	fs.IntVar(&o.WebSSHMaxShells, "webssh-max-shells", webssh.DefaultMaxSessions, "web terminal: shells at once, all accounts")
	fs.IntVar(&o.WebSSHUserShells, "webssh-user-shells", webssh.DefaultUserSessions, "web terminal: shells at once per account")
	fs.IntVar(&o.WebSSHMaxLogins, "webssh-max-logins", webssh.DefaultMaxLogins, "web terminal: logins at once; more are refused")
	fs.IntVar(&o.WebSSHUserLogins, "webssh-user-logins", webssh.DefaultUserLogins, "web terminal: logins per account; more replace its oldest")
	fs.IntVar(&o.WebSSHLoginBudget, "webssh-login-budget", webssh.DefaultLoginBudget, "web terminal: password checks per minute, all clients together")
	fs.Func("webssh-origin", "an extra allowed Origin for the web terminal, e.g. https://console.example.com (repeatable)", func(v string) error {
		o.WebSSHOrigins = append(o.WebSSHOrigins, v)
		return nil
	})
}

// switchFlag defines an auto|on|off flag for a Switch.
func switchFlag(fs *flag.FlagSet, s *Switch, name, usage string) {
	fs.Func(name, usage+" (default auto)", func(v string) error {
		sw, err := ParseSwitch(v)
		*s = sw
		return err
	})
}
