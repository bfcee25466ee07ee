package sysroot

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestBatchSyncsEachDirOnce: in a batch, writes and removals sync each
// directory once, after the last rename into it, at Flush or EndBatch;
// outside one, every write syncs its directory at once.
func TestBatchSyncsEachDirOnce(t *testing.T) {
	type event struct {
		stage Stage
		name  string
	}
	writes := []string{"/etc/shadow", "/etc/hostname", "/etc/hosts", "/root/.ssh/authorized_keys", "/etc/resolv.conf"}
	for _, c := range []struct {
		name      string
		batch     bool
		wantSyncs int64
	}{
		{"no batch: one sync per write", false, 6},
		{"batch: one sync per directory", true, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, dir := newRoot(t)
			if err := os.WriteFile(filepath.Join(mkdirs(t, dir, "etc"), "old"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var events []event
			r.Hook = func(s Stage, name string) { mu.Lock(); events = append(events, event{s, name}); mu.Unlock() }
			if c.batch {
				r.Batch()
			}
			for _, w := range writes {
				if _, err := r.WriteFile(w, []byte(w+"\n"), WriteOptions{Mode: 0o644, Owner: Keep, MkdirMode: 0o700}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.Remove("/etc/old"); err != nil {
				t.Fatal(err)
			}
			synced := func() (n int) {
				for _, e := range events {
					if e.stage == StageDirSynced {
						n++
					}
				}
				return n
			}
			if c.batch {
				if n := synced(); n != 0 {
					t.Errorf("in the batch: %d dir-synced events before EndBatch, want 0", n)
				}
				if err := r.EndBatch(); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.dirSyncs.Load(); got != c.wantSyncs {
				t.Errorf("directory syncs %d, want %d", got, c.wantSyncs)
			}
			// Every write's hook reports its directory synced, after its rename.
			for _, w := range writes {
				ri := slices.Index(events, event{StageRenamed, w})
				si := slices.Index(events, event{StageDirSynced, w})
				if ri < 0 || si < ri {
					t.Errorf("%s: renamed at %d, dir synced at %d", w, ri, si)
				}
			}
			for _, w := range writes {
				if b, err := os.ReadFile(filepath.Join(dir, w)); err != nil || string(b) != w+"\n" {
					t.Errorf("%s: %q %v", w, b, err)
				}
			}
			// After EndBatch a write syncs at once again.
			before := r.dirSyncs.Load()
			if _, err := r.WriteFile("/etc/motd", []byte("hi\n"), WriteOptions{Mode: 0o644, Owner: Keep}); err != nil {
				t.Fatal(err)
			}
			if got := r.dirSyncs.Load() - before; got != 1 {
				t.Errorf("after the batch: %d syncs for a write, want 1", got)
			}
		})
	}
}

// TestFlushKeepsBatch: Flush syncs what is pending and the batch goes on;
// Flush outside a batch does nothing.
func TestFlushKeepsBatch(t *testing.T) {
	r, _ := newRoot(t)
	if err := r.Flush(); err != nil || r.dirSyncs.Load() != 0 {
		t.Fatalf("Flush outside a batch: %v, %d syncs", err, r.dirSyncs.Load())
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
	if got := r.dirSyncs.Load(); got != 1 {
		t.Errorf("after Flush: %d syncs, want 1", got)
	}
	write("/instance-id")
	if got := r.dirSyncs.Load(); got != 1 {
		t.Errorf("a write after Flush synced at once (%d syncs): the batch ended", got)
	}
	if err := r.EndBatch(); err != nil {
		t.Fatal(err)
	}
	if got := r.dirSyncs.Load(); got != 2 {
		t.Errorf("after EndBatch: %d syncs, want 2", got)
	}
}

func mkdirs(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
