package runner

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/proc"
)

// Process is the built-in runtime: each run is a process group of its
// own and, when Cgroups is on, a leaf cgroup of its own, which the
// process is cloned into (CLONE_INTO_CGROUP), so no fork escapes it.
type Process struct {
	Cgroups *Cgroups   // nil or mode none: process groups only
	Table   proc.Table // the process table; default /proc
	Log     *slog.Logger
	// Shell runs the program of a run with listening sockets (Spec.Listen)
	// through a one-line shim that sets LISTEN_PID to its own pid and
	// execs the program (same pid); default /bin/sh.
	Shell string
}

// listenShim is the shim's script: Go's exec cannot put the child's own
// pid in its environment, so the child does, then becomes the program.
const listenShim = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// Name is "process".
func (p *Process) Name() string { return "process" }

// Mode says how runs are grouped.
func (p *Process) Mode() CgroupMode {
	if p.Cgroups.On() {
		return p.Cgroups.Mode
	}
	return CgroupNone
}

func (p *Process) log() *slog.Logger { return cmp.Or(p.Log, slog.New(slog.DiscardHandler)) }

// leaf is the cgroup of a run: app-<id>-<runid>.
func (p *Process) leaf(id string, runid uint64) cgroup {
	if !p.Cgroups.On() {
		return ""
	}
	return cgroup(filepath.Join(p.Cgroups.Base, "app-"+id+"-"+strconv.FormatUint(runid, 10)))
}

// Start starts the run's program as the leader of a new process group,
// inside the run's cgroup.
func (p *Process) Start(l Launch) (Instance, error) {
	sp := l.Spec
	cmd := &exec.Cmd{Path: sp.Exec, Args: append([]string{sp.Exec}, sp.Args...), Env: l.Env, Dir: sp.Dir(), Stdout: l.Stdout, Stderr: l.Stdout}
	if len(sp.Listen) > 0 {
		// Through the shim an exec that fails would be an exit 127 of a
		// started run: check first what execve would refuse.
		if err := checkExec(sp.Exec); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCantStart, err)
		}
		sh := cmp.Or(p.Shell, "/bin/sh")
		cmd.Path, cmd.Args = sh, append([]string{sh, "-c", listenShim}, cmd.Args...)
		cmd.Env = append(slices.DeleteFunc(slices.Clone(l.Env), func(e string) bool {
			return strings.HasPrefix(e, "LISTEN_")
		}), "LISTEN_FDS="+strconv.Itoa(len(sp.Listen)), "LISTEN_FDNAMES="+strings.Join(sp.ListenNames, ":"))
		cmd.ExtraFiles = sp.Listen // fds 3, 4, …
	}
	// Stdin nil is /dev/null.
	o := proc.Options{Mode: proc.OwnSession, Credential: sp.Credential, Table: p.Table}
	cg := p.leaf(sp.ID, sp.RunID)
	if cg != "" {
		// A fresh leaf for every start: once cgroup.kill was written to a
		// cgroup, Linux (seen on 6.18) kills every child cloned into it
		// later, so a restart must not reuse its predecessor's leaf.
		if err := cg.remove(); err != nil {
			return nil, err
		}
		p.removeV1(cg)
		if err := cg.make(); err != nil {
			return nil, err
		}
		if !sp.Limits.Empty() && p.Cgroups.Mode == CgroupUnified {
			if err := p.limitFailed(sp, applyUnified(cg, sp.Limits)); err != nil {
				cg.remove()
				return nil, err
			}
		}
		dir, err := os.Open(string(cg))
		if err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
		defer dir.Close()
		o.Cgroup = dir
	}
	var v1 map[string]string
	if !sp.Limits.Empty() && p.Cgroups.On() && p.Cgroups.Mode == CgroupHybrid {
		dirs, err := p.makeV1(cg, sp.Limits)
		if err := p.limitFailed(sp, err); err != nil {
			p.removeV1(cg)
			cg.remove()
			return nil, err
		}
		v1 = dirs
	} else if !sp.Limits.Empty() && !p.Cgroups.On() {
		if err := p.limitFailed(sp, errors.New("no cgroups: the runs are process groups only")); err != nil {
			return nil, err
		}
	}
	pr, err := proc.Start(cmd, o)
	if err == nil && v1 != nil {
		if err := p.limitFailed(sp, enterV1(v1, pr.Pid)); err != nil {
			pr.Signal(unix.SIGKILL)
			pr.Wait()
			p.removeV1(cg)
			cg.remove()
			return nil, err
		}
	}
	if err != nil && o.Cgroup != nil && cloneIntoUnsupported(err) {
		// A kernel before 5.7: start, then move. A child forked in the
		// moment between is left outside the cgroup (but in the group).
		p.log().Warn("cannot clone into a cgroup; moving the process after its start", "err", err)
		cmd = &exec.Cmd{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, Stdout: cmd.Stdout, Stderr: cmd.Stderr, ExtraFiles: cmd.ExtraFiles}
		o.Cgroup = nil
		pr, err = proc.Start(cmd, o)
		if err == nil {
			if werr := cg.write("cgroup.procs", strconv.Itoa(pr.Pid)); werr != nil {
				p.log().Warn("cannot move the run into its cgroup", "err", werr)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCantStart, err)
	}
	in := &procInstance{rt: p, cg: cg, pid: pr.Pid, start: pr.StartTime, child: pr, done: make(chan struct{})}
	in.rec = Record{Runtime: p.Name(), ID: sp.ID, RunID: sp.RunID, Pid: pr.Pid, StartTime: pr.StartTime, BootID: p.Table.BootID(), Cgroup: string(cg)}
	if err := in.watch(); err != nil {
		// No pidfd (Linux < 5.3): wait in a goroutine the process's exit ends.
		go func() { pr.Wait(); in.finish(proc.Exit{}, false) }()
	}
	return in, nil
}

