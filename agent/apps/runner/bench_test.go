package runner

import (
	"context"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/sysroot"
)

// benchEnv is a quiet env: the runner's log lines would be the cost.
func benchEnv(b *testing.B, cg *Cgroups) (*Runner, func(uint64, string) Spec) {
	sys, err := sysroot.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e := &env{exe: mustExe(b)}
	r := New(Config{Sys: sys, Runtime: &Process{Cgroups: cg}, Log: slog.New(slog.DiscardHandler),
		NewBackoff: func() *backoff.Backoff {
			return &backoff.Backoff{Min: time.Millisecond, Max: time.Millisecond, Factor: 1}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	b.Cleanup(func() { cancel(); <-ran })
	return r, e.spec
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkStartTerminate measures Start → running and Terminate →
// exited, medians of 20 runs, with process groups and with cgroups.
func BenchmarkStartTerminate(b *testing.B) {
	for _, mode := range []string{"group", "cgroup"} {
		b.Run(mode, func(b *testing.B) {
			var cg *Cgroups
			if mode == "cgroup" {
				cg = testCgroups(b)
			}
			r, spec := benchEnv(b, cg)
			ctx := context.Background()
			var runid uint64
			for b.Loop() {
				var starts, stops []time.Duration
				for range 20 {
					runid++
					t0 := time.Now()
					if _, err := r.Start(ctx, spec(runid, "sleep")); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := r.Terminate(ctx, runid); err != nil {
						b.Fatal(err)
					}
					starts, stops = append(starts, t1.Sub(t0)), append(stops, time.Since(t1))
					r.Forget(runid)
				}
				b.ReportMetric(float64(median(starts).Microseconds())/1000, "ms-start-median")
				b.ReportMetric(float64(median(stops).Microseconds())/1000, "ms-terminate-median")
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCrashLoop: a program that exits at once, restart always, start
// limit 5: the agent's CPU until the run is failed, and in the 500 ms
// after (nothing: no more starts).
func BenchmarkCrashLoop(b *testing.B) {
	r, spec := benchEnv(b, nil)
	ctx := context.Background()
	var runid uint64
	for b.Loop() {
		runid++
		sp := spec(runid, "exit=1")
		sp.Restart, sp.StartLimit = RestartAlways, StartLimit{Burst: 5, Interval: time.Minute}
		c0, t0 := cpuTime(), time.Now()
		r.Start(ctx, sp)
		u, _ := r.get(runid)
		<-u.done
		c1, t1 := cpuTime(), time.Now()
		<-time.After(500 * time.Millisecond)
		c2 := cpuTime()
		st, _ := r.State(runid)
		if st.State != Failed || st.Restarts != 4 {
			b.Fatalf("state %s, restarts %d; want failed after 5 starts", st.State, st.Restarts)
		}
		b.ReportMetric(float64((c1-c0).Microseconds())/1000, "cpu-ms-loop")
		b.ReportMetric(float64(t1.Sub(t0).Microseconds())/1000, "ms-to-failed")
		b.ReportMetric(float64((c2-c1).Microseconds())/1000, "cpu-ms-after")
	}
}
