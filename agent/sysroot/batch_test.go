package sysroot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// syncs is every sync r has done: temp files', directories' and file
// systems'.
func syncs(r *Root) (file, dir, fs int64) {
	return r.fileSyncs.Load(), r.dirSyncs.Load(), r.fsSyncs.Load()
}

// TestBatchSyncs: outside a batch every write syncs its temp file and its
// directory, and a removal its directory; in a batch, five writes into two
// directories and a removal cost two syncfs in all at EndBatch when little
// data is dirty, and otherwise five file syncs and two directory syncs;
// each write's hook sees temp-written, renamed and dir-synced in that
// order. Until the commit the files hold their old bytes.
func TestBatchSyncs(t *testing.T) {
	type event struct {
		stage Stage
		name  string
	}
	writes := []string{"/etc/shadow", "/etc/hostname", "/etc/hosts", "/root/.ssh/authorized_keys", "/etc/resolv.conf"}
	quiet := func() (int64, error) { return 4 << 10, nil }
	busy := func() (int64, error) { return SyncfsBelow, nil }
	for _, c := range []struct {
		name                string
		batch               bool
		dirty               func() (int64, error)
		wantFile, wantDir   int64
		wantFS              int64
		wantOldBeforeCommit bool
	}{
		{"no batch: two syncs per write", false, quiet, 5, 6, 0, false},
		{"batch, little dirty data: two syncfs in all", true, quiet, 0, 0, 2, true},
		{"batch, much dirty data: each file and directory once", true, busy, 5, 2, 0, true},
		{"batch, dirty data unknown: each file and directory once", true, nil, 5, 2, 0, true},
		{"batch, meminfo unreadable: each file and directory once", true, MeminfoDirty("/nonexistent/meminfo"), 5, 2, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, dir := newRoot(t)
			r.Dirty = c.dirty
			etc := mkdirs(t, dir, "etc")
			if err := os.WriteFile(filepath.Join(etc, "old"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte("before\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var events []event
			r.Hook = func(s Stage, name string) { mu.Lock(); events = append(events, event{s, name}); mu.Unlock() }
			if c.batch {
				r.Batch()
			}
			for _, w := range writes {
				changed, err := r.WriteFile(w, []byte(w+"\n"), WriteOptions{Mode: 0o644, Owner: Keep, MkdirMode: 0o700})
				if err != nil || !changed {
					t.Fatalf("write %s: changed %v, %v", w, changed, err)
				}
			}
			if _, err := r.Remove("/etc/old"); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(etc, "hostname")); (string(b) == "before\n") != c.wantOldBeforeCommit {
				t.Errorf("before the batch ends /etc/hostname holds %q", b)
			}
			if c.batch {
				if len(events) != 0 {
					t.Errorf("in the batch: events %v before EndBatch, want none", events)
				}
				if err := r.EndBatch(); err != nil {
					t.Fatal(err)
				}
			}
			if f, d, fs := syncs(r); f != c.wantFile || d != c.wantDir || fs != c.wantFS {
				t.Errorf("syncs: %d file, %d dir, %d syncfs; want %d, %d, %d", f, d, fs, c.wantFile, c.wantDir, c.wantFS)
			}
			for _, w := range writes {
				ti := slices.Index(events, event{StageTempWritten, w})
				ri := slices.Index(events, event{StageRenamed, w})
				si := slices.Index(events, event{StageDirSynced, w})
				if ti < 0 || ri < ti || si < ri {
					t.Errorf("%s: temp written at %d, renamed at %d, dir synced at %d", w, ti, ri, si)
				}
			}
			for _, w := range writes {
				if b, err := os.ReadFile(filepath.Join(dir, w)); err != nil || string(b) != w+"\n" {
					t.Errorf("%s: %q %v", w, b, err)
				}
			}
			noTemps(t, dir)
			// After EndBatch a write syncs at once again.
			f0, d0, _ := syncs(r)
			if _, err := r.WriteFile("/etc/motd", []byte("hi\n"), WriteOptions{Mode: 0o644, Owner: Keep}); err != nil {
				t.Fatal(err)
			}
			if f, d, _ := syncs(r); f-f0 != 1 || d-d0 != 1 {
				t.Errorf("after the batch: %d file and %d dir syncs for a write, want 1 and 1", f-f0, d-d0)
			}
		})
	}
}

// TestFlushKeepsBatch: Flush commits what is staged and the batch goes
// on; Flush outside a batch does nothing.
func TestFlushKeepsBatch(t *testing.T) {
	r, dir := newRoot(t)
	r.Dirty = func() (int64, error) { return 0, nil }
	if err := r.Flush(); err != nil || r.fsSyncs.Load() != 0 || r.dirSyncs.Load() != 0 {
		t.Fatalf("Flush outside a batch: %v, %d syncfs, %d dir syncs", err, r.fsSyncs.Load(), r.dirSyncs.Load())
	}
	r.Batch()
	write := func(name string) {
		t.Helper()
		if _, err := r.WriteFile(name, []byte(name), WriteOptions{Mode: 0o600, Owner: Keep, MkdirMode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/ssh/ssh_host_ed25519_key")
	write("/etc/ssh/ssh_host_ed25519_key.pub")
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := r.fsSyncs.Load(); got != 2 {
		t.Errorf("after Flush: %d syncfs, want 2", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/ssh/ssh_host_ed25519_key.pub")); err != nil {
		t.Errorf("after Flush: %v", err)
	}
	write("/instance-id")
	if got := r.fsSyncs.Load(); got != 2 {
		t.Errorf("a write after Flush synced at once (%d syncfs): the batch ended", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "instance-id")); err == nil {
		t.Errorf("a write after Flush is in place before EndBatch: the batch ended")
	}
	if err := r.EndBatch(); err != nil {
		t.Fatal(err)
	}
	// One staged write alone is synced as itself: syncfs pays from two.
	if f, d, fs := syncs(r); f != 1 || d != 1 || fs != 2 {
		t.Errorf("after EndBatch: %d file, %d dir syncs and %d syncfs; want 1, 1 and 2", f, d, fs)
	}
}

// noTemps fails if a temp file is left anywhere below dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".osm-") {
			t.Errorf("temp file left: %s", p)
		}
		return nil
	})
}

func mkdirs(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
