// Package agent wires osmanager together: it builds every part once from
// Options, runs the boot steps in order (floppy → luoyun.conf → instance
// → root password → SSH keys → host name → name servers → network → appliance
// config script) and then the long-running services under one supervisor.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"osmanager/agent/conf"
	"osmanager/agent/floppy"
	"osmanager/agent/instance"
	"osmanager/agent/internal/pagetrim"
	"osmanager/agent/netconf"
	"osmanager/agent/osconfig"
	"osmanager/agent/paths"
	"osmanager/agent/state"
	"osmanager/agent/status"
	"osmanager/agent/supervisor"
	"osmanager/agent/sysroot"
)

// Options configure an Agent. The zero value plus a Log is production.
type Options struct {
	Floppy        string        // device or image; default paths.DefaultFloppy
	Root          string        // the LuoYun dir; default paths.DefaultRoot
	Sysroot       string        // root for /etc, /root, …; default /
	ScriptTimeout time.Duration // custom/scripts/config's limit; default DefaultScriptTimeout
	FloppyWait    time.Duration // how long to wait for the device after modprobe; default floppy.DefaultWait
	ReadyFile     string        // run: created once the boot steps are done (sysvinit)

	// A system root other than "/" is not a sandbox: these four act on
	// the real host whatever the root, so each is off with such a root
	// unless set to SwitchOn (see Switch).
	Network     Switch // the network step: interfaces and routes via netlink
	Modprobe    Switch // "modprobe floppy" when the floppy device is missing
	LoginShells Switch // web terminal shells in login mode, as a uid from <sysroot>/etc/passwd
	AppCgroups  Switch // app runs in cgroups of the host's cgroup tree (else process groups only)

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
	// Web terminal time limits; 0 takes webssh's default.
	WebSSHIdleTimeout  time.Duration // no input for this long ends a session
	WebSSHMaxSession   time.Duration // a session and a login last at most this
	WebSSHResumeWindow time.Duration // a dropped websocket may come back within this
	// Applications (agent/apps) and the local API (agent/api).
	NoApps    bool   // no app manager and no local API
	APISocket string // the API's socket; default <sysroot>/run/osmanager.sock (paths.APISocket)
	APIGroup  string // the group that may use the API besides root; "" for root only
	// Reload: each signal on it re-reads the declared services (<root>/apps.d);
	// osmanager run sends SIGHUP here.
	Reload <-chan os.Signal
	// OCI bundles: the runtime that runs them, "crun", "runc" or "auto"
	// (the default: crun, else runc).
	OCIRuntime string
	// StatsInterval is how often the app monitor samples; default 1 s.
	// StatsWindow is the span of its averages; default 10 s.
	StatsInterval time.Duration
	StatsWindow   time.Duration

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

	// Per instance (agent/instance, the network wait).
	NetWait       time.Duration      // how long the network step waits for NICs named by MAC; default 30 s, < 0 not at all
	NetSubscriber netconf.Subscriber // link updates; nil means the current network namespace's (nil with Netlink set: no wait)
	SSHD          instance.SSHD      // reloads sshd after new host keys; nil means the host's (only when Sysroot is /)
	Stopping      instance.Stopping  // tells a shutdown from a restart, for the machine-id reset at stop; nil asks systemctl
	HostKeyBits   int                // RSA host key size; default 3072 (tests use less)
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

// allowed decides a Switch for this agent; when it is off, why says so
// and names the flag that turns it on.
func (a *Agent) allowed(s Switch, flag string) (on bool, why string) {
	switch {
	case s == SwitchOn:
		return true, ""
	case s == SwitchOff:
		return false, flag + "=off"
	case a.sys.IsHost():
		return true, ""
	}
	return false, fmt.Sprintf("--sysroot is not /; %s=on to force", flag)
}

// Agent is one osmanager.
type Agent struct {
	opts  Options
	log   *slog.Logger
	paths paths.Paths
	sys   *sysroot.Root // "/" of the system being configured
	ly    *sysroot.Root // the LuoYun dir
	state *state.Store
	sup   *supervisor.Supervisor
	cfg   *conf.Config // the instance config in force after Boot; nil if none

	netwatch  *netconf.Watcher // configures the NICs the network step gave up on; nil if none
	status    *status.Source   // the status document, built once (statusSource)
	statusErr error
	trim      *pagetrim.Trimmer // lets go of the binary's pages after start-up and after requests
}

// New checks the options and builds an Agent.
func New(opts Options) (*Agent, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--script-timeout", opts.ScriptTimeout}, {"floppy wait", opts.FloppyWait}, {"--status-period", opts.StatusPeriod}, {"--heartbeat", opts.Heartbeat},
		{"--stats-interval", opts.StatsInterval}, {"--stats-window", opts.StatsWindow}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s %s is negative", d.flag, d.v)
		}
	}
	if opts.StatsInterval != 0 && opts.StatsInterval < 10*time.Millisecond {
		return nil, fmt.Errorf("--stats-interval %s is under 10ms", opts.StatsInterval)
	}
	opts.Root = cmp.Or(opts.Root, paths.DefaultRoot)
	opts.ScriptTimeout = cmp.Or(opts.ScriptTimeout, DefaultScriptTimeout)
	opts.NetWait = cmp.Or(opts.NetWait, DefaultNetWait)
	if opts.NetSubscriber == nil && opts.Netlink == nil {
		opts.NetSubscriber = netconf.NetnsSubscriber{Log: opts.Log}
	}
	p := paths.Default()
	if opts.Paths != nil {
		p = *opts.Paths
	}
	p.Floppy = cmp.Or(opts.Floppy, p.Floppy)
	sys, err := sysroot.New(opts.Sysroot)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Root, 0o755); err != nil {
		return nil, fmt.Errorf("LuoYun dir: %w", err)
	}
	ly, err := sysroot.New(opts.Root)
	if err != nil {
		return nil, err
	}
	sys.Hook, ly.Hook = opts.WriteHook, opts.WriteHook
	// A boot's commit uses syncfs when little is dirty (sysroot.Flush).
	sys.Dirty = sysroot.MeminfoDirty(filepath.Join(p.Proc, "meminfo"))
	ly.Dirty = sys.Dirty
	if opts.Kernel == nil && sys.IsHost() {
		opts.Kernel = osconfig.HostKernel{}
	}
	st := &state.Store{}
	a := &Agent{
		opts: opts, log: opts.Log, paths: p, sys: sys, ly: ly, state: st,
		sup: &supervisor.Supervisor{State: st, Log: opts.Log},
	}
	a.trim = a.newTrimmer()
	return a, nil
}

