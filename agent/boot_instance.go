package agent

import (
	"context"
	"os"
	"time"

	"osmanager/agent/instance"
	"osmanager/agent/supervisor"
)

// instance makes a new instance its own, once (agent/instance): new SSH
// host keys, sshd reloaded, a machine-id reset due at shutdown, the
// terminal's pin dropped.
func (b *boot) instance(ctx context.Context) ([]string, string, error) {
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	id := instance.Identity(b.cfg.Tag, b.cfg.HasTag, b.cfg.Key)
	if id == "" {
		return nil, "", supervisor.Skip("no TAG or KEY to tell instances apart")
	}
	comment := "root@localhost"
	if d := b.cfg.Payload.Domain; d != nil && hostChars(d.Name) {
		comment = "root@" + d.Name
	}
	c := b.instanceConfig()
	c.Comment = comment
	r, err := c.Apply(ctx, id)
	return r.Changed, r.Note, err
}

// hostChars reports whether s is a plausible host name for a key comment;
// a bad one is the hostname step's to refuse, and must not keep the host
// keys from being made.
func hostChars(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// instanceConfig is how agent/instance acts on this system.
func (a *Agent) instanceConfig() *instance.Config {
	c := &instance.Config{
		Sys: a.sys, LY: a.ly, Files: instanceFiles(a.paths),
		SSHD:    a.opts.SSHD,
		RSABits: a.opts.HostKeyBits,
		Log:     a.log.With("step", "instance"),
	}
	if !a.sys.IsHost() {
		c.SysLabel = "<sysroot>"
	}
	if c.SSHD == nil && a.sys.IsHost() {
		c.SSHD = instance.HostSSHD{PidFile: a.paths.SSHDPid}
	}
	if fi, err := os.Stat(a.paths.SystemdRun); err == nil && fi.IsDir() && a.sys.IsHost() {
		c.NewMachineID = true
	}
	return c
}

// resetTimeout bounds the machine-id reset at stop, well inside the
// unit's TimeoutStopSec.
const resetTimeout = 10 * time.Second

// atStop carries out what is due when the agent stops: a pending
// machine-id reset, when the system is shutting down (agent/instance).
func (a *Agent) atStop() {
	stopping := a.opts.Stopping
	if stopping == nil {
		if !a.sys.IsHost() {
			return // a scratch system root: the host's shutdown is none of its business
		}
		stopping = instance.SystemdStopping{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
	defer cancel()
	c := a.instanceConfig()
	c.Log = a.log.With("service", "instance")
	if _, err := c.ResetMachineID(ctx, stopping); err != nil {
		a.log.Warn("machine-id reset", "service", "instance", "err", err)
	}
}
