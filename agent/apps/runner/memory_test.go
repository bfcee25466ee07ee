package runner

import (
	"context"
	"runtime"
	"testing"
)

// stackInuse is the bytes of goroutine stacks, after a GC.
func stackInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

// TestIdleRunsStackCost: a running, quiet run costs the agent its three
// goroutines (loop, exit watch, log copier) at their small idle stacks.
// The log copier once kept a 32 kB read buffer on its stack, so each run
// held 64 kB of stack for as long as it ran: most of what 10 more apps
// cost the agent's RSS.
func TestIdleRunsStackCost(t *testing.T) {
	e := newEnv(t, nil)
	const n = 20
	// One run first: the runner's one-time costs are not the per-run cost.
	if _, err := e.r.Start(context.Background(), e.spec(1, "sleep")); err != nil {
		t.Fatal(err)
	}
	before := stackInuse()
	for i := range n {
		sp := e.spec(uint64(i+2), "sleep")
		if _, err := e.r.Start(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
	}
	perRun := (stackInuse() - before) / n
	t.Logf("goroutine stacks per idle run: %d bytes", perRun)
	const max = 32 << 10 // three goroutines at 8 kB, and headroom; the old copier alone was 64 kB
	if perRun > max {
		t.Errorf("stacks per idle run = %d bytes, want at most %d", perRun, max)
	}
}
