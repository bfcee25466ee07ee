package instance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"

	"osmanager/agent/sysroot"
)

// The machine-id reset. systemd reads /etc/machine-id once, when PID 1
// starts, and journald files the boot's journal under
// /var/log/journal/<machine ID>; journalctl shows only the files of the ID
// in /etc/machine-id (unless -m). Emptying the file on the running system
// would therefore hide the whole boot's journal, and would change nothing
// until the next boot anyway. So on a new instance Apply only records that
// a reset is due (markMachineID), and the agent carries it out when it is
// stopped as part of the system's shutdown ([Config.ResetMachineID]): the
// journal of this boot stays under the old ID (readable with journalctl -m,
// or -D /var/log/journal/<old ID>), and the next boot's systemd makes a new
// ID for the clone.
//
// The mark holds the SHA-256 of the machine ID to replace (not the ID
// itself). At shutdown the file is emptied only while it still holds that
// ID: a reset done but not cleared (a power cut between the two) or an ID
// changed by someone else meanwhile is not reset again; the mark is
// cleared either way.

// machineIDHash is the mark's content for the machine ID id.
func machineIDHash(id []byte) string {
	sum := sha256.Sum256(bytes.TrimSpace(id))
	return idPrefix + hex.EncodeToString(sum[:])
}

// liveMachineID returns the content of the system's machine-id when it is
// a regular file holding an ID systemd uses: not empty, not
// "uninitialized" (either of which makes systemd make a new one anyway).
func (c *Config) liveMachineID() ([]byte, error) {
	fi, err := c.Sys.Lstat(c.Files.MachineID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	b, err := c.Sys.ReadFile(c.Files.MachineID, 4096)
	if err != nil {
		return nil, err
	}
	if id := bytes.TrimSpace(b); len(id) == 0 || string(id) == "uninitialized" {
		return nil, nil
	}
	return b, nil
}

// markMachineID records a pending reset of the live machine ID; it
// reports whether it did (false: no machine ID in use).
func (c *Config) markMachineID(r *Result) (bool, error) {
	id, err := c.liveMachineID()
	if err != nil || id == nil {
		return false, err
	}
	changed, err := c.LY.WriteFile(c.Files.MachineIDReset, []byte(machineIDHash(id)+"\n"), sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o755})
	if err != nil {
		return false, fmt.Errorf("record the pending machine-id reset: %w", err)
	}
	if changed {
		r.Changed = append(r.Changed, c.show(c.LY, c.Files.MachineIDReset))
	}
	return true, nil
}

// Stopping tells whether the system is shutting down, as opposed to the
// agent alone being stopped or restarted.
type Stopping interface {
	Stopping(ctx context.Context) (bool, error)
}

// SystemdStopping asks systemd: `systemctl is-system-running` prints
// "stopping" from the moment a shutdown (poweroff, reboot, halt, kexec) is
// queued until PID 1 leaves for systemd-shutdown, and "running" or
// "degraded" while a unit alone is stopped or restarted.
type SystemdStopping struct {
	// Systemctl runs systemctl with args; nil runs the real one.
	Systemctl func(ctx context.Context, args ...string) ([]byte, error)
}

// Stopping implements Stopping. is-system-running exits non-zero for
// every state but running, so only its output counts.
func (s SystemdStopping) Stopping(ctx context.Context) (bool, error) {
	run := s.Systemctl
	if run == nil {
		run = func(ctx context.Context, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, "systemctl", args...).Output()
		}
	}
	out, err := run(ctx, "is-system-running")
	state := string(bytes.TrimSpace(out))
	if state == "" && err != nil {
		return false, fmt.Errorf("systemctl is-system-running: %w", err)
	}
	return state == "stopping", nil
}

// ResetMachineID carries out a pending machine-id reset when the system
// is shutting down (see the comment at the top of this file): it empties
// the machine-id (mode and owner kept; systemd makes a new ID at the next
// boot), removes D-Bus's copy when it is a file of its own, then clears
// the mark. With no mark it does nothing and asks nothing; when the
// system is not shutting down (a restart of the agent) the mark stays for
// the next clean shutdown.
func (c *Config) ResetMachineID(ctx context.Context, stopping Stopping) (Result, error) {
	mark, err := c.LY.ReadFile(c.Files.MachineIDReset, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("read the pending machine-id reset: %w", err)
	}
	log := c.log()
	down, err := stopping.Stopping(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("machine-id reset left pending: %w", err)
	}
	if !down {
		log.Info("machine-id reset left pending: the system is not shutting down")
		return Result{Note: "machine-id reset pending until the system shuts down"}, nil
	}
	var r Result
	id, err := c.liveMachineID()
	if err != nil {
		return r, err
	}
	switch {
	case id == nil:
		r.Note = "machine-id already empty"
	case machineIDHash(id) != string(bytes.TrimSpace(mark)):
		r.Note = "machine-id already replaced"
	default:
		if _, err := emptyMachineID(c.Sys, c.Files.MachineID); err != nil {
			return r, fmt.Errorf("empty the machine-id: %w", err)
		}
		r.Changed = append(r.Changed, c.show(c.Sys, c.Files.MachineID))
		if regular(c.Sys, c.Files.DBusMachineID) {
			if err := c.remove(&r, c.Sys, c.Files.DBusMachineID); err != nil {
				return r, err
			}
		}
		r.Note = "machine-id emptied: systemd makes a new one at the next boot"
	}
	if err := c.remove(&r, c.LY, c.Files.MachineIDReset); err != nil {
		return r, fmt.Errorf("clear the pending machine-id reset: %w", err)
	}
	log.Info("machine-id reset", "note", r.Note, "changed", r.Changed)
	return r, nil
}
