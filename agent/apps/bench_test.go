package apps

import (
	"archive/tar"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/pack/packtest"
)

// The figures of the issue. They are tests gated by OSM_APPS_BENCH=1
// (each is bounded: about 2 min together), since they measure wall time
// and the agent's own CPU and memory, which a benchmark loop would not
// make more exact:
//
//	OSM_APPS_BENCH=1 go test -run 'TestFigure' -v ./agent/apps/

func figures(t *testing.T) {
	if os.Getenv("OSM_APPS_BENCH") == "" {
		t.Skip("set OSM_APPS_BENCH=1 to measure")
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFigureInstallToRunning: install of a 1 MB package, then start, to
// running; start to running and terminate to exited.
func TestFigureInstallToRunning(t *testing.T) {
	figures(t)
	f := newFixture(t, nil, "")
	blob := make([]byte, 1<<20)
	rand.Read(blob) // incompressible: the archive is 1 MB
	var install, start, term []time.Duration
	for i := range 20 {
		v := fmt.Sprintf("1.0.%d", i)
		data := packtest.Tar(true, packtest.Manifest("big", v),
			packtest.Entry{Name: "bin/", Type: tar.TypeDir},
			packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: ticker},
			packtest.Entry{Name: "blob", Body: string(blob)})
		t0 := time.Now()
		f.mustInstall(data, false)
		st := f.mustStart("big")
		install = append(install, time.Since(t0))
		if st.State != apitypes.Active {
			t.Fatalf("state %s", st.State)
		}
		t1 := time.Now()
		if _, err := f.m.Terminate(ctxT(t), st.RunID); err != nil {
			t.Fatal(err)
		}
		term = append(term, time.Since(t1))
		t2 := time.Now()
		st = f.mustStart("big")
		start = append(start, time.Since(t2))
		if _, err := f.m.Terminate(ctxT(t), st.RunID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			t.Logf("archive %d bytes", len(data))
		}
	}
	t.Logf("FIGURE install 1 MB → running: median %s (min %s, max %s) of 20", median(install), slices.Min(install), slices.Max(install))
	t.Logf("FIGURE start → running: median %s; terminate → exited: median %s", median(start), median(term))
}

// cpu is the process's user+system CPU time so far.
func cpu(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ 100
}

func rss(t *testing.T) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// goMem is the Go runtime's heap in use plus goroutine stacks, after a
// GC: the part of RSS the agent's own data makes, without the noise of
// pages the runtime has not yet returned.
func goMem() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse+ms.StackInuse) / 1024
}

func always(id, script string, extra string) []byte {
	return packtest.Tar(true,
		packtest.Entry{Name: "manifest.json", Body: fmt.Sprintf(`{"id": %q, "version": "1.0.0", "exec": "bin/hello", "restart": "always"%s}`, id, extra)},
		packtest.Entry{Name: "bin/", Type: tar.TypeDir},
		packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: script})
}

// TestFigureFiftyApps: the agent's CPU and RSS with 50 running apps
// (sleep loops, restart always) over a minute.
func TestFigureFiftyApps(t *testing.T) {
	figures(t)
	f := newFixture(t, nil, "")
	// The first install loads the unpacker and the first start the
	// runner's machinery: one app before the base, so that the steps
	// measure what each further app costs.
	f.mustInstall(always("warm", "#!/bin/sh\nwhile :; do sleep 5; done\n", ""), false)
	f.mustStart("warm")
	runtime.GC()
	base, gbase := rss(t), goMem()
	var steps []string
	for i := range 50 {
		id := fmt.Sprintf("sleep%02d", i)
		f.mustInstall(always(id, "#!/bin/sh\nwhile :; do sleep 5; done\n", ""), false)
		f.mustStart(id)
		if (i+1)%10 == 0 {
			g := goMem()
			r := rss(t)
			steps = append(steps, fmt.Sprintf("%d apps: RSS %d kB (+%d), Go heap+stacks %d kB (+%d)", i+1, r, r-base, g, g-gbase))
		}
	}
	t.Logf("FIGURE RSS: base %d kB; %s", base, strings.Join(steps, "; "))
	period := 60 * time.Second
	if v := os.Getenv("OSM_APPS_BENCH_PERIOD"); v != "" {
		period, _ = time.ParseDuration(v)
	}
	r0, c0, t0 := rss(t), cpu(t), time.Now()
	time.Sleep(period) // the measured period: the agent idles with 50 runs
	c1, el := cpu(t), time.Since(t0)
	runtime.GC()
	t.Logf("FIGURE 50 apps over %s: CPU %.3f%% of one core (%s); RSS %d kB → %d kB", el.Round(time.Second), 100*float64(c1-c0)/float64(el), c1-c0, r0, rss(t))
}

// TestFigureCrashLoop: an app that exits at once costs the agent its
// start limit (5 in 10 s), then nothing.
func TestFigureCrashLoop(t *testing.T) {
	figures(t)
	f := newFixture(t, nil, "")
	f.mustInstall(always("crash", "#!/bin/sh\nexit 1\n", ""), false)
	c0, t0 := cpu(t), time.Now()
	st := f.mustStart("crash")
	r := f.waitRun(st.RunID, "failed", func(r apitypes.Run) bool { return r.State == apitypes.Failed })
	c1, el := cpu(t), time.Since(t0)
	time.Sleep(10 * time.Second) // after the limit: nothing should happen
	c2 := cpu(t)
	t.Logf("FIGURE crash loop: %d starts, failed after %s (%s), agent CPU %s; in the 10 s after: %s", r.Restarts+1, el.Round(time.Millisecond), r.Reason, c1-c0, c2-c1)
}
