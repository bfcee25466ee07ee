package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/pack"
	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeCgroup is a directory with the files of a unified-mode leaf.
type fakeCgroup struct {
	t   *testing.T
	dir string
}

func newFakeCgroup(t *testing.T, files map[string]string) *fakeCgroup {
	t.Helper()
	c := &fakeCgroup{t: t, dir: filepath.Join(t.TempDir(), "app-x-1")}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n", "memory.current": "0\n", "memory.peak": "0\n", "pids.current": "1\n", "io.stat": "", "cgroup.procs": ""}
	for k, v := range files {
		base[k] = v
	}
	for k, v := range base {
		if v == "-" {
			continue
		}
		c.set(k, v)
	}
	return c
}

func (c *fakeCgroup) set(name, v string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(v), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// fakeProc is a /proc with stat, meminfo and net/dev.
func fakeProc(t *testing.T, cpuBusy, cpuIdle, memAvailKB, rx, tx uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeProc(t, dir, cpuBusy, cpuIdle, memAvailKB, rx, tx)
	return dir
}

func writeProc(t *testing.T, dir string, cpuBusy, cpuIdle, memAvailKB, rx, tx uint64) {
	t.Helper()
	files := map[string]string{
		"stat":    fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\ncpu0 1 2 3 4\n", cpuBusy, cpuIdle),
		"meminfo": fmt.Sprintf("MemTotal:       1000000 kB\nMemFree:         100 kB\nMemAvailable:   %d kB\n", memAvailKB),
		"net/dev": fmt.Sprintf("Inter-|   Receive  |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: %d 10 0 0 0 0 0 0 %d 10 0 0 0 0 0 0\n", rx, tx),
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type alertLog struct {
	mu sync.Mutex
	a  []Alert
}

func (l *alertLog) add(a Alert) { l.mu.Lock(); l.a = append(l.a, a); l.mu.Unlock() }
func (l *alertLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, a := range l.a {
		s := "cleared"
		if a.Raised {
			s = "raised"
		}
		out = append(out, fmt.Sprintf("%s %s %s", cmpOr(a.ID, "system"), a.Metric, s))
	}
	l.a = nil
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func rule(above float64, hold time.Duration) pack.Rule {
	return pack.Rule{Above: pack.Threshold{Value: above}, For: pack.Duration(hold)}
}

func TestSampleCgroupFigures(t *testing.T) {
	clk := clock.NewFake(t0)
	cg := newFakeCgroup(t, map[string]string{"memory.current": "1000\n", "memory.peak": "5000\n", "pids.current": "3\n", "io.stat": "8:0 rbytes=100 wbytes=50 rios=1 wios=1\n"})
	m := New(Config{Clock: clk, Proc: fakeProc(t, 0, 0, 500000, 0, 0), Disk: t.TempDir(), Window: 2 * time.Second, Log: logger(t)})
	m.Track(Target{ID: "x", RunID: 1, Cgroup: cg.dir})
	m.Sample()
	clk.Advance(time.Second)
	cg.set("cpu.stat", "usage_usec 500000\n") // half a core over one second
	cg.set("memory.current", "3000\n")
	cg.set("io.stat", "8:0 rbytes=1100 wbytes=50 rios=1 wios=1\n8:16 rbytes=0 wbytes=1000\n")
	m.Sample()
	st := m.State().Stats()
	if len(st.Apps) != 1 || len(st.Apps[0].Runs) != 1 {
		t.Fatalf("stats: %+v", st)
	}
	r := st.Apps[0].Runs[0]
	want := state.Figures{CPUPercent: 50, CPUAvg: 25, MemoryBytes: 3000, MemoryAvg: 2000, MemoryPeak: 5000, Pids: 3, IOBytes: 2150, IORate: 2000, IOAvg: 1000}
	if r.Figures != want || r.Source != "cgroup" || r.Error != "" {
		t.Errorf("run figures:\n got %+v %s %q\nwant %+v cgroup", r.Figures, r.Source, r.Error, want)
	}
	if st.Apps[0].Figures != want {
		t.Errorf("app figures: got %+v, want the run's %+v", st.Apps[0].Figures, want)
	}
	if st.Interval != 1 || st.Window != 2 || !st.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("interval %v window %v time %v", st.Interval, st.Window, st.Time)
	}
	// The window is two samples: the first falls out.
	clk.Advance(time.Second)
	cg.set("cpu.stat", "usage_usec 1500000\n")
	m.Sample()
	if got := m.State().Stats().Apps[0].CPUAvg; got != 75 {
		t.Errorf("cpu average over the window: got %v, want 75 (50 and 100)", got)
	}
}

func TestSystemFigures(t *testing.T) {
	clk := clock.NewFake(t0)
	proc := fakeProc(t, 100, 100, 750000, 1000, 2000)
	m := New(Config{Clock: clk, Proc: proc, Disk: t.TempDir(), Log: logger(t)})
	m.Sample()
	clk.Advance(2 * time.Second)
	writeProc(t, proc, 175, 125, 250000, 5000, 2200)
	m.Sample()
	sys := m.State().Stats().System
	if sys.CPUPercent != 75 || sys.MemoryTotal != 1000000*1024 || sys.MemoryUsed != 750000*1024 || sys.MemoryPercent != 75 {
		t.Errorf("cpu %v%%, memory %d of %d (%v%%); want 75%%, 768000000 of 1024000000 (75%%)", sys.CPUPercent, sys.MemoryUsed, sys.MemoryTotal, sys.MemoryPercent)
	}
	if len(sys.Net) != 1 || sys.Net[0].Name != "eth0" || sys.Net[0].RxRate != 2000 || sys.Net[0].TxRate != 100 {
		t.Errorf("net: %+v; want eth0 only (no lo), rx 2000 B/s, tx 100 B/s", sys.Net)
	}
	if sys.DiskTotal == 0 || sys.DiskPercent <= 0 || sys.DiskPercent > 100 {
		t.Errorf("disk: %+v", sys)
	}
}

// TestAlerts drives an app's and the system's alerts with an injected
// clock: raised only after the value stays above for the hold time,
// cleared only after it stays back under as long, never by one sample
// that crosses back (no flapping).
func TestAlerts(t *testing.T) {
	clk := clock.NewFake(t0)
	proc := fakeProc(t, 0, 0, 500000, 0, 0)
	cg := newFakeCgroup(t, nil)
	var log alertLog
	m := New(Config{Clock: clk, Proc: proc, Disk: t.TempDir(), Log: logger(t), OnAlert: log.add,
		System: pack.Alerts{"net:eth0": rule(1000, 2*time.Second)},
		Apps:   map[string]pack.Alerts{"x": {"memory": rule(200, 0)}}, // the file's override of the manifest's
	})
	m.Track(Target{ID: "x", RunID: 1, Cgroup: cg.dir, Alerts: pack.Alerts{"cpu": rule(80, 3*time.Second), "memory": rule(1<<30, time.Hour)}})
	var usec, rx uint64
	step := func(cpu float64, mem string, net uint64) []string {
		t.Helper()
		clk.Advance(time.Second)
		usec += uint64(cpu * 1e4)
		rx += net
		cg.set("cpu.stat", fmt.Sprintf("usage_usec %d\n", usec))
		cg.set("memory.current", mem)
		writeProc(t, proc, 0, 0, 500000, rx, 0)
		m.Sample()
		return log.take()
	}
	m.Sample()
	for i, tc := range []struct {
		cpu  float64
		mem  string
		net  uint64
		want string
	}{
		{90, "0", 0, ""},             // cpu above: pending since now
		{90, "0", 0, ""},             // 1 s
		{70, "0", 0, ""},             // back under before 3 s: the wait resets
		{90, "0", 0, ""},             // pending again
		{90, "0", 0, ""},             // 1 s
		{90, "0", 0, ""},             // 2 s
		{95, "0", 0, "x cpu raised"}, // 3 s above: raised
		{50, "0", 0, ""},             // under: pending clear
		{90, "0", 0, ""},             // above again: no clear, no second raise
		{50, "0", 0, ""},
		{50, "0", 0, ""},
		{50, "0", 0, ""},
		{50, "300", 0, "x cpu cleared, x memory raised"}, // 3 s under; memory above the file's 200 at once (for 0)
		{0, "100", 5000, "x memory cleared"},
		{0, "100", 5000, ""},
		{0, "100", 5000, "system net:eth0 raised"},
		{0, "100", 0, ""},
		{0, "100", 0, ""},
		{0, "100", 0, "system net:eth0 cleared"},
	} {
		got := strings.Join(step(tc.cpu, tc.mem, tc.net), ", ")
		if got != tc.want {
			t.Errorf("sample %d (cpu %v, memory %s, net %d): alerts %q, want %q", i+1, tc.cpu, tc.mem, tc.net, got, tc.want)
		}
	}
	// Raised alerts are in the state; the last run's end clears them.
	var got []string
	for range 4 {
		got = append(got, step(95, "300", 0)...)
	}
	if g := strings.Join(got, ", "); g != "x memory raised, x cpu raised" {
		t.Fatalf("alerts: %q, want memory at once, cpu after its 3 s", g)
	}
	st := m.State()
	ch := st.Changed()
	if al := st.Stats().Alerts; len(al) != 2 || al[0].ID != "x" || al[0].Metric != "cpu" || al[1].Metric != "memory" || !al[0].Since.Equal(clk.Now()) {
		t.Errorf("raised alerts in the state: %+v", al)
	}
	m.Untrack(1)
	if got := strings.Join(log.take(), ", "); got != "x cpu cleared, x memory cleared" {
		t.Errorf("alerts on the last run's end: %q", got)
	}
	select {
	case <-ch:
	default:
		t.Error("clearing alerts did not signal a change of the state")
	}
	if st := st.Stats(); len(st.Alerts) != 0 || len(st.Apps) != 0 {
		t.Errorf("after untrack: %+v", st)
	}
}

// TestSampleNoChange: a sample that raises or clears nothing is no change
// of the state (the status page and the controller link are not woken
// every second).
func TestSampleNoChange(t *testing.T) {
	m := New(Config{Clock: clock.NewFake(t0), Proc: fakeProc(t, 0, 0, 1, 0, 0), Disk: t.TempDir()})
	m.Track(Target{ID: "x", RunID: 1, Cgroup: newFakeCgroup(t, nil).dir})
	m.Sample()
	v := m.State().Version()
	for range 3 {
		m.Sample()
	}
	if got := m.State().Version(); got != v {
		t.Errorf("state version went from %d to %d over samples that changed no alert", v, got)
	}
}

// TestCgroupVanishes: a run whose cgroup is removed underneath it is
// still tracked, with zero figures and an error, and the others go on.
func TestCgroupVanishes(t *testing.T) {
	clk := clock.NewFake(t0)
	gone := newFakeCgroup(t, map[string]string{"memory.current": "100\n"})
	stays := newFakeCgroup(t, map[string]string{"memory.current": "200\n"})
	m := New(Config{Clock: clk, Proc: fakeProc(t, 0, 0, 1, 0, 0), Disk: t.TempDir(), Log: logger(t)})
	m.Track(Target{ID: "a", RunID: 1, Cgroup: gone.dir})
	m.Track(Target{ID: "b", RunID: 2, Cgroup: stays.dir})
	m.Track(Target{ID: "c", RunID: 3, Cgroup: filepath.Join(t.TempDir(), "never-there")})
	m.Sample()
	if err := os.RemoveAll(gone.dir); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	m.Sample()
	st := m.State().Stats()
	byID := map[string]state.RunStats{}
	for _, a := range st.Apps {
		for _, r := range a.Runs {
			byID[a.ID] = r
		}
	}
	for id, want := range map[string]string{"a": "cgroup gone", "b": "", "c": "cgroup gone"} {
		if got := byID[id].Error; got != want {
			t.Errorf("run of %s: error %q, want %q", id, got, want)
		}
	}
	if f := byID["a"].Figures; f != (state.Figures{}) {
		t.Errorf("vanished run's figures: %+v, want zero", f)
	}
	if got := byID["b"].MemoryBytes; got != 200 {
		t.Errorf("other run's memory: %d, want 200", got)
	}
}

// TestRealCgroupVanishes runs a process in a real cgroup v2 leaf (unified
// or the hybrid tree), samples it, kills it and removes the leaf, and
// samples again. It needs root and a cgroup2 mount.
func TestRealCgroupVanishes(t *testing.T) {
	base := cgroup2Dir(t)
	leaf := filepath.Join(base, fmt.Sprintf("osmtest-monitor-%d", os.Getpid()))
	if err := os.Mkdir(leaf, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(leaf) })
	pid := startIn(t, leaf)
	clk := clock.NewFake(t0)
	m := New(Config{Clock: clk, Log: logger(t)})
	m.Track(Target{ID: "real", RunID: 1, Cgroup: leaf})
	m.Sample()
	clk.Advance(time.Second)
	m.Sample()
	r := m.State().Stats().Apps[0].Runs[0]
	if r.Error != "" || r.Pids != 1 || r.MemoryBytes == 0 {
		t.Errorf("live run: %+v; want 1 pid, some memory, no error", r)
	}
	t.Logf("live run sampled from %s: %+v", r.Source, r.Figures)
	unix.Kill(pid, unix.SIGKILL)
	waitGone(t, pid)
	if err := os.Remove(leaf); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	m.Sample()
	r = m.State().Stats().Apps[0].Runs[0]
	if r.Error != "cgroup gone" || r.Figures != (state.Figures{}) {
		t.Errorf("after the leaf went: %+v; want error cgroup gone, zero figures", r)
	}
}

// TestProcessGroup samples a run without a cgroup: its process group from
// /proc.
func TestProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := startIn(t, "")
	clk := clock.NewFake(t0)
	m := New(Config{Clock: clk, Log: logger(t)})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	ps := parseProcStat(b)
	if ps.pgid != pid {
		t.Fatalf("pgid %d, want %d (own group)", ps.pgid, pid)
	}
	m.Track(Target{ID: "grp", RunID: 1, Pid: pid, StartTime: ps.start})
	m.Sample()
	r := m.State().Stats().Apps[0].Runs[0]
	if r.Error != "" || r.Pids != 1 || r.MemoryBytes == 0 || r.Source != "proc" {
		t.Errorf("process group run: %+v; want 1 pid, some memory, source proc", r)
	}
	unix.Kill(pid, unix.SIGKILL)
	waitGone(t, pid)
	clk.Advance(time.Second)
	m.Sample()
	if r := m.State().Stats().Apps[0].Runs[0]; r.Error != "process group gone" {
		t.Errorf("after the group exited: %+v", r)
	}
}

func TestDiskWalk(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3))
		os.MkdirAll(sub, 0o755)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", i)), make([]byte, 10000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/", filepath.Join(dir, "root-link")) // not followed
	w := walker{maxEntries: 1000}
	n, partial, err := w.du(dir)
	if err != nil || partial || n < 100000 || n > 1<<20 {
		t.Errorf("du: %d bytes, partial %v, %v; want about 10 × 10000", n, partial, err)
	}
	w.maxEntries = 5
	if _, partial, _ := w.du(dir); !partial {
		t.Error("a walk over its bound is not partial")
	}
	clk := clock.NewFake(t0)
	m := New(Config{Clock: clk, Proc: fakeProc(t, 0, 0, 1, 0, 0), Disk: dir, DiskEvery: time.Minute})
	m.Track(Target{ID: "x", RunID: 1, Cgroup: newFakeCgroup(t, nil).dir, Data: dir})
	m.Sample()
	a := m.State().Stats().Apps[0]
	if a.DiskBytes != n || !a.DiskChecked.Equal(t0) {
		t.Errorf("app disk %d checked %v, want %d at %v", a.DiskBytes, a.DiskChecked, n, t0)
	}
	os.WriteFile(filepath.Join(dir, "more"), make([]byte, 100000), 0o644)
	clk.Advance(30 * time.Second)
	m.Sample()
	if got := m.State().Stats().Apps[0].DiskBytes; got != n {
		t.Errorf("walked again before DiskEvery: %d", got)
	}
	clk.Advance(30 * time.Second)
	m.Sample()
	if got := m.State().Stats().Apps[0].DiskBytes; got <= n {
		t.Errorf("not walked again after DiskEvery: %d", got)
	}
}

