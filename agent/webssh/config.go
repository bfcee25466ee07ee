package webssh

import (
	"cmp"
	"fmt"
	"log/slog"
	"osmanager/agent/accounts"
	"time"

	"osmanager/agent/clock"
	"osmanager/agent/state"
	"osmanager/agent/sysroot"
)

// Mode says how a login is checked and where its shell comes from.
type Mode string

// Login modes.
const (
	// ModeSSH logs in to the instance's own sshd on loopback as an SSH
	// client, with the user's password (and keyboard-interactive), and
	// bridges a pty and shell from it.
	ModeSSH Mode = "ssh"
	// ModeLogin checks the password against /etc/shadow and starts the
	// user's login shell on a pty as that user.
	ModeLogin Mode = "login"
	// ModeAuto picks per login: ssh when something listens on SSHAddr,
	// login otherwise (sshd may start after the agent, or not at all).
	ModeAuto Mode = "auto"
)

// ErrConfig is wrapped by errors no restart can cure: a bad mode, unreadable
// certificate files, AsSelf on a real system root. Errors wrapping it say
// so to the supervisor through ConfigError's Permanent method.
var ErrConfig error = &ConfigError{"web terminal configuration"}

// ConfigError is the type of ErrConfig.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

// Permanent reports that restarting cannot cure the error (see
// supervisor.IsPermanent).
func (e *ConfigError) Permanent() bool { return true }

// Files names the files the terminal reads and writes.
type Files struct {
	// In the system root (Config.Sys).
	Shadow string
	Passwd string
	Group  string
	Locale string // /etc/default/locale: LANG for login-mode shells
	// In the LuoYun root (Config.Conf).
	Cert       string // the self-signed certificate (PEM), 0600
	Key        string // its private key (PEM), 0600
	KnownHosts string // the local sshd's pinned host key, 0600
	Shells     string // the live login-mode shells, to end after a crash
	// Of the running host.
	Proc string // procfs, for the scan of a shell's session
	// The login shells' PATH, as login(1) sets it.
	PATH     string // root's
	UserPATH string // every other account's
}

// accounts names the account files for the accounts package.
func (f Files) accounts() accounts.Files {
	return accounts.Files{Passwd: f.Passwd, Group: f.Group, Shadow: f.Shadow}
}

// DefaultFiles returns the production names, those of the agent's path
// table (agent/paths), which fills Files itself; these serve a zero
// Config (tests).
func DefaultFiles() Files {
	return Files{
		Shadow: "/etc/shadow", Passwd: "/etc/passwd", Group: "/etc/group", Locale: "/etc/default/locale",
		Cert: "/conf/webssh-cert.pem", Key: "/conf/webssh-key.pem", KnownHosts: "/conf/webssh-known-hosts", Shells: "/conf/webssh-shells",
		Proc:     "/proc",
		PATH:     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		UserPATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
	}
}

// Defaults.
const (
	DefaultPort         = 8001
	DefaultIdleTimeout  = 20 * time.Minute
	DefaultMaxSession   = 12 * time.Hour
	DefaultResumeWindow = 60 * time.Second
	DefaultMaxSessions  = 8 // shells at once, all accounts
	DefaultUserSessions = 4 // shells at once per account
	DefaultMaxLogins    = 256
	DefaultUserLogins   = 8
	DefaultLoginBudget  = 60        // password checks per minute, all clients
	DefaultWindow       = 512 << 10 // output kept until acknowledged; ≥ 256 KB of replay
	DefaultInWindow     = 64 << 10  // input in flight per session
	DefaultFailDelay    = time.Second
	DefaultMaxFailures  = 5  // per account and client address
	DefaultAddrFailures = 10 // per client address, all accounts
	DefaultFailWindow   = 5 * time.Minute
	DefaultSSHAddr      = "127.0.0.1:22"
)

