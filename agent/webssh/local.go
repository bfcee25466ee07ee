package webssh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/go-crypt/x/yescrypt"

	"osmanager/agent/sysroot"
)

// errBadLogin is any refusal that counts as a failed login: unknown user,
// wrong password, locked, passwordless or expired account. Its text goes to
// the audit log, never to the client.
type errBadLogin string

func (e errBadLogin) Error() string { return string(e) }

// ErrHash is returned by CheckPassword for a hash it cannot check.
var ErrHash = errors.New("unsupported password hash")

// CheckPassword reports whether password matches a crypt(3) hash from
// /etc/shadow: SHA-512 ($6$), SHA-256 ($5$), MD5 ($1$) crypt or yescrypt
// ($y$). Locked ("!…", "*…") and empty hashes never match.
func CheckPassword(hash, password string) (bool, error) {
	switch {
	case hash == "" || hash[0] == '!' || hash[0] == '*':
		return false, nil
	case strings.HasPrefix(hash, "$y$"):
		got, err := yescrypt.Hash([]byte(password), []byte(hash))
		if err != nil {
			return false, fmt.Errorf("%w: yescrypt: %v", ErrHash, err)
		}
		return subtle.ConstantTimeCompare(got, []byte(hash)) == 1, nil
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		d, err := shacrypt.Decode(hash)
		if err != nil {
			return false, fmt.Errorf("%w: sha-crypt: %v", ErrHash, err)
		}
		return d.MatchBytes([]byte(password)), nil
	case strings.HasPrefix(hash, "$1$"):
		d, err := md5crypt.Decode(hash)
		if err != nil {
			return false, fmt.Errorf("%w: md5-crypt: %v", ErrHash, err)
		}
		return d.MatchBytes([]byte(password)), nil
	}
	id := hash
	if i := strings.IndexByte(hash[1:], '$'); hash[0] == '$' && i >= 0 {
		id = hash[:i+2]
	} else {
		id = "des/unknown"
	}
	return false, fmt.Errorf("%w: %s", ErrHash, id)
}

// user is an account from /etc/passwd and /etc/group.
type user struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, primary included
	Home   string
	Shell  string
}

// findLine returns the colon-separated fields of the first line of data
// whose first field is name.
func findLine(data []byte, name string) []string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+":") {
			return strings.Split(line, ":")
		}
	}
	return nil
}

// validName refuses names that could never be accounts and would only
// confuse the line scans (':' and line breaks above all).
func validName(name string) bool {
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

// lookupUser reads name's entry from passwd and its groups from group.
func lookupUser(sys *sysroot.Root, f Files, name string) (*user, error) {
	pw, err := sys.ReadFile(f.Passwd, 0)
	if err != nil {
		return nil, err
	}
	fs := findLine(pw, name)
	if len(fs) < 7 {
		return nil, errBadLogin("unknown user")
	}
	uid, err1 := strconv.ParseUint(fs[2], 10, 32)
	gid, err2 := strconv.ParseUint(fs[3], 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s: bad uid or gid for %s", f.Passwd, name)
	}
	u := &user{Name: name, UID: uint32(uid), GID: uint32(gid), Home: fs[5], Shell: fs[6], Groups: []uint32{uint32(gid)}}
	if u.Home == "" {
		u.Home = "/"
	}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	gr, err := sys.ReadFile(f.Group, 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(gr))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		g := strings.Split(sc.Text(), ":")
		if len(g) < 4 {
			continue
		}
		for _, m := range strings.Split(g[3], ",") {
			if m != name {
				continue
			}
			if id, err := strconv.ParseUint(g[2], 10, 32); err == nil && uint32(id) != u.GID {
				u.Groups = append(u.Groups, uint32(id))
			}
		}
	}
	return u, nil
}

// groupID returns the gid of group name from the group file.
func groupID(sys *sysroot.Root, f Files, name string) (uint32, bool) {
	gr, err := sys.ReadFile(f.Group, 0)
	if err != nil {
		return 0, false
	}
	g := findLine(gr, name)
	if len(g) < 3 {
		return 0, false
	}
	id, err := strconv.ParseUint(g[2], 10, 32)
	return uint32(id), err == nil
}

