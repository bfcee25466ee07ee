package webssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"time"

	"osmanager/agent/accounts"
	"osmanager/agent/sysroot"
)

// errBadLogin is any refusal that counts as a failed login: unknown user,
// wrong password, locked, passwordless or expired account. Its text goes to
// the audit log, never to the client.
type errBadLogin string

func (e errBadLogin) Error() string { return string(e) }

// badLogin makes the accounts package's refusals failed logins.
func badLogin(err error) error {
	for _, e := range []error{accounts.ErrUnknownUser, accounts.ErrNoPassword, accounts.ErrLocked, accounts.ErrExpired} {
		if errors.Is(err, e) {
			return errBadLogin(err.Error())
		}
	}
	return err
}

// validName refuses names that could never be accounts.
func validName(name string) bool { return accounts.ValidName(name) }

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
	u, err := accounts.Lookup(a.sys, a.files.accounts(), name)
	if err != nil {
		return nil, badLogin(err)
	}
	hash, err := accounts.LoginHash(a.sys, a.files.accounts(), name, a.now())
	if err != nil {
		return nil, badLogin(err)
	}
	select {
	case a.hashes <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ok, err := accounts.CheckPassword(hash, password)
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
		if gid, ok := accounts.GroupID(a.sys, a.files.accounts(), "tty"); ok {
			l.tty.gid = int(gid)
		}
	}
	return l, nil
}

// env is the login environment, as login(1) would make it.
func (a *localAuth) env(u *accounts.User) []string {
	p := a.files.UserPATH
	if u.UID == 0 {
		p = a.files.PATH
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
	u      *accounts.User
	env    []string
	asSelf bool
	tty    *ttyOwner // nil with asSelf
}

func (l *localAccount) close() {}

func (l *localAccount) start(cols, rows uint16) (shell, error) {
	cmd := exec.Command(l.u.Shell)
	cmd.Args = []string{"-" + path.Base(l.u.Shell)} // a login shell
	cmd.Env = l.env
	cmd.Dir = l.u.Home
	var cred *syscall.Credential
	if !l.asSelf {
		cred = l.u.Credential()
	}
	sh, err := startPty(cmd, cred, l.tty, cols, rows)
	if err != nil && cmd.Dir != "/" {
		// A home the user cannot enter: start in / as login(1) does.
		cmd = exec.Command(l.u.Shell)
		cmd.Args, cmd.Env, cmd.Dir = []string{"-" + path.Base(l.u.Shell)}, l.env, "/"
		sh, err = startPty(cmd, cred, l.tty, cols, rows)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s for %s: %w", l.u.Shell, l.u.Name, err)
	}
	return sh, nil
}