// State returns the agent's shared state, for the status page and API.
func (a *Agent) State() *state.Store { return a.state }

// ErrBootFailed is returned (wrapped) by Boot when any step failed.
var ErrBootFailed = errors.New("boot steps failed")

// Boot runs the boot steps once, prints a summary line per step to
// Options.Out (then the per-step log lines are at debug level), and returns an error wrapping ErrBootFailed if any failed.
func (a *Agent) Boot(ctx context.Context) error {
	b := &boot{Agent: a}
	// With a summary printed, each step's log line is at debug level:
	// otherwise every step shows twice (summary on stdout, log on stderr).
	a.sup.QuietSteps = a.opts.Out != nil
	// The steps' writes are staged and committed together, at the
	// password step's release of the shadow lock, before the script (which
	// may reboot) or at the end: see sysroot.BatchAll and Lock.
	sysroot.BatchAll(a.sys, a.ly)
	err := a.sup.RunSteps(ctx, b.steps())
	if serr := errors.Join(sysroot.Flush(a.sys, a.ly), a.sys.EndBatch(), a.ly.EndBatch()); serr != nil {
		a.log.Error("boot: files written but their directories not synced: a power cut may lose them", "err", serr)
		err = errors.Join(err, serr)
	}
	a.cfg = b.cfg
	if a.opts.Out != nil {
		for _, s := range a.state.Steps() {
			fmt.Fprintln(a.opts.Out, summary(s))
		}
	}
	if err != nil {
		n := 0
		for _, s := range a.state.Steps() {
			if s.Status == state.StepFailed {
				n++
			}
		}
		return fmt.Errorf("%w: %d of %d", ErrBootFailed, n, len(a.state.Steps()))
	}
	return nil
}

