package agent

import (
	"context"

	"osmanager/agent/instance"
	"osmanager/agent/supervisor"
)

// instance makes a new instance its own, once (agent/instance): new SSH
// host keys, sshd reloaded, machine-id emptied, the terminal's pin dropped.
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
	c := &instance.Config{
		Sys: b.sys, LY: b.ly, Paths: b.paths,
		SSHD:    b.opts.SSHD,
		RSABits: b.opts.HostKeyBits,
		Comment: comment,
		Log:     b.log.With("step", "instance"),
	}
	if !b.sys.IsHost() {
		c.SysLabel = "<sysroot>"
	}
	if c.SSHD == nil && b.sys.IsHost() {
		c.SSHD = instance.HostSSHD{PidFile: b.paths.SSHDPid}
	}
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
