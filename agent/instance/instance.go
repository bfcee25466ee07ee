// Package instance makes a cloned appliance image its own instance, and
// cleans an image before it is captured.
//
// An instance is told apart by its identity: a SHA-256 hash of the
// floppy's TAG and KEY (see [Identity]), recorded in the LuoYun dir
// (conf/instance-id) once the actions below succeeded. The hash is of a
// secret, so the record holds no KEY bytes and the KEY cannot be got back
// from it; it sits beside luoyun.conf, which holds the KEY itself.
//
// When the identity of the config in force differs from the record, or
// there is no record (the first boot of an image, or an image sealed by
// [Seal]), [Config.Apply] does, once:
//
//   - SSH host keys: new ed25519, ecdsa (P-256) and rsa (3072 bits) keys,
//     the three types sshd makes by default, in OpenSSH's formats at
//     /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key (0600) and .pub (0644),
//     owned by root, each written atomically. Old keys of other types
//     (dsa) are removed, so no key the clones share survives. Nothing is
//     written in an image without /etc/ssh (no sshd).
//   - sshd is reloaded when it runs (see [SSHD]) so it serves the new keys;
//     only when the system root is the running system's "/".
//   - systemd's machine ID, with [Config.NewMachineID] (the running
//     system, booted by systemd) and a non-empty /etc/machine-id: a reset
//     is recorded as pending (conf/machine-id-reset) and carried out when
//     the system shuts down ([Config.ResetMachineID]), so the next boot
//     makes a new ID and this boot's journal stays readable (see
//     machineid.go for why not at once).
//   - the web terminal's pin of the local sshd's host key
//     (conf/webssh-known-hosts) is removed: the keys it pinned are gone.
//
// A failed action leaves the record as it was, so the next boot tries
// again; on the same instance nothing is done and nothing written.
package instance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"osmanager/agent/sysroot"
)

// idPrefix starts a recorded identity, naming the hash.
const idPrefix = "sha256:"

// Identity returns the instance identity of a config: "sha256:" and the
// hex SHA-256 of a fixed label, the TAG (empty if none) and the KEY, each
// ended by a newline (neither can hold one). It is "" when the config has
// neither TAG nor KEY: nothing tells instances apart then.
func Identity(tag int, hasTag bool, key string) string {
	if !hasTag && key == "" {
		return ""
	}
	t := ""
	if hasTag {
		t = strconv.Itoa(tag)
	}
	sum := sha256.Sum256([]byte("osmanager instance identity v1\n" + t + "\n" + key + "\n"))
	return idPrefix + hex.EncodeToString(sum[:])
}

// Files names what the package acts on, in the system root or the LuoYun
// dir; the agent fills it from its path table.
type Files struct {
	// In the LuoYun dir.
	Conf       string // the kept luoyun.conf
	InstanceID string // the instance identity last acted on (a hash, never the KEY)
	// MachineIDReset marks a machine-id reset due at the next shutdown
	// (the SHA-256 of the ID to replace).
	MachineIDReset string
	KnownHosts     string // the web terminal's pin of the local sshd's host key
	WebSSHCert     string // the web terminal's self-signed certificate
	WebSSHKey      string // and its key
	WebSSHShells   string // the web terminal's live login shells
	// In the system root.
	SSHHostKeys   string // the directory of sshd's host keys
	MachineID     string // systemd's machine ID
	DBusMachineID string // D-Bus's copy, when a file of its own
	SSHDPid       string // sshd's pid file, for SIGHUP without systemd
	AgentLog      string // the agent's log file under sysvinit (rotated copies beside it)
	RootUID       int    // owner of the host keys (0; tests use their own uid)
	RootGID       int
}

// Config says where Apply acts.
type Config struct {
	Sys   *sysroot.Root // the system root (/etc)
	LY    *sysroot.Root // the LuoYun dir
	Files Files
	// SSHD reloads sshd after new host keys; nil leaves it alone (a
	// system root other than "/").
	SSHD SSHD
	// NewMachineID says systemd uses the system root's machine-id: it is
	// the running system and systemd is PID 1. A new instance then gets a
	// new machine ID at its next boot (see ResetMachineID).
	NewMachineID bool
	// RSABits is the RSA host key's size; 0 means 3072, ssh-keygen's default.
	RSABits int
	// Comment ends each public key line ("root@host").
	Comment string
	// SysLabel, when set, stands for the system root's directory in
	// Result and notes ("<sysroot>" for a scratch root, as the boot
	// summary writes it); empty shows the real path.
	SysLabel string
	Log      *slog.Logger
}

