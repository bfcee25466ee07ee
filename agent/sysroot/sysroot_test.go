package sysroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newRoot(t *testing.T) (*Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func TestPathRefusesEscape(t *testing.T) {
	r, dir := newRoot(t)
	for _, name := range []string{"etc/shadow", "/../etc/shadow", "/etc/../../x", "/a/.."} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Path(name); !errors.Is(err, ErrEscape) {
				t.Errorf("Path(%q) err = %v, want ErrEscape", name, err)
			}
			if _, err := r.WriteFile(name, []byte("x"), WriteOptions{Mode: 0o644, Owner: Keep, MkdirMode: 0o755}); !errors.Is(err, ErrEscape) {
				t.Errorf("WriteFile(%q) err = %v, want ErrEscape", name, err)
			}
		})
	}
	got, err := r.Path("/etc/./shadow")
	if want := filepath.Join(dir, "etc/shadow"); err != nil || got != want {
		t.Errorf("Path = %q, %v; want %q", got, err, want)
	}
}

func TestWriteFileAtomicAndIdempotent(t *testing.T) {
	r, dir := newRoot(t)
	var stages []Stage
	r.Hook = func(s Stage, name string) { stages = append(stages, s) }
	opts := WriteOptions{Mode: 0o600, Owner: Keep, MkdirMode: 0o755}
	changed, err := r.WriteFile("/conf/a/luoyun.conf", []byte("one\n"), opts)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	st, err := os.Stat(filepath.Join(dir, "conf/a/luoyun.conf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v mode %v", err, st.Mode())
	}
	if want := []Stage{StageTempWritten, StageRenamed, StageDirSynced}; strings.Join(stagesStr(stages), ",") != strings.Join(stagesStr(want), ",") {
		t.Errorf("stages = %v, want %v", stages, want)
	}
	n := r.Writes()
	changed, err = r.WriteFile("/conf/a/luoyun.conf", []byte("one\n"), opts)
	if err != nil || changed || r.Writes() != n {
		t.Errorf("same write: changed=%v err=%v writes %d→%d", changed, err, n, r.Writes())
	}
	// A mode change alone is a change.
	if changed, err = r.WriteFile("/conf/a/luoyun.conf", []byte("one\n"), WriteOptions{Mode: 0o640, Owner: Keep}); err != nil || !changed {
		t.Errorf("mode change: changed=%v err=%v", changed, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "conf/a"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temp left)", len(entries))
	}
}

func stagesStr(s []Stage) (out []string) {
	for _, x := range s {
		out = append(out, string(x))
	}
	return out
}

func TestWriteFileKeepMeta(t *testing.T) {
	r, dir := newRoot(t)
	p := filepath.Join(dir, "etc/shadow")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("root:x:1::::::\n"), 0o640)
	os.Chmod(p, 0o640)
	if _, err := r.WriteFile("/etc/shadow", []byte("root:y:1::::::\n"), WriteOptions{Mode: 0o600, Owner: Keep, KeepMeta: true}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the old 0640 kept", st.Mode().Perm())
	}
}

func TestSymlinksRefused(t *testing.T) {
	r, dir := newRoot(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "target"), []byte("secret"), 0o600)
	os.MkdirAll(filepath.Join(dir, "root"), 0o700)
	os.Symlink(outside, filepath.Join(dir, "root/.ssh"))
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "etc/link"))

	cases := []struct {
		name string
		op   func() error
	}{
		{"write through dir link", func() error {
			_, err := r.WriteFile("/root/.ssh/authorized_keys", []byte("k"), WriteOptions{Mode: 0o600, Owner: Keep})
			return err
		}},
		{"mkdir a link", func() error { _, err := r.MkdirAll("/root/.ssh", 0o700, 0o755, Keep); return err }},
		{"write over file link", func() error {
			_, err := r.WriteFile("/etc/link", []byte("k"), WriteOptions{Mode: 0o600, Owner: Keep})
			return err
		}},
		{"read file link", func() error { _, err := r.ReadFile("/etc/link", 0); return err }},
		{"read through dir link", func() error { _, err := r.ReadFile("/root/.ssh/target", 0); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.op(); !errors.Is(err, ErrSymlink) {
				t.Errorf("err = %v, want ErrSymlink", err)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "secret" {
		t.Errorf("file outside the root changed: %q", b)
	}
	if fi, err := r.Lstat("/etc/link"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(/etc/link) = %v, %v; want a symlink", fi, err)
	}
}

func TestReadFileLimit(t *testing.T) {
	r, dir := newRoot(t)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, 100), 0o644)
	if _, err := r.ReadFile("/big", 99); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	if b, err := r.ReadFile("/big", 100); err != nil || len(b) != 100 {
		t.Errorf("ReadFile = %d bytes, %v", len(b), err)
	}
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	if _, err := r.ReadFile("/d", 0); err == nil {
		t.Error("reading a directory succeeded")
	}
}

func TestStaleTempRemoved(t *testing.T) {
	r, dir := newRoot(t)
	stale := filepath.Join(dir, ".hostname.osm-deadbeef")
	os.WriteFile(stale, []byte("half"), 0o600)
	if _, err := r.WriteFile("/hostname", []byte("h\n"), WriteOptions{Mode: 0o644, Owner: Keep}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp still there: %v", err)
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	r, dir := newRoot(t)
	os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o644)
	os.Chmod(dir, 0o555)
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if _, err := r.WriteFile("/f", []byte("new"), WriteOptions{Mode: 0o644, Owner: Keep}); err == nil {
		t.Fatal("write into a read-only dir succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "old" {
		t.Errorf("file = %q, want old", b)
	}
}

func TestMkdirAll(t *testing.T) {
	r, dir := newRoot(t)
	changed, err := r.MkdirAll("/root/.ssh", 0o700, 0o755, Keep)
	if err != nil || !changed {
		t.Fatalf("MkdirAll: %v %v", changed, err)
	}
	os.Chmod(filepath.Join(dir, "root/.ssh"), 0o755)
	if changed, err = r.MkdirAll("/root/.ssh", 0o700, 0o755, Keep); err != nil || !changed {
		t.Fatalf("MkdirAll fixing mode: %v %v", changed, err)
	}
	if changed, err = r.MkdirAll("/root/.ssh", 0o700, 0o755, Keep); err != nil || changed {
		t.Fatalf("MkdirAll again: %v %v", changed, err)
	}
	st, _ := os.Stat(filepath.Join(dir, "root/.ssh"))
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", st.Mode().Perm())
	}
}

func TestLock(t *testing.T) {
	r, dir := newRoot(t)
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	unlock, err := r.Lock("/etc/.pwd.lock", 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := r.Lock("/nodir/.pwd.lock", 0); err == nil {
		t.Error("lock in a missing directory succeeded")
	}
}
