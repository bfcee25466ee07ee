// Package accounts reads the system's accounts from the system root's
// passwd, group and shadow files (not through os/user or NSS: the files
// are the image's, under a root that is "/" only in production), gives a
// user's credentials with its supplementary groups, and checks a password
// against a crypt(3) hash.
//
// The files may have been mangled by an image builder or a cloud: the
// parsers never panic, name the line in their errors, and never put a
// field's bytes in one (a passwd or shadow field may hold a hash).
package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"osmanager/agent/sysroot"
)

// Files names the account files in the system root.
type Files struct {
	Passwd string // /etc/passwd
	Group  string // /etc/group
	Shadow string // /etc/shadow
}

// Refusals of a login, each checked with errors.Is.
var (
	ErrUnknownUser = errors.New("unknown user")
	ErrNoPassword  = errors.New("account has no password")
	ErrLocked      = errors.New("account locked")
	ErrExpired     = errors.New("account expired")
)

// ErrLine is wrapped by every error about a line of an account file.
var ErrLine = errors.New("bad line")

// lineError names a file's line and what is wrong with it, never what it
// holds.
func lineError(file string, n int, what string) error {
	if file == "" {
		return fmt.Errorf("line %d: %w: %s", n, ErrLine, what)
	}
	return fmt.Errorf("%s line %d: %w: %s", file, n, ErrLine, what)
}

// User is an account from passwd, with its groups from group.
type User struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, the primary one first
	Home   string   // "/" when passwd leaves it empty
	Shell  string   // "/bin/sh" when passwd leaves it empty
}

// Credential is what a child started as u runs with.
func (u *User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: append([]uint32(nil), u.Groups...)}
}

// Group is an entry of the group file.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// Shadow is the part of a shadow entry the agent reads.
type Shadow struct {
	Name string
	Hash string
	// Expire is the account's expiry in days since 1970-01-01, or -1 for
	// none (an empty or unreadable field, as today's logins treat it).
	Expire int64
}

// ValidName refuses names that could never be accounts and would only
// confuse the line scans (':' and line breaks above all), and NIS "+"/"-"
// entries.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '-' || name[0] == '+' {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c == ':' || c == '/' || c >= 0x7f {
			return false
		}
	}
	return true
}

// eachLine calls f with each line of data (without its line break) and
// its number from 1, until f returns false.
func eachLine(data []byte, f func(n int, line string) bool) {
	for n := 1; len(data) > 0; n++ {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		if !f(n, strings.TrimSuffix(string(line), "\r")) {
			return
		}
	}
}

// findLine returns the number and fields of the first line whose first
// field is name (0 and nil: none).
func findLine(data []byte, name string) (int, []string) {
	var num int
	var fields []string
	eachLine(data, func(n int, line string) bool {
		if strings.HasPrefix(line, name+":") {
			num, fields = n, strings.Split(line, ":")
			return false
		}
		return true
	})
	return num, fields
}

func parseID(s string) (uint32, bool) {
	id, err := strconv.ParseUint(s, 10, 32)
	return uint32(id), err == nil
}

// parseUser parses the fields of a passwd line.
func parseUser(file string, n int, f []string) (*User, error) {
	if len(f) != 7 {
		return nil, lineError(file, n, fmt.Sprintf("%d fields, want 7", len(f)))
	}
	if !ValidName(f[0]) {
		return nil, lineError(file, n, "bad user name")
	}
	uid, ok1 := parseID(f[2])
	gid, ok2 := parseID(f[3])
	if !ok1 || !ok2 {
		return nil, lineError(file, n, "bad uid or gid")
	}
	u := &User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6], Groups: []uint32{gid}}
	if u.Home == "" {
		u.Home = "/"
	}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	return u, nil
}

// parseGroup parses the fields of a group line.
func parseGroup(file string, n int, f []string) (Group, error) {
	if len(f) != 4 {
		return Group{}, lineError(file, n, fmt.Sprintf("%d fields, want 4", len(f)))
	}
	if !ValidName(f[0]) {
		return Group{}, lineError(file, n, "bad group name")
	}
	gid, ok := parseID(f[2])
	if !ok {
		return Group{}, lineError(file, n, "bad gid")
	}
	g := Group{Name: f[0], GID: gid}
	if f[3] != "" {
		g.Members = strings.Split(f[3], ",")
	}
	return g, nil
}

// parseShadow parses the fields of a shadow line.
func parseShadow(file string, n int, f []string) (Shadow, error) {
	if len(f) != 9 {
		return Shadow{}, lineError(file, n, fmt.Sprintf("%d fields, want 9", len(f)))
	}
	if !ValidName(f[0]) {
		return Shadow{}, lineError(file, n, "bad user name")
	}
	return Shadow{Name: f[0], Hash: f[1], Expire: expireOf(f)}, nil
}

