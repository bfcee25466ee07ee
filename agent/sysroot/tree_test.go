package sysroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestTreeOps(t *testing.T) {
	r, dir := newRoot(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Mkdir("/a", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := r.Mkdir("/a", 0o750); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Mkdir err = %v, want ErrExist", err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "a")); st.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, want 0750", st.Mode().Perm())
	}
	f, err := r.Create("/a/f", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	f.Close()
	if _, err := r.Create("/a/f", 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create err = %v, want ErrExist", err)
	}
	if err := r.Link("/a/f", "/a/g"); err != nil {
		t.Fatal(err)
	}
	if err := r.Symlink("f", "/a/l"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Readlink("/a/l"); got != "f" || err != nil {
		t.Errorf("Readlink = %q, %v", got, err)
	}
	// A symlink to outside is made (the caller checks targets) but never
	// followed by the tree operations.
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"create through symlink": func() error { _, err := r.Create("/out/x", 0o644); return err }(),
		"mkdir through symlink":  r.Mkdir("/out/x", 0o755),
		"link through symlink":   r.Link("/out/secret", "/a/s"),
		"open symlink":           func() error { _, err := r.Open("/a/l"); return err }(),
	} {
		if !errors.Is(err, ErrSymlink) {
			t.Errorf("%s: err = %v, want ErrSymlink", name, err)
		}
	}
	if err := r.SyncTree("/a"); err != nil {
		t.Errorf("SyncTree: %v", err)
	}
	names, err := r.ReadDirNames("/a")
	sort.Strings(names)
	if strings.Join(names, ",") != "f,g,l" || err != nil {
		t.Errorf("ReadDirNames = %v, %v", names, err)
	}
	if err := r.Mkdir("/b", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.Rename("/a", "/b"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Rename over a dir err = %v, want ErrExist", err)
	}
	if err := r.Rename("/a", "/b/a"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveAll("/out"); err != nil { // the symlink, not its target
		t.Fatal(err)
	}
	if err := r.RemoveAll("/b"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveAll("/b"); err != nil {
		t.Errorf("RemoveAll of a missing name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("outside file gone: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("root holds %d entries after RemoveAll", len(left))
	}
}