// checkExec says why execve would refuse path: not a regular file, no
// execute bit, or a "#!" interpreter that is missing or not executable.
func checkExec(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("exec %s: not an executable file", path)
	}
	head := make([]byte, 256)
	n, _ := f.Read(head)
	line, ok := strings.CutPrefix(string(head[:n]), "#!")
	if !ok {
		return nil
	}
	line, _, _ = strings.Cut(line, "\n")
	interp := strings.Fields(line)
	if len(interp) == 0 {
		return fmt.Errorf("exec %s: empty #! line", path)
	}
	if err := unix.Access(interp[0], unix.X_OK); err != nil {
		return fmt.Errorf("exec %s: interpreter %s: %w", path, interp[0], err)
	}
	return nil
}

// limitFailed says what to do when limits could not be applied (err not
// nil): with Soft, log it and go on; else fail the start.
func (p *Process) limitFailed(sp Spec, err error) error {
	if err == nil {
		return nil
	}
	if sp.Limits.Soft {
		p.log().Warn("limits not applied (soft): the run starts without them", "app", sp.ID, "runid", sp.RunID, "err", err)
		return nil
	}
	return fmt.Errorf("%w: %w: %v", ErrCantStart, ErrNoLimits, err)
}

func cloneIntoUnsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// Adopt re-attaches to rec's run if its leader still lives: the same pid
// with the same start time on the same boot, and (with a cgroup) in the
// run's cgroup. What is left of a run whose leader is gone is killed.
func (p *Process) Adopt(rec Record) (Instance, error) {
	cg := cgroup(rec.Cgroup)
	if rec.Cgroup != "" && !p.Cgroups.On() {
		return nil, fmt.Errorf("%w: run %d has a cgroup, but this agent has none", ErrGone, rec.RunID)
	}
	if rec.Cgroup != "" && p.leaf(rec.ID, rec.RunID) != cg {
		return nil, fmt.Errorf("%w: run %d's cgroup %s is not the agent's", ErrGone, rec.RunID, rec.Cgroup)
	}
	alive := func() error {
		if boot := p.Table.BootID(); rec.BootID != "" && boot != "" && boot != rec.BootID {
			return errors.New("another boot")
		}
		st, err := p.Table.Stat(rec.Pid)
		switch {
		case err != nil:
			return errors.New("leader exited")
		case st.Start != rec.StartTime || rec.StartTime == 0:
			return errors.New("pid reused")
		case st.Zombie():
			return errors.New("leader exited")
		case cg != "" && !cg.has(rec.Pid):
			return errors.New("leader not in the run's cgroup")
		}
		return nil
	}
	if err := alive(); err != nil {
		if cg != "" {
			if rerr := cg.remove(); rerr != nil {
				p.log().Warn("cannot clean up a gone run's cgroup", "runid", rec.RunID, "err", rerr)
			}
		} else if rec.StartTime != 0 {
			// The group's members that started after its leader (none,
			// when the pid now names a newer process).
			for _, st := range p.Table.Group(rec.Pid, rec.StartTime) {
				unix.Kill(st.Pid, unix.SIGKILL)
			}
		}
		return nil, fmt.Errorf("%w: run %d: %v", ErrGone, rec.RunID, err)
	}
	in := &procInstance{rt: p, cg: cg, pid: rec.Pid, start: rec.StartTime, rec: rec, done: make(chan struct{})}
	if err := in.watch(); err != nil {
		return nil, fmt.Errorf("adopt run %d: %w", rec.RunID, err)
	}
	if err := alive(); err != nil { // the pidfd may name a newer process
		in.Detach()
		return nil, fmt.Errorf("%w: run %d: %v", ErrGone, rec.RunID, err)
	}
	return in, nil
}

