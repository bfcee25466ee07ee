// Package pagetrim lets go of the program's own file pages it touched
// while starting and no longer uses.
//
// Most of an idle agent's resident memory was its binary: start-up runs
// a hundred package inits and the boot steps, scattered over the text, and
// each page fault maps the 64 KiB around it (the kernel's fault-around), so
// nearly all of the 12 MB binary ends up mapped though an idle agent runs
// a small part of it. Trim, called once the services are up, drops the
// mappings of the binary's read-only segments (madvise MADV_DONTNEED):
// those pages are clean copies of the file, nothing is lost, and what the
// agent runs again faults back in, from the page cache. Writable mappings
// (data, bss, heap) are never touched. A Trimmer does it once start-up has
// settled and again whenever a burst of requests has gone idle.
package pagetrim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/clock"
)

// Trim drops the mappings of the executable's read-only segments and
// returns how many bytes of address space it advised.
func Trim() (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return 0, fmt.Errorf("trim: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("trim: %w", err)
	}
	var total uint64
	for _, r := range readOnlyRanges(maps, st.Ino) {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); e != 0 {
			return total, fmt.Errorf("trim: madvise %x-%x: %w", r.start, r.end, e)
		}
		total += uint64(r.end - r.start)
	}
	return total, nil
}

type addrRange struct{ start, end uintptr }

// readOnlyRanges parses /proc/self/maps and returns the mappings of the
// file with inode ino that are neither writable nor shared.
func readOnlyRanges(maps []byte, ino uint64) []addrRange {
	var out []addrRange
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || len(f[1]) != 4 {
			continue
		}
		if n, err := strconv.ParseUint(f[4], 10, 64); err != nil || n != ino || n == 0 {
			continue
		}
		if perms := f[1]; perms[1] != '-' || perms[3] != 'p' || perms[0] != 'r' {
			continue // writable, shared or unreadable: not ours to drop
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, addrRange{uintptr(start), uintptr(end)})
	}
	return out
}

// Trimmer trims once the program has settled after start-up, and again
// each time a burst of activity (requests to the web servers) has gone
// idle. The first request of each page runs code and reads tables
// (pclntab for stack walks, type data) that an idle agent never uses
// again, and the kernel's fault-around maps 64 KiB around each of those
// faults: one request of each page took an idle agent from 4 to 10 MiB,
// nearly all of it clean file pages. A trim is one madvise over the
// binary's read-only mappings (about 0.2 ms, BenchmarkTrim); what the next
// request runs faults back in from the page cache (about 0.15 ms a page,
// once). While requests keep coming no trim runs: it waits
// for Idle without any.
type Trimmer struct {
	// Settle is how long after Run starts the first trim comes; Idle how
	// long without activity before a trim after some.
	Settle, Idle time.Duration
	Clock        clock.Clock
	// Trim does the trimming; default Trim (tests count calls).
	Trim func() (uint64, error)
	// Log is told of each trim; nil: none.
	Log func(bytes uint64, err error)

	seq  atomic.Uint64
	kick chan struct{}
	once sync.Once
}

func (t *Trimmer) init() {
	t.once.Do(func() { t.kick = make(chan struct{}, 1) })
}

// Note records activity: cheap enough for every request (an atomic add
// and a send that never blocks).
func (t *Trimmer) Note() {
	t.init()
	t.seq.Add(1)
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Run trims after Settle, then after each burst of activity once it has
// been idle for Idle, until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	t.init()
	clk := t.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	trim := t.Trim
	if trim == nil {
		trim = Trim
	}
	wait := func(d time.Duration) bool {
		tm := clk.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-tm.C():
			return true
		}
	}
	if !wait(t.Settle) {
		return
	}
	for {
		// Activity before this point is covered by this trim; a Note
		// after it kicks the next round.
		select {
		case <-t.kick:
		default:
		}
		n, err := trim()
		if t.Log != nil {
			t.Log(n, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
		for {
			seq := t.seq.Load()
			if !wait(t.Idle) {
				return
			}
			if t.seq.Load() == seq {
				break
			}
		}
	}
}
