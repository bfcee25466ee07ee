package sysroot

import (
	"slices"

	"golang.org/x/sys/unix"
)

// Batching directory syncs (and, in stage.go, staging the writes). An
// atomic write syncs the file before its rename, so a crash at any point leaves the old file or the new one; the
// directory's sync after the rename only makes the new name durable. A
// boot that writes seven files into three directories needs those three
// directories synced once, after the last rename into each, not once per
// file: between Batch and EndBatch a Root defers each directory's sync and
// does it once, at Flush or EndBatch.
//
// What a deferred sync gives up is the order in which renames become
// durable: after a power cut, a later file's new version may be there and
// an earlier one's not (each still old or new, never half). A writer whose
// next write vouches for earlier ones (a record saying "done") calls Flush
// first; Flush on a Root outside a batch does nothing.

// dirKey names a directory by device and inode, so that two paths to it
// share one sync.
type dirKey struct{ dev, ino uint64 }

// dirKeyOf returns the key of the directory open at dirfd.
func dirKeyOf(dirfd int) (dirKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return dirKey{}, err
	}
	return dirKey{uint64(st.Dev), uint64(st.Ino)}, nil
}

// pendingDir is a directory with renames whose sync is deferred.
type pendingDir struct {
	fd    int       // a dup of the directory's fd, kept open until synced
	key   dirKey    // the directory's
	files []dirFile // the files renamed into it, for the hook and errors
}

// dirFile is a file renamed into a pendingDir, and the Root whose hook
// sees it synced (a Flush of several roots may share a directory).
type dirFile struct {
	root *Root
	name string
}

// Batch starts deferring directory syncs until Flush or EndBatch.
func (r *Root) Batch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batching = true
}

// BatchAll starts a batch on each root and makes them one group: the
// commit a Lock's release forces on one of them (see Lock) commits the
// staged writes of all, as Flush(roots...) does.
func BatchAll(roots ...*Root) {
	roots = slices.Clone(roots)
	for _, r := range roots {
		r.Batch()
		r.mu.Lock()
		r.group = roots
		r.mu.Unlock()
	}
}

// EndBatch syncs every directory with a deferred sync, once each, and
// stops deferring.
func (r *Root) EndBatch() error {
	err := r.Flush()
	r.mu.Lock()
	r.batching, r.group = false, nil
	r.mu.Unlock()
	return err
}

// Flush commits the staged writes and syncs every directory with a
// deferred sync now, once each; a batch goes on. The hook sees
// StageDirSynced for each file renamed into a directory once it is synced.
func (r *Root) Flush() error { return Flush(r) }

// deferSync records that name was renamed into dirfd and reports whether
// the directory's sync is deferred (in a batch); if not, the caller syncs.
func (r *Root) deferSync(dirfd int, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.batching {
		return false
	}
	k, err := dirKeyOf(dirfd)
	if err != nil {
		return false
	}
	if d := r.pending[k]; d != nil {
		d.files = append(d.files, dirFile{r, name})
		return true
	}
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return false
	}
	if r.pending == nil {
		r.pending = map[dirKey]*pendingDir{}
	}
	r.pending[k] = &pendingDir{fd: fd, key: k, files: []dirFile{{r, name}}}
	r.order = append(r.order, k)
	return true
}
