package sysroot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var opts644 = WriteOptions{Mode: 0o644, Owner: Keep, MkdirMode: 0o755}

// stagedRoot returns a Root in a batch over a temp dir holding
// /etc/hostname = "old\n", whose commits use syncfs.
func stagedRoot(t *testing.T) (*Root, string) {
	t.Helper()
	r, dir := newRoot(t)
	if err := os.WriteFile(filepath.Join(mkdirs(t, dir, "etc"), "hostname"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Dirty = func() (int64, error) { return 0, nil }
	r.Batch()
	t.Cleanup(func() { r.EndBatch() })
	return r, dir
}

// mustWrite writes name (mode 0644) through r or fails the test.
func mustWrite(t *testing.T, r *Root, name, data string) {
	t.Helper()
	if _, err := r.WriteFile(name, []byte(data), opts644); err != nil {
		t.Fatal(err)
	}
}

func fileIs(t *testing.T, dir, name, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || string(b) != want {
		t.Errorf("%s holds %q (%v), want %q", name, b, err, want)
	}
}

// TestStagedNameReadsNew: every way of looking at a staged name through
// the Root commits first and sees the new file; other names do not
// commit.
func TestStagedNameReadsNew(t *testing.T) {
	for _, c := range []struct {
		name string
		look func(r *Root) (string, error)
	}{
		{"ReadFile", func(r *Root) (string, error) { b, err := r.ReadFile("/etc/hostname", 0); return string(b), err }},
		{"Open", func(r *Root) (string, error) {
			f, err := r.Open("/etc/hostname")
			if err != nil {
				return "", err
			}
			defer f.Close()
			b := make([]byte, 64)
			n, err := f.Read(b)
			return string(b[:n]), err
		}},
		{"Lstat", func(r *Root) (string, error) {
			fi, err := r.Lstat("/etc/hostname")
			if err != nil {
				return "", err
			}
			return strings.Repeat("x", int(fi.Size())), nil
		}},
		{"ReadDirNames", func(r *Root) (string, error) {
			names, err := r.ReadDirNames("/etc")
			return strings.Join(names, ","), err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, dir := stagedRoot(t)
			if _, err := r.WriteFile("/etc/hostname", []byte("new-name\n"), opts644); err != nil {
				t.Fatal(err)
			}
			fileIs(t, dir, "etc/hostname", "old\n")
			// A read of another name leaves the write staged.
			if _, err := r.Lstat("/etc"); err != nil {
				t.Fatal(err)
			}
			if r.fsSyncs.Load() != 0 {
				t.Fatalf("a look at another name committed the batch")
			}
			got, err := c.look(r)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"ReadFile": "new-name\n", "Open": "new-name\n", "Lstat": "xxxxxxxxx", "ReadDirNames": "hostname"}[c.name]
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			fileIs(t, dir, "etc/hostname", "new-name\n")
			if f, d, fs := syncs(r); f != 1 || d != 1 || fs != 0 {
				t.Errorf("the commit of one write: %d file, %d dir syncs and %d syncfs; want 1, 1 and 0", f, d, fs)
			}
		})
	}
}

// TestStagedRewrite: a second write of a staged name compares with the
// staged bytes and replaces them; only the last version lands, and no
// temp file is left.
func TestStagedRewrite(t *testing.T) {
	r, dir := stagedRoot(t)
	steps := []struct {
		data        string
		wantChanged bool
	}{
		{"one\n", true},
		{"one\n", false}, // same as staged
		{"two\n", true},
		{"old\n", true}, // back to the file's bytes: still a change from what is staged
	}
	for _, s := range steps {
		changed, err := r.WriteFile("/etc/hostname", []byte(s.data), opts644)
		if err != nil || changed != s.wantChanged {
			t.Errorf("write %q: changed %v (%v), want %v", s.data, changed, err, s.wantChanged)
		}
	}
	mustWrite(t, r, "/etc/hostname", "final\n")
	temps := 0
	names, _ := os.ReadDir(filepath.Join(dir, "etc"))
	for _, n := range names {
		if strings.Contains(n.Name(), ".osm-") {
			temps++
		}
	}
	if temps != 1 {
		t.Errorf("%d temp files for one staged name, want 1", temps)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	fileIs(t, dir, "etc/hostname", "final\n")
	noTemps(t, dir)
}

// TestStagedUnderLock: writes made under a Lock are staged too, and the
// lock's release commits them before the lock is dropped, with every write
// staged before them in the roots of its BatchAll, in two syncfs calls;
// a release with nothing written under the lock commits nothing; a commit
// that fails is the release's error, and the lock is released all the same.
func TestStagedUnderLock(t *testing.T) {
	r, dir := stagedRoot(t)
	lyDir := t.TempDir()
	ly, err := New(lyDir)
	if err != nil {
		t.Fatal(err)
	}
	ly.Dirty = r.Dirty
	BatchAll(r, ly)
	t.Cleanup(func() { ly.EndBatch() })
	mustWrite(t, ly, "/conf/luoyun.conf", "conf\n")
	mustWrite(t, r, "/etc/hostname", "staged\n")
	before := r.Syncs().FileSystems + ly.Syncs().FileSystems
	unlock, err := r.Lock("/etc/.pwd.lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteFile("/etc/shadow", []byte("root:*:1::::::\n"), WriteOptions{Mode: 0o640, Owner: Keep}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, r, "/etc/hostname", "locked\n")
	if _, err := os.Stat(filepath.Join(dir, "etc/shadow")); err == nil {
		t.Errorf("a write under the lock is in place before the release")
	}
	fileIs(t, dir, "etc/hostname", "old\n")
	if err := unlock(); err != nil {
		t.Fatalf("release: %v", err)
	}
	fileIs(t, dir, "etc/shadow", "root:*:1::::::\n")
	fileIs(t, dir, "etc/hostname", "locked\n")
	fileIs(t, lyDir, "conf/luoyun.conf", "conf\n")
	if got := r.Syncs().FileSystems + ly.Syncs().FileSystems - before; got != 2 {
		t.Errorf("the release's commit did %d syncfs, want 2 (the temp files', then the renames')", got)
	}
	if got := r.Syncs().Files + ly.Syncs().Files + r.Syncs().Dirs + ly.Syncs().Dirs; got != 0 {
		t.Errorf("the release's commit did %d fsyncs, want none", got)
	}
	if err := unlock(); err != nil { // twice is harmless
		t.Errorf("second release: %v", err)
	}
	if err := Flush(r, ly); err != nil || r.Syncs().FileSystems+ly.Syncs().FileSystems-before != 2 {
		t.Errorf("Flush after the release: %v, %d syncfs in all, want nil and still 2", err, r.Syncs().FileSystems+ly.Syncs().FileSystems-before)
	}

	// After the lock, writes are staged until the commit; a lock with
	// nothing written under it commits nothing.
	mustWrite(t, r, "/etc/hosts", "127.0.0.1 x\n")
	unlock, err = r.Lock("/etc/.pwd.lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/hosts")); err == nil {
		t.Errorf("a write made before the lock was committed by a release with nothing written under it")
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	fileIs(t, dir, "etc/hosts", "127.0.0.1 x\n")
	noTemps(t, dir)

	// A commit that fails: the staged shadow cannot be renamed over what
	// is now a directory.
	unlock, err = r.Lock("/etc/.pwd.lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteFile("/etc/gshadow", []byte("root:*::\n"), WriteOptions{Mode: 0o640, Owner: Keep}); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "etc/gshadow"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err == nil || !strings.Contains(err.Error(), "/etc/gshadow") {
		t.Errorf("release with a failing commit: %v, want an error naming /etc/gshadow", err)
	}
	again, err := r.Lock("/etc/.pwd.lock", 0)
	if err != nil {
		t.Fatalf("the lock was not released after a failed commit: %v", err)
	}
	again()
	noTemps(t, dir)
}

// TestStagedRemoveAndTree: removing a staged name, or the tree holding
// one, leaves nothing behind; renaming the tree moves the committed file.
func TestStagedRemoveAndTree(t *testing.T) {
	r, dir := stagedRoot(t)
	mustWrite(t, r, "/etc/hostname", "gone\n")
	if removed, err := r.Remove("/etc/hostname"); err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/hostname")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removed staged name came back: %v", err)
	}
	mustWrite(t, r, "/app/a/conf", "c\n")
	if err := r.Rename("/app/a", "/app/b"); err != nil {
		t.Fatal(err)
	}
	fileIs(t, dir, "app/b/conf", "c\n")
	mustWrite(t, r, "/app/b/more", "m\n")
	if err := r.RemoveAll("/app"); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RemoveAll of a tree with a staged file: %v", err)
	}
	noTemps(t, dir)
}

