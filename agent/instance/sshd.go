package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// SSHD reloads a running sshd so that it serves new host keys. Reload
// returns a note for the summary ("reloaded ssh.service", "sshd not
// running"). Tests pass a fake; the agent passes HostSSHD only when its
// system root is "/".
type SSHD interface {
	Reload(ctx context.Context) (note string, err error)
}

// HostSSHD reloads the host's sshd: with systemd as PID 1, through
// systemctl reload-or-restart of whichever of ssh.service (Debian) and
// sshd.service (RHEL, Arch) is active; otherwise by SIGHUP to the pid in
// PidFile, when that process is sshd. An sshd not running yet (the agent
// is ordered before it at boot) needs nothing: it reads the new keys when
// it starts.
type HostSSHD struct {
	PidFile string // /run/sshd.pid
	// SystemdDir exists when systemd is PID 1; default /run/systemd/system.
	SystemdDir string
	// Systemctl runs systemctl with args; nil runs the real one. Tests
	// record the calls.
	Systemctl func(ctx context.Context, args ...string) ([]byte, error)
}

func systemctl(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
}

// Reload implements SSHD.
func (h HostSSHD) Reload(ctx context.Context) (string, error) {
	dir, run := h.SystemdDir, h.Systemctl
	if dir == "" {
		dir = "/run/systemd/system"
	}
	if run == nil {
		run = systemctl
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		for _, unit := range []string{"ssh.service", "sshd.service"} {
			if _, err := run(ctx, "is-active", "--quiet", unit); err != nil {
				continue
			}
			out, err := run(ctx, "reload-or-restart", unit)
			if err != nil {
				return "", fmt.Errorf("systemctl reload-or-restart %s: %w: %s", unit, err, bytes.TrimSpace(out))
			}
			return "reloaded " + unit, nil
		}
		return "sshd not running", nil
	}
	data, err := os.ReadFile(h.PidFile)
	if errors.Is(err, os.ErrNotExist) {
		return "sshd not running", nil
	}
	if err != nil {
		return "", err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil || pid <= 1 {
		return "", fmt.Errorf("%s: not a pid", h.PidFile)
	}
	// A stale pid file may name another process by now.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || string(bytes.TrimSpace(comm)) != "sshd" {
		return "sshd not running", nil
	}
	if err := unix.Kill(pid, unix.SIGHUP); err != nil {
		return "", fmt.Errorf("SIGHUP sshd (pid %d): %w", pid, err)
	}
	return fmt.Sprintf("sent SIGHUP to sshd (pid %d)", pid), nil
}
