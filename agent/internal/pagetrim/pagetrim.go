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
// (data, bss, heap) are never touched.
package pagetrim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
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
