package sysroot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Staged writes. Outside a batch, an atomic write costs two syncs: the
// temp file's (its bytes must be on disk before the rename makes them the
// file) and its directory's (the rename's). A first boot writing seven
// files paid fourteen, then ten with the directory syncs batched (see
// Batch). In a batch, WriteFile now writes the temp file and stops there:
// the write is staged. Flush commits every staged write at once with two
// syncs per file system whatever their number: syncfs(2) puts all the temp
// files' bytes on disk, the renames follow in the order of the writes, and
// a second syncfs makes the renames durable.
//
// The guarantee is the one each write had: a crash leaves the old file or
// the new one, never half (before the commit the old file is untouched and
// the temp file is swept by the next write of that name). What staging
// changes is when the new file appears, so a staged name is never seen
// half-done through this Root:
//   - WriteFile of a staged name compares with, and replaces, the staged
//     bytes;
//   - any other operation on a staged name (ReadFile, Open, Lstat, Remove,
//     Rename, …) commits the batch's staged writes first, and so does any
//     operation on a whole tree (ReadDirNames, RemoveAll, SyncTree);
//   - while this Root holds a Lock, writes are not staged: a file written
//     under lckpwdf's lock is in place before the lock is released.
// Other processes see a staged file's old version until the commit; the
// boot commits before the config script runs.
//
// syncfs writes back everything dirty on the file system, not only these
// files: cheap at boot, when little else is, and the reason staging is
// for batches only.

// stagedWrite is a write whose temp file is written but not yet synced or
// renamed over its target.
type stagedWrite struct {
	seq       uint64 // the write's place in the order of all roots' writes
	root      *Root
	name      string // as given to WriteFile, for the hook and errors
	base, tmp string
	dirfd     int // a dup of the directory's fd, open until committed
	dir       dirKey
	data      []byte
	mode      fs.FileMode
	owner     Owner
}

// writeSeq orders the staged writes of all roots.
var writeSeq atomic.Uint64

// stages reports whether a write now is to be staged.
func (r *Root) stages() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batching && r.locks == 0
}

// stage writes the temp file for name and stages its rename.
func (r *Root) stage(dirfd int, name, base string, data []byte, mode fs.FileMode, o Owner) error {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return err
	}
	removeStale(dirfd, fmt.Sprintf(tempPrefixPattern, base))
	f, tmp, err := writeTemp(dirfd, base, data, mode, o)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	r.mu.Lock()
	r.staged = append(r.staged, &stagedWrite{seq: writeSeq.Add(1), root: r, name: name, base: base, tmp: tmp, dirfd: fd,
		dir: dirKey{uint64(st.Dev), uint64(st.Ino)}, data: bytes.Clone(data), mode: mode, owner: o})
	r.mu.Unlock()
	return nil
}

// findStaged returns the index of the staged write of base in dirfd's
// directory, or -1. r.mu is held.
func (r *Root) findStaged(dirfd int, base string) int {
	if len(r.staged) == 0 {
		return -1
	}
	var st unix.Stat_t
	if unix.Fstat(dirfd, &st) != nil {
		return -1
	}
	k := dirKey{uint64(st.Dev), uint64(st.Ino)}
	for i, w := range r.staged {
		if w.dir == k && w.base == base {
			return i
		}
	}
	return -1
}