// Sweep kills the processes of every app cgroup under the base that is
// no run of known, and removes those cgroups.
func (p *Process) Sweep(known []Record) []string {
	if !p.Cgroups.On() {
		return nil
	}
	ents, err := os.ReadDir(p.Cgroups.Base)
	if err != nil {
		return nil
	}
	keep := map[string]bool{}
	for _, r := range known {
		keep[filepath.Base(r.Cgroup)] = true
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "app-") || keep[e.Name()] {
			continue
		}
		cg := cgroup(filepath.Join(p.Cgroups.Base, e.Name()))
		pids, _ := cg.procs()
		err := cg.remove()
		p.removeV1(cg)
		p.log().Warn("stopped processes of no known run", "cgroup", string(cg), "pids", pids, "err", err)
		out = append(out, string(cg))
	}
	return out
}

// procInstance is one process tree of the Process runtime.
type procInstance struct {
	rt    *Process
	cg    cgroup
	pid   int
	start uint64
	child *proc.Process // nil when adopted
	rec   Record

	pidfd *os.File // readable once the leader has exited
	wg    sync.WaitGroup

	mu     sync.Mutex
	done   chan struct{}
	closed bool
	exit   proc.Exit
	known  bool
	paused bool // SIGSTOPped (no cgroup)
}

// watch waits for the leader's exit on a pidfd, in the runtime's poller:
// no thread blocks, and Detach ends the wait.
func (in *procInstance) watch() error {
	fd, err := unix.PidfdOpen(in.pid, unix.O_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", in.pid, err)
	}
	in.pidfd = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(in.pid))
	rc, err := in.pidfd.SyscallConn()
	if err != nil {
		in.pidfd.Close()
		return err
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		err := rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(fds, 0)
			return n > 0
		})
		if err != nil {
			return // detached
		}
		if in.child != nil {
			e, _ := in.child.Wait()
			in.finish(e, true)
			return
		}
		in.finish(proc.Exit{Code: -1}, false)
	}()
	return nil
}

