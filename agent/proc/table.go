package proc

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// DefaultDir is where the kernel shows its process table. It is not a
// system file: no sysroot.
const DefaultDir = "/proc"

// Table reads the kernel's process table under Dir ("" for DefaultDir);
// tests point it at a directory of their own.
type Table struct{ Dir string }

func (t Table) dir() string { return cmp.Or(t.Dir, DefaultDir) }

// Stat is what the agent reads of /proc/PID/stat.
type Stat struct {
	Pid     int
	State   byte // R, S, D, Z, T, …
	PPid    int
	Pgrp    int
	Session int
	// Start is the start time in clock ticks since boot: with the pid, it
	// names a process for good on one boot.
	Start uint64
}

// Zombie reports a process that has exited and waits to be reaped (or is
// being reaped: X).
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ErrStat means a stat line is not of the kernel's form.
var ErrStat = errors.New("proc stat")

// ParseStat parses "pid (comm) state ppid pgrp session … starttime …";
// comm may hold anything, ')' and spaces included.
func ParseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if open < 0 || i < open {
		return Stat{}, fmt.Errorf("%w: no command", ErrStat)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("%w: bad pid", ErrStat)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("%w: short", ErrStat)
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: bad state", ErrStat)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	sid, err3 := strconv.Atoi(f[3])
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Stat{}, fmt.Errorf("%w: bad parent, group, session or start time", ErrStat)
	}
	return Stat{Pid: pid, State: f[0][0], PPid: ppid, Pgrp: pgrp, Session: sid, Start: start}, nil
}

// Stat reads pid's stat.
func (t Table) Stat(pid int) (Stat, error) {
	b, err := os.ReadFile(t.dir() + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// Each calls f for every process in the table it can read, in the
// kernel's (pid) order.
func (t Table) Each(f func(Stat)) {
	ents, err := os.ReadDir(t.dir())
	if err != nil {
		return
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		if st, err := t.Stat(pid); err == nil {
			f(st)
		}
	}
}

// Group lists the processes of group pgid, the leader first, given the
// leader's start time (0: unknown). The kernel gives no pid again while a
// group or session of that id has members, so when pid pgid now runs a
// process that started at another time, the group is gone and the list
// empty; and only processes that started no earlier than the leader are
// counted as its group's.
func (t Table) Group(pgid int, start uint64) []Stat {
	return t.members(pgid, start, func(s Stat) int { return s.Pgrp })
}

// Session lists the processes of session sid, the leader first, as Group
// does for a group.
func (t Table) Session(sid int, start uint64) []Stat {
	return t.members(sid, start, func(s Stat) int { return s.Session })
}

func (t Table) members(id int, start uint64, of func(Stat) int) []Stat {
	var lead, rest []Stat
	reused := false
	t.Each(func(s Stat) {
		if s.Pid == id && start != 0 && s.Start != start {
			reused = true
		}
		switch {
		case of(s) != id || s.Start < start:
		case s.Pid == id:
			lead = append(lead, s)
		default:
			rest = append(rest, s)
		}
	})
	if reused {
		return nil
	}
	return append(lead, rest...)
}

// BootID is the kernel's boot id ("" when it cannot be read): start times
// count from this boot.
func (t Table) BootID() string {
	b, err := os.ReadFile(t.dir() + "/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