// restage handles a WriteFile of a name already staged: it compares with
// the staged bytes and, when they differ, stages the new ones in their
// place. It reports whether it handled the write (false: the name is not
// staged, or was committed first because a Lock is held, and WriteFile
// goes on as usual).
func (r *Root) restage(dirfd int, name, base string, data []byte, o WriteOptions) (handled, changed bool, err error) {
	r.mu.Lock()
	i := r.findStaged(dirfd, base)
	if i < 0 {
		r.mu.Unlock()
		return false, false, nil
	}
	if !r.batching || r.locks > 0 {
		r.mu.Unlock()
		if err := Flush(r); err != nil {
			return true, false, err
		}
		return false, false, nil
	}
	w := r.staged[i]
	mode, owner := o.Mode.Perm(), o.Owner
	if o.KeepMeta {
		mode, owner = w.mode, w.owner // the existing file's, taken when it was staged
	}
	if bytes.Equal(w.data, data) && w.mode == mode && w.owner == owner {
		r.mu.Unlock()
		return true, false, nil
	}
	f, tmp, err := writeTemp(dirfd, base, data, mode, owner)
	if err == nil {
		err = f.Close()
		if err != nil {
			unix.Unlinkat(dirfd, tmp, 0)
		}
	}
	if err != nil {
		r.mu.Unlock()
		return true, false, err
	}
	unix.Unlinkat(dirfd, w.tmp, 0)
	w.tmp, w.data, w.mode, w.owner, w.name = tmp, bytes.Clone(data), mode, owner, name
	w.seq = writeSeq.Add(1)
	// The newest write of a name goes last, as an unstaged one would.
	r.staged = append(append(r.staged[:i:i], r.staged[i+1:]...), w)
	r.mu.Unlock()
	r.writes.Add(1)
	return true, true, nil
}

// settleName commits the staged writes if base in dirfd's directory is
// one of them.
func (r *Root) settleName(dirfd int, base string) error {
	r.mu.Lock()
	i := r.findStaged(dirfd, base)
	r.mu.Unlock()
	if i < 0 {
		return nil
	}
	return Flush(r)
}

// settleAll commits the staged writes, if any.
func (r *Root) settleAll() error {
	r.mu.Lock()
	n := len(r.staged)
	r.mu.Unlock()
	if n == 0 {
		return nil
	}
	return Flush(r)
}

// Flush commits the staged writes of the roots together (their temp files
// synced with one syncfs per file system, then renamed in order, then one
// more syncfs per file system), then syncs each root's directories with a
// deferred sync. Roots on one file system share the syncs: a boot's two
// roots, /LuoYun and /, flush together. Outside a batch there is nothing
// to do. A staged write whose sync or rename fails is dropped (its temp
// removed, the old file left), and the error names it.
func Flush(roots ...*Root) error {
	var ws []*stagedWrite
	for _, r := range roots {
		r.mu.Lock()
		ws = append(ws, r.staged...)
		r.staged = nil
		r.mu.Unlock()
	}
	slices.SortFunc(ws, func(a, b *stagedWrite) int { return cmp.Compare(a.seq, b.seq) })
	var errs []error
	durable := map[uint64]bool{} // file systems synced after every rename into them
	if len(ws) > 0 {
		failed := syncFS(ws)
		var renamed []*stagedWrite
		for _, w := range ws {
			err := failed[w.dir.dev]
			if err == nil {
				w.root.hook(StageTempWritten, w.name)
				if err = unix.Renameat(w.dirfd, w.tmp, w.dirfd, w.base); err != nil {
					err = fmt.Errorf("rename: %w", err)
				}
			}
			if err != nil {
				unix.Unlinkat(w.dirfd, w.tmp, 0)
				unix.Close(w.dirfd)
				errs = append(errs, fmt.Errorf("write %s: %w", w.root.show(w.name), err))
				continue
			}
			w.root.hook(StageRenamed, w.name)
			renamed = append(renamed, w)
		}
		failed = syncFS(renamed)
		for _, w := range renamed {
			if err := failed[w.dir.dev]; err != nil {
				errs = append(errs, fmt.Errorf("write %s: sync the rename: %w", w.root.show(w.name), err))
			} else {
				durable[w.dir.dev] = true
				w.root.hook(StageDirSynced, w.name)
			}
			unix.Close(w.dirfd)
		}
	}
	for _, r := range roots {
		errs = append(errs, r.flushDirs(durable))
	}
	return errors.Join(errs...)
}

// syncFS syncs each file system the writes are on, once, and returns the
// errors by device.
func syncFS(ws []*stagedWrite) map[uint64]error {
	failed := map[uint64]error{}
	done := map[uint64]bool{}
	for _, w := range ws {
		if done[w.dir.dev] {
			continue
		}
		done[w.dir.dev] = true
		w.root.fsSyncs.Add(1)
		if err := unix.Syncfs(w.dirfd); err != nil {
			failed[w.dir.dev] = fmt.Errorf("syncfs: %w", err)
		}
	}
	return failed
}