// TestSampleAllocs: a sample in steady state allocates nothing, with runs
// of every source (cgroup files, cgroup+proc, process group), the system
// figures and a data-dir walk.
func TestSampleAllocs(t *testing.T) {
	clk := clock.NewFake(t0)
	self := fmt.Sprintf("%d\n", os.Getpid())
	m := New(Config{Clock: clk, Log: logger(t), DiskEvery: time.Nanosecond,
		System: pack.Alerts{"cpu": rule(100, time.Hour), "net:eth0": rule(1e15, 0)}}) // armed, never raised: a raise logs
	for i := range 10 {
		cg := newFakeCgroup(t, map[string]string{"io.stat": "8:0 rbytes=1 wbytes=2\n"})
		m.Track(Target{ID: fmt.Sprintf("app%d", i%4), RunID: uint64(i + 1), Cgroup: cg.dir, Data: t.TempDir(),
			Alerts: pack.Alerts{"cpu": rule(50, time.Second), "memory": rule(1e9, 0)}})
	}
	hybrid := newFakeCgroup(t, map[string]string{"memory.current": "-", "memory.peak": "-", "pids.current": "-", "io.stat": "-", "cgroup.procs": self})
	m.Track(Target{ID: "hybrid", RunID: 100, Cgroup: hybrid.dir})
	pgid, _ := unix.Getpgid(0)
	m.Track(Target{ID: "group", RunID: 101, Pid: pgid})
	m.Sample()
	m.Sample()
	allocs := testing.AllocsPerRun(50, func() {
		clk.Advance(time.Second)
		m.Sample()
	})
	if allocs != 0 {
		t.Errorf("a sample allocates %v times; want 0", allocs)
	}
	st := m.State().Stats()
	for _, a := range st.Apps {
		for _, r := range a.Runs {
			if r.Error != "" {
				t.Errorf("%s run %d: %s", a.ID, r.RunID, r.Error)
			}
		}
	}
	if len(st.Apps) != 6 {
		t.Errorf("%d apps, want 6", len(st.Apps))
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	for i, tc := range []struct{ add, avg float64 }{{3, 3}, {6, 4.5}, {9, 6}, {12, 9}, {0, 7}} {
		r.add(tc.add)
		if got := r.avg(); math.Abs(got-tc.avg) > 1e-9 {
			t.Errorf("after %d adds: avg %v, want %v", i+1, got, tc.avg)
		}
	}
}

func TestParsers(t *testing.T) {
	if got := ioStat([]byte("8:0 rbytes=10 wbytes=20 rios=5 wios=6 dbytes=7 dios=1\n259:0 rbytes=1 wbytes=2\n")); got != 33 {
		t.Errorf("ioStat: %d, want 33", got)
	}
	if v, ok := keyValue([]byte("user_usec 5\nusage_usec 42\n"), "usage_usec"); !ok || v != 42 {
		t.Errorf("keyValue: %d %v", v, ok)
	}
	if v, ok := keyValue([]byte("MemTotal:   1000 kB\n"), "MemTotal"); !ok || v != 1000 {
		t.Errorf("keyValue meminfo: %d %v", v, ok)
	}
	if _, ok := parseUint([]byte("max\n")); ok {
		t.Error("max read as a number")
	}
	st := parseProcStat([]byte("42 (a (b) c) S 1 42 42 0 -1 4194304 1 0 0 0 7 3 2 1 20 0 1 0 12345 1000 25 18446744073709551615"))
	if !st.parsedOkay || st.pgid != 42 || st.ticks != 13 || st.start != 12345 || st.rssPages != 25 || st.zombie {
		t.Errorf("parseProcStat: %+v", st)
	}
	if st := parseProcStat([]byte("garbage")); st.parsedOkay {
		t.Error("garbage parsed")
	}
}

func FuzzParsers(f *testing.F) {
	f.Add([]byte("42 (a) S 1 42 42 0 -1 0 1 0 0 0 7 3 2 1 20 0 1 0 12345 1000 25"))
	f.Add([]byte("8:0 rbytes=10 wbytes=20\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseProcStat(b)
		ioStat(b)
		keyValue(b, "usage_usec")
		var s sysMon
		s.netSample(b, true, 1)
	})
}

// cgroup2Dir is a writable cgroup v2 directory to make leaves in, or
// skips.
func cgroup2Dir(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a cgroup")
	}
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return d
		}
	}
	t.Skip("no cgroup2 mount")
	return ""
}

