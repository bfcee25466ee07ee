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
	"syscall"

	"osmanager/agent"
	"osmanager/agent/clcd"
	"osmanager/internal/demo"
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
	ctx, stop := context.Background(), context.CancelFunc(func() {})
	if len(os.Args) > 1 && catchesSignals(os.Args[1]) {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
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

// catchesSignals reports whether cmd runs long enough to stop cleanly on
// SIGINT or SIGTERM. The others (version, help, seal, a usage error) take
// the default action: signal.Notify starts a goroutine locked to a thread
// of its own and one parked in the signal queue, which made `osmanager
// version` start 2 threads more than a Go hello and cost it 0.3 ms.
func catchesSignals(cmd string) bool {
	switch cmd {
	case "boot", "run", "demo", "controller":
		return true
	}
	return false
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
		return agent.SealCommand(args, stdout, stderr) // parses its own flags
	}
	fs := flag.NewFlagSet("osmanager "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defLevel := "info"
	if cmd == "demo" {
		defLevel = "warn" // the summary lines tell the story; -log-level info shows each event
	}
	level := fs.String("log-level", defLevel, "log level: debug, info, warn or error")
	var o agent.Options
	var d demo.Options
	switch cmd {
	case "boot":
		o.BootFlags(fs)
	case "run":
		o.Flags(fs)
	case "demo":
		d.Flags(fs)
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
		d.Log, d.Out = log, stdout
		return demo.Run(ctx, d)
	case "boot":
		o.Log, o.Out = log, stdout
		a, err := agent.New(o)
		if err != nil {
			return err
		}
		return a.Boot(ctx)
	default:
		o.Log, o.Out = log, stdout
		// SIGHUP re-reads the declared services (and no longer ends the agent).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		o.Reload = hup
		a, err := agent.New(o)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
}
