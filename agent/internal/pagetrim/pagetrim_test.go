package pagetrim

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/clock"
)

func TestReadOnlyRanges(t *testing.T) {
	maps := `00400000-00916000 r-xp 00000000 fe:00 42                                 /usr/sbin/osmanager
00916000-00ef6000 r--p 00516000 fe:00 42                                 /usr/sbin/osmanager
00ef6000-00f5c000 rw-p 00af6000 fe:00 42                                 /usr/sbin/osmanager
00f5c000-02fa0000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--s 00000000 fe:00 42                         /usr/sbin/osmanager
7f0000001000-7f0000002000 r--p 00000000 fe:00 43                         /usr/lib/other.so
7f0000002000-7f0000003000 ---p 00000000 fe:00 42                         /usr/sbin/osmanager
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
garbage line
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`
	got := readOnlyRanges([]byte(maps), 42)
	want := []addrRange{{0x400000, 0x916000}, {0x916000, 0xef6000}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(addrRange{})); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if got := readOnlyRanges([]byte(maps), 0); len(got) != 0 {
		t.Errorf("inode 0 (anonymous): %v, want none", got)
	}
}

// TestTrimDropsFilePages: after Trim the test binary's file-backed
// resident memory is lower, and the program goes on running (its code
// faults back in).
func TestTrimDropsFilePages(t *testing.T) {
	before := rssFile(t)
	n, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("Trim advised nothing: the binary's mappings were not found")
	}
	after := rssFile(t)
	if after >= before {
		t.Errorf("RssFile %d kB before Trim, %d kB after: want less", before, after)
	}
	// Code and read-only data all still there.
	if s := strings.Repeat("ok", 3); s != "okokok" {
		t.Errorf("after Trim: %q", s)
	}
}

func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestTrimmer: one trim once start-up has settled; none while nothing
// happens; after activity, one trim once it has been idle for Idle, the
// idle wait starting over at each Note.
func TestTrimmer(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	trims := make(chan struct{}, 8)
	tr := &Trimmer{Settle: 3 * time.Second, Idle: time.Second, Clock: clk,
		Trim: func() (uint64, error) { trims <- struct{}{}; return 1, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx) }()
	defer func() { cancel(); <-done }()

	trimmed := func(t *testing.T, want bool) {
		t.Helper()
		select {
		case <-trims:
			if !want {
				t.Fatal("trimmed, want no trim")
			}
		default:
			if want {
				t.Fatal("no trim, want one")
			}
		}
	}
	pending := func(t *testing.T) {
		t.Helper()
		if !clk.WaitPending(1, done) {
			t.Fatal("Run ended")
		}
	}
	waitTrim := func(t *testing.T) {
		t.Helper()
		select {
		case <-trims:
		case <-done:
			t.Fatal("Run ended")
		}
	}

	t.Run("after settling", func(t *testing.T) {
		tr.Note() // during start-up: covered by the first trim
		pending(t)
		clk.Advance(3 * time.Second)
		waitTrim(t)
	})
	t.Run("activity then idle", func(t *testing.T) {
		trimmed(t, false)
		tr.Note()
		pending(t) // the idle wait
		tr.Note()  // still busy: the wait starts over
		clk.Advance(time.Second)
		pending(t) // a second wait, and no trim before it
		trimmed(t, false)
		clk.Advance(time.Second)
		waitTrim(t)
	})
	t.Run("again", func(t *testing.T) {
		tr.Note()
		pending(t)
		clk.Advance(time.Second)
		waitTrim(t)
	})
}

// BenchmarkTrim is the cost of one trim of the test binary (reading
// /proc/self/maps and the madvise), with what the loop touches faulting
// back in between.
func BenchmarkTrim(b *testing.B) {
	for b.Loop() {
		if _, err := Trim(); err != nil {
			b.Fatal(err)
		}
	}
}
