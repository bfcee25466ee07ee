package sysroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLogFiles(t *testing.T) {
	r, dir := newRoot(t)
	f, err := r.OpenLog("/logs/a.log", 0o640, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one\n")
	f.Close()
	if f, err = r.OpenLog("/logs/a.log", 0o640, 0); err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "logs/a.log")); string(b) != "one\ntwo\n" {
		t.Errorf("log = %q, want appended lines", b)
	}
	for range 3 {
		if err := r.RotateLog("/logs/a.log", 1); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "logs/a.log"), []byte("new\n"), 0o640)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs/a.log.2")); err == nil {
		t.Errorf("a.log.2 kept with keep 1")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "logs/a.log.1")); string(b) != "new\n" {
		t.Errorf("a.log.1 = %q", b)
	}

	os.Symlink("/etc/passwd", filepath.Join(dir, "logs/evil.log"))
	if _, err := r.OpenLog("/logs/evil.log", 0o640, 0); !errors.Is(err, ErrSymlink) {
		t.Errorf("OpenLog through a symlink = %v, want ErrSymlink", err)
	}
	if _, err := r.OpenLog("/logs/../../x", 0o640, 0); !errors.Is(err, ErrEscape) {
		t.Errorf("OpenLog with .. = %v, want ErrEscape", err)
	}

	if err := r.MakeFIFO("/logs/a.pipe", 0o600, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.MakeFIFO("/logs/a.pipe", 0o600, 0); err != nil {
		t.Errorf("MakeFIFO of an existing pipe = %v", err)
	}
	if err := r.MakeFIFO("/logs/a.log", 0o600, 0); err == nil {
		t.Errorf("MakeFIFO over a regular file: no error")
	}
	p, err := r.OpenFIFO("/logs/a.pipe", unix.O_RDWR|unix.O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := r.OpenFIFO("/logs/a.log", unix.O_RDWR|unix.O_NONBLOCK); err == nil {
		t.Errorf("OpenFIFO of a regular file: no error")
	}
	if err := r.RemoveLog("/logs/a.pipe"); err != nil {
		t.Errorf("RemoveLog = %v", err)
	}
	if err := r.RemoveLog("/logs/a.pipe"); err != nil {
		t.Errorf("RemoveLog of a missing file = %v", err)
	}
}
