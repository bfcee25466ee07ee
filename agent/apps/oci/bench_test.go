package oci

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"osmanager/agent/apps/runner"
	"osmanager/agent/sysroot"
)

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkStartRunning: Start until running, the same program (busybox
// sh that exits on TERM, around a sleep) as an OCI bundle under crun and
// as a process of the process runtime, interleaved one for one, 20 of
// each per round, medians; the ratio is OCI over process.
//
//	go test -run '^$' -bench StartRunning -benchtime 3x ./agent/apps/oci/
func BenchmarkStartRunning(b *testing.B) {
	kind, bin := crunOrSkip(b)
	bb := busybox(b)
	sys, err := sysroot.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cg := testCgroups(b)
	rt := &Runtime{Kind: kind, Binary: bin, Cgroups: cg, Sys: sys, Dir: "/oci", State: filepath.Join(b.TempDir(), "state"),
		Slice: fmt.Sprintf("osmtest-oci-%d.slice", 0)}
	r := runner.New(runner.Config{Sys: sys, Runtime: &runner.Mux{Process: &runner.Process{Cgroups: cg}, OCI: rt}, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	b.Cleanup(func() { cancel(); <-ran })
	script := []string{"sh", "-c", `trap "exit 0" TERM; sleep 1000 & wait`}
	bundle := makeBundle(b, b.TempDir(), "bench", append([]string{"/bin/busybox"}, script...))
	var runid uint64
	one := func(sp runner.Spec) time.Duration {
		t0 := time.Now()
		if _, err := r.Start(ctx, sp); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if st, err := r.Terminate(ctx, sp.RunID); err != nil || st.State != runner.Exited {
			b.Fatalf("terminate: %s, %v", st.State, err)
		}
		r.Forget(sp.RunID)
		return d
	}
	for b.Loop() {
		var ociT, procT []time.Duration
		for range 20 {
			runid++
			ociT = append(ociT, one(spec("bench", runid, bundle)))
			runid++
			sp := spec("bench", runid, "")
			sp.Bundle, sp.Exec, sp.Args = "", bb, script
			procT = append(procT, one(sp))
		}
		mo, mp := median(ociT), median(procT)
		b.ReportMetric(float64(mo.Microseconds())/1000, "ms-oci-median")
		b.ReportMetric(float64(mp.Microseconds())/1000, "ms-process-median")
		b.ReportMetric(float64(mo)/float64(mp), "oci/process")
	}
}
