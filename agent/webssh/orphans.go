package webssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"osmanager/agent/proc"
	"osmanager/agent/sysroot"
)

// The login-mode shells the agent runs are session leaders it started.
// If the agent dies by SIGKILL they lose their terminal but may live on
// (a job that ignores SIGHUP, a shell that traps it). So the agent keeps
// their list in Files.Shells, rewritten atomically on every shell start
// and end:
//
//	boot <kernel boot id>
//	shell <pid> <start time in clock ticks since boot>
//
// and the next start ends what the list names. A pid with its start time
// names one process for good on one boot; the kernel reuses no pid that is
// still some process's session id, so the processes of session <pid> are
// that shell's, unless <pid> now runs a different process (another start
// time), which is then left alone.

// shellRecord is one session leader in the shells file.
type shellRecord struct {
	pid   int
	start uint64
}

// shellsFile is the shells file's content.
type shellsFile struct {
	boot   string
	shells []shellRecord
}

// procs is the process table under Files.Proc.
func (s *Server) procs() proc.Table { return proc.Table{Dir: s.cfg.Files.Proc} }

func (f shellsFile) append(b []byte) []byte {
	if f.boot != "" {
		b = fmt.Appendf(b, "boot %s\n", f.boot)
	}
	for _, r := range f.shells {
		b = fmt.Appendf(b, "shell %d %d\n", r.pid, r.start)
	}
	return b
}

// maxShellRecords bounds what a (corrupt) shells file can make the agent do.
const maxShellRecords = 4096

// parseShells reads a shells file. Lines it does not know are errors: the
// file is the agent's own, and a half-understood one is not acted on.
func parseShells(data []byte) (shellsFile, error) {
	var f shellsFile
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) == 0:
		case fs[0] == "boot" && len(fs) == 2 && f.boot == "" && validBootID(fs[1]):
			f.boot = fs[1]
		case fs[0] == "shell" && len(fs) == 3 && len(f.shells) < maxShellRecords:
			pid, err1 := strconv.Atoi(fs[1])
			start, err2 := strconv.ParseUint(fs[2], 10, 64)
			if err1 != nil || err2 != nil || pid <= 1 || pid > 1<<22 {
				return shellsFile{}, fmt.Errorf("line %d: bad shell record", n)
			}
			f.shells = append(f.shells, shellRecord{pid, start})
		default:
			return shellsFile{}, fmt.Errorf("line %d: not a boot or shell record", n)
		}
	}
	if err := sc.Err(); err != nil {
		return shellsFile{}, err
	}
	if f.boot == "" && len(f.shells) > 0 {
		return shellsFile{}, errors.New("shell records without a boot id")
	}
	return f, nil
}

func validBootID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}

// noteShell records a login-mode shell's start (live) or end in the
// shells file. Only pty shells are the agent's own processes: ssh-mode
// shells are sshd's, which ends them when the agent's connection drops.
func (s *Server) noteShell(sh shell, live bool) {
	p, ok := sh.(*ptyShell)
	if !ok {
		return
	}
	s.shellMu.Lock()
	defer s.shellMu.Unlock()
	if live {
		if p.proc.StartTime == 0 {
			return // /proc could not tell: nothing to record
		}
		s.shells[p.pid] = p.proc.StartTime
	} else {
		if _, ok := s.shells[p.pid]; !ok {
			return
		}
		delete(s.shells, p.pid)
	}
	s.writeShellsLocked()
}

func (s *Server) writeShellsLocked() {
	f := shellsFile{boot: s.procs().BootID()}
	for pid, start := range s.shells {
		f.shells = append(f.shells, shellRecord{pid, start})
	}
	slices.SortFunc(f.shells, func(a, b shellRecord) int { return a.pid - b.pid })
	opts := sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o700}
	if _, err := s.cfg.Conf.WriteFile(s.cfg.Files.Shells, f.append(nil), opts); err != nil {
		s.log.Warn("cannot record the terminal's shells", "file", s.cfg.Files.Shells, "err", err.Error())
	}
}

// endOrphans ends the shells a previous run of the agent left (it died
// without ending them), then records that none are left.
func (s *Server) endOrphans() {
	s.shellMu.Lock()
	defer s.shellMu.Unlock()
	data, err := s.cfg.Conf.ReadFile(s.cfg.Files.Shells, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Warn("cannot read the terminal's shells from the last run", "file", s.cfg.Files.Shells, "err", err.Error())
		return
	}
	f, err := parseShells(data)
	if err != nil {
		s.log.Warn("ignoring the terminal's shells file", "file", s.cfg.Files.Shells, "err", err.Error())
	}
	if err == nil && f.boot == s.procs().BootID() {
		for _, r := range f.shells {
			if _, mine := s.shells[r.pid]; mine {
				continue
			}
			if n := endSession(s.procs(), r); n > 0 {
				s.log.Warn("ended a terminal shell left by an earlier run", "pid", r.pid, "processes", n)
			}
		}
	}
	s.writeShellsLocked()
}

// endSession sends SIGKILL to the processes of r's terminal session and
// returns how many there were. It does nothing if r's pid now names
// another process.
func endSession(procs proc.Table, r shellRecord) int {
	// Members started no earlier than their leader; a pid that now runs
	// a process of another start time was reused: not ours.
	pids := procs.Session(r.pid, r.start)
	for _, st := range pids {
		unix.Kill(st.Pid, unix.SIGKILL)
	}
	return len(pids)
}
