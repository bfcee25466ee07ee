package sysroot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRemove(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, dir string)
		path        string
		wantRemoved bool
		wantErr     error // nil: none; errAny: some
		gone        string
		kept        string
	}{
		{name: "a file", path: "/etc/x", wantRemoved: true, gone: "etc/x",
			setup: func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "etc/x"), []byte("x"), 0o644) }},
		{name: "missing file", path: "/etc/none"},
		{name: "missing directory", path: "/nowhere/x"},
		{name: "a symlink is removed, its target kept", path: "/etc/link", wantRemoved: true, gone: "etc/link", kept: "target",
			setup: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, "target"), []byte("t"), 0o644)
				os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "etc/link"))
			}},
		{name: "a directory is refused", path: "/etc/d", wantErr: errAny, kept: "etc/d",
			setup: func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "etc/d"), 0o755) }},
		{name: "a symlink on the way is refused", path: "/ln/x", wantErr: ErrSymlink, kept: "real/x",
			setup: func(t *testing.T, dir string) {
				os.Mkdir(filepath.Join(dir, "real"), 0o755)
				os.WriteFile(filepath.Join(dir, "real/x"), []byte("x"), 0o644)
				os.Symlink("real", filepath.Join(dir, "ln"))
			}},
		{name: "an escape is refused", path: "/../x", wantErr: ErrEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dir := newRoot(t)
			os.Mkdir(filepath.Join(dir, "etc"), 0o755)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			removed, err := r.Remove(tt.path)
			switch {
			case tt.wantErr == nil && err != nil, tt.wantErr != nil && err == nil,
				tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Remove(%s) err = %v, want %v", tt.path, err, tt.wantErr)
			}
			if removed != tt.wantRemoved || (r.Writes() == 1) != tt.wantRemoved {
				t.Errorf("removed = %v, %d writes; want %v", removed, r.Writes(), tt.wantRemoved)
			}
			if _, err := os.Lstat(filepath.Join(dir, tt.gone)); tt.gone != "" && !os.IsNotExist(err) {
				t.Errorf("%s still there", tt.gone)
			}
			if _, err := os.Lstat(filepath.Join(dir, tt.kept)); tt.kept != "" && err != nil {
				t.Errorf("%s gone: %v", tt.kept, err)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestReadDirNames(t *testing.T) {
	r, dir := newRoot(t)
	os.MkdirAll(filepath.Join(dir, "var/log"), 0o755)
	os.WriteFile(filepath.Join(dir, "var/log/a"), nil, 0o644)
	os.Symlink("var", filepath.Join(dir, "v"))
	got, err := r.ReadDirNames("/var/log")
	if err != nil || !slices.Equal(got, []string{"a"}) {
		t.Errorf("ReadDirNames = %q, %v; want [a]", got, err)
	}
	if got, err := r.ReadDirNames("/var/none"); err != nil || len(got) != 0 {
		t.Errorf("missing dir = %q, %v; want none", got, err)
	}
	if _, err := r.ReadDirNames("/v/log"); !errors.Is(err, ErrSymlink) {
		t.Errorf("through a symlink: %v, want ErrSymlink", err)
	}
	if _, err := r.ReadDirNames("/v"); !errors.Is(err, ErrSymlink) {
		t.Errorf("a symlink itself: %v, want ErrSymlink", err)
	}
}
