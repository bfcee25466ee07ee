package osconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/sysroot"
)

// The cloud's keys live between these lines of authorized_keys, so keys the
// image or the owner added elsewhere in the file are never touched, and a
// key the cloud drops is removed.
const (
	keysBegin = "# BEGIN osmanager: keys from the instance config (public_key); edits here are replaced at boot"
	keysEnd   = "# END osmanager"
)

// ParseKeys checks each non-blank, non-comment line of text as an
// authorized_keys line. It returns the good lines and an error naming
// each bad line by its number.
func ParseKeys(text string) (good []string, err error) {
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cerr := CheckText(line); cerr != nil {
			errs = append(errs, fmt.Errorf("public_key line %d refused: %w", i+1, cerr))
			continue
		}
		if _, _, _, rest, perr := ssh.ParseAuthorizedKey([]byte(line)); perr != nil || len(bytes.TrimSpace(rest)) > 0 {
			if perr == nil {
				perr = errors.New("trailing data")
			}
			errs = append(errs, fmt.Errorf("public_key line %d refused: %v", i+1, perr))
			continue
		}
		good = append(good, line)
	}
	return good, errors.Join(errs...)
}

// SetRootKeys makes the osmanager block of root's authorized_keys hold the
// good lines of text. Bad lines are refused with their line numbers; if no
// line is good the file is left as it is, so a broken config never removes
// a working key. Neither ~/.ssh nor authorized_keys may be a symlink.
func (c *Config) SetRootKeys(text string) (changed []string, err error) {
	good, perr := ParseKeys(text)
	if len(good) == 0 && perr != nil {
		return nil, perr
	}
	owner := sysroot.Owner{UID: c.Files.RootUID, GID: c.Files.RootGID}
	dir, file := c.Files.SSHDir, c.Files.AuthKeys
	did, err := c.Root.MkdirAll(dir, 0o700, 0o755, owner)
	if err != nil {
		return nil, errors.Join(perr, err)
	}
	if did {
		changed = append(changed, dir)
	}
	old, err := c.Root.ReadFile(file, 4<<20)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return changed, errors.Join(perr, err)
	}
	newText, err := withBlock(old, good)
	if err == nil {
		did, err = c.Root.WriteFile(file, newText, sysroot.WriteOptions{Mode: 0o600, Owner: owner})
	}
	if err != nil {
		return changed, errors.Join(perr, err)
	}
	if did {
		changed = append(changed, file)
		c.Log.Info("root ssh keys set", "file", file, "keys", len(good))
	}
	return changed, perr
}

// withBlock returns old with its osmanager block replaced by one holding
// keys (appended when old has none; dropped when keys is empty).
func withBlock(old []byte, keys []string) ([]byte, error) {
	var w lines
	block := func() {
		if len(keys) == 0 {
			return
		}
		w.add("authorized_keys block", keysBegin)
		for i, k := range keys {
			w.add(fmt.Sprintf("public_key %d", i+1), k)
		}
		w.add("authorized_keys block", keysEnd)
	}
	in, placed := false, false
	var inside [][]byte // lines of an open block, kept if it never closes
	for _, l := range splitLines(old) {
		t := string(bytes.TrimRight(l, "\r\n"))
		switch {
		case !in && t == keysBegin:
			in = true
		case in && t == keysEnd:
			in, inside = false, nil
			if !placed {
				block()
				placed = true
			}
		case in:
			inside = append(inside, l)
		default:
			w.keep(l)
		}
	}
	for _, l := range inside { // a BEGIN without END: the lines are not ours
		w.keep(l)
	}
	if !placed {
		block()
	}
	return w.bytes(), w.err()
}
