// Package monitor samples the resource use of the appliance's app runs
// and of the system, keeps sliding averages, and raises and clears
// threshold alerts: the app manager's monitoring (agent/apps).
//
// # Figures
//
// Every Config.Interval (default 1 s), per tracked run:
//
//   - with a cgroup v2 leaf that has the controllers (unified mode): CPU
//     from cpu.stat usage_usec, memory from memory.current and
//     memory.peak, pids from pids.current, I/O from io.stat (rbytes +
//     wbytes over the devices);
//   - with a controller-less v2 leaf (hybrid mode): CPU from the leaf's
//     cpu.stat (the core keeps it without controllers), memory (the sum
//     of resident sets), I/O (/proc/PID/io read_bytes + write_bytes) and
//     pids from /proc, for the processes the leaf's cgroup.procs lists;
//   - without a cgroup: the same from /proc for the run's process group
//     (one scan of /proc per sample for all such runs), the leader's
//     children's times included once reaped.
//
// Without memory.peak the peak is the highest sample seen. An app's
// figures are the sums over its live runs. The app's data dir's disk use
// is a bounded walk (at most Config.WalkEntries entries, no symlink
// followed, no mount crossed), at most once per Config.DiskEvery per app
// and one app per sample. The system: CPU (/proc/stat), memory
// (/proc/meminfo: total less available), the disk holding Config.Disk
// (statfs) and each interface's bytes/s (/proc/net/dev, loopback left
// out).
//
// Averages are over Config.Window (default 10 s) in rings allocated when
// a run is tracked; a sample reads files by raw openat and pread into
// buffers the monitor keeps, so a sample in steady state allocates
// nothing (TestSampleAllocs).
//
// # Alerts
//
// Rules come from the app's manifest ("alerts") and from the system alert
// file (pack.AlertFile), whose app rules override the manifest's by
// metric. A rule is raised once the value has stayed above its threshold
// for its hold time ("for"), and cleared once it has stayed at or below
// it for the hold time again; each change is logged and given to
// Config.OnAlert (the manager sends it on /v1/events), and the raised
// ones are in the state's Stats (the status page, /metrics). An app
// whose last run ends has its raised alerts cleared.
//
// A run whose cgroup vanishes underneath it (or whose process group is
// gone) keeps being tracked until the manager untracks it: its figures
// are zero and its Error says so; the run's state is the runner's
// business, not the monitor's.
package monitor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/pack"
	"osmanager/agent/clock"
	"osmanager/agent/state"
)

// Config configures a Monitor. Every field has a default.
type Config struct {
	Interval    time.Duration // between samples; default 1 s
	Window      time.Duration // of the averages; default 10 s
	DiskEvery   time.Duration // between walks of an app's data dir; default 1 min
	WalkEntries int           // bound of a walk; default 100000
	Proc        string        // default /proc
	Disk        string        // the file system of the system's disk figures; default /
	// System are the system alert rules; Apps the file's app rules, by
	// app id (they override the manifest's by metric).
	System pack.Alerts
	Apps   map[string]pack.Alerts
	Clock  clock.Clock
	Log    *slog.Logger
	// State gets the figures after every sample; default a store of
	// the monitor's own.
	State *state.Store
	// OnAlert gets every raised and cleared alert, from the sampling
	// goroutine: it must not block.
	OnAlert func(Alert)
}

// Target is a run to watch.
type Target struct {
	ID    string
	RunID uint64
	// Cgroup is the run's v2 leaf (a host directory); "" for none, then
	// Pid and StartTime name its process group.
	Cgroup    string
	Pid       int
	StartTime uint64 // the leader's, in clock ticks after boot
	Data      string // the app's data dir; "" for none
	Alerts    pack.Alerts
}

// Monitor samples. Track and Untrack are safe for concurrent use.
type Monitor struct {
	cfg   Config
	log   *slog.Logger
	clock clock.Clock
	st    *state.Store
	size  int // ring size

	mu      sync.Mutex
	apps    []*appMon // by id
	runs    map[uint64]*runMon
	groups  map[int]*runMon // process group leader → run (no cgroup)
	sys     sysMon
	rd      *reader
	walk    walker
	dents   []byte
	procfd  int
	pids    []int
	now     time.Time
	last    time.Time
	walkAt  int     // the next app to walk, round robin
	pending []Alert // raised and cleared in this sample, reported once published
	pf      pidFiles
}

type appMon struct {
	id      string
	data    string
	runs    []*runMon // by runid
	alarms  []*alarm  // by metric
	fig     state.Figures
	disk    uint64
	diskAt  time.Time
	partial bool
}

