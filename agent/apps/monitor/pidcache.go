package monitor

import (
	"golang.org/x/sys/unix"
)

// pidFiles keeps /proc/PID/stat and /proc/PID/io open between samples,
// so a sample reads each with one pread instead of openat, pread and
// close: the scan of /proc for runs without cgroups reads every
// process's stat every second. An fd of an exited process fails its
// pread (ESRCH), and a pid reused since names a new /proc entry, so a
// failed read drops the fd and opens the file again once. Entries not
// seen in a sample are closed. At most maxPidFiles processes are kept;
// beyond, files are opened per read as before.
type pidFiles struct {
	m    map[int]*pidEntry
	free []*pidEntry // entries of exited processes, for new ones
	gen  uint64
	max  int // processes kept; 0: none (the benchmark's peer)
}

type pidEntry struct {
	stat, io int // -1: not open
	gen      uint64
}

const maxPidFiles = 8192

func newPidFiles() pidFiles { return pidFiles{m: make(map[int]*pidEntry, 256), max: maxPidFiles} }

// begin starts a sample.
func (p *pidFiles) begin() { p.gen++ }

// end closes what the sample did not read.
func (p *pidFiles) end() {
	for pid, e := range p.m {
		if e.gen != p.gen {
			closeFd(&e.stat)
			closeFd(&e.io)
			delete(p.m, pid)
			p.free = append(p.free, e)
		}
	}
}

func (p *pidFiles) closeAll() {
	p.gen++
	p.end()
}

func closeFd(fd *int) {
	if *fd >= 0 {
		unix.Close(*fd)
		*fd = -1
	}
}

// read reads /proc/<pid>/<name> ("stat" or "io") through the cache.
func (p *pidFiles) read(rd *reader, procfd, pid int, name string) ([]byte, error) {
	e := p.m[pid]
	if e == nil {
		if len(p.m) >= p.max {
			return rd.pidFile(procfd, pid, name)
		}
		if n := len(p.free); n > 0 {
			e, p.free = p.free[n-1], p.free[:n-1]
			*e = pidEntry{stat: -1, io: -1}
		} else {
			e = &pidEntry{stat: -1, io: -1}
		}
		p.m[pid] = e
	}
	e.gen = p.gen
	fd := &e.stat
	if name == "io" {
		fd = &e.io
	}
	for try := 0; try < 2; try++ {
		if *fd < 0 {
			n, err := rd.pidOpen(procfd, pid, name)
			if err != nil {
				return nil, err
			}
			*fd = n
		}
		b, err := rd.pread(*fd)
		if err == nil {
			return b, nil
		}
		closeFd(fd) // exited, or a newer process under the pid
	}
	return nil, unix.ESRCH
}
