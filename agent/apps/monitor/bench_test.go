package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/pack"
)

// benchRuns starts n sleeping processes and tracks them in m: in cgroup v2
// leaves of the test's own when the host has a writable tree (here:
// hybrid, so figures are cgroup+proc), else as process groups. It also
// gives each a data dir with a few files and the manifest-style alerts.
func benchRuns(b *testing.B, m *Monitor, n int, cgroups bool) string {
	b.Helper()
	kind := "proc"
	base := ""
	if cgroups {
		base = benchCgroupBase(b)
		kind = "cgroup"
	}
	for i := range n {
		leaf := ""
		if base != "" {
			leaf = filepath.Join(base, fmt.Sprintf("app-b%d-%d", i, i+1))
			if err := os.Mkdir(leaf, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		pid := startIn(b, leaf)
		data := b.TempDir()
		for j := range 20 {
			os.WriteFile(filepath.Join(data, fmt.Sprintf("f%d", j)), make([]byte, 4096), 0o644)
		}
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		m.Track(Target{ID: fmt.Sprintf("b%d", i), RunID: uint64(i + 1), Cgroup: leaf, Pid: pid, StartTime: parseProcStat(st).start, Data: data,
			Alerts: pack.Alerts{"cpu": rule(80, 30*time.Second), "memory": rule(200<<20, 10*time.Second)}})
	}
	return kind
}

func benchCgroupBase(b *testing.B) string {
	b.Helper()
	dir := cgroup2Dir(b)
	base := filepath.Join(dir, fmt.Sprintf("osmtest-monbench-%d", os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		b.Skipf("cannot make a cgroup: %v", err)
	}
	b.Cleanup(func() {
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.IsDir() {
				os.WriteFile(filepath.Join(base, e.Name(), "cgroup.kill"), []byte("1"), 0)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, e := range ents {
			for os.Remove(filepath.Join(base, e.Name())) != nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // the kill takes a moment
			}
		}
		os.Remove(base)
	})
	return base
}

// BenchmarkSample is one sample of 0 or 50 runs (and the system): its
// time is the monitor's CPU per second at a 1 s interval; allocs/op must
// be 0.
func BenchmarkSample(b *testing.B) {
	for _, tc := range []struct {
		name    string
		runs    int
		cgroups bool
		nocache bool // /proc files opened per read: the peer of the fd cache
	}{{"runs=0", 0, false, false}, {"runs=50/proc", 50, false, false}, {"runs=50/proc/nocache", 50, false, true},
		{"runs=50/cgroup", 50, true, false}, {"runs=50/cgroup/nocache", 50, true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			m := New(Config{DiskEvery: time.Minute, System: pack.Alerts{"cpu": rule(90, time.Minute)}})
			if tc.nocache {
				m.pf.max = 0
			}
			benchRuns(b, m, tc.runs, tc.cgroups)
			m.Sample()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m.Sample()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e7, "%cpu@1s")
		})
	}
}

// BenchmarkMonitorRun runs the monitor's own loop over 50 runs at 1 s
// for OSM_MONITOR_BENCH in all (default 20s; the figure is 10m),
// in 10 s phases interleaved with as many with the monitor stopped (the
// floor, so the whole takes twice as long), and
// reports the agent's CPU for monitoring (process CPU time while
// sampling less the floor's, per second, in percent of one core) and the
// heap's growth from before to after (after a GC each time). Run it once:
//
//	go test -run XXX -bench MonitorRun -benchtime 1x ./agent/apps/monitor
//	OSM_MONITOR_BENCH=10m go test -run XXX -bench MonitorRun -benchtime 1x -timeout 40m ./agent/apps/monitor
func BenchmarkMonitorRun(b *testing.B) {
	total := 20 * time.Second
	if v := os.Getenv("OSM_MONITOR_BENCH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("OSM_MONITOR_BENCH=%q: %v", v, err)
		}
		total = d
	}
	m := New(Config{Interval: time.Second, DiskEvery: time.Minute,
		System: pack.Alerts{"cpu": rule(90, time.Minute), "memory": rule(99, time.Minute)}})
	kind := benchRuns(b, m, 50, true)
	// Warm up: first samples, first walks, buffers grown.
	for range 3 {
		m.Sample()
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	before := heap()
	phase := min(10*time.Second, total)
	var on, off, onWall, offWall time.Duration
	b.ResetTimer()
	for done := time.Duration(0); done < total; done += phase {
		// Monitoring.
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		c0, w0 := cpu(), time.Now()
		go func() { m.runLoop(ctx); close(ran) }()
		t := time.NewTimer(phase)
		<-t.C
		cancel()
		<-ran
		on += cpu() - c0
		onWall += time.Since(w0)
		// The floor: the same process, not monitoring.
		c0, w0 = cpu(), time.Now()
		t = time.NewTimer(phase)
		<-t.C
		off += cpu() - c0
		offWall += time.Since(w0)
	}
	b.StopTimer()
	after := heap()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	pctOn := on.Seconds() / onWall.Seconds() * 100
	pctOff := off.Seconds() / offWall.Seconds() * 100
	b.ReportMetric(pctOn-pctOff, "%cpu")
	b.ReportMetric(pctOff, "%cpu-floor")
	b.ReportMetric(float64(int64(after)-int64(before)), "heap-growth-B")
	b.Logf("%s runs, %s monitored + %s floor: cpu %.3f%% (floor %.3f%%) of one core; heap %d → %d bytes after GC; %d mallocs in all (the harness's included)",
		kind, onWall.Round(time.Millisecond), offWall.Round(time.Millisecond), pctOn, pctOff, before, after, ms1.Mallocs-ms0.Mallocs)
}
