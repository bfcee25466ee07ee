package webssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"osmanager/agent/internal/lazyre"
	"osmanager/agent/sysroot"
)

// sshAuth is ModeSSH: the agent is an SSH client of the local sshd. The
// password is used for the handshake and then dropped; the connection is
// kept for the login's shells.
type sshAuth struct {
	addr string
	conf *sysroot.Root
	file string // known-hosts file in conf
	log  *slog.Logger

	mu sync.Mutex // serialises pinning
}

// ErrHostKey means the local sshd's host key differs from the pinned one.
var ErrHostKey = errors.New("sshd host key changed")

func (a *sshAuth) login(ctx context.Context, user, password string) (account, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to sshd %s: %w", a.addr, err)
	}
	return a.handshake(ctx, conn, user, password)
}

func (a *sshAuth) handshake(ctx context.Context, conn net.Conn, user, password string) (account, error) {
	if !validName(user) {
		conn.Close()
		return nil, errBadLogin("invalid user name")
	}
	pinned, err := a.pinned()
	if err != nil {
		conn.Close()
		return nil, err
	}
	ki := &kbdAnswers{password: password}
	offered := false
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.Password(password), ssh.KeyboardInteractive(ki.answer)},
		// Called after each attempt, the first time with what sshd offers
		// after "none": without password or keyboard-interactive there is
		// nothing to try (auto mode then logs in locally).
		AuthCallback: func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			if ki.err != nil {
				return nil, ki.err // a prompt we must not answer: stop here
			}
			if !offered {
				offered = true
				if !slices.Contains(c.AllowedMethods, "password") && !slices.Contains(c.AllowedMethods, "keyboard-interactive") {
					return nil, fmt.Errorf("%w (it offers %s)", errNoPasswordAuth, strings.Join(c.AllowedMethods, ", "))
				}
			}
			return nil, nil
		},
		HostKeyCallback: a.checkHostKey(pinned),
		Timeout:         10 * time.Second,
	}
	if pinned != nil {
		cfg.HostKeyAlgorithms = hostKeyAlgos(pinned.Type())
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, a.addr, cfg)
	if err != nil {
		conn.Close()
		var prompt errPrompt
		if errors.Is(err, ErrHostKey) || errors.Is(err, errNoPasswordAuth) || errors.As(err, &prompt) {
			return nil, err
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, errBadLogin("sshd refused the password")
		}
		return nil, fmt.Errorf("ssh to %s: %w", a.addr, err)
	}
	conn.SetDeadline(time.Time{})
	return &sshAccount{user: user, client: ssh.NewClient(c, chans, reqs)}, nil
}

// errNoPasswordAuth means sshd offers neither password nor
// keyboard-interactive authentication (only keys, as many cloud images).
var errNoPasswordAuth = errors.New("sshd offers no password login")

// errPrompt is a keyboard-interactive prompt other than the password's
// (a one-time code, a question): the terminal refuses the login and tells
// the user which prompt it cannot answer.
type errPrompt struct{ prompt string }

func (e errPrompt) Error() string {
	return fmt.Sprintf("sshd asked %q, which is not a password prompt", e.prompt)
}

func (e errPrompt) userMessage() string {
	return fmt.Sprintf("the instance's sshd asks %q, which this terminal does not answer: use an ssh client", e.prompt)
}

// passwordPrompt matches the prompts the password answers; newPassword
// the ones of a password change, which it must not answer.
var (
	passwordPrompt = lazyre.New(`(?i)password`)
	newPassword    = lazyre.New(`(?i)\b(new|retype|re-?enter|again|confirm)\b`)
)

// kbdAnswers answers keyboard-interactive rounds: only hidden prompts that
// ask for the password get it; any other prompt ends the login (err).
type kbdAnswers struct {
	password string
	err      error
}

func (k *kbdAnswers) answer(_, _ string, questions []string, echos []bool) ([]string, error) {
	ans := make([]string, len(questions))
	for i, q := range questions {
		if echos[i] || !passwordPrompt.MatchString(q) || newPassword.MatchString(q) {
			k.err = errPrompt{prompt: printable(q, 80)}
			return nil, k.err
		}
		ans[i] = k.password
	}
	return ans, nil
}

// printable keeps text from sshd one line of printable characters, at most
// max bytes.
func printable(s string, max int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError || unicode.Is(unicode.Cc, r) {
			return ' '
		}
		return r
	}, s))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// hostKeyAlgos keeps the handshake on the pinned key's type.
