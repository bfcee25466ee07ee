package osconfig

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"osmanager/agent/accounts"
	"osmanager/agent/sysroot"
)

// ErrBadHash means passwd_hash is not a crypt(3) hash.
var ErrBadHash = errors.New("not a crypt(3) hash")

// hashLen gives the length of the hash part for the schemes with a fixed one.
var hashLen = map[string]int{"1": 22, "5": 43, "6": 86}

// CheckHash accepts a crypt(3) hash ("$id$[params$]salt$hash", or a
// yescrypt/bcrypt string of that shape) or a lock ("*", "!", "!" before a
// hash). It refuses plain text, empty strings (no password at all), and
// anything that would break /etc/shadow (':', newlines). The value itself
// never appears in the error.
func CheckHash(h string) error {
	locked := strings.HasPrefix(h, "!")
	rest := strings.TrimPrefix(h, "!")
	if h == "*" || h == "!" || h == "!*" {
		return nil
	}
	if strings.ContainsAny(h, ":\n\r") {
		return fmt.Errorf("%w: holds ':' or a line break", ErrBadHash)
	}
	if !strings.HasPrefix(rest, "$") {
		if locked || rest == "" {
			return fmt.Errorf("%w: empty or not of the form $id$…", ErrBadHash)
		}
		return fmt.Errorf("%w: not of the form $id$… (a plain password?)", ErrBadHash)
	}
	fields := strings.Split(rest[1:], "$")
	if len(fields) < 3 {
		return fmt.Errorf("%w: want $id$salt$hash", ErrBadHash)
	}
	for i, f := range fields {
		if f == "" {
			return fmt.Errorf("%w: empty field %d", ErrBadHash, i+1)
		}
		for _, c := range f {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("./=,-", c)) {
				return fmt.Errorf("%w: character %q not allowed", ErrBadHash, c)
			}
		}
	}
	if n, ok := hashLen[fields[0]]; ok && len(fields[len(fields)-1]) != n {
		return fmt.Errorf("%w: $%s$ hash part is %d characters, want %d", ErrBadHash, fields[0], len(fields[len(fields)-1]), n)
	}
	return nil
}

// SetRootHash puts hash into root's password field of the shadow file,
// under the shadow lock. Every other byte of the file stays as it was, and
// its mode and owner are kept. In a batch the new file is committed when
// the lock is released (with the writes staged before it), and a failed
// commit is this call's error.
func (c *Config) SetRootHash(hash string) ([]string, error) {
	if err := CheckHash(hash); err != nil {
		return nil, fmt.Errorf("passwd_hash refused: %w", err)
	}
	unlock, err := c.Root.Lock(c.Files.ShadowLock, 15*time.Second)
	if err != nil {
		return nil, err
	}
	did, err := c.putRootHash(hash)
	if uerr := unlock(); err == nil {
		err = uerr
	}
	if err != nil || !did {
		return nil, err
	}
	c.Log.Info("root password hash set", "file", c.Files.Shadow)
	return []string{c.Files.Shadow}, nil
}

// putRootHash writes the shadow file with hash in root's field; the
// caller holds the lock.
func (c *Config) putRootHash(hash string) (bool, error) {
	old, err := c.Root.ReadFile(c.Files.Shadow, 8<<20)
	if err != nil {
		return false, err
	}
	var w lines
	found := false
	for _, l := range splitLines(old) {
		sl, ok := accounts.CutShadowLine(string(bytes.TrimSuffix(l, []byte("\n"))))
		if found || !ok || sl.Name != "root" {
			w.keep(l)
			continue
		}
		found = true
		// The fields after the hash are the file's own; the line ends as
		// it did.
		if !sl.HasRest { // "root:hash" with nothing after
			w.replace(l, "root's line of "+c.Files.Shadow, "root:", hash)
		} else {
			w.replace(l, "root's line of "+c.Files.Shadow, "root:", hash, ":", sl.Rest)
		}
	}
	if !found {
		return false, fmt.Errorf("set root password: no root entry in %s", c.Files.Shadow)
	}
	if err := w.err(); err != nil {
		return false, err
	}
	return c.Root.WriteFile(c.Files.Shadow, w.bytes(), sysroot.WriteOptions{Mode: 0o640, Owner: sysroot.Keep, KeepMeta: true})
}