// TestFlushTwoRoots: two roots on one file system commit together with
// two syncfs in all, in the order of the writes.
func TestFlushTwoRoots(t *testing.T) {
	base := t.TempDir()
	var roots []*Root
	for _, d := range []string{"sys", "ly"} {
		mkdirs(t, base, d)
		r, err := New(filepath.Join(base, d))
		if err != nil {
			t.Fatal(err)
		}
		r.Dirty = func() (int64, error) { return 0, nil }
		r.Batch()
		roots = append(roots, r)
	}
	var order []string
	for _, r := range roots {
		r.Hook = func(s Stage, name string) {
			if s == StageRenamed {
				order = append(order, name)
			}
		}
	}
	writes := []struct {
		root int
		name string
	}{{1, "/conf/luoyun.conf"}, {0, "/etc/shadow"}, {1, "/conf/instance-id"}, {0, "/etc/hosts"}}
	for _, w := range writes {
		if _, err := roots[w.root].WriteFile(w.name, []byte(w.name), opts644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Flush(roots...); err != nil {
		t.Fatal(err)
	}
	if n := roots[0].fsSyncs.Load() + roots[1].fsSyncs.Load(); n != 2 {
		t.Errorf("%d syncfs for two roots on one file system, want 2", n)
	}
	want := []string{"/conf/luoyun.conf", "/etc/shadow", "/conf/instance-id", "/etc/hosts"}
	if !slices.Equal(order, want) {
		t.Errorf("renamed in the order %v, want %v", order, want)
	}
	fileIs(t, base, "ly/conf/instance-id", "/conf/instance-id")
	fileIs(t, base, "sys/etc/hosts", "/etc/hosts")
}

// TestStagedCommitFailure: a staged write whose rename fails at the
// commit (its target became a non-empty directory) is reported by name,
// leaves no temp file, and the other writes land.
func TestStagedCommitFailure(t *testing.T) {
	r, dir := stagedRoot(t)
	mustWrite(t, r, "/etc/motd", "hi\n")
	mustWrite(t, r, "/etc/issue", "Debian\n")
	// Someone else makes /etc/motd a directory before the commit.
	if err := os.MkdirAll(filepath.Join(dir, "etc/motd/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := r.Flush()
	if err == nil || !strings.Contains(err.Error(), "etc/motd") {
		t.Fatalf("commit with a failing rename: %v, want an error naming etc/motd", err)
	}
	fileIs(t, dir, "etc/issue", "Debian\n")
	noTemps(t, dir)
}