func hostKeyAlgos(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// pinned returns the pinned host key for addr, or nil when none is pinned.
func (a *sshAuth) pinned() (ssh.PublicKey, error) {
	data, err := a.conf.ReadFile(a.file, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	host := knownhosts.Normalize(a.addr)
	for len(data) > 0 {
		_, hosts, key, _, rest, err := ssh.ParseKnownHosts(data)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("read %s: %w", a.file, err)
		}
		data = rest
		for _, h := range hosts {
			if h == host {
				return key, nil
			}
		}
	}
	return nil, nil
}

// checkHostKey accepts the pinned key, or pins the first key seen.
func (a *sshAuth) checkHostKey(pinned ssh.PublicKey) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if pinned != nil {
			if !bytes.Equal(pinned.Marshal(), key.Marshal()) {
				a.log.Error("sshd host key differs from the pinned one: refusing", "addr", a.addr,
					"pinned", ssh.FingerprintSHA256(pinned), "got", ssh.FingerprintSHA256(key), "file", a.file)
				return ErrHostKey
			}
			return nil
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if p, err := a.pinned(); err != nil || p != nil {
			if err != nil {
				return err
			}
			if !bytes.Equal(p.Marshal(), key.Marshal()) {
				return ErrHostKey
			}
			return nil
		}
		line := knownhosts.Line([]string{knownhosts.Normalize(a.addr)}, key) + "\n"
		if _, err := a.conf.WriteFile(a.file, []byte(line), sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o700}); err != nil {
			return fmt.Errorf("pin sshd host key: %w", err)
		}
		a.log.Info("pinned the local sshd's host key", "addr", a.addr, "key", ssh.FingerprintSHA256(key), "file", a.file)
		return nil
	}
}

// autoAuth is ModeAuto: ssh when sshd answers on its address, else login.
type autoAuth struct {
	ssh   *sshAuth
	local *localAuth
}

func (a *autoAuth) login(ctx context.Context, user, password string) (account, error) {
	acct, _, err := a.pick(ctx, user, password)
	return acct, err
}

func (a *autoAuth) pick(ctx context.Context, user, password string) (account, Mode, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", a.ssh.addr)
	if err != nil {
		acct, err := a.local.login(ctx, user, password)
		return acct, ModeLogin, err
	}
	acct, err := a.ssh.handshake(ctx, conn, user, password)
	if errors.Is(err, errNoPasswordAuth) {
		// sshd answers but takes no passwords: check the password here.
		acct, err := a.local.login(ctx, user, password)
		return acct, ModeLogin, err
	}
	return acct, ModeSSH, err
}

type sshAccount struct {
	user   string
	client *ssh.Client
}

func (s *sshAccount) close() { s.client.Close() }

func (s *sshAccount) start(cols, rows uint16) (shell, error) {
	sess, err := s.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh session: %w", err)
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400, ssh.IUTF8: 1}
	if err := sess.RequestPty("xterm-256color", int(rows), int(cols), modes); err != nil {
		sess.Close()
		return nil, fmt.Errorf("ssh pty: %w", err)
	}
	in, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	if err := sess.Shell(); err != nil {
		sess.Close()
		return nil, fmt.Errorf("ssh shell: %w", err)
	}
	return &sshShell{sess: sess, in: in, out: out}, nil
}

// sshShell is a shell on the local sshd. Its output also waits in
// x/crypto/ssh's channel buffer (up to the SSH window) besides ours.
type sshShell struct {
	sess *ssh.Session
	in   io.WriteCloser
	out  io.Reader

	once sync.Once
	code int
	err  error
}

func (s *sshShell) Read(p []byte) (int, error)  { return s.out.Read(p) }
func (s *sshShell) Write(p []byte) (int, error) { return s.in.Write(p) }
func (s *sshShell) Resize(cols, rows uint16) error {
	return s.sess.WindowChange(int(rows), int(cols))
}

func (s *sshShell) Hangup() {
	s.sess.Signal(ssh.SIGHUP)
	s.sess.Close()
}

func (s *sshShell) Kill() {
	s.sess.Signal(ssh.SIGKILL)
	s.sess.Close()
}

func (s *sshShell) Wait() (int, error) {
	s.once.Do(func() {
		err := s.sess.Wait()
		var ee *ssh.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			s.code = ee.ExitStatus()
		default:
			s.code, s.err = -1, err
		}
		s.sess.Close()
	})
	return s.code, s.err
}
