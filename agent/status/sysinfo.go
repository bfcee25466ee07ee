package status

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// System is the machine's use of CPU, memory and disk.
type System struct {
	UptimeSeconds float64    `json:"uptime_seconds"` // since the kernel booted
	CPUs          int        `json:"cpus"`
	CPUPercent    float64    `json:"cpu_percent"` // busy share of all CPUs since the previous sample (≥ 1 s ago), or since boot
	Load          [3]float64 `json:"load"`        // 1, 5 and 15 minute load averages
	Memory        Memory     `json:"memory"`
	Disk          Disk       `json:"disk"`
}

// Memory is from /proc/meminfo.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedPercent    float64 `json:"used_percent"`
}

// Disk is the file system holding Config.Disk.
type Disk struct {
	Path        string  `json:"path"`
	TotalBytes  uint64  `json:"total_bytes"`
	FreeBytes   uint64  `json:"free_bytes"` // available to unprivileged users
	UsedPercent float64 `json:"used_percent"`
}

// Interface is a network interface and its addresses.
type Interface struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac,omitempty"`
	Up    bool     `json:"up"`
	Addrs []string `json:"addrs"` // CIDR notation
}

// HostInterfaces lists the host's interfaces other than loopback, from
// two netlink dumps: the links and every address. (net.Interfaces and
// each Interface.Addrs would be one dump for the links and one of every
// address per interface.) Names, MACs, flags and addresses are as the
// net package gives them, in the kernel's order.
func HostInterfaces() ([]Interface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return interfacesOf(links, addrs), nil
}

// interfacesOf joins the two dumps. An interface that is down and has no
// address (ifb0, a spare NIC) is left out: noise on the page.
func interfacesOf(links []netlink.Link, addrs []netlink.Addr) []Interface {
	byLink := map[int][]string{}
	for _, a := range addrs {
		if a.IPNet != nil { // the local address, as net has it (a peer's is in a.Peer)
			byLink[a.LinkIndex] = append(byLink[a.LinkIndex], a.IPNet.String())
		}
	}
	out := []Interface{}
	for _, l := range links {
		la := l.Attrs()
		if la.Flags&net.FlagLoopback != 0 {
			continue
		}
		i := Interface{Name: la.Name, MAC: hardwareAddr(la), Up: la.Flags&net.FlagUp != 0, Addrs: byLink[la.Index]}
		if i.Addrs == nil {
			i.Addrs = []string{}
		}
		if !i.Up && len(i.Addrs) == 0 {
			continue
		}
		out = append(out, i)
	}
	return out
}

// hardwareAddr is a link's address as net.Interface has it: none when all
// zero, or when it is an IP tunnel's local address.
func hardwareAddr(la *netlink.LinkAttrs) string {
	v := la.HardwareAddr
	switch {
	case len(v) == 4 && slices.Contains([]string{"ipip", "gre", "sit"}, la.EncapType),
		len(v) == 16 && slices.Contains([]string{"tunnel6", "ip6gre"}, la.EncapType),
		!slices.ContainsFunc(v, func(b byte) bool { return b != 0 }):
		return ""
	}
	return v.String()
}

// cpuTimes is the first line of /proc/stat, in clock ticks.
type cpuTimes struct{ busy, total uint64 }

// sysReader reads /proc and statfs. It keeps the previous CPU sample so
// that the CPU use is a recent rate rather than an average since boot.
type sysReader struct {
	proc string // "/proc"
	disk string // "/"

	mu      sync.Mutex
	prev    cpuTimes
	prevAt  time.Time
	percent float64
}

// read returns the system's figures; a figure it cannot read stays zero
// and is named in the error.
func (r *sysReader) read(now time.Time) (System, error) {
	var s System
	var errs []string
	fail := func(what string, err error) { errs = append(errs, what+": "+err.Error()) }

	if b, err := os.ReadFile(filepath.Join(r.proc, "uptime")); err != nil {
		fail("uptime", err)
	} else if f := strings.Fields(string(b)); len(f) > 0 {
		s.UptimeSeconds, _ = strconv.ParseFloat(f[0], 64)
	}
	if b, err := os.ReadFile(filepath.Join(r.proc, "loadavg")); err != nil {
		fail("loadavg", err)
	} else {
		f := strings.Fields(string(b))
		for i := 0; i < 3 && i < len(f); i++ {
			s.Load[i], _ = strconv.ParseFloat(f[i], 64)
		}
	}
	if cpu, n, err := readCPU(filepath.Join(r.proc, "stat")); err != nil {
		fail("cpu", err)
	} else {
		s.CPUs = n
		s.CPUPercent = r.cpuPercent(cpu, now)
	}
	if m, err := readMeminfo(filepath.Join(r.proc, "meminfo")); err != nil {
		fail("meminfo", err)
	} else {
		s.Memory = m
	}
	s.Disk.Path = r.disk
	var st unix.Statfs_t
	if err := unix.Statfs(r.disk, &st); err != nil {
		fail("statfs "+r.disk, err)
	} else {
		bs := uint64(st.Bsize)
		s.Disk.TotalBytes, s.Disk.FreeBytes = st.Blocks*bs, st.Bavail*bs
		// Used as df counts it: what is neither free nor reserved for root.
		if used, avail := (st.Blocks-st.Bfree)*bs, st.Bavail*bs; used+avail > 0 {
			s.Disk.UsedPercent = round1(100 * float64(used) / float64(used+avail))
		}
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("system figures: %s", strings.Join(errs, "; "))
	}
	return s, nil
}

// minCPUInterval is the shortest interval a CPU rate is measured over.
const minCPUInterval = time.Second

func (r *sysReader) cpuPercent(cur cpuTimes, now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.prevAt.IsZero():
		// First sample: the average since boot.
		if cur.total > 0 {
			r.percent = round1(100 * float64(cur.busy) / float64(cur.total))
		}
	case now.Sub(r.prevAt) < minCPUInterval:
		return r.percent
	case cur.total > r.prev.total && cur.busy >= r.prev.busy:
		r.percent = round1(100 * float64(cur.busy-r.prev.busy) / float64(cur.total-r.prev.total))
	}
	r.prev, r.prevAt = cur, now
	return r.percent
}

func readCPU(name string) (cpuTimes, int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return cpuTimes{}, 0, err
	}
	var t cpuTimes
	n, found := 0, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			n++
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]:
		// guest time is already in user and nice, so only the first 8 count.
		for i, x := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return cpuTimes{}, 0, fmt.Errorf("%s: bad cpu field %q", name, x)
			}
			t.total += v
			if i != 3 && i != 4 { // idle, iowait
				t.busy += v
			}
		}
		found = true
	}
	if !found {
		return cpuTimes{}, 0, fmt.Errorf("%s: no cpu line", name)
	}
	return t, max(n, 1), nil
}

func readMeminfo(name string) (Memory, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	var free, buffers, cached uint64
	haveAvail := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		v *= 1024 // kB
		switch f[0] {
		case "MemTotal:":
			m.TotalBytes = v
		case "MemAvailable:":
			m.AvailableBytes, haveAvail = v, true
		case "MemFree:":
			free = v
		case "Buffers:":
			buffers = v
		case "Cached:":
			cached = v
		}
	}
	if m.TotalBytes == 0 {
		return Memory{}, fmt.Errorf("%s: no MemTotal", name)
	}
	if !haveAvail { // kernels before 3.14
		m.AvailableBytes = min(free+buffers+cached, m.TotalBytes)
	}
	m.UsedPercent = round1(100 * float64(m.TotalBytes-min(m.AvailableBytes, m.TotalBytes)) / float64(m.TotalBytes))
	return m, nil
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
