package pack

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/sysroot"
)

type E = packtest.Entry

// stage makes a root with an empty /stage dir, and a secret beside the
// root that no archive may reach.
func stage(t testing.TB) (*sysroot.Root, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(dir, "stage"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "secret"), []byte("s"), 0o600)
	r, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func hello(extra ...E) []E { return append(packtest.Hello("hello", "1.0.0"), extra...) }

func TestExtractGood(t *testing.T) {
	for _, gz := range []bool{false, true} {
		r, dir := stage(t)
		entries := hello(
			E{Name: "./share/", Type: tar.TypeDir, Mode: 0o777},
			E{Name: "share/a.txt", Body: "a", Mode: 0o666},
			E{Name: "share/b.txt", Type: tar.TypeLink, Link: "share/a.txt"},
			E{Name: "share/up", Type: tar.TypeSymlink, Link: "../bin/hello"},
			E{Name: "run", Type: tar.TypeSymlink, Link: "share/up"},
			E{Name: "deep/x/y/z", Body: "z"},
		)
		m, err := Extract(context.Background(), bytes.NewReader(packtest.Tar(gz, entries...)), r, "/stage", Limits{})
		if err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		if m.ID != "hello" || m.Version != "1.0.0" {
			t.Errorf("manifest %+v", m)
		}
		st, err := os.Stat(filepath.Join(dir, "stage/share/a.txt"))
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("share/a.txt: %v, mode %v, want 0644 (group/world write dropped)", err, st.Mode())
		}
		if st, _ := os.Stat(filepath.Join(dir, "stage/share")); st.Mode().Perm() != 0o755 {
			t.Errorf("share/ mode %v, want 0755", st.Mode().Perm())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "stage/run")); string(b) != "#!/bin/sh\necho hello 1.0.0\n" {
			t.Errorf("run -> share/up -> bin/hello reads %q", b)
		}
	}
	// Exec may be a symlink to a file inside.
	r, _ := stage(t)
	entries := []E{packtest.Manifest("hello", "1", `"workdir": "share"`), {Name: "share/", Type: tar.TypeDir},
		{Name: "bin/real", Mode: 0o755, Body: "#!/bin/sh\n"}, {Name: "bin/hello", Type: tar.TypeSymlink, Link: "real"}}
	if _, err := Extract(context.Background(), bytes.NewReader(packtest.Tar(true, entries...)), r, "/stage", Limits{}); err != nil {
		t.Errorf("exec as symlink: %v", err)
	}
}

func TestExtractRefused(t *testing.T) {
	lim := Limits{MaxBytes: packtest.BadMaxBytes, MaxFiles: packtest.BadMaxFiles}
	for _, tc := range append(packtest.BadArchives(), packtest.BadBundles()...) {
		t.Run(tc.Name, func(t *testing.T) {
			r, dir := stage(t)
			_, err := Extract(context.Background(), bytes.NewReader(tc.Data), r, "/stage", lim)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := apperr.CodeOf(err); got != tc.Code {
				t.Errorf("code = %q, want %q (%v)", got, tc.Code, err)
			}
			if !strings.Contains(err.Error(), tc.Want) {
				t.Errorf("error %q does not say %q", err, tc.Want)
			}
			checkInside(t, dir)
		})
	}
}

// checkInside fails if anything but the stage dir is in the root, or
// the secret beside it changed.
func checkInside(t testing.TB, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "stage" {
		t.Errorf("root holds %v, want only stage", entries)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "secret")); err != nil || string(b) != "s" {
		t.Errorf("secret beside the root: %q, %v", b, err)
	}
	entries, _ = os.ReadDir(filepath.Dir(dir))
	if len(entries) != 2 {
		t.Errorf("beside the root: %v, want root and secret", entries)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeSetuid|fs.ModeSetgid) != 0 {
			t.Errorf("%s has mode %v", p, d.Type())
		}
		return nil
	})
}

func FuzzExtract(f *testing.F) {
	f.Add(packtest.Tar(false, hello()...))
	f.Add(packtest.Tar(true, hello(E{Name: "l", Type: tar.TypeSymlink, Link: "bin/hello"}, E{Name: "h", Type: tar.TypeLink, Link: "bin/hello"})...))
	f.Add(packtest.Tar(false, E{Name: "../x", Body: "x"}))
	f.Add([]byte{0x1f, 0x8b})
	f.Add(packtest.Tar(false, packtest.Bundle("b", packtest.BundleConfig([]string{"/bin/sh"}),
		E{Name: "bin/sh", Type: tar.TypeSymlink, Link: "/bin/busybox"}, E{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777})...))
	r, dir := stage(f) // one root per worker, emptied per input: a temp dir each costs more than the extraction
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.RemoveAll(filepath.Join(dir, "stage")); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(dir, "stage"), 0o755)
		m, err := Extract(context.Background(), bytes.NewReader(data), r, "/stage", Limits{MaxBytes: 1 << 20, MaxFiles: 100})
		if err != nil && apperr.CodeOf(err) == apperr.Internal {
			t.Fatalf("internal error for archive input: %v", err)
		}
		if err == nil && !ValidID(m.ID) {
			t.Fatalf("accepted manifest %+v", m)
		}
		checkInside(t, dir)
	})
}

func TestUnpackWithoutManifest(t *testing.T) {
	r, _ := stage(t)
	data := packtest.Tar(false, E{Name: "b/config.json", Body: "{}"}, E{Name: "b/rootfs/bin/sh", Mode: 0o755, Body: "x"},
		E{Name: "b/rootfs/bin/ash", Type: tar.TypeSymlink, Link: "sh"})
	tree, err := Unpack(context.Background(), bytes.NewReader(data), r, "/stage", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	name, fi, err := tree.Resolve("b/rootfs/bin/ash")
	if err != nil || name != "b/rootfs/bin/sh" || !fi.Mode().IsRegular() || tree.Entries() != 3 || tree.Bytes() != 3 {
		t.Errorf("Resolve = %q %v %v; entries %d bytes %d", name, fi, err, tree.Entries(), tree.Bytes())
	}
	if _, _, err := tree.Resolve("b/../../x"); err == nil {
		t.Error("Resolve left the tree")
	}
}
