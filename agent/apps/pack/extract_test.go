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

// badArchives lists every refused archive; store's tests install them too.
func badArchives() []struct {
	name string
	data []byte
	code apperr.Code
	want string
} {
	good := packtest.Tar(false, hello()...)
	gz := packtest.Tar(true, hello()...)
	many := hello()
	for i := range 20 {
		many = append(many, E{Name: "f" + strings.Repeat("x", i)})
	}
	manyDirs := hello()
	for i := range 20 {
		manyDirs = append(manyDirs, E{Name: strings.Repeat("d/", i+1), Type: tar.TypeDir})
	}
	bomb := packtest.Tar(true, hello(E{Name: "zeros", Body: strings.Repeat("\x00", 2<<20)})...)
	corruptGz := append([]byte{}, gz...)
	corruptGz[len(corruptGz)/2] ^= 0xff
	return []struct {
		name string
		data []byte
		code apperr.Code
		want string
	}{
		{"empty", nil, apperr.BadRequest, "empty"},
		{"not a tar", []byte("hello, this is not an archive at all, just some text that goes on for a while ............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), apperr.BadRequest, "not a tar"},
		{"zero blocks only", make([]byte, 1024), apperr.BadRequest, "no entries"},
		{"truncated tar", good[:700], apperr.BadRequest, "truncated"},
		{"truncated gzip", gz[:len(gz)/2], apperr.BadRequest, "truncated"},
		{"corrupt gzip", corruptGz, apperr.BadRequest, ""},
		{"gzip magic then junk", []byte{0x1f, 0x8b, 1, 2, 3}, apperr.BadRequest, "gzip"},
		{"bomb size", bomb, apperr.TooLarge, "over"},
		{"bomb file count", packtest.Tar(true, many...), apperr.TooLarge, "entries"},
		{"bomb dir count", packtest.Tar(false, manyDirs...), apperr.TooLarge, "entries"},
		{"lying size header", packtest.Tar(false, hello(E{Name: "big", Body: "x", Size: 1 << 40})...), apperr.TooLarge, "over"},
		{"dotdot", packtest.Tar(false, hello(E{Name: "../evil", Body: "x"})...), apperr.BadRequest, `".."`},
		{"dotdot inside", packtest.Tar(false, hello(E{Name: "a/../../evil", Body: "x"})...), apperr.BadRequest, `".."`},
		{"absolute", packtest.Tar(false, hello(E{Name: "/etc/evil", Body: "x"})...), apperr.BadRequest, "absolute"},
		{"control byte", packtest.Tar(false, hello(E{Name: "a\x1bb", Body: "x"})...), apperr.BadRequest, "control"},
		{"newline name", packtest.Tar(false, hello(E{Name: "a\nb", Body: "x"})...), apperr.BadRequest, "control"},
		{"bad utf8", packtest.Tar(false, hello(E{Name: "a\xffb", Body: "x"})...), apperr.BadRequest, "UTF-8"},
		{"symlink out", packtest.Tar(false, hello(E{Name: "out", Type: tar.TypeSymlink, Link: "../secret"})...), apperr.BadRequest, "out of the package"},
		{"symlink out deep", packtest.Tar(false, hello(E{Name: "a/b/out", Type: tar.TypeSymlink, Link: "../../../x"})...), apperr.BadRequest, "out of the package"},
		{"symlink absolute", packtest.Tar(false, hello(E{Name: "out", Type: tar.TypeSymlink, Link: "/etc/shadow"})...), apperr.BadRequest, "absolute"},
		{"symlink chain out", packtest.Tar(false, hello(E{Name: "d", Type: tar.TypeSymlink, Link: "."}, E{Name: "e", Type: tar.TypeSymlink, Link: "d/.."})...), apperr.BadRequest, "out of the package"},
		{"symlink dangling", packtest.Tar(false, hello(E{Name: "l", Type: tar.TypeSymlink, Link: "nothing"})...), apperr.BadRequest, "does not exist"},
		{"symlink loop", packtest.Tar(false, hello(E{Name: "l1", Type: tar.TypeSymlink, Link: "l2"}, E{Name: "l2", Type: tar.TypeSymlink, Link: "l1"})...), apperr.BadRequest, "levels"},
		{"write through symlink", packtest.Tar(false, hello(E{Name: "dir", Type: tar.TypeSymlink, Link: "bin"}, E{Name: "dir/x", Body: "x"})...), apperr.BadRequest, "symlink"},
		{"hard link out", packtest.Tar(false, hello(E{Name: "h", Type: tar.TypeLink, Link: "../secret"})...), apperr.BadRequest, "hard link"},
		{"hard link absolute", packtest.Tar(false, hello(E{Name: "h", Type: tar.TypeLink, Link: "/etc/passwd"})...), apperr.BadRequest, "hard link"},
		{"hard link forward", packtest.Tar(false, append([]E{{Name: "h", Type: tar.TypeLink, Link: "bin/hello"}}, hello()...)...), apperr.BadRequest, "hard link"},
		{"hard link to dir", packtest.Tar(false, hello(E{Name: "h", Type: tar.TypeLink, Link: "bin"})...), apperr.BadRequest, "hard link"},
		{"char device", packtest.Tar(false, hello(E{Name: "null", Type: tar.TypeChar})...), apperr.BadRequest, "device"},
		{"block device", packtest.Tar(false, hello(E{Name: "sda", Type: tar.TypeBlock})...), apperr.BadRequest, "device"},
		{"fifo", packtest.Tar(false, hello(E{Name: "p", Type: tar.TypeFifo})...), apperr.BadRequest, "FIFO"},
		{"setuid", packtest.Tar(false, hello(E{Name: "su", Body: "x", Mode: 0o4755})...), apperr.BadRequest, "setuid"},
		{"setgid dir", packtest.Tar(false, hello(E{Name: "sg/", Type: tar.TypeDir, Mode: 0o2755})...), apperr.BadRequest, "setgid"},
		{"sticky", packtest.Tar(false, hello(E{Name: "st/", Type: tar.TypeDir, Mode: 0o1777})...), apperr.BadRequest, "sticky"},
		{"duplicate", packtest.Tar(false, hello(E{Name: "bin/hello", Body: "again", Mode: 0o755})...), apperr.BadRequest, "twice"},
		{"duplicate cleaned", packtest.Tar(false, hello(E{Name: "./bin//hello", Body: "again", Mode: 0o755})...), apperr.BadRequest, "twice"},
		{"file where dir needed", packtest.Tar(false, hello(E{Name: "bin/hello/x", Body: "x"})...), apperr.BadRequest, "archive"},
		{"no manifest", packtest.Tar(false, E{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, "no manifest.json"},
		{"manifest not at top", packtest.Tar(false, E{Name: "sub/manifest.json", Body: packtest.Manifest("a", "1").Body}, E{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, "no manifest.json"},
		{"manifest is a dir", packtest.Tar(false, E{Name: "manifest.json/", Type: tar.TypeDir}), apperr.BadRequest, "no manifest.json"},
		{"manifest symlink", packtest.Tar(false, E{Name: "m", Body: packtest.Manifest("a", "1").Body}, E{Name: "manifest.json", Type: tar.TypeSymlink, Link: "m"}), apperr.BadRequest, "no manifest.json"},
		{"manifest invalid", packtest.Tar(false, E{Name: "manifest.json", Body: "{"}), apperr.BadRequest, "manifest"},
		{"manifest bad id", packtest.Tar(false, packtest.Manifest("Bad_ID", "1"), E{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, `"id"`},
		{"manifest unknown key", packtest.Tar(false, packtest.Manifest("a", "1", `"restrat": "no"`), E{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, `unknown key "restrat"`},
		{"exec missing", packtest.Tar(false, packtest.Manifest("a", "1")), apperr.BadRequest, "does not exist"},
		{"exec not executable", packtest.Tar(false, packtest.Manifest("a", "1"), E{Name: "bin/hello", Mode: 0o644, Body: "x"}), apperr.BadRequest, "not executable"},
		{"exec a dir", packtest.Tar(false, packtest.Manifest("a", "1"), E{Name: "bin/hello/", Type: tar.TypeDir}), apperr.BadRequest, "not a regular file"},
		{"exec outside", packtest.Tar(false, E{Name: "manifest.json", Body: `{"id": "a", "version": "1", "exec": "../sh"}`}), apperr.BadRequest, `".."`},
		{"exec absolute", packtest.Tar(false, E{Name: "manifest.json", Body: `{"id": "a", "version": "1", "exec": "/bin/sh"}`}), apperr.BadRequest, `absolute`},
		{"exec via symlink out", packtest.Tar(false, packtest.Manifest("a", "1"), E{Name: "bin/", Type: tar.TypeDir}, E{Name: "bin/hello", Type: tar.TypeSymlink, Link: "../../bin/sh"}), apperr.BadRequest, "out of the package"},
		{"workdir missing", packtest.Tar(false, append(hello()[1:], packtest.Manifest("a", "1", `"workdir": "var"`))...), apperr.BadRequest, `"workdir"`},
	}
}

func TestExtractRefused(t *testing.T) {
	lim := Limits{MaxBytes: 1 << 20, MaxFiles: 12}
	for _, tc := range badArchives() {
		t.Run(tc.name, func(t *testing.T) {
			r, dir := stage(t)
			_, err := Extract(context.Background(), bytes.NewReader(tc.data), r, "/stage", lim)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := apperr.CodeOf(err); got != tc.code {
				t.Errorf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		r, dir := stage(t)
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
