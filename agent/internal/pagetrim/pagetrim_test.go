package pagetrim

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