type source string

const (
	srcCgroup      source = "cgroup"
	srcCgroupProcs source = "cgroup+proc"
	srcProc        source = "proc"
)

type runMon struct {
	t     Target
	app   *appMon
	src   source
	dirfd int // the cgroup leaf's; -1 for none
	// which cgroup files the leaf has
	hasMem, hasPeak, hasPids, hasIO bool

	primed         bool
	prevCPU        uint64 // µs
	prevIO         uint64
	prevAt         time.Time
	cpu, mem, io   ring
	fig            state.Figures
	err            string
	loggedErr      string
	accCPU, accIO  uint64 // accumulated from /proc this sample
	accMem, accPid uint64
}

// New returns a Monitor; Run samples.
func New(cfg Config) *Monitor {
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	cfg.Window = max(cmp.Or(cfg.Window, 10*time.Second), cfg.Interval)
	cfg.DiskEvery = cmp.Or(cfg.DiskEvery, time.Minute)
	cfg.WalkEntries = cmp.Or(cfg.WalkEntries, 100000)
	cfg.Proc = cmp.Or(cfg.Proc, "/proc")
	cfg.Disk = cmp.Or(cfg.Disk, "/")
	m := &Monitor{
		cfg: cfg, log: cmp.Or(cfg.Log, slog.New(slog.DiscardHandler)), clock: cmp.Or[clock.Clock](cfg.Clock, clock.Real{}),
		st: cfg.State, runs: map[uint64]*runMon{}, groups: map[int]*runMon{}, rd: newReader(), dents: make([]byte, 32<<10), procfd: -1, pf: newPidFiles(),
	}
	if m.st == nil {
		m.st = &state.Store{}
	}
	m.size = min(int(cfg.Window/cfg.Interval), 3600)
	m.walk.maxEntries = cfg.WalkEntries
	m.sys = newSysMon(cfg.Proc, cfg.Disk, m.size, cfg.System, m.log)
	m.st.UpdateStats(func(s *state.Stats) bool {
		s.Interval, s.Window = cfg.Interval.Seconds(), cfg.Window.Seconds()
		return false
	})
	return m
}

// State is where the figures go.
func (m *Monitor) State() *state.Store { return m.st }

// Run samples every Interval until ctx ends, then releases what the
// monitor holds.
func (m *Monitor) Run(ctx context.Context) error {
	defer m.close()
	return m.runLoop(ctx)
}