// shadowHash returns name's hash from shadow, refusing locked, passwordless
// and expired accounts.
func shadowHash(sys *sysroot.Root, f Files, name string, now time.Time) (string, error) {
	data, err := sys.ReadFile(f.Shadow, 0)
	if err != nil {
		return "", err
	}
	fs := findLine(data, name)
	if len(fs) < 2 {
		return "", errBadLogin("unknown user")
	}
	hash := fs[1]
	switch {
	case hash == "":
		return "", errBadLogin("account has no password")
	case hash[0] == '!' || hash[0] == '*':
		return "", errBadLogin("account locked")
	}
	if len(fs) > 7 && fs[7] != "" {
		if days, err := strconv.ParseInt(fs[7], 10, 64); err == nil && now.Unix() >= days*86400 {
			return "", errBadLogin("account expired")
		}
	}
	return hash, nil
}

// localAuth is ModeLogin: shadow check, then a pty shell as the user (or
// as the agent itself with AsSelf).
type localAuth struct {
	sys    *sysroot.Root
	files  Files
	asSelf bool
	now    func() time.Time
	hashes chan struct{} // bounds concurrent hashing: yescrypt takes 16 MB each
}

func (a *localAuth) login(ctx context.Context, name, password string) (account, error) {
	if !validName(name) {
		return nil, errBadLogin("invalid user name")
	}
	u, err := lookupUser(a.sys, a.files, name)
	if err != nil {
		return nil, err
	}
	hash, err := shadowHash(a.sys, a.files, name, a.now())
	if err != nil {
		return nil, err
	}
	select {
	case a.hashes <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ok, err := CheckPassword(hash, password)
	<-a.hashes
	if err != nil {
		return nil, fmt.Errorf("check password of %s: %w", name, err)
	}
	if !ok {
		return nil, errBadLogin("wrong password")
	}
	if !a.asSelf && os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: login mode must run as root to start shells as other users", ErrConfig)
	}
	l := &localAccount{u: u, env: a.env(u), asSelf: a.asSelf}
	if !a.asSelf {
		l.tty = &ttyOwner{uid: int(u.UID), gid: int(u.GID)}
		if gid, ok := groupID(a.sys, a.files, "tty"); ok {
			l.tty.gid = int(gid)
		}
	}
	return l, nil
}

// env is the login environment, as login(1) would make it.
func (a *localAuth) env(u *user) []string {
	p := "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	if u.UID == 0 {
		p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	lang := "C.UTF-8"
	if data, err := a.sys.ReadFile(a.files.Locale, 64<<10); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "LANG="); ok && v != "" {
				lang = strings.Trim(v, `"'`)
			}
		}
	}
	return []string{
		"HOME=" + u.Home, "SHELL=" + u.Shell, "USER=" + u.Name, "LOGNAME=" + u.Name,
		"PATH=" + p, "TERM=xterm-256color", "COLORTERM=truecolor", "LANG=" + lang,
	}
}

type localAccount struct {
	u      *user
	env    []string
	asSelf bool
	tty    *ttyOwner // nil with asSelf
}

func (l *localAccount) name() string { return l.u.Name }
func (l *localAccount) close()       {}

func (l *localAccount) start(cols, rows uint16) (shell, error) {
	cmd := exec.Command(l.u.Shell)
	cmd.Args = []string{"-" + path.Base(l.u.Shell)} // a login shell
	cmd.Env = l.env
	cmd.Dir = l.u.Home
	attr := &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if !l.asSelf {
		attr.Credential = &syscall.Credential{Uid: l.u.UID, Gid: l.u.GID, Groups: l.u.Groups}
	}
	sh, err := startPty(cmd, attr, l.tty, cols, rows)
	if err != nil && cmd.Dir != "/" {
		// A home the user cannot enter: start in / as login(1) does.
		cmd = exec.Command(l.u.Shell)
		cmd.Args, cmd.Env, cmd.Dir = []string{"-" + path.Base(l.u.Shell)}, l.env, "/"
		sh, err = startPty(cmd, attr, l.tty, cols, rows)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s for %s: %w", l.u.Shell, l.u.Name, err)
	}
	return sh, nil
}