func expireOf(f []string) int64 {
	if len(f) > 7 && f[7] != "" {
		if days, err := strconv.ParseInt(f[7], 10, 64); err == nil {
			return days
		}
	}
	return -1
}

// parseAll parses every line of a file but the empty ones, stopping at
// the first bad one.
func parseAll[T any](data []byte, file string, parse func(string, int, []string) (T, error)) ([]T, error) {
	var out []T
	var err error
	eachLine(data, func(n int, line string) bool {
		if line == "" {
			return true
		}
		var v T
		if v, err = parse(file, n, strings.Split(line, ":")); err != nil {
			return false
		}
		out = append(out, v)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParsePasswd parses a whole passwd file. Users' Groups hold only their
// primary group (the group file adds the others).
func ParsePasswd(data []byte) ([]*User, error) { return parseAll(data, "", parseUser) }

// ParseGroup parses a whole group file.
func ParseGroup(data []byte) ([]Group, error) { return parseAll(data, "", parseGroup) }

// ParseShadow parses a whole shadow file.
func ParseShadow(data []byte) ([]Shadow, error) { return parseAll(data, "", parseShadow) }

// Lookup reads name's entry from the passwd file and its supplementary
// groups from the group file (which may be missing). Only name's line is
// parsed: a mangled line of another account does not stop this one. A
// name without an entry, or whose line has too few fields to be one,
// gives ErrUnknownUser.
func Lookup(sys *sysroot.Root, f Files, name string) (*User, error) {
	if !ValidName(name) {
		return nil, ErrUnknownUser
	}
	pw, err := sys.ReadFile(f.Passwd, 0)
	if err != nil {
		return nil, err
	}
	n, fields := findLine(pw, name)
	if len(fields) < 7 {
		if n > 0 {
			return nil, fmt.Errorf("%w (%s line %d has %d fields, want 7)", ErrUnknownUser, f.Passwd, n, len(fields))
		}
		return nil, ErrUnknownUser
	}
	u, err := parseUser(f.Passwd, n, fields[:7])
	if err != nil {
		return nil, err
	}
	gr, err := sys.ReadFile(f.Group, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	eachLine(gr, func(_ int, line string) bool {
		g := strings.Split(line, ":")
		if len(g) < 4 {
			return true
		}
		for _, m := range strings.Split(g[3], ",") {
			if m != name {
				continue
			}
			if id, ok := parseID(g[2]); ok && id != u.GID {
				u.Groups = append(u.Groups, id)
			}
		}
		return true
	})
	return u, nil
}

// GroupID returns the gid of group name from the group file.
func GroupID(sys *sysroot.Root, f Files, name string) (uint32, bool) {
	gr, err := sys.ReadFile(f.Group, 0)
	if err != nil {
		return 0, false
	}
	_, g := findLine(gr, name)
	if len(g) < 3 {
		return 0, false
	}
	return parseID(g[2])
}

// LoginHash returns name's password hash from the shadow file, refusing
// unknown, passwordless, locked and (at now) expired accounts with
// ErrUnknownUser, ErrNoPassword, ErrLocked and ErrExpired.
func LoginHash(sys *sysroot.Root, f Files, name string, now time.Time) (string, error) {
	if !ValidName(name) {
		return "", ErrUnknownUser
	}
	data, err := sys.ReadFile(f.Shadow, 0)
	if err != nil {
		return "", err
	}
	_, fields := findLine(data, name)
	if len(fields) < 2 {
		return "", ErrUnknownUser
	}
	hash := fields[1]
	switch {
	case hash == "":
		return "", ErrNoPassword
	case hash[0] == '!' || hash[0] == '*':
		return "", ErrLocked
	}
	if days := expireOf(fields); days >= 0 && now.Unix() >= days*86400 {
		return "", ErrExpired
	}
	return hash, nil
}

// ShadowLine is a shadow line cut at its first two colons, so that a
// writer can replace the hash and keep every other byte.
type ShadowLine struct {
	Name string
	Hash string
	// Rest is what follows the hash's ':'; HasRest is false for a
	// "name:hash" line with nothing after.
	Rest    string
	HasRest bool
}

// CutShadowLine cuts a shadow line (without its line break); ok is false
// when it holds no ':' at all.
func CutShadowLine(line string) (l ShadowLine, ok bool) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return ShadowLine{}, false
	}
	l.Name = name
	l.Hash, l.Rest, l.HasRest = strings.Cut(rest, ":")
	return l, true
}