// runLoop samples until ctx ends, keeping what the monitor holds.
func (m *Monitor) runLoop(ctx context.Context) error {
	if _, real := m.clock.(clock.Real); real {
		// One ticker for good: a timer per sample would be garbage per
		// sample.
		tk := time.NewTicker(m.cfg.Interval)
		defer tk.Stop()
		for {
			m.Sample()
			select {
			case <-ctx.Done():
				return nil
			case <-tk.C:
			}
		}
	}
	for {
		m.Sample()
		t := m.clock.NewTimer(m.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

func (m *Monitor) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.runs {
		if r.dirfd >= 0 {
			unix.Close(r.dirfd)
			r.dirfd = -1
		}
	}
	if m.procfd >= 0 {
		unix.Close(m.procfd)
		m.procfd = -1
	}
	m.pf.closeAll()
	m.sys.close()
	// No figures once no one samples: stale ones would pass for fresh.
	hadAlerts := false
	m.st.UpdateStats(func(s *state.Stats) bool {
		hadAlerts = len(s.Alerts) > 0
		*s = state.Stats{Interval: s.Interval, Window: s.Window}
		return hadAlerts
	})
}

// Track starts watching a run (again: a run tracked twice is watched
// once, with the later target).
func (m *Monitor) Track(t Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.runs[t.RunID]; old != nil {
		m.untrack(old)
	}
	r := &runMon{t: t, dirfd: -1, cpu: newRing(m.size), mem: newRing(m.size), io: newRing(m.size), src: srcProc}
	if t.Cgroup != "" {
		r.src = srcCgroup
		fd, err := openDir(t.Cgroup)
		if err != nil {
			r.err = "cgroup gone"
			m.log.Warn("cannot watch a run's cgroup", "app", t.ID, "runid", t.RunID, "cgroup", t.Cgroup, "err", err)
		} else {
			r.dirfd = fd
			has := func(name string) bool { return unix.Faccessat(fd, name, unix.R_OK, 0) == nil }
			r.hasMem, r.hasPeak, r.hasPids, r.hasIO = has("memory.current"), has("memory.peak"), has("pids.current"), has("io.stat")
			r.src = srcCgroupProcs
			if r.hasMem && r.hasPids {
				r.src = srcCgroup
			}
		}
	} else if t.Pid > 0 {
		m.groups[t.Pid] = r
	}
	i, found := slices.BinarySearchFunc(m.apps, t.ID, func(a *appMon, id string) int { return strings.Compare(a.id, id) })
	if !found {
		a := &appMon{id: t.ID, data: t.Data}
		rules := map[string]pack.Rule{}
		for k, v := range t.Alerts {
			rules[k] = v
		}
		for k, v := range m.cfg.Apps[t.ID] {
			rules[k] = v
		}
		for _, k := range slices.Sorted(keys(rules)) {
			a.alarms = append(a.alarms, newAlarm(k, rules[k]))
		}
		m.apps = slices.Insert(m.apps, i, a)
	}
	a := m.apps[i]
	r.app = a
	j, _ := slices.BinarySearchFunc(a.runs, t.RunID, func(x *runMon, id uint64) int { return cmp.Compare(x.t.RunID, id) })
	a.runs = slices.Insert(a.runs, j, r)
	m.runs[t.RunID] = r
	m.log.Debug("run watched", "app", t.ID, "runid", t.RunID, "source", r.src)
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Untrack stops watching a run. The last run of an app gone, the app's
// figures go and its raised alerts are cleared.
func (m *Monitor) Untrack(runid uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.runs[runid]; r != nil {
		m.untrack(r)
	}
}

func (m *Monitor) untrack(r *runMon) {
	delete(m.runs, r.t.RunID)
	if m.groups[r.t.Pid] == r {
		delete(m.groups, r.t.Pid)
	}
	if r.dirfd >= 0 {
		unix.Close(r.dirfd)
		r.dirfd = -1
	}
	a := r.app
	a.runs = slices.DeleteFunc(a.runs, func(x *runMon) bool { return x == r })
	if len(a.runs) > 0 {
		return
	}
	now := m.clock.Now()
	var cleared []Alert
	for _, al := range a.alarms {
		if al.raised {
			al.raised = false
			cleared = append(cleared, Alert{ID: a.id, Metric: al.metric, Value: 0, Threshold: al.threshold, At: now, Why: "the app's last run ended"})
		}
	}
	m.apps = slices.DeleteFunc(m.apps, func(x *appMon) bool { return x == a })
	m.publish(len(cleared) > 0)
	for _, al := range cleared {
		m.report(al)
	}
}

// Sample takes one sample of every run and of the system now, evaluates
// the alerts and publishes the figures. Run calls it every Interval.
func (m *Monitor) Sample() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.now = now
	m.pf.begin()
	defer m.pf.end()
	if len(m.groups) > 0 {
		m.scanProc()
	}
	for _, a := range m.apps {
		a.fig = state.Figures{}
		for _, r := range a.runs {
			m.sampleRun(r, now)
			f := &a.fig
			f.CPUPercent += r.fig.CPUPercent
			f.CPUAvg += r.fig.CPUAvg
			f.MemoryBytes += r.fig.MemoryBytes
			f.MemoryAvg += r.fig.MemoryAvg
			f.MemoryPeak += r.fig.MemoryPeak
			f.Pids += r.fig.Pids
			f.IOBytes += r.fig.IOBytes
			f.IORate += r.fig.IORate
			f.IOAvg += r.fig.IOAvg
		}
	}
	m.walkOne(now)
	m.sys.sample(m.rd, now)
	for _, a := range m.apps {
		for _, al := range a.alarms {
			if al.step(now, a.value(al.metric)) {
				m.pending = append(m.pending, Alert{ID: a.id, Metric: al.metric, Raised: al.raised, Value: al.value, Threshold: al.threshold, At: now})
			}
		}
	}
	for _, al := range m.sys.alarms {
		if al.step(now, m.sys.value(al.metric)) {
			m.pending = append(m.pending, Alert{Metric: al.metric, Raised: al.raised, Value: al.value, Threshold: al.threshold, At: now})
		}
	}
	m.last = now
	// The state first: whoever hears of an alert finds it there.
	m.publish(len(m.pending) > 0)
	for i, al := range m.pending {
		m.report(al)
		m.pending[i] = Alert{}
	}
	m.pending = m.pending[:0]
}

func (a *appMon) value(metric string) float64 {
	switch metric {
	case "cpu":
		return a.fig.CPUPercent
	case "memory":
		return float64(a.fig.MemoryBytes)
	case "pids":
		return float64(a.fig.Pids)
	case "io":
		return a.fig.IORate
	case "disk":
		return float64(a.disk)
	}
	return 0
}

// report logs an alert's change and hands it on.
func (m *Monitor) report(al Alert) {
	args := []any{"metric", al.Metric, "value", round2(al.Value), "threshold", al.Threshold}
	if al.ID != "" {
		args = append([]any{"app", al.ID}, args...)
	}
	switch {
	case al.Raised:
		m.log.Warn("alert raised", args...)
	case al.Why != "":
		m.log.Info("alert cleared", append(args, "why", al.Why)...)
	default:
		m.log.Info("alert cleared", args...)
	}
	if m.cfg.OnAlert != nil {
		m.cfg.OnAlert(al)
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// sampleRun reads one run's figures.
func (m *Monitor) sampleRun(r *runMon, now time.Time) {
	var cpuUS, ioB, memB, peak, pids uint64
	ok := true
	switch r.src {
	case srcCgroup, srcCgroupProcs:
		ok = m.readCgroup(r, &cpuUS, &ioB, &memB, &peak, &pids)
	case srcProc:
		if m.procfd < 0 || r.accPid == 0 {
			ok = false
			r.setErr(m, "process group gone")
		} else {
			cpuUS, ioB, memB, pids = r.accCPU*10000, r.accIO, r.accMem, r.accPid // 100 ticks per second
		}
	}
	if !ok {
		r.fig = state.Figures{}
		r.primed = false
		return
	}
	r.setErr(m, "")
	f := &r.fig
	if r.primed {
		dt := now.Sub(r.prevAt).Seconds()
		if dt > 0 {
			f.CPUPercent = float64(sub(cpuUS, r.prevCPU)) / 1e4 / dt
			f.IORate = float64(sub(ioB, r.prevIO)) / dt
		}
	}
	r.prevCPU, r.prevIO, r.prevAt, r.primed = cpuUS, ioB, now, true
	f.MemoryBytes, f.Pids, f.IOBytes = memB, pids, ioB
	f.MemoryPeak = max(peak, f.MemoryPeak, memB)
	r.cpu.add(f.CPUPercent)
	r.mem.add(float64(memB))
	r.io.add(f.IORate)
	f.CPUAvg, f.MemoryAvg, f.IOAvg = r.cpu.avg(), uint64(r.mem.avg()), r.io.avg()
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0 // a process left the sum
	}
	return a - b
}

func (r *runMon) setErr(m *Monitor, e string) {
	r.err = e
	if e != r.loggedErr {
		if e != "" {
			m.log.Warn("run not sampled", "app", r.t.ID, "runid", r.t.RunID, "why", e)
		} else if r.loggedErr != "" {
			m.log.Info("run sampled again", "app", r.t.ID, "runid", r.t.RunID)
		}
		r.loggedErr = e
	}
}

// readCgroup reads a run's cgroup files, and /proc for what the leaf
// has no file for.
func (m *Monitor) readCgroup(r *runMon, cpuUS, ioB, memB, peak, pids *uint64) bool {
	if r.dirfd < 0 {
		r.setErr(m, "cgroup gone")
		return false
	}
	b, err := m.rd.file(r.dirfd, "cpu.stat")
	if err != nil {
		r.setErr(m, "cgroup gone")
		return false
	}
	*cpuUS, _ = keyValue(b, "usage_usec")
	if r.hasMem {
		if b, err := m.rd.file(r.dirfd, "memory.current"); err == nil {
			*memB, _ = parseUint(b)
		}
	}
	if r.hasPeak {
		if b, err := m.rd.file(r.dirfd, "memory.peak"); err == nil {
			*peak, _ = parseUint(b)
		}
	}
	if r.hasPids {
		if b, err := m.rd.file(r.dirfd, "pids.current"); err == nil {
			*pids, _ = parseUint(b)
		}
	}
	if r.hasIO {
		if b, err := m.rd.file(r.dirfd, "io.stat"); err == nil {
			*ioB = ioStat(b)
		}
	}
	if r.hasMem && r.hasPids && r.hasIO {
		return true
	}
	// The rest from /proc, for the leaf's processes.
	b, err = m.rd.file(r.dirfd, "cgroup.procs")
	if err != nil {
		r.setErr(m, "cgroup gone")
		return false
	}
	m.pids = m.pids[:0]
	for len(b) > 0 {
		v, ok := parseUint(b)
		if ok {
			m.pids = append(m.pids, int(v))
		}
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		b = b[min(i+1, len(b)):]
	}
	if m.procfd < 0 && !m.openProc() {
		return true
	}
	var mem, io uint64
	for _, pid := range m.pids {
		if !r.hasMem {
			if b, err := m.pf.read(m.rd, m.procfd, pid, "stat"); err == nil {
				mem += parseProcStat(b).rssPages * pageSize
			}
		}
		if !r.hasIO {
			io += m.procIO(pid)
		}
	}
	if !r.hasMem {
		*memB = mem
	}
	if !r.hasIO {
		*ioB = max(io, r.prevIO) // exited processes take their bytes along
	}
	if !r.hasPids {
		*pids = uint64(len(m.pids))
	}
	return true
}

var pageSize = uint64(unix.Getpagesize())

func (m *Monitor) procIO(pid int) uint64 {
	b, err := m.pf.read(m.rd, m.procfd, pid, "io")
	if err != nil {
		return 0
	}
	rb, _ := keyValue(b, "read_bytes")
	wb, _ := keyValue(b, "write_bytes")
	return rb + wb
}

func (m *Monitor) openProc() bool {
	fd, err := openDir(m.cfg.Proc)
	if err != nil {
		m.log.Warn("cannot read the process table", "dir", m.cfg.Proc, "err", err)
		return false
	}
	m.procfd = fd
	return true
}

// scanProc sums the figures of every process group run from one scan of
// /proc.
func (m *Monitor) scanProc() {
	for _, r := range m.groups {
		r.accCPU, r.accIO, r.accMem, r.accPid = 0, 0, 0, 0
	}
	if m.procfd < 0 && !m.openProc() {
		return
	}
	eachDirent(m.procfd, m.dents, func(buf []byte, name int, typ byte) bool {
		pid := 0
		for i := name; buf[i] != 0; i++ {
			c := buf[i]
			if c < '0' || c > '9' {
				return true
			}
			pid = pid*10 + int(c-'0')
		}
		b, err := m.pf.read(m.rd, m.procfd, pid, "stat")
		if err != nil {
			return true
		}
		st := parseProcStat(b)
		r := m.groups[st.pgid]
		if r == nil || !st.parsedOkay || st.zombie || st.start < r.t.StartTime {
			return true // not a run's, or an older process that took a reused pgid
		}
		r.accCPU += st.ticks
		r.accMem += st.rssPages * pageSize
		r.accPid++
		r.accIO += m.procIO(pid)
		return true
	})
}

// walkOne walks the data dir of one app whose last walk is DiskEvery old.
func (m *Monitor) walkOne(now time.Time) {
	for range len(m.apps) {
		m.walkAt = (m.walkAt + 1) % len(m.apps)
		a := m.apps[m.walkAt]
		if a.data == "" || (!a.diskAt.IsZero() && now.Sub(a.diskAt) < m.cfg.DiskEvery) {
			continue
		}
		a.diskAt = now
		n, partial, err := m.walk.du(a.data)
		if err != nil {
			a.disk, a.partial = 0, false
			return
		}
		a.disk, a.partial = n, partial
		return
	}
}

// publish writes the figures into the state.
func (m *Monitor) publish(alertsChanged bool) {
	m.st.UpdateStats(func(s *state.Stats) bool {
		s.Time = m.now
		if cap(s.Apps) >= len(m.apps) {
			s.Apps = s.Apps[:len(m.apps)]
		} else {
			s.Apps = append(s.Apps[:cap(s.Apps)], make([]state.AppStats, len(m.apps)-cap(s.Apps))...)
		}
		for i, a := range m.apps {
			runs := s.Apps[i].Runs[:0]
			for _, r := range a.runs {
				runs = append(runs, state.RunStats{RunID: r.t.RunID, Figures: r.fig, Source: string(r.src), Error: r.err})
			}
			s.Apps[i] = state.AppStats{ID: a.id, Figures: a.fig, DiskBytes: a.disk, DiskChecked: a.diskAt, DiskPartial: a.partial, Runs: runs}
		}
		m.sys.publish(&s.System)
		s.Alerts = s.Alerts[:0]
		for _, al := range m.sys.alarms {
			if al.raised {
				s.Alerts = append(s.Alerts, state.AlertView{Metric: al.metric, Value: al.value, Threshold: al.threshold, Since: al.since})
			}
		}
		for _, a := range m.apps {
			for _, al := range a.alarms {
				if al.raised {
					s.Alerts = append(s.Alerts, state.AlertView{ID: a.id, Metric: al.metric, Value: al.value, Threshold: al.threshold, Since: al.since})
				}
			}
		}
		return alertsChanged
	})
}

// String names a target in logs.
func (t Target) String() string { return fmt.Sprintf("%s run %d", t.ID, t.RunID) }
