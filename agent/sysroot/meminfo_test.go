package sysroot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseDirty(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     int64
		wantErr  bool
	}{
		{"both", "MemTotal:       24684140 kB\nDirty:              5756 kB\nWriteback:            12 kB\n", (5756 + 12) << 10, false},
		{"zero", "Dirty: 0 kB\nWriteback: 0 kB\n", 0, false},
		{"no writeback", "Dirty: 10 kB\n", 0, true},
		{"empty", "", 0, true},
		{"not a number", "Dirty: x kB\nWriteback: 0 kB\n", 0, true},
		{"negative", "Dirty: -4 kB\nWriteback: 0 kB\n", 0, true},
		{"no unit", "Dirty: 4\nWriteback: 0 kB\n", 0, true},
		{"huge", "Dirty: 99999999999999999999 kB\nWriteback: 0 kB\n", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseDirty([]byte(c.in))
			if (err != nil) != c.wantErr || got != c.want {
				t.Errorf("parseDirty = %d, %v; want %d, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestMeminfoDirty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("Dirty: 3 kB\nWriteback: 1 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := MeminfoDirty(p)(); err != nil || n != 4<<10 {
		t.Errorf("MeminfoDirty = %d, %v; want 4096", n, err)
	}
	if _, err := MeminfoDirty(p + ".missing")(); err == nil {
		t.Error("a missing meminfo: no error")
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil {
		if _, err := MeminfoDirty("/proc/meminfo")(); err != nil {
			t.Errorf("this machine's /proc/meminfo: %v", err)
		}
	}
}

func FuzzParseDirty(f *testing.F) {
	f.Add([]byte("Dirty: 1 kB\nWriteback: 2 kB\n"))
	f.Add([]byte("Dirty:\nWriteback: kB kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseDirty(b)
		if err == nil && n < 0 {
			t.Fatalf("negative size %d", n)
		}
	})
}