// Result says what Apply did.
type Result struct {
	New     bool     // the instance was new
	Changed []string // files written or removed, as Root.Path shows them
	Note    string   // for the boot summary
}

// Apply acts once per instance identity id (see the package comment).
func (c *Config) Apply(ctx context.Context, id string) (Result, error) {
	if id == "" || strings.ContainsAny(id, "\r\n") {
		return Result{}, errors.New("no instance identity")
	}
	old, err := c.LY.ReadFile(c.Files.InstanceID, 4096)
	var why string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why = "new instance (no identity recorded)"
	case err != nil:
		return Result{}, fmt.Errorf("read instance identity: %w", err)
	case string(bytes.TrimSpace(old)) == id:
		return Result{Note: "same instance"}, nil
	default:
		why = "new instance (identity differs from the recorded one)"
	}
	log := c.log()
	log.Info(why)
	r := Result{New: true}
	var errs []error
	keys, err := c.hostKeys(&r)
	if err != nil {
		errs = append(errs, err)
	}
	var notes []string
	if keys {
		notes = append(notes, "new SSH host keys")
		if c.SSHD != nil && err == nil {
			note, err := c.SSHD.Reload(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("reload sshd: %w", err))
			} else if note != "" {
				notes = append(notes, note)
			}
		}
	} else if err == nil {
		notes = append(notes, "no "+c.show(c.Sys, c.Files.SSHHostKeys)+": no host keys")
	}
	if c.NewMachineID {
		pending, err := c.markMachineID(&r)
		if err != nil {
			errs = append(errs, err)
		} else if pending {
			notes = append(notes, "new machine ID at the next boot (reset at shutdown)")
		}
	}
	if err := c.remove(&r, c.LY, c.Files.KnownHosts); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		r.Note = why + "; identity not recorded, so the next boot tries again"
		return r, err
	}
	// The record vouches for the host keys and removals above: they are
	// durable before it is written (a boot batches directory syncs).
	if len(r.Changed) > 0 {
		if err := sysroot.Flush(c.Sys, c.LY); err != nil {
			r.Note = why + "; identity not recorded, so the next boot tries again"
			return r, fmt.Errorf("sync before recording the instance identity: %w", err)
		}
	}
	if _, err := c.LY.WriteFile(c.Files.InstanceID, []byte(id+"\n"), sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o755}); err != nil {
		return r, fmt.Errorf("record instance identity: %w", err)
	}
	r.Changed = append(r.Changed, c.show(c.LY, c.Files.InstanceID))
	r.Note = strings.Join(append([]string{why}, notes...), "; ")
	return r, nil
}

func (c *Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// show names a file of root for the summary: the real path.
func (c *Config) show(root *sysroot.Root, name string) string {
	if root == c.Sys && c.SysLabel != "" {
		return c.SysLabel + name
	}
	return path.Join(root.Dir(), name)
}

// remove deletes name from root, noting it in r.
func (c *Config) remove(r *Result, root *sysroot.Root, name string) error {
	removed, err := root.Remove(name)
	if removed {
		r.Changed = append(r.Changed, c.show(root, name))
		c.log().Info("removed", "file", c.show(root, name))
	}
	return err
}

// emptyMachineID empties name if it is a regular file with content,
// keeping its mode and owner.
func emptyMachineID(sys *sysroot.Root, name string) (bool, error) {
	fi, err := sys.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return false, nil
	}
	return sys.WriteFile(name, nil, sysroot.WriteOptions{Mode: 0o444, Owner: sysroot.Keep, KeepMeta: true})
}

// regular reports whether name is a regular file (not a symlink).
func regular(root *sysroot.Root, name string) bool {
	fi, err := root.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}
