package monitor

import (
	"bytes"
	"errors"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reader reads small kernel files (cgroup, /proc) without allocating: the
// file's name is built in a fixed buffer, opened with a raw openat
// relative to a directory fd the caller keeps, read with pread into a
// buffer that is reused (it grows only when a file outgrows it), and
// closed. A directory fd of a removed cgroup (or an exited process's
// /proc dir) fails the openat, which is how a vanished run shows.
type reader struct {
	name [256]byte
	buf  []byte
}

// errNameTooLong: a name over the reader's buffer.
var errNameTooLong = errors.New("file name too long")

func newReader() *reader { return &reader{buf: make([]byte, 8192)} }

// file reads dir/name; the result is valid until the next read.
func (r *reader) file(dirfd int, name string) ([]byte, error) {
	if len(name) >= len(r.name) {
		return nil, errNameTooLong
	}
	n := copy(r.name[:], name)
	r.name[n] = 0
	return r.open(dirfd)
}

// pidFile reads dir/<pid>/name (dir: /proc).
func (r *reader) pidFile(procfd int, pid int, name string) ([]byte, error) {
	if err := r.pidName(pid, name); err != nil {
		return nil, err
	}
	return r.open(procfd)
}

func (r *reader) pidName(pid int, name string) error {
	b := strconv.AppendInt(r.name[:0], int64(pid), 10)
	b = append(b, '/')
	if len(b)+len(name) >= len(r.name) {
		return errNameTooLong
	}
	b = append(b, name...)
	r.name[len(b)] = 0
	return nil
}

// pidOpen opens dir/<pid>/name and returns the fd.
func (r *reader) pidOpen(procfd int, pid int, name string) (int, error) {
	if err := r.pidName(pid, name); err != nil {
		return -1, err
	}
	return openat(procfd, &r.name[0], unix.O_RDONLY)
}

func (r *reader) open(dirfd int) ([]byte, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&r.name[0])), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return nil, e
	}
	defer unix.Close(int(fd))
	return r.pread(int(fd))
}

// pread reads an open kernel file from its start.
func (r *reader) pread(fd int) ([]byte, error) {
	total := 0
	for {
		if total == len(r.buf) {
			if len(r.buf) >= 4<<20 {
				return r.buf[:total], nil // a kernel file this large is cut, not followed
			}
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		n, err := unix.Pread(fd, r.buf[total:], int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return r.buf[:total], nil
		}
		total += n
		if total < len(r.buf) {
			// A kernel file's read at its start gives all it has when the
			// buffer is larger (seq_file); a second read only says EOF.
			return r.buf[:total], nil
		}
	}
}

// openDir opens a directory to read files relative to.
func openDir(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// parseUint reads the leading decimal digits of b (after spaces); ok is
// false when there are none. "max" is not a number.
func parseUint(b []byte) (uint64, bool) {
	b = bytes.TrimLeft(b, " \t")
	var v uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	return v, i > 0
}

// keyValue finds "key value" at the start of a line of b and reads the
// value.
func keyValue(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(key) && string(line[:len(key)]) == key && (line[len(key)] == ' ' || line[len(key)] == ':' || line[len(key)] == '\t') {
			return parseUint(bytes.TrimLeft(line[len(key)+1:], " \t:"))
		}
	}
	return 0, false
}

// ioStat sums rbytes and wbytes over the devices of a cgroup v2 io.stat
// ("8:0 rbytes=1 wbytes=2 rios=3 …" per line).
func ioStat(b []byte) uint64 {
	var sum uint64
	for len(b) > 0 {
		i := bytes.IndexByte(b, '=')
		if i < 0 {
			break
		}
		start := bytes.LastIndexByte(b[:i], ' ') + 1
		key := b[start:i]
		b = b[i+1:]
		if string(key) == "rbytes" || string(key) == "wbytes" {
			v, _ := parseUint(b)
			sum += v
		}
	}
	return sum
}

// field returns the n-th (0-based) space-separated field of b.
func field(b []byte, n int) []byte {
	for i := 0; ; i++ {
		b = bytes.TrimLeft(b, " ")
		if len(b) == 0 {
			return nil
		}
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		if i == n {
			return b[:end]
		}
		b = b[end:]
	}
}

// procStat is what the monitor takes of /proc/PID/stat.
type procStat struct {
	pgid       int
	ticks      uint64 // utime + stime + cutime + cstime
	start      uint64 // clock ticks after boot
	rssPages   uint64
	zombie     bool
	parsedOkay bool
}

// parseProcStat reads /proc/PID/stat: the fields after the command's
// closing parenthesis (the command may hold spaces and parentheses).
func parseProcStat(b []byte) procStat {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}
	}
	rest := b[i+2:]
	// After ")": 0 state, 1 ppid, 2 pgrp, … 11 utime, 12 stime, 13 cutime,
	// 14 cstime, … 19 starttime, 20 vsize, 21 rss.
	var st procStat
	st.zombie = len(rest) > 0 && (rest[0] == 'Z' || rest[0] == 'X')
	pg, ok := parseUint(field(rest, 2))
	if !ok {
		return procStat{}
	}
	st.pgid = int(pg)
	for _, f := range []int{11, 12, 13, 14} {
		v, _ := parseUint(field(rest, f))
		st.ticks += v
	}
	st.start, _ = parseUint(field(rest, 19))
	st.rssPages, _ = parseUint(field(rest, 21))
	st.parsedOkay = true
	return st
}
