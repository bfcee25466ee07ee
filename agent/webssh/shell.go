package webssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"osmanager/agent/proc"
)

// account is a successful login: it starts shells until closed.
type account interface {
	start(cols, rows uint16) (shell, error)
	close()
}

// authenticator checks a user name and password.
type authenticator interface {
	login(ctx context.Context, user, password string) (account, error)
}

// shell is a running login shell on a terminal.
type shell interface {
	// Read reads output; an error (io.EOF, EIO) means the terminal is gone.
	Read(p []byte) (int, error)
	// Write writes input, blocking while the shell does not read.
	Write(p []byte) (int, error)
	Resize(cols, rows uint16) error
	// Hangup hangs up the terminal: SIGHUP to its process groups.
	Hangup()
	// Kill sends SIGKILL to its process groups.
	Kill()
	// Wait waits for the shell to exit and returns its exit status.
	Wait() (int, error)
}

// pollShell is a shell whose output can be waited for without a buffer
// (the pty master on the runtime poller): idle sessions then hold no
// read buffer. tryWrite writes what the terminal takes now.
type pollShell interface {
	shell
	// readWhenReady calls read once output may be ready; read returns
	// false to wait for readiness again.
	readWhenReady(read func(fd int) bool) error
	// withFd calls f with the terminal's fd, without waiting for it.
	withFd(f func(fd int)) error
	tryWrite(p []byte) (int, error)
}

// ptyShell is a local shell on a pty whose master the agent holds.
type ptyShell struct {
	proc   *proc.Process
	master *os.File // non-blocking, on the runtime poller
	rc     syscall.RawConn
	pid    int
	fg     atomic.Int64 // the foreground job's group when last signalled

	once sync.Once
	code int
	err  error
}

// ttyOwner is who a shell's terminal belongs to, as login(1) sets it:
// the user, the tty group, mode 0620 (screen, tmux and write need it).
type ttyOwner struct{ uid, gid int }

// startPty starts cmd as a session leader with a new pty as its
// controlling terminal, owned by own (nil: left as the agent's), as cred
// (nil: as the agent).
func startPty(cmd *exec.Cmd, cred *syscall.Credential, own *ttyOwner, cols, rows uint16) (*ptyShell, error) {
	m, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	defer tty.Close()
	if own != nil {
		if err := tty.Chown(own.uid, own.gid); err != nil {
			m.Close()
			return nil, fmt.Errorf("pty owner: %w", err)
		}
		if err := tty.Chmod(0o620); err != nil {
			m.Close()
			return nil, fmt.Errorf("pty mode: %w", err)
		}
	}
	// pty.Open's ioctls leave the master in blocking mode; a dup set
	// non-blocking goes on the runtime poller, so reads can wait without
	// a thread or a buffer, and hang-ups can interrupt them.
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	m.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := pty.Setsize(tty, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		master.Close()
		return nil, fmt.Errorf("pty size: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	p, err := proc.Start(cmd, proc.Options{Mode: proc.OwnSession, Ctty: true, Credential: cred})
	if err != nil {
		master.Close()
		return nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		p.Kill()
		p.Wait()
		return nil, err
	}
	return &ptyShell{proc: p, master: master, rc: rc, pid: p.Pid}, nil
}

func (p *ptyShell) Read(b []byte) (int, error)  { return p.master.Read(b) }
func (p *ptyShell) Write(b []byte) (int, error) { return p.master.Write(b) }

func (p *ptyShell) readWhenReady(read func(fd int) bool) error {
	return p.rc.Read(func(fd uintptr) bool { return read(int(fd)) })
}

func (p *ptyShell) withFd(f func(fd int)) error {
	return p.rc.Control(func(fd uintptr) { f(int(fd)) })
}

func (p *ptyShell) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := p.rc.Write(func(fd uintptr) bool {
		n, werr = rawWrite(int(fd), b)
		return true // never wait: what is left goes to the input queue
	})
	if n < 0 {
		n = 0
	}
	if errors.Is(werr, unix.EAGAIN) || errors.Is(werr, unix.EINTR) {
		werr = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}

func (p *ptyShell) Resize(cols, rows uint16) error {
	var ierr error
	err := p.rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	})
	if err != nil {
		return err
	}
	return ierr
}

// signal sends sig to every process of the shell's terminal session:
// the shell's group, the foreground job and background jobs alike (dash,
// unlike bash, does not pass SIGHUP on to its jobs). Processes that left
// the session (setsid daemons) are not the terminal's and are spared.
func (p *ptyShell) signal(sig unix.Signal) {
	p.rc.Control(func(fd uintptr) {
		if fg, err := unix.IoctlGetInt(int(fd), unix.TIOCGPGRP); err == nil {
			p.fg.Store(int64(fg))
		}
	})
	if fg := int(p.fg.Load()); fg > 1 && fg != p.pid {
		unix.Kill(-fg, sig)
		unix.Kill(-fg, unix.SIGCONT)
	}
	p.proc.Signal(sig)
	p.proc.Signal(unix.SIGCONT)
	for _, pid := range p.proc.SessionMembers() {
		if pid != p.pid {
			unix.Kill(pid, sig)
			unix.Kill(pid, unix.SIGCONT)
		}
	}
}

// Hangup signals SIGHUP and closes the master, which hangs up the
// terminal for everything still on it (the kernel sends SIGHUP to the
// session's foreground group and its leader; the shell passes it on to
// its jobs).
func (p *ptyShell) Hangup() {
	p.signal(unix.SIGHUP)
	p.master.Close()
}

func (p *ptyShell) Kill() {
	p.signal(unix.SIGKILL)
	p.master.Close()
}

func (p *ptyShell) Wait() (int, error) {
	p.once.Do(func() {
		exit, err := p.proc.Wait()
		if err != nil {
			p.code, p.err = -1, err
		} else {
			p.code = exit.ShellCode()
		}
		p.master.Close()
	})
	return p.code, p.err
}