// Config configures a Server. Sys, Conf and Log are required; zero values
// elsewhere take the defaults above.
type Config struct {
	Addr string // listen address; default ":8001"
	Mode Mode   // default ModeAuto
	// AsSelf (demo only) checks passwords like ModeLogin but runs every
	// shell as the agent's own user, without switching. Anyone who knows
	// a password in the (scratch) shadow file gets a shell as the agent's
	// user: New refuses it for a root agent on the real system root.
	AsSelf bool

	Sys   *sysroot.Root // system root: shadow, passwd, group
	Conf  *sysroot.Root // LuoYun root: certificate, key, pinned host key
	Files Files         // default DefaultFiles()

	// TLS: CertFile and KeyFile (host paths) serve that pair; SelfSigned
	// makes and keeps a certificate under Files.Cert/Key. Neither: plain
	// HTTP, and the page warns that passwords cross the network in clear.
	CertFile, KeyFile string
	SelfSigned        bool
	Hostname          string // for the self-signed certificate and the page title

	// Origins are allowed besides the page's own (the cloud console), as
	// exact "scheme://host[:port]" strings.
	Origins []string

	SSHAddr string // the local sshd; default 127.0.0.1:22

	IdleTimeout  time.Duration // no input for this long ends a session
	MaxSession   time.Duration // a session (and a login) lasts at most this
	ResumeWindow time.Duration // a dropped websocket may come back within this
	MaxSessions  int           // shells at once, attached or not, all accounts
	UserSessions int           // shells at once per account
	MaxLogins    int           // logins remembered at once; more are refused
	UserLogins   int           // logins per account; more evict its oldest
	Window       int           // output bytes kept until acknowledged, per session
	InWindow     int           // input bytes in flight, per session
	FailDelay    time.Duration // a failed login answers no sooner than this
	MaxFailures  int           // failed logins per account and client address per FailWindow
	AddrFailures int           // failed logins per client address (all accounts) per FailWindow
	FailWindow   time.Duration
	LoginBudget  int // password checks per minute from all clients together
	HTTP         HTTPLimits
	// KillGrace is how long a hung-up shell has to exit before its
	// process groups get SIGKILL; default 5 s.
	KillGrace time.Duration

	Clock clock.Clock  // default clock.Real
	State *state.Store // terminal counters; may be nil
	// OnRequest, if set, is called at the start of every HTTP request
	// (the agent trims its pages once requests go idle: agent/internal/pagetrim).
	OnRequest func()
	Log       *slog.Logger // carries the service attribute; the terminal adds none
}

// HTTPLimits are the HTTP server's timeouts, as the status server's. A
// websocket, once upgraded, keeps only its own protocol deadlines.
type HTTPLimits struct {
	ReadHeader time.Duration // the request header; default 5 s
	Read       time.Duration // the whole request, body included; default 10 s
	Write      time.Duration // the response; default 30 s
	Idle       time.Duration // between keep-alive requests; default 60 s
}

func (c *Config) setDefaults() error {
	if c.Sys == nil || c.Conf == nil || c.Log == nil {
		return fmt.Errorf("%w: Sys, Conf and Log are required", ErrConfig)
	}
	if c.Addr == "" {
		c.Addr = fmt.Sprintf(":%d", DefaultPort)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeAuto
	case ModeSSH, ModeLogin, ModeAuto:
	default:
		return fmt.Errorf("%w: mode %q is not ssh, login or auto", ErrConfig, c.Mode)
	}
	if c.AsSelf && c.Mode == ModeSSH {
		return fmt.Errorf("%w: as-self needs login mode", ErrConfig)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%w: a certificate needs both cert and key files", ErrConfig)
	}
	if c.Files == (Files{}) {
		c.Files = DefaultFiles()
	}
	if c.SSHAddr == "" {
		c.SSHAddr = DefaultSSHAddr
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max shells", c.MaxSessions}, {"shells per account", c.UserSessions}, {"max logins", c.MaxLogins},
		{"logins per account", c.UserLogins}, {"login budget", c.LoginBudget}} {
		if v.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrConfig, v.name, v.n)
		}
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"idle timeout", c.IdleTimeout}, {"maximum session", c.MaxSession}, {"resume window", c.ResumeWindow}} {
		if v.d < 0 {
			return fmt.Errorf("%w: %s %s is negative", ErrConfig, v.name, v.d)
		}
	}
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.MaxSession = cmp.Or(c.MaxSession, DefaultMaxSession)
	c.ResumeWindow = cmp.Or(c.ResumeWindow, DefaultResumeWindow)
	c.FailWindow = cmp.Or(c.FailWindow, DefaultFailWindow)
	c.KillGrace = cmp.Or(c.KillGrace, 5*time.Second)
	if c.FailDelay == 0 {
		c.FailDelay = DefaultFailDelay
	}
	c.HTTP.ReadHeader = cmp.Or(c.HTTP.ReadHeader, 5*time.Second)
	c.HTTP.Read = cmp.Or(c.HTTP.Read, 10*time.Second)
	c.HTTP.Write = cmp.Or(c.HTTP.Write, 30*time.Second)
	c.HTTP.Idle = cmp.Or(c.HTTP.Idle, 60*time.Second)
	c.MaxSessions = cmp.Or(c.MaxSessions, DefaultMaxSessions)
	c.UserSessions = cmp.Or(c.UserSessions, min(DefaultUserSessions, c.MaxSessions))
	c.MaxLogins = cmp.Or(c.MaxLogins, DefaultMaxLogins)
	c.UserLogins = cmp.Or(c.UserLogins, min(DefaultUserLogins, c.MaxLogins))
	c.LoginBudget = cmp.Or(c.LoginBudget, DefaultLoginBudget)
	c.Window = cmp.Or(c.Window, DefaultWindow)
	c.InWindow = cmp.Or(c.InWindow, DefaultInWindow)
	c.MaxFailures = cmp.Or(c.MaxFailures, DefaultMaxFailures)
	if c.AddrFailures <= 0 {
		c.AddrFailures = max(DefaultAddrFailures, c.MaxFailures)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	for _, o := range c.Origins {
		if !validOrigin(o) {
			return fmt.Errorf("%w: origin %q is not scheme://host[:port]", ErrConfig, o)
		}
	}
	return nil
}