// Run boots, tells the init system the agent is ready, then serves until
// ctx ends, and then does what is due at the system's shutdown (a
// pending machine-id reset). A failed boot step is logged and reported, not fatal: the
// services still start.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Boot(ctx); err != nil {
		a.log.Warn("continuing after failed boot steps", "err", err)
	}
	a.ready()
	defer a.unready()
	tctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.trim.Run(tctx) })
	err := a.Serve(ctx)
	cancel()
	wg.Wait()
	a.atStop()
	return err
}

// trimDelay is how long after the services start the agent lets go of
// the binary's pages that start-up touched, and trimIdle how long the web
// servers must go without a request before it lets go of those the
// requests touched (pagetrim). A trim costs about 0.2 ms (BenchmarkTrim),
// the refaults after it about 0.15 ms per page at the next request: a
// page polled every 5 s pays that once per poll.
const (
	trimDelay = 3 * time.Second
	trimIdle  = 500 * time.Millisecond
)

// newTrimmer is the agent's page trimmer; its Note is every request's.
func (a *Agent) newTrimmer() *pagetrim.Trimmer {
	return &pagetrim.Trimmer{Settle: trimDelay, Idle: trimIdle, Log: func(n uint64, err error) {
		if err != nil {
			a.log.Debug("trim the binary's pages", "err", err)
		} else {
			a.log.Debug("trimmed the binary's pages", "bytes", n)
		}
	}}
}

// Serve runs the long-running services, built from the config in force
// after Boot, under the supervisor until ctx ends, and returns nil once
// they have all stopped. Call it once, after Boot.
func (a *Agent) Serve(ctx context.Context) error {
	return a.sup.Serve(ctx, a.services())
}

// Writes counts the files the agent has written in the system root and
// the LuoYun dir.
func (a *Agent) Writes() int64 { return a.sys.Writes() + a.ly.Writes() }

// services lists the long-running services. Each service wires itself in
// its own wire_*.go file.
func (a *Agent) services() []supervisor.Spec {
	var s []supervisor.Spec
	for _, f := range []func() []supervisor.Spec{a.clcServices, a.webServices, a.websshServices, a.netwatchServices, a.appsServices} {
		s = append(s, f()...)
	}
	return s
}

// failed stands in for a service that could not be built: it fails for
// good with err, since building it again would fail the same way.
func failed(name string, err error) supervisor.Spec {
	return supervisor.Spec{Name: name, Service: supervisor.ServiceFunc(func(context.Context) error {
		return supervisor.Permanent(err)
	})}
}

func (a *Agent) netlink() (netconf.Netlink, error) {
	if a.opts.Netlink != nil {
		return a.opts.Netlink, nil
	}
	// Route sockets only: with no family given, netlink also opens XFRM and
	// netfilter sockets, which fail on kernels without xfrm_user loaded.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}

func (a *Agent) floppyReader() *floppy.Reader {
	r := &floppy.Reader{Path: a.paths.Floppy, Modprobe: a.paths.Modprobe, Wait: a.opts.FloppyWait, Log: a.log}
	if on, why := a.allowed(a.opts.Modprobe, "--modprobe"); !on {
		r.NoLoad = why
	}
	return r
}

// summary formats a step for the boot's console output.
func summary(s state.Step) string {
	detail := s.Note
	if s.Error != "" {
		detail = s.Error
		if s.Note != "" {
			detail = s.Note + "; " + s.Error
		}
	} else if len(s.Changed) > 0 {
		detail = fmt.Sprintf("changed %d: %v", len(s.Changed), s.Changed)
		if s.Note != "" {
			detail = s.Note + "; " + detail
		}
	} else if detail == "" {
		detail = "unchanged"
	}
	return fmt.Sprintf("%-7s %-11s %9s  %s", s.Status, s.Name, FormatDuration(s.Duration), detail)
}

// FormatDuration formats a duration as the boot summary lines do: µs,
// ms with one decimal, or seconds rounded to 10 ms.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(10 * time.Millisecond).String()
}
