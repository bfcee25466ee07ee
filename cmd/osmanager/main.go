// Command osmanager is the in-guest agent of a LuoYun cloud: it configures
// the instance from its floppy at boot and then runs the agent's services.
//
//	osmanager boot|run|demo|version [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"osmanager/agent"
	"osmanager/agent/clcd"
	"osmanager/agent/instance"
	"osmanager/agent/paths"
	"osmanager/agent/web"
	"osmanager/agent/webssh"
	"osmanager/internal/version"
)

const usage = `usage: osmanager <command> [flags]

commands:
  boot     run the boot steps once and exit (status 0 only if all succeeded)
  run      run the boot steps, then the services, until SIGTERM
  demo     boot and serve a scratch instance in a temp dir (touches nothing else)
  controller  a local cloud controller, to try an image without a cloud
  seal     remove the instance state before capturing the image (--dry-run lists it)
  version  print the version

run 'osmanager <command> -h' for a command's flags
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h: the flag package printed the command's usage; asking for it is no failure.
	case err != nil:
		fmt.Fprintln(os.Stderr, "osmanager:", err)
		os.Exit(1)
	}
}

// switchFlag defines an auto|on|off flag for an agent.Switch.
func switchFlag(fs *flag.FlagSet, s *agent.Switch, name, usage string) {
	fs.Func(name, usage+" (default auto)", func(v string) error {
		sw, err := agent.ParseSwitch(v)
		*s = sw
		return err
	})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	if cmd == "controller" {
		return clcd.Command(ctx, args, stdout, stderr) // parses its own flags
	}
	if cmd == "seal" {
		return instance.SealCommand(args, stdout, stderr) // parses its own flags
	}
	fs := flag.NewFlagSet("osmanager "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defLevel := "info"
	if cmd == "demo" {
		defLevel = "warn" // the summary lines tell the story; -log-level info shows each event
	}
	level := fs.String("log-level", defLevel, "log level: debug, info, warn or error")
	var o agent.Options
	var d agent.DemoOptions
	switch cmd {
	case "boot", "run":
		fs.StringVar(&o.Floppy, "floppy", paths.DefaultFloppy, "instance floppy: block device or image file")
		fs.StringVar(&o.Root, "root", paths.DefaultRoot, "the LuoYun dir (conf/, custom/, build/)")
		fs.StringVar(&o.Sysroot, "sysroot", "/", "root of the system to configure (/etc, /root, …)")
		switchFlag(fs, &o.Network, "network", "change network interfaces: auto (only when --sysroot is /), on or off")
		fs.BoolFunc("no-network", "the same as --network=off", func(v string) error {
			off, err := strconv.ParseBool(v)
			if off {
				o.Network = agent.SwitchOff
			}
			return err
		})
		switchFlag(fs, &o.Modprobe, "modprobe", "run 'modprobe floppy' when the floppy device is missing: auto (only when --sysroot is /), on or off")
		fs.DurationVar(&o.ScriptTimeout, "script-timeout", 5*time.Minute, "time limit for custom/scripts/config")
		fs.Func("net-wait", "how long the network step waits for the NICs the floppy names by MAC (0: not at all; later ones are configured when they appear) (default 30s)", func(v string) error {
			d, err := time.ParseDuration(v)
			if err == nil && d < 0 {
				err = errors.New("negative")
			}
			o.NetWait = d
			if d == 0 {
				o.NetWait = -1 // agent.Options: 0 is the default, < 0 no wait
			}
			return err
		})
		if cmd == "run" {
			fs.StringVar(&o.ReadyFile, "ready-file", "", "create this file once the boot steps are done (for sysvinit)")
			fs.DurationVar(&o.StatusPeriod, "status-period", 30*time.Second, "how often custom/scripts/status runs")
			fs.DurationVar(&o.Heartbeat, "heartbeat", 30*time.Second, "controller heartbeat (ECHO_REQUEST) period")
			fs.StringVar(&o.ListenWeb, "listen-web", web.DefaultAddr, "status web server address")
			fs.StringVar(&o.ListenWebSSH, "listen-webssh", "", fmt.Sprintf("web terminal address (default: the config's webssh.port, else %d)", webssh.DefaultPort))
			fs.StringVar(&o.WebSSHMode, "webssh-mode", "auto", "web terminal login: ssh (via the local sshd), login (shadow + pty) or auto")
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
	case "demo":
		fs.StringVar(&d.Dir, "dir", "", "build the demo here instead of a new temp dir (kept)")
		fs.BoolVar(&d.Keep, "keep", false, "keep the temp dir at the end")
		fs.DurationVar(&d.Duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "osmanager", version.String())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, fs.Args())
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	switch cmd {
	case "demo":
		d.Log, d.Out, d.Keep = log, stdout, d.Keep || d.Dir != ""
		return agent.Demo(ctx, d)
	case "boot":
		o.Log, o.Out = log, stdout
		a, err := agent.New(o)
		if err != nil {
			return err
		}
		return a.Boot(ctx)
	default:
		o.Log, o.Out = log, stdout
		a, err := agent.New(o)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
}
