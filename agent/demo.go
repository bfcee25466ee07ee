package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"osmanager/agent/clc/wire"
	"osmanager/agent/clcd"
	"osmanager/agent/conf"
	"osmanager/agent/floppy"
	"osmanager/internal/version"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	Dir      string        // where to build the demo; default a new temp dir
	Keep     bool          // leave the demo dir in place at the end
	Duration time.Duration // how long to run the services; 0 = until ctx ends
	Log      *slog.Logger
	Out      io.Writer
}

// demoHash is crypt(3) SHA-512 of the password "demo".
const demoHash = "$6$osmdemo0$qcTkflA.L.240CVr36ZC0AEEF3VQC9uRIBw/bVKPpz6xzhocUGI7g3hiEARO1Vs3auIDdCkLlf82S.Gb1U6Qa0"

// Demo builds a scratch system root, LuoYun dir and a floppy image laid
// out exactly as the cloud's compute node writes it, boots the agent
// against them twice (the second boot shows that nothing is rewritten), and
// then runs the services on loopback. It touches nothing outside its dir.
func Demo(ctx context.Context, o DemoOptions) error {
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
	img, err := MakeDemo(dir)
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
	opts := Options{
		Floppy: img, Root: filepath.Join(dir, "LuoYun"), Sysroot: filepath.Join(dir, "sysroot"),
		Log: o.Log, Out: out, ScriptTimeout: 30 * time.Second,
		// Loopback only, and shells run as whoever runs the demo: the scratch
		// shadow's root password must never open a real root shell.
		ListenWebSSH: termAddr, WebSSHAsSelf: true, WebSSHMode: "login",
		ListenWeb: webAddr,
	}
	for i, title := range []string{"first boot", "second boot, same floppy"} {
		fmt.Fprintf(out, "== %s\n", title)
		a, err := New(opts)
		if err != nil {
			return err
		}
		start := time.Now()
		err = a.Boot(ctx)
		fmt.Fprintf(out, "   %d files written in %s; %s\n\n", a.sys.Writes()+a.ly.Writes(), fmtDuration(time.Since(start)), okOr(err))
		if i == 1 {
			return demoServe(ctx, a, ctl, dir, o, out)
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

func demoServe(ctx context.Context, a *Agent, ctl *clcd.Server, dir string, o DemoOptions, out io.Writer) error {
	fmt.Fprintf(out, "look at the scratch copies: %s/sysroot/etc/{shadow,hostname,hosts,resolv.conf}, %s/sysroot/root/.ssh/authorized_keys, %s/LuoYun/conf/luoyun.conf\n",
		dir, dir, dir)
	w := "http://" + a.opts.ListenWeb
	fmt.Fprintf(out, "status page:  %s/\nowner page:   %s/?cookie=demo-cookie\nstatus API:   %s/api/v1/status\nmetrics:      %s/metrics\n", w, w, w, w)
	fmt.Fprintf(out, "web terminal: http://%s/  (user root, password demo; the shell runs as you, loopback only)\n", a.opts.ListenWebSSH)
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
	g.Go(func() error { return a.sup.Serve(gctx, a.services()) })
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

// MakeDemo lays out a demo under dir: sysroot/ (a tiny /etc and /root),
// LuoYun/ (VERSION and a config script) and floppy.img. It returns the
// floppy image's path.
func MakeDemo(dir string) (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	authKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " owner@demo"
	files := []struct {
		name string
		mode os.FileMode
		body string
	}{
		{"sysroot/etc/shadow", 0o640, "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"},
		{"sysroot/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"},
		{"sysroot/etc/hostname", 0o644, "localhost\n"},
		{"sysroot/etc/hosts", 0o644, "127.0.0.1\tlocalhost\n"},
		{"sysroot/etc/resolv.conf", 0o644, "nameserver 127.0.0.53\n"},
		{"LuoYun/build/VERSION", 0o644, "osmanager-demo " + version.String() + "\ndemo-app: 1.0\n"},
		{"LuoYun/custom/scripts/config", 0o755, "#!/bin/sh\n# The appliance's own boot-time configuration runs here.\necho \"demo config script: conf at $LUOYUN_CONF\"\n"},
		{"LuoYun/custom/scripts/status", 0o755, "#!/bin/sh\n# The application's health: exit 0 = serving.\nexit 0\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "sysroot/root"), 0o700); err != nil {
		return "", err
	}
	ini := fmt.Sprintf("CLC_IP=127.0.0.1\nCLC_PORT=1369\nCLC_MCAST_IP=228.0.0.1\nCLC_MCAST_PORT=1369\nTAG=1\nKEY=%s\n"+
		`JSON={"cookie": "demo-cookie", "webssh": {"status": "enable", "port": 8001}, "nameservers": "8.8.8.8 8.8.4.4", `+
		`"domain": {"name": "demo.osmanager.test", "ip": "127.0.0.1"}, "passwd_hash": "%s", "public_key": "%s", `+
		`"network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.12", "netmask": "255.255.255.0", "gateway": "10.0.0.1"}]}`+"\n",
		wire.NewKey(), demoHash, authKey)
	img := filepath.Join(dir, "floppy.img")
	return img, os.WriteFile(img, floppy.NodeImage([]byte(ini)), 0o600)
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
