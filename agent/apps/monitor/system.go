package monitor

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/pack"
	"osmanager/agent/state"
)

// sysMon is the system's figures.
type sysMon struct {
	proc, disk string
	size       int
	log        *slog.Logger
	procfd     int
	diskfd     int

	primed    bool
	prevBusy  uint64
	prevTotal uint64
	cpu       ring
	fig       state.SystemStats
	net       []*netMon // by name
	prevAt    time.Time
	alarms    []*alarm
	sized     map[string]bool // memory, disk rules given as sizes: bytes, not percent
	loggedErr string
}

type netMon struct {
	name           string
	rx, tx         uint64
	rxRate, txRate float64
	rxR, txR       ring
	seen           bool
}

func newSysMon(proc, disk string, size int, rules pack.Alerts, log *slog.Logger) sysMon {
	s := sysMon{proc: proc, disk: disk, size: size, log: log, procfd: -1, diskfd: -1, cpu: newRing(size), sized: map[string]bool{}}
	s.fig.DiskPath = disk
	for _, k := range slices.Sorted(keys(rules)) {
		s.alarms = append(s.alarms, newAlarm(k, rules[k]))
		s.sized[k] = rules[k].Above.Sized
	}
	return s
}

func (s *sysMon) close() {
	for _, fd := range []*int{&s.procfd, &s.diskfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (s *sysMon) fail(what string, err error) {
	if msg := what + ": " + err.Error(); msg != s.loggedErr {
		s.loggedErr = msg
		s.log.Warn("cannot read a system figure", "what", what, "err", err)
	}
}

// sample reads the system's figures.
func (s *sysMon) sample(rd *reader, now time.Time) {
	if s.procfd < 0 {
		fd, err := openDir(s.proc)
		if err != nil {
			s.fail(s.proc, err)
			return
		}
		s.procfd = fd
	}
	dt := now.Sub(s.prevAt).Seconds()
	if b, err := rd.file(s.procfd, "stat"); err == nil {
		// "cpu  user nice system idle iowait irq softirq steal …"
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i]
		}
		var total, idle uint64
		for i := 1; ; i++ {
			f := field(line, i)
			if f == nil {
				break
			}
			v, _ := parseUint(f)
			if i <= 8 { // guest time is in user already
				total += v
			}
			if i == 4 || i == 5 {
				idle += v
			}
		}
		busy := total - idle
		if s.primed && total > s.prevTotal {
			s.fig.CPUPercent = float64(sub(busy, s.prevBusy)) / float64(total-s.prevTotal) * 100
		}
		s.prevBusy, s.prevTotal = busy, total
		s.cpu.add(s.fig.CPUPercent)
		s.fig.CPUAvg = s.cpu.avg()
	} else {
		s.fail("/proc/stat", err)
	}
	if b, err := rd.file(s.procfd, "meminfo"); err == nil {
		total, _ := keyValue(b, "MemTotal")
		avail, ok := keyValue(b, "MemAvailable")
		if !ok {
			avail, _ = keyValue(b, "MemFree")
		}
		s.fig.MemoryTotal, s.fig.MemoryUsed = total*1024, sub(total, avail)*1024
		s.fig.MemoryPercent = 0
		if total > 0 {
			s.fig.MemoryPercent = float64(sub(total, avail)) / float64(total) * 100
		}
	} else {
		s.fail("/proc/meminfo", err)
	}
	if s.diskfd < 0 {
		if fd, err := openDir(s.disk); err == nil {
			s.diskfd = fd
		} else {
			s.fail(s.disk, err)
		}
	}
	var st unix.Statfs_t
	if s.diskfd >= 0 {
		if err := unix.Fstatfs(s.diskfd, &st); err == nil {
			bs := uint64(st.Bsize)
			used := (st.Blocks - st.Bfree) * bs
			s.fig.DiskTotal, s.fig.DiskUsed = st.Blocks*bs, used
			s.fig.DiskPercent = 0
			if avail := used + st.Bavail*bs; avail > 0 {
				s.fig.DiskPercent = float64(used) / float64(avail) * 100 // as df
			}
		}
	}
	if b, err := rd.file(s.procfd, "net/dev"); err == nil {
		s.netSample(b, s.primed, dt)
	} else {
		s.fail("/proc/net/dev", err)
	}
	s.prevAt, s.primed = now, true
}

// netSample reads /proc/net/dev: two header lines, then
// "  eth0: rxbytes rxpackets … (8 fields) txbytes …" per interface.
func (s *sysMon) netSample(b []byte, primed bool, dt float64) {
	for _, n := range s.net {
		n.seen = false
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // a header
		}
		name := bytes.TrimSpace(line[:colon])
		if string(name) == "lo" || len(name) == 0 {
			continue
		}
		rest := line[colon+1:]
		rx, _ := parseUint(field(rest, 0))
		tx, _ := parseUint(field(rest, 8))
		var n *netMon
		for _, x := range s.net {
			if x.name == string(name) {
				n = x
				break
			}
		}
		fresh := n == nil
		if fresh {
			n = &netMon{name: string(name), rxR: newRing(s.size), txR: newRing(s.size)}
			i, _ := slices.BinarySearchFunc(s.net, n.name, func(x *netMon, name string) int { return strings.Compare(x.name, name) })
			s.net = slices.Insert(s.net, i, n)
		}
		if !fresh && primed && dt > 0 {
			n.rxRate, n.txRate = float64(sub(rx, n.rx))/dt, float64(sub(tx, n.tx))/dt
		}
		n.rx, n.tx, n.seen = rx, tx, true
		n.rxR.add(n.rxRate)
		n.txR.add(n.txRate)
	}
	s.net = slices.DeleteFunc(s.net, func(n *netMon) bool { return !n.seen })
}

// value is a system metric's value for its alarms.
func (s *sysMon) value(metric string) float64 {
	switch metric {
	case "cpu":
		return s.fig.CPUPercent
	case "memory":
		if s.sized[metric] {
			return float64(s.fig.MemoryUsed)
		}
		return s.fig.MemoryPercent
	case "disk":
		if s.sized[metric] {
			return float64(s.fig.DiskUsed)
		}
		return s.fig.DiskPercent
	}
	if ifc, ok := strings.CutPrefix(metric, "net:"); ok {
		for _, n := range s.net {
			if n.name == ifc {
				return n.rxRate + n.txRate
			}
		}
	}
	return 0
}

func (s *sysMon) publish(out *state.SystemStats) {
	net := out.Net[:0]
	*out = s.fig
	for _, n := range s.net {
		net = append(net, state.NetStats{Name: n.name, RxRate: n.rxRate, TxRate: n.txRate, RxAvg: n.rxR.avg(), TxAvg: n.txR.avg(), RxBytes: n.rx, TxBytes: n.tx})
	}
	out.Net = net
}
