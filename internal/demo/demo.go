// Package demo runs osmanager against a scratch instance on loopback: the
// agent's own boot and Serve, beside a local controller (agent/clcd). It
// is `osmanager demo`; production wiring (agent) never imports it.
package demo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"osmanager/agent"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
	"osmanager/agent/clcd"
	"osmanager/agent/conf"
	"osmanager/agent/floppy"
	"osmanager/internal/scratch"
)

// Options configure Run.
type Options struct {
	Dir      string        // where to build the demo; default a new temp dir
	Keep     bool          // leave the demo dir in place at the end
	Duration time.Duration // how long to run the services; 0 = until ctx ends
	Log      *slog.Logger
	Out      io.Writer
}

// Flags registers the demo's flags on fs.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "", "build the demo here instead of a new temp dir (kept)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temp dir at the end")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
}

// Run builds a scratch system root, LuoYun dir and a floppy image laid
// out exactly as the cloud's compute node writes it (internal/scratch),
// boots the agent against them twice (the second boot shows that nothing
// is rewritten), and then serves the agent's services on loopback, with a
// local controller. It touches nothing outside its dir.
func Run(ctx context.Context, o Options) error {
	o.Keep = o.Keep || o.Dir != "" // a dir of one's own is never removed
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "osmanager-demo-")
		if err != nil {
			return err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	img, err := scratch.Make(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ctl, err := demoController(img, out)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "demo in %s (scratch copies: nothing outside it is touched)\n  floppy      %s (the compute node's 1 MiB layout)\n  sysroot     %s (scratch /etc and /root; <sysroot> below)\n  LuoYun      %s (scratch LuoYun dir)\n  controller  %s (local, osmanager controller)\n\n",
		dir, img, filepath.Join(dir, "sysroot"), filepath.Join(dir, "LuoYun"), ctl.Addr())
	termAddr, err := freeLoopback()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	webAddr, err := freeLoopback()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	opts := agent.Options{
		Floppy: img, Root: filepath.Join(dir, "LuoYun"), Sysroot: filepath.Join(dir, "sysroot"),
		Log: o.Log, Out: out, ScriptTimeout: 30 * time.Second,
		// Loopback only, and shells run as whoever runs the demo: the scratch
		// shadow's root password must never open a real root shell.
		ListenWebSSH: termAddr, WebSSHAsSelf: true, WebSSHMode: "login",
		ListenWeb: webAddr,
	}
	for i, title := range []string{"first boot", "second boot, same floppy"} {
		fmt.Fprintf(out, "== %s\n", title)
		a, err := agent.New(opts)
		if err != nil {
			return err
		}
		start := time.Now()
		err = a.Boot(ctx)
		fmt.Fprintf(out, "   %d files written in %s; %s\n\n", a.Writes(), agent.FormatDuration(time.Since(start)), okOr(err))
		if i == 1 {
			return serve(ctx, a, ctl, opts, dir, o, out)
		}
	}
	return nil
}

// demoController starts a local controller on a loopback port for the
// demo instance and points the demo floppy at it.
func demoController(img string, out io.Writer) (*clcd.Server, error) {
	ini, err := floppy.ReadFile(img)
	if err != nil {
		return nil, err
	}
	c, err := conf.Parse(ini)
	if err != nil {
		return nil, err
	}
	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{int32(c.Tag): c.Key},
		OnEvent: func(e clcd.Event) {
			switch e.Name {
			case clcd.EventRegistered, clcd.EventReport, clcd.EventRegisterRefused, clcd.EventAuthFailed:
				fmt.Fprintf(out, "controller: tag %d %s %s %s\n", e.Tag, e.Name, e.IP, e.Detail)
			}
		}}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		return nil, err
	}
	// The port goes into the floppy; multicast discovery gets the same
	// (free) port number, so the demo binds nothing well known.
	port := fmt.Sprint(addr.Port())
	ini = bytes.Replace(ini, []byte("CLC_PORT=1369\n"), []byte("CLC_PORT="+port+"\n"), 1)
	ini = bytes.Replace(ini, []byte("CLC_MCAST_PORT=1369\n"), []byte("CLC_MCAST_PORT="+port+"\n"), 1)
	return srv, os.WriteFile(img, floppy.NodeImage(ini), 0o600)
}

