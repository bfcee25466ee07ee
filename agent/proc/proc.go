// Package proc starts child processes in a process group or session of
// their own, signals and kills the whole group, reaps the leader, reports
// how it ended (Exit: an exit code or the signal), and reads the kernel's
// process table (/proc) to list a group's or a session's processes.
//
// A pid names one process only until it is reaped: after that the kernel
// may give it to another. So a Process signals its group with kill(-pgid)
// only while its leader is unreaped (a zombie still holds the pid and the
// group id); afterwards it signals the members it finds in /proc one by
// one, and only those that started no earlier than the leader did.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended: it exited with Code, or a Signal killed it
// (then Code is -1). It is the one convention of the agent for both.
type Exit struct {
	Code   int
	Signal syscall.Signal
}

// ExitOf reads an exit from a wait status.
func ExitOf(ws syscall.WaitStatus) Exit {
	if ws.Signaled() {
		return Exit{Code: -1, Signal: ws.Signal()}
	}
	return Exit{Code: ws.ExitStatus()}
}

// ExitOfState reads an exit from what os/exec reports.
func ExitOfState(ps *os.ProcessState) Exit {
	if ps == nil {
		return Exit{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return ExitOf(ws)
	}
	return Exit{Code: ps.ExitCode()}
}

// Signaled reports whether a signal ended the process.
func (e Exit) Signaled() bool { return e.Signal != 0 }

// Success reports an exit with code 0.
func (e Exit) Success() bool { return e.Signal == 0 && e.Code == 0 }

// ShellCode is the status as a shell's $? shows it: the code, or 128 plus
// the signal's number.
func (e Exit) ShellCode() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}

// String is "exit 3" or "signal KILL".
func (e Exit) String() string {
	if e.Signal != 0 {
		return "signal " + SignalName(e.Signal)
	}
	return "exit " + strconv.Itoa(e.Code)
}

// SignalName is a signal's short name ("KILL", "TERM"), or its number
// when it has none.
func SignalName(s syscall.Signal) string {
	if n := unix.SignalName(s); len(n) > 3 {
		return n[3:] // "SIGKILL" → "KILL"
	}
	return strconv.Itoa(int(s))
}

// Mode says what a child leads.
type Mode int

const (
	// OwnGroup starts the child as the leader of a new process group in
	// the agent's session.
	OwnGroup Mode = iota + 1
	// OwnSession starts the child as the leader of a new session (and so
	// of a new group): it has no controlling terminal unless Ctty is set.
	OwnSession
)

// Options say how to start a child.
type Options struct {
	Mode Mode
	// Ctty, with OwnSession, makes the child's stdin (a terminal) its
	// controlling terminal.
	Ctty bool
	// Credential runs the child as another user, with its groups; nil
	// runs it as the agent.
	Credential *syscall.Credential
	// Table is the process table the group's members are read from.
	Table Table
	// Cgroup, when set, is an open cgroup v2 directory the child is
	// cloned into (CLONE_INTO_CGROUP, Linux 5.7+), so it never runs a
	// single instruction outside it, nor can a child it forks.
	Cgroup *os.File
}

// Process is a started child that leads its group.
type Process struct {
	Pid int
	// StartTime is the child's start time in clock ticks since boot (0 if
	// /proc could not tell): with the pid, it names the process for good.
	StartTime uint64

	cmd   *exec.Cmd
	table Table

	mu     sync.RWMutex // held for reading while kill(-pgid) may be sent
	reaped bool         // set, under mu, before the leader is reaped

	once sync.Once
	done chan struct{}
	exit Exit
	err  error
}

// Start starts cmd as the leader of a group (or session) of its own. The
// caller must call Wait. cmd.SysProcAttr, if set, is kept apart from the
// fields Options decide.
func Start(cmd *exec.Cmd, o Options) (*Process, error) {
	attr := &syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		a := *cmd.SysProcAttr
		attr = &a
	}
	switch o.Mode {
	case OwnGroup:
		attr.Setpgid, attr.Pgid = true, 0
	case OwnSession:
		attr.Setsid = true
		if o.Ctty {
			attr.Setctty, attr.Ctty = true, 0
		}
	default:
		return nil, fmt.Errorf("start %s: no process group mode", cmd.Path)
	}
	if o.Credential != nil {
		c := *o.Credential
		attr.Credential = &c
	}
	if o.Cgroup != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, int(o.Cgroup.Fd())
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, table: o.Table, done: make(chan struct{})}
	if st, err := o.Table.Stat(p.Pid); err == nil {
		p.StartTime = st.Start
	}
	return p, nil
}

// Wait waits for the leader to exit, reaps it and returns how it ended;
// every call returns the same, and calls may run at once. err is set only
// when the wait itself failed (or, with a Stdout or Stderr that is not an
// *os.File, copying its output did: then Wait also waits for the copy, as
// exec.Cmd.Wait does); an exit code or a signal is not an error.
func (p *Process) Wait() (Exit, error) {
	p.once.Do(func() {
		// Wait for the exit without reaping, so that no signal to the
		// group can go out once the pid may belong to someone else.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		p.mu.Lock()
		p.reaped = true
		p.mu.Unlock()
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) && p.cmd.ProcessState == nil {
			p.exit, p.err = Exit{Code: -1}, err
		} else {
			p.exit = ExitOfState(p.cmd.ProcessState)
			if err != nil && ee == nil {
				p.err = err // exited, but its output could not be copied
			}
		}
		close(p.done)
	})
	return p.exit, p.err
}

// WaitContext is Wait, but when ctx ends first it kills the whole group
// and then waits.
func (p *Process) WaitContext(ctx context.Context) (Exit, error) {
	waited := make(chan struct{})
	go func() { p.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		p.Kill()
		<-waited
	}
	return p.Wait()
}

// Done is closed once Wait has returned.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to every process of the leader's group.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.reaped {
		err := unix.Kill(-p.Pid, sig)
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	for _, st := range p.table.Group(p.Pid, p.StartTime) {
		unix.Kill(st.Pid, sig)
	}
	return nil
}

// Kill sends SIGKILL to every process of the leader's group.
func (p *Process) Kill() error { return p.Signal(unix.SIGKILL) }

// SessionMembers lists the pids of the session the leader started with
// OwnSession, the leader first while it has not been reaped. Processes
// that left the session (setsid daemons) are not in it.
func (p *Process) SessionMembers() []int {
	var out []int
	for _, st := range p.table.Session(p.Pid, p.StartTime) {
		out = append(out, st.Pid)
	}
	return out
}

// Members lists the pids of the leader's group, the leader first while it
// has not been reaped.
func (p *Process) Members() []int {
	var out []int
	for _, st := range p.table.Group(p.Pid, p.StartTime) {
		out = append(out, st.Pid)
	}
	return out
}
