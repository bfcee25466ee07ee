package sysroot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
// a second syncfs makes the renames durable. syncfs writes back whatever
// else is dirty on the file system too, so a commit uses it only when the
// system has little dirty data (SyncfsBelow), and otherwise syncs file by
// file and directory by directory, as unstaged writes do.
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
//   - a write made while this Root holds a Lock is staged too, and the
//     lock's release commits it with the rest of the batch (the roots of
//     its BatchAll): a file written under lckpwdf's lock is in place
//     before the lock is released, and a boot whose locked write is its
//     last one commits everything with the same two syncs.
// Other processes see a staged file's old version until the commit; the
// boot commits before the config script runs.

// stagedWrite is a write whose temp file is written but not yet synced or
// renamed over its target.
type stagedWrite struct {
	seq       uint64 // the write's place in the order of all roots' writes
	root      *Root
	name      string // as given to WriteFile, for the hook and errors
	base, tmp string
	f         *os.File // the temp file, open until committed
	dirfd     int      // a dup of the directory's fd, open until committed
	dir       dirKey
	data      []byte
	mode      fs.FileMode
	owner     Owner
}

// writeSeq orders the staged writes of all roots.
var writeSeq atomic.Uint64

// stages reports whether a write now is to be staged, and notes a write
// staged under a Lock, for the release to commit.
func (r *Root) stages() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.batching && r.locks > 0 {
		r.lockWrote = true
	}
	return r.batching
}

// stage writes the temp file for name and stages its rename.
func (r *Root) stage(dirfd int, name, base string, data []byte, mode fs.FileMode, o Owner) error {
	k, err := dirKeyOf(dirfd)
	if err != nil {
		return err
	}
	removeStale(dirfd, fmt.Sprintf(tempPrefixPattern, base))
	f, tmp, err := writeTemp(dirfd, base, data, mode, o)
	if err != nil {
		return err
	}
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		f.Close()
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	r.mu.Lock()
	r.staged = append(r.staged, &stagedWrite{seq: writeSeq.Add(1), root: r, name: name, base: base, tmp: tmp, f: f, dirfd: fd,
		dir: k, data: bytes.Clone(data), mode: mode, owner: o})
	r.mu.Unlock()
	return nil
}

// findStaged returns the index of the staged write of base in dirfd's
// directory, or -1. r.mu is held.
func (r *Root) findStaged(dirfd int, base string) int {
	if len(r.staged) == 0 {
		return -1
	}
	k, err := dirKeyOf(dirfd)
	if err != nil {
		return -1
	}
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
// staged, and WriteFile goes on as usual).
func (r *Root) restage(dirfd int, name, base string, data []byte, o WriteOptions) (handled, changed bool, err error) {
	r.mu.Lock()
	i := r.findStaged(dirfd, base)
	if i < 0 {
		r.mu.Unlock()
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
	if r.locks > 0 {
		r.lockWrote = true // the release commits it
	}
	f, tmp, err := writeTemp(dirfd, base, data, mode, owner)
	if err != nil {
		r.mu.Unlock()
		return true, false, err
	}
	w.f.Close()
	unix.Unlinkat(dirfd, w.tmp, 0)
	w.f, w.tmp, w.data, w.mode, w.owner, w.name = f, tmp, bytes.Clone(data), mode, owner, name
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

// SyncfsBelow is how much dirty page cache (Dirty plus Writeback in
// /proc/meminfo, all file systems) a commit tolerates to use syncfs; with
// more, it syncs each file and directory instead. syncfs writes back
// everything dirty on the file system, not only the staged files: at 512
// KiB that is a few milliseconds on a slow cloud disk at worst, about what
// the eight syncs it saves cost, and nothing at a quiet boot.
const SyncfsBelow = 512 << 10

// Flush commits the staged writes of the roots together, then syncs the
// directories with a deferred sync (removals, writes under a lock). The
// temp files are synced, renamed in the order of the writes, and their
// directories synced; with little dirty data on the system (the first
// root's Dirty says, under SyncfsBelow) each of the two syncs is one
// syncfs per file system, otherwise one fsync per file and one per
// directory. Roots on one file system share the syncfs: a boot's two
// roots, /LuoYun and /, flush together. Outside a batch there is nothing
// to do. A staged write whose sync or rename fails is dropped (its temp
// removed, the old file left), and the error names it.
func Flush(roots ...*Root) error {
	if len(roots) == 0 {
		return nil
	}
	var ws []*stagedWrite
	for _, r := range roots {
		r.mu.Lock()
		ws = append(ws, r.staged...)
		r.staged = nil
		r.mu.Unlock()
	}
	slices.SortFunc(ws, func(a, b *stagedWrite) int { return cmp.Compare(a.seq, b.seq) })
	useSyncfs := false
	if len(ws) > 1 && roots[0].Dirty != nil {
		n, err := roots[0].Dirty()
		useSyncfs = err == nil && n < SyncfsBelow
	}
	var errs []error
	var dirs []*pendingDir
	byDir := map[dirKey]*pendingDir{}
	add := func(d *pendingDir) { // one sync per directory, whoever renamed into it
		if have := byDir[d.key]; have != nil {
			have.files = append(have.files, d.files...)
			unix.Close(d.fd)
			return
		}
		byDir[d.key], dirs = d, append(dirs, d)
	}
	synced := make([]error, len(ws))
	if useSyncfs {
		synced = syncFS(ws, func(w *stagedWrite) (int, uint64, *Root) { return w.dirfd, w.dir.dev, w.root })
	} else {
		for i, w := range ws {
			w.root.fileSyncs.Add(1)
			synced[i] = w.f.Sync()
		}
	}
	for i, w := range ws {
		err := synced[i]
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
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
		add(&pendingDir{fd: w.dirfd, key: w.dir, files: []dirFile{{w.root, w.name}}})
	}
	for _, r := range roots {
		r.mu.Lock()
		pending, order := r.pending, r.order
		r.pending, r.order = nil, nil
		r.mu.Unlock()
		for _, k := range order {
			add(pending[k])
		}
	}
	if useSyncfs {
		synced = syncFS(dirs, func(d *pendingDir) (int, uint64, *Root) { return d.fd, d.key.dev, d.files[0].root })
	} else {
		synced = make([]error, len(dirs))
		for i, d := range dirs {
			d.files[0].root.dirSyncs.Add(1)
			synced[i] = unix.Fsync(d.fd)
		}
	}
	for i, d := range dirs {
		if err := synced[i]; err != nil {
			first := d.files[0]
			errs = append(errs, fmt.Errorf("sync directory of %s: %w", first.root.show(first.name), err))
		} else {
			for _, f := range d.files {
				f.root.hook(StageDirSynced, f.name)
			}
		}
		unix.Close(d.fd)
	}
	return errors.Join(errs...)
}

// syncFS syncs each file system the items are on, once, and returns each
// item's error (its file system's).
func syncFS[T any](items []T, of func(T) (fd int, dev uint64, r *Root)) []error {
	errs := make([]error, len(items))
	done := map[uint64]error{}
	for i, it := range items {
		fd, dev, r := of(it)
		err, ok := done[dev]
		if !ok {
			r.fsSyncs.Add(1)
			if err = unix.Syncfs(fd); err != nil {
				err = fmt.Errorf("syncfs: %w", err)
			}
			done[dev] = err
		}
		errs[i] = err
	}
	return errs
}
