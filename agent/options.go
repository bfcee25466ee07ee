package agent

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"osmanager/agent/apps/oci"
	"osmanager/agent/clc"
	"osmanager/agent/paths"
	"osmanager/agent/web"
	"osmanager/agent/webssh"
)

// DefaultScriptTimeout is custom/scripts/config's time limit. It is the
// one default of Options the agent fills itself; the others are the
// parts' own (floppy.DefaultWait, clc.DefaultPeriod, web.DefaultAddr,
// webssh's limits), and the flags show the same values.
const DefaultScriptTimeout = 5 * time.Minute

// DefaultNetWait is how long the network step waits for the interfaces
// the floppy names by MAC; later ones are configured when they appear.
const DefaultNetWait = 30 * time.Second

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
	fs.Func("net-wait", fmt.Sprintf("how long the network step waits for the NICs the floppy names by MAC (0: not at all; later ones are configured when they appear) (default %s)", DefaultNetWait), func(v string) error {
		d, err := time.ParseDuration(v)
		if err == nil && d < 0 {
			err = errors.New("negative")
		}
		o.NetWait = d
		if d == 0 {
			o.NetWait = -1 // Options: 0 is the default, < 0 no wait
		}
		return err
	})
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
	fs.DurationVar(&o.WebSSHIdleTimeout, "webssh-idle-timeout", webssh.DefaultIdleTimeout, "web terminal: a session without input for this long ends")
	fs.DurationVar(&o.WebSSHMaxSession, "webssh-max-session", webssh.DefaultMaxSession, "web terminal: a session, and a login, last at most this")
	fs.DurationVar(&o.WebSSHResumeWindow, "webssh-resume-window", webssh.DefaultResumeWindow, "web terminal: a dropped connection may resume its session within this; then the shell is hung up")
	switchFlag(fs, &o.AppCgroups, "app-cgroups", "run applications in cgroups of the host (so they outlive an agent restart): auto (only when --sysroot is /), on or off")
	fs.BoolVar(&o.NoApps, "no-apps", false, "run no application manager and no local API")
	fs.StringVar(&o.APISocket, "api-socket", "", "the local API's Unix socket (default <sysroot>/run/osmanager.sock)")
	fs.DurationVar(&o.StatsInterval, "stats-interval", time.Second, "how often the app monitor samples the runs and the system (at least 10ms)")
	fs.DurationVar(&o.StatsWindow, "stats-window", 10*time.Second, "the span of the app monitor's averages")
	fs.StringVar(&o.APIGroup, "api-group", "", "a group whose members may use the local API besides root (default: root only)")
	fs.Func("oci-runtime", "the OCI runtime that runs bundle apps: crun, runc or auto (crun, else runc; the default)", func(v string) error {
		if _, _, err := oci.Find(v, ""); err != nil {
			return err
		}
		o.OCIRuntime = v
		return nil
	})
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
