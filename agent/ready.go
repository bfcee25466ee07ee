package agent

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// ready tells the init system that the boot steps are done, so that units
// ordered after osmanager (sshd, networking) start on a configured system:
// systemd through $NOTIFY_SOCKET (Type=notify), sysvinit scripts through
// Options.ReadyFile, whose appearance they wait for.
func (a *Agent) ready() {
	if f := a.opts.ReadyFile; f != "" {
		if err := os.WriteFile(f, []byte(fmt.Sprintln(os.Getpid())), 0o644); err != nil {
			a.log.Warn("write ready file", "file", f, "err", err)
		}
	}
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		a.log.Warn("notify systemd", "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1\nSTATUS=boot steps done\n")); err != nil {
		a.log.Warn("notify systemd", "err", err)
	}
}

// unready removes the ready file at exit.
func (a *Agent) unready() {
	if f := a.opts.ReadyFile; f != "" {
		os.Remove(f)
	}
}
