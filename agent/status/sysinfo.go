package status

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
// net package reads them, in the kernel's order.
func HostInterfaces() ([]Interface, error) {
	links, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", os.NewSyscallError("netlinkrib", err))
	}
	addrs, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", os.NewSyscallError("netlinkrib", err))
	}
	return parseInterfaces(links, addrs)
}

// parseInterfaces reads the RTM_NEWLINK and RTM_NEWADDR messages of the
// two dumps.
func parseInterfaces(links, addrs []byte) ([]Interface, error) {
	lm, err := syscall.ParseNetlinkMessage(links)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", os.NewSyscallError("parsenetlinkmessage", err))
	}
	am, err := syscall.ParseNetlinkMessage(addrs)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", os.NewSyscallError("parsenetlinkmessage", err))
	}
	type link struct {
		index int32
		ifc   Interface
	}
	var all []link
	for _, m := range lm {
		if m.Header.Type == syscall.NLMSG_DONE {
			break
		}
		// struct ifinfomsg: family, pad, type u16, index i32, flags u32, change u32
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		typ := binary.NativeEndian.Uint16(m.Data[2:])
		index := int32(binary.NativeEndian.Uint32(m.Data[4:]))
		flags := binary.NativeEndian.Uint32(m.Data[8:])
		if flags&syscall.IFF_LOOPBACK != 0 {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", os.NewSyscallError("parsenetlinkrouteattr", err))
		}
		l := link{index: index, ifc: Interface{Up: flags&syscall.IFF_UP != 0, Addrs: []string{}}}
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFLA_IFNAME:
				l.ifc.Name = string(bytes.TrimRight(a.Value, "\x00"))
			case syscall.IFLA_ADDRESS:
				l.ifc.MAC = hardwareAddr(typ, a.Value)
			}
		}
		all = append(all, l)
	}
	for _, m := range am {
		if m.Header.Type == syscall.NLMSG_DONE {
			break
		}
		// struct ifaddrmsg: family, prefixlen, flags, scope u8, index u32
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		family, bits := m.Data[0], int(m.Data[1])
		index := int32(binary.NativeEndian.Uint32(m.Data[4:]))
		i := slices.IndexFunc(all, func(l link) bool { return l.index == index })
		if i < 0 {
			continue // loopback's, or a link gone between the dumps
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", os.NewSyscallError("parsenetlinkrouteattr", err))
		}
		if a, ok := ifAddr(family, bits, attrs); ok {
			all[i].ifc.Addrs = append(all[i].ifc.Addrs, a)
		}
	}
	out := []Interface{}
	for _, l := range all {
		if !l.ifc.Up && len(l.ifc.Addrs) == 0 {
			continue // an unused device (ifb0, a spare NIC): noise on the page
		}
		out = append(out, l.ifc)
	}
	return out, nil
}

// hardwareAddr is a link's IFLA_ADDRESS as net.Interface has it: none
// when all zero, or when it is an IP tunnel's local address.
func hardwareAddr(typ uint16, v []byte) string {
	// linux/if_arp.h: IPv4 over IPv4, GRE over IPv4, IPv6 over IPv4;
	// IPv6 over IPv6, GRE over IPv6.
	const tunnel, sit, ipgre, tunnel6, ip6gre = 768, 776, 778, 769, 823
	switch {
	case len(v) == 4 && (typ == tunnel || typ == ipgre || typ == sit),
		len(v) == 16 && (typ == tunnel6 || typ == ip6gre),
		!slices.ContainsFunc(v, func(b byte) bool { return b != 0 }):
		return ""
	}
	return net.HardwareAddr(v).String()
}

// ifAddr is an RTM_NEWADDR's address in CIDR notation, as net's
// Interface.Addrs has it: the first attribute's, but for IFA_ADDRESS on a
// point-to-point link (one with IFA_LOCAL), which is the peer's.
func ifAddr(family byte, bits int, attrs []syscall.NetlinkRouteAttr) (string, bool) {
	ptp := slices.ContainsFunc(attrs, func(a syscall.NetlinkRouteAttr) bool { return a.Attr.Type == syscall.IFA_LOCAL })
	for _, a := range attrs {
		if ptp && a.Attr.Type == syscall.IFA_ADDRESS {
			continue
		}
		var ip netip.Addr
		switch {
		case family == syscall.AF_INET && len(a.Value) >= 4 && bits <= 32:
			ip = netip.AddrFrom4([4]byte(a.Value[:4]))
		case family == syscall.AF_INET6 && len(a.Value) >= 16 && bits <= 128:
			ip = netip.AddrFrom16([16]byte(a.Value[:16]))
		default:
			return "", false
		}
		return netip.PrefixFrom(ip, bits).String(), true
	}
	return "", false
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