// startIn starts sleep in a process group of its own, in the cgroup leaf
// when one is given; the test kills it at the end.
func startIn(t testing.TB, leaf string) int {
	t.Helper()
	attr := &unix.SysProcAttr{Setpgid: true}
	if leaf != "" {
		fd, err := openDir(leaf)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{Sys: attr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	go p.Wait() // reaped once killed, so the pid goes
	// Sampled only once it runs sleep: in the middle of its exec it has
	// no resident set yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
		if st := parseProcStat(b); strings.Contains(string(b), "(sleep)") && st.rssPages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d does not run sleep", p.Pid)
		}
		time.Sleep(time.Millisecond)
	}
	return p.Pid
}

// waitGone waits until pid has left /proc (reaped), for up to 10 s.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d still there", pid)
}

func logger(t *testing.T) *slog.Logger {
	l, _ := testlog.New(t)
	return l
}

// TestRunEnds: Run samples at once and on every tick of the clock, and
// its end leaves no figures behind.
func TestRunEnds(t *testing.T) {
	clk := clock.NewFake(t0)
	m := New(Config{Clock: clk, Proc: fakeProc(t, 0, 0, 1, 0, 0), Disk: t.TempDir(), System: pack.Alerts{"memory": rule(1, 0)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	clk.WaitPending(1, done)
	if st := m.State().Stats(); !st.Time.Equal(t0) || len(st.Alerts) != 1 {
		t.Errorf("first sample: %+v", st)
	}
	clk.Advance(time.Second)
	clk.WaitPending(1, done)
	if st := m.State().Stats(); !st.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("second sample at %v", st.Time)
	}
	cancel()
	<-done
	if st := m.State().Stats(); !st.Time.IsZero() || len(st.Alerts) != 0 || st.Interval != 1 {
		t.Errorf("after Run: %+v; want no figures, the interval kept", st)
	}
}