// serve runs the agent's services, as `osmanager run` does, beside the
// local controller.
func serve(ctx context.Context, a *agent.Agent, ctl *clcd.Server, opts agent.Options, dir string, o Options, out io.Writer) error {
	fmt.Fprintf(out, "look at the scratch copies: %s/sysroot/etc/{shadow,hostname,hosts,resolv.conf}, %s/sysroot/root/.ssh/authorized_keys, %s/LuoYun/conf/luoyun.conf\n",
		dir, dir, dir)
	w := "http://" + opts.ListenWeb
	fmt.Fprintf(out, "status page:  %s/\nowner page:   %s/?cookie=demo-cookie\nstatus API:   %s/api/v1/status\nmetrics:      %s/metrics\n", w, w, w, w)
	fmt.Fprintf(out, "web terminal: http://%s/  (user root, password demo; the shell runs as you, loopback only)\n", opts.ListenWebSSH)
	if o.Keep {
		fmt.Fprintf(out, "the demo dir stays; remove it with: rm -rf %s\n", dir)
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
		fmt.Fprintf(out, "running the services for %s…\n", o.Duration)
	} else {
		fmt.Fprintln(out, "running the services; Ctrl-C stops the demo")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ctl.Run(gctx) })
	g.Go(func() error { return a.Serve(gctx) })
	g.Go(func() error { sampleApp(gctx, filepath.Join(dir, "sysroot", "run", "osmanager.sock"), out); return nil })
	err := g.Wait()
	fmt.Fprintln(out, "demo stopped")
	return err
}

// okOr reads "boot ok" or the error ("boot steps failed: 1 of 8").
func okOr(err error) string {
	if err != nil {
		return err.Error()
	}
	return "boot ok"
}

// freeLoopback returns a loopback address with a port free right now.
func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// sampleScript is the demo app: a line every few seconds.
const sampleScript = `#!/bin/sh
n=0
while :; do
	n=$((n+1))
	echo "hello from $OSM_APP_ID $OSM_APP_VERSION (run $OSM_RUNID), line $n"
	sleep 3
done
`

// samplePackage is the demo app's package: manifest.json and bin/hello.
func samplePackage() []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name, body string
		mode       int64
	}{
		{"manifest.json", `{"id": "hello", "version": "1.0.0", "name": "demo app", "exec": "bin/hello", "args": [], "env": {}, "restart": "on-failure"}` + "\n", 0o644},
		{"bin/hello", sampleScript, 0o755},
	} {
		if f.name == "bin/hello" {
			tw.WriteHeader(&tar.Header{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1700000000, 0)})
		}
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// sampleApp installs and starts the demo app through the local API once
// the socket answers, and shows osmctl commands to try. A failure is
// printed, not fatal: the rest of the demo runs on.
func sampleApp(ctx context.Context, sock string, out io.Writer) {
	c := client.New(sock)
	defer c.Close()
	for {
		if _, err := c.List(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, err := c.InstallArchive(ctx, bytes.NewReader(samplePackage()), "", false)
	if err == nil {
		var st apitypes.Started
		st, err = c.Start(ctx, "hello")
		if err == nil {
			fmt.Fprintf(out, "sample app:   hello 1.0.0 installed and running as run %d\n", st.RunID)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(out, "sample app:   %v\n", err)
		}
		return
	}
	o := "osmctl --socket " + sock
	fmt.Fprintf(out, "try (osmctl is `go run ./cmd/osmctl` in the repo):\n              %s list\n              %s runners\n              %s logs hello -f\n              %s detail hello\n              %s events\n", o, o, o, o, o)
}