func (in *procInstance) finish(e proc.Exit, known bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.exit, in.known, in.closed = e, known, true
	close(in.done)
}

func (in *procInstance) Record() Record        { return in.rec }
func (in *procInstance) Done() <-chan struct{} { return in.done }

func (in *procInstance) Exit() (proc.Exit, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exit, in.known
}

// Pids lists the run's processes, leader first: the cgroup's, or the
// process group's from /proc.
func (in *procInstance) Pids() []int {
	if in.cg != "" {
		pids, _ := in.cg.procs()
		if i := slices.Index(pids, in.pid); i > 0 {
			pids = append(append([]int{in.pid}, pids[:i]...), pids[i+1:]...)
		}
		return pids
	}
	var out []int
	for _, st := range in.rt.Table.Group(in.pid, in.start) {
		if !st.Zombie() {
			out = append(out, st.Pid)
		}
	}
	return out
}

func (in *procInstance) Paused() bool {
	if in.cg != "" {
		frozen, _ := in.cg.event("frozen")
		return frozen
	}
	if in.paused {
		return true
	}
	sts := in.rt.Table.Group(in.pid, in.start)
	for _, st := range sts {
		if st.State != 'T' && st.State != 't' {
			return false
		}
	}
	return len(sts) > 0
}

func (in *procInstance) Pause() error {
	if in.cg != "" {
		return in.cg.freeze(true)
	}
	in.paused = true
	if err := in.Signal(unix.SIGSTOP); err != nil {
		return err
	}
	// SIGSTOP takes effect as each process is next scheduled: wait
	// until every one has stopped, as the freezer's "frozen 1".
	return in.waitGroup(5*time.Second, func(st proc.Stat) bool { return st.State == 'T' || st.State == 't' || st.Zombie() })
}

// waitGroup waits until every process of the group satisfies ok.
func (in *procInstance) waitGroup(d time.Duration, ok func(proc.Stat) bool) error {
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, st := range in.rt.Table.Group(in.pid, in.start) {
			if !ok(st) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run of pid %d: processes not stopped after %s", in.pid, d)
		}
		time.Sleep(time.Millisecond)
	}
}

func (in *procInstance) Resume() error {
	if in.cg != "" {
		return in.cg.freeze(false)
	}
	in.paused = false
	return in.Signal(unix.SIGCONT)
}

// Signal signals the cgroup's processes (a child that left the group is
// still in the cgroup), or without one the process group's.
func (in *procInstance) Signal(sig syscall.Signal) error {
	if in.cg != "" {
		return in.cg.signal(sig)
	}
	if in.child != nil {
		return in.child.Signal(sig)
	}
	for _, st := range in.rt.Table.Group(in.pid, in.start) {
		unix.Kill(st.Pid, sig)
	}
	return nil
}

func (in *procInstance) Kill() error {
	if in.cg != "" {
		if err := in.cg.kill(); err != nil {
			return err
		}
	}
	return in.Signal(unix.SIGKILL)
}

// Cleanup kills what is left of the run once its leader has exited.
func (in *procInstance) Cleanup() error {
	var err error
	if pids := in.Pids(); len(pids) > 0 {
		err = in.Kill()
	}
	if in.cg != "" {
		err = in.cg.waitEvent("populated", false, 5*time.Second)
	} else {
		err = errors.Join(err, in.waitGroup(5*time.Second, proc.Stat.Zombie))
	}
	if in.pidfd != nil {
		in.pidfd.Close()
	}
	in.wg.Wait()
	return err
}

func (in *procInstance) Remove() error {
	if in.cg == "" {
		return nil
	}
	err := in.cg.remove()
	in.rt.removeV1(in.cg)
	return err
}

// Detach stops the wait for the leader; the run goes on.
func (in *procInstance) Detach() {
	if in.pidfd != nil {
		in.pidfd.Close()
	}
	in.wg.Wait()
}
