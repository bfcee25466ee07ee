// Package sysroot is the one way the agent reads and writes system files.
//
// Every path is a slash path inside a root directory ("/" in production, a
// temp dir in tests and the demo). Paths are walked component by component
// with openat(2) and O_NOFOLLOW, so no path can escape the root and no
// symlink planted anywhere below it (say /root/.ssh -> /etc) is followed.
//
// Writes are atomic: the data goes to a temp file in the same directory,
// which gets its mode, owner and the old file's extended attributes
// (SELinux label, ACLs), is fsynced and then renamed over the target;
// the directory is fsynced after. In a batch the writes are staged and
// committed together at Flush, with one sync per file system or per file
// and directory (see Batch and stage.go). A crash leaves the old file or the new one,
// never half of either. Writes compare first and do nothing when the file
// already holds the wanted bytes, mode and owner, so reconcilers built on
// WriteFile write nothing on a second boot.
package sysroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned when a path component below the root is a symlink.
var ErrSymlink = errors.New("symlink refused")

// ErrEscape is returned for a path that is relative or climbs out of the root.
var ErrEscape = errors.New("path escapes the root")

// ErrTooLarge is returned by ReadFile when the file is over the caller's limit.
var ErrTooLarge = errors.New("file too large")

// Stage names a point inside an atomic write, for Hook.
type Stage string

// The stages of an atomic write, in order.
const (
	StageTempWritten  Stage = "temp-written" // temp file written and synced, not yet renamed
	StageRenamed      Stage = "renamed"      // rename done, directory not yet synced
	StageDirSynced    Stage = "dir-synced"   // write complete
	tempPrefixPattern       = ".%s.osm-"     // temp names: .<base>.osm-<random>
	maxReadDefault          = 16 << 20       // ReadFile's limit when the caller gives none
	lockPoll                = 20 * time.Millisecond
)

// Owner is a numeric owner for a file; -1 in a field leaves it as it is (or,
// for a new file, as the process creates it).
type Owner struct{ UID, GID int }

// Keep leaves ownership unchanged.
var Keep = Owner{-1, -1}

// Root is a directory standing for "/". Its zero value is not usable: call New.
type Root struct {
	dir string

	// Hook, when set, is called at each Stage of every atomic write. The
	// crash tests use it to kill the agent at exact points of a write.
	Hook func(stage Stage, name string)

	// Dirty, when set, returns how many bytes of the page cache are dirty
	// or under writeback (MeminfoDirty reads it from /proc/meminfo); a
	// batch's commit uses syncfs when that is under SyncfsBelow (see
	// Flush). Unset, commits sync file by file.
	Dirty func() (int64, error)

	writes atomic.Int64

	mu        sync.Mutex // guards the batch (batch.go, stage.go)
	batching  bool
	pending   map[dirKey]*pendingDir
	order     []dirKey       // pending's keys, in the order of their first rename
	staged    []*stagedWrite // writes waiting for Flush, in order (stage.go)
	group     []*Root        // the roots a commit forced by a Lock's release commits (BatchAll)
	locks     int            // Locks held
	lockWrote bool           // a write was staged while a Lock was held: commit before the release
	dirSyncs  atomic.Int64   // directory fsyncs (Syncs)
	fileSyncs atomic.Int64   // temp file fsyncs (Syncs)
	fsSyncs   atomic.Int64   // syncfs calls (Syncs)
}

// SyncCounts is how many syncs a Root has done, of each kind.
type SyncCounts struct {
	Files, Dirs, FileSystems int64 // fsync of temp files, fsync of directories, syncfs
}

// Syncs returns how many syncs this Root has done: what a write costs is
// mostly its syncs, so tests and benchmarks count them.
func (r *Root) Syncs() SyncCounts {
	return SyncCounts{Files: r.fileSyncs.Load(), Dirs: r.dirSyncs.Load(), FileSystems: r.fsSyncs.Load()}
}

// New returns a Root for dir ("" or "/" for the real root).
func New(dir string) (*Root, error) {
	if dir == "" {
		dir = "/"
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open root %s: not a directory", dir)
	}
	return &Root{dir: dir}, nil
}

// Dir returns the root directory as given to New.
func (r *Root) Dir() string { return r.dir }

// show names a path inside the root in an error as the file it really is
// (<dir>/etc/shadow for a scratch root), so nobody reads "/etc/shadow" in a
// message about a scratch copy and thinks the real one was touched.
func (r *Root) show(name string) string {
	if r.IsHost() {
		return name
	}
	return path.Join(r.dir, name)
}

// IsHost reports whether the root is the real "/", where kernel state (host
// name, network) belongs to the files being written.
func (r *Root) IsHost() bool { return path.Clean(r.dir) == "/" }

// Writes returns how many files and directories this Root has changed.
func (r *Root) Writes() int64 { return r.writes.Load() }

// Path returns the host path of name, for messages and for handing to
// programs that run inside the same root. It does not check for symlinks.
func (r *Root) Path(name string) (string, error) {
	parts, err := split(name)
	if err != nil {
		return "", err
	}
	return path.Join(append([]string{r.dir}, parts...)...), nil
}

// split checks name and returns its components.
func split(name string) ([]string, error) {
	if !strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%q: %w (must be absolute inside the root)", name, ErrEscape)
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%q: %w", name, ErrEscape)
		default:
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// openDir walks to the directory holding name and returns its fd and the
// final component. mkdir, when non-zero, creates missing directories with
// that mode (owned as the process).
//
// In a batch, a path whose write is staged (not yet renamed into place) is
// committed first, with the batch's other staged writes: whatever the
// caller does with name next sees the new file. WriteFile, which handles
// its own staged names, walks with walkDir.
func (r *Root) openDir(name string, mkdir fs.FileMode) (int, string, error) {
	dirfd, base, err := r.walkDir(name, mkdir)
	if err != nil {
		return -1, "", err
	}
	if err := r.settleName(dirfd, base); err != nil {
		unix.Close(dirfd)
		return -1, "", err
	}
	return dirfd, base, nil
}

// walkDir is openDir without committing a staged write of name.
func (r *Root) walkDir(name string, mkdir fs.FileMode) (int, string, error) {
	parts, err := split(name)
	if err != nil {
		return -1, "", err
	}
	if len(parts) == 0 {
		return -1, "", fmt.Errorf("%q: %w (no file name)", name, ErrEscape)
	}
	fd, err := unix.Open(r.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open root %s: %w", r.dir, err)
	}
	for i, p := range parts[:len(parts)-1] {
		next, err := openat(fd, p)
		if errors.Is(err, unix.ENOENT) && mkdir != 0 {
			if err = unix.Mkdirat(fd, p, uint32(mkdir.Perm())); err == nil || errors.Is(err, unix.EEXIST) {
				r.writes.Add(1)
				next, err = openat(fd, p)
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, "", fmt.Errorf("open %s: %w", r.show("/"+path.Join(parts[:i+1]...)), err)
		}
		fd = next
	}
	return fd, parts[len(parts)-1], nil
}

// openat opens a directory below dirfd without following a symlink.
func openat(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, ErrSymlink
		}
	}
	return fd, err
}

// Lstat returns the file's info without following a final symlink (a
// symlink in an earlier component is still refused).
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: r.show(name), Err: err}
	}
	return statInfo(base, &st), nil
}

// ReadFile reads a regular file, refusing symlinks and files over max bytes
// (max <= 0 means 16 MiB).
func (r *Root) ReadFile(name string, max int64) ([]byte, error) {
	if max <= 0 {
		max = maxReadDefault
	}
	f, err := r.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.show(name), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("read %s: %w (over %d bytes)", r.show(name), ErrTooLarge, max)
	}
	return data, nil
}

func (r *Root) open(name string) (*os.File, error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		err = ErrSymlink
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: err}
	}
	return f, nil
}

// WriteOptions says how WriteFile lays down a file.
type WriteOptions struct {
	Mode  fs.FileMode // permission bits of the file
	Owner Owner       // wanted owner; Keep leaves it
	// KeepMeta takes mode and owner from the existing file when there is
	// one (Mode and Owner then apply only to a new file).
	KeepMeta bool
	// MkdirMode, when non-zero, creates missing parent directories.
	MkdirMode fs.FileMode
}

// WriteFile makes name hold data with the given mode and owner, atomically.
// It reports whether anything changed; a file that already matches is left
// alone. A symlink at name is refused, not followed or replaced.
func (r *Root) WriteFile(name string, data []byte, o WriteOptions) (changed bool, err error) {
	dirfd, base, err := r.walkDir(name, o.MkdirMode)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	if staged, changed, err := r.restage(dirfd, name, base, data, o); staged {
		if err != nil {
			return false, fmt.Errorf("write %s: %w", r.show(name), err)
		}
		return changed, nil
	}

	mode, owner := o.Mode.Perm(), o.Owner
	var st unix.Stat_t
	switch err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return false, fmt.Errorf("write %s: %w", r.show(name), err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return false, fmt.Errorf("write %s: %w", r.show(name), ErrSymlink)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return false, fmt.Errorf("write %s: not a regular file", r.show(name))
	default:
		if o.KeepMeta {
			mode, owner = fs.FileMode(st.Mode).Perm(), Owner{int(st.Uid), int(st.Gid)}
		}
		if same(dirfd, base, &st, data, mode, owner) {
			return false, nil
		}
	}
	if r.stages() {
		err = r.stage(dirfd, name, base, data, mode, owner)
	} else {
		err = r.replace(dirfd, name, base, data, mode, owner)
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", r.show(name), err)
	}
	r.writes.Add(1)
	return true, nil
}

// same reports whether the existing file already has data, mode and owner.
func same(dirfd int, base string, st *unix.Stat_t, data []byte, mode fs.FileMode, o Owner) bool {
	if fs.FileMode(st.Mode).Perm() != mode || st.Size != int64(len(data)) ||
		(o.UID >= 0 && int(st.Uid) != o.UID) || (o.GID >= 0 && int(st.Gid) != o.GID) {
		return false
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	old, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	return err == nil && bytes.Equal(old, data)
}

func (r *Root) replace(dirfd int, name, base string, data []byte, mode fs.FileMode, o Owner) (err error) {
	removeStale(dirfd, fmt.Sprintf(tempPrefixPattern, base))
	f, tmp, err := writeTemp(dirfd, base, data, mode, o)
	if err != nil {
		return err
	}
	r.fileSyncs.Add(1)
	if err = f.Sync(); err != nil {
		f.Close()
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if err = f.Close(); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	r.hook(StageTempWritten, name)
	if err = unix.Renameat(dirfd, tmp, dirfd, base); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("rename: %w", err)
	}
	r.hook(StageRenamed, name)
	if r.deferSync(dirfd, name) {
		return nil // synced at Flush or EndBatch
	}
	r.dirSyncs.Add(1)
	if err := unix.Fsync(dirfd); err != nil {
		return fmt.Errorf("sync directory: %w", err) // the file is in place; only durability is in doubt
	}
	r.hook(StageDirSynced, name)
	return nil
}

// writeTemp writes data to a new temp file beside base, with the mode,
// owner and extended attributes the target is to have, and returns it
// open, not yet synced. On an error nothing is left behind.
func writeTemp(dirfd int, base string, data []byte, mode fs.FileMode, o Owner) (*os.File, string, error) {
	// math/rand, not crypto/rand: at early boot getrandom(2) blocks until
	// the entropy pool is ready (a second or more in a fresh VM), and a temp
	// name needs no secrecy: O_EXCL makes a clash an error, not a hazard.
	tmp := fmt.Sprintf(tempPrefixPattern, base) + strconv.FormatUint(rand.Uint64(), 36)
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("create temp: %w", err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	if err := fillTemp(f, dirfd, base, data, mode, o); err != nil {
		f.Close()
		unix.Unlinkat(dirfd, tmp, 0)
		return nil, "", err
	}
	return f, tmp, nil
}

func fillTemp(f *os.File, dirfd int, base string, data []byte, mode fs.FileMode, o Owner) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	if o.UID >= 0 || o.GID >= 0 {
		if err := f.Chown(o.UID, o.GID); err != nil {
			return err
		}
	}
	// After chown (which drops security.capability), before chmod (which
	// sets an ACL's mask from the mode's group bits).
	if err := copyXattrs(dirfd, base, int(f.Fd())); err != nil {
		return err
	}
	return f.Chmod(mode) // after chown, which may clear set-id bits
}

func (r *Root) hook(s Stage, name string) {
	if r.Hook != nil {
		r.Hook(s, name)
	}
}

// removeStale deletes temp files a crashed write left beside the target.
func removeStale(dirfd int, prefix string) {
	dfd, err := unix.Dup(dirfd)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(dfd), "dir")
	defer d.Close()
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			unix.Unlinkat(dirfd, n, 0)
		}
	}
}

// MkdirAll makes name a directory with mode and owner, creating parents
// with parentMode. It reports whether anything changed. A symlink anywhere
// on the path is refused.
func (r *Root) MkdirAll(name string, mode, parentMode fs.FileMode, o Owner) (changed bool, err error) {
	before := r.writes.Load()
	dirfd, base, err := r.openDir(name, parentMode)
	if err != nil {
		return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	if err := unix.Mkdirat(dirfd, base, uint32(mode.Perm())); err == nil {
		r.writes.Add(1)
	} else if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
	}
	fd, err := openat(dirfd, base)
	if err != nil {
		return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
	}
	sys := st.Sys().(*unixStat)
	if (o.UID >= 0 && int(sys.Uid) != o.UID) || (o.GID >= 0 && int(sys.Gid) != o.GID) {
		if err := d.Chown(o.UID, o.GID); err != nil {
			return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
		}
		r.writes.Add(1)
	}
	if st.Mode().Perm() != mode.Perm() {
		if err := d.Chmod(mode.Perm()); err != nil {
			return false, fmt.Errorf("mkdir %s: %w", r.show(name), err)
		}
		r.writes.Add(1)
	}
	return r.writes.Load() != before, nil
}

// Lock takes an exclusive fcntl lock on name (created 0600 if missing),
// the way lckpwdf(3) locks /etc/.pwd.lock, waiting up to timeout. The
// returned func releases it; calls after the first do nothing and return
// nil. In a batch, what was written under the lock is committed before the
// lock is released, together with every write staged before it in the
// roots of its BatchAll, and the release returns the commit's error (the
// lock is released all the same).
func (r *Root) Lock(name string, timeout time.Duration) (unlock func() error, err error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", r.show(name), err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	deadline := time.Now().Add(timeout)
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		if err == nil {
			r.mu.Lock()
			r.locks++
			r.mu.Unlock()
			var once sync.Once
			return func() error {
				var err error
				once.Do(func() { err = r.unlock(fd) })
				return err
			}, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) || time.Now().After(deadline) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", r.show(name), err)
		}
		time.Sleep(lockPoll)
	}
}

// unlock releases a Lock taken on fd. The outermost release first commits
// the batch if a write was staged under the lock, so that the file is in
// place before another writer can take the lock and read it.
func (r *Root) unlock(fd int) error {
	r.mu.Lock()
	commit := r.locks == 1 && r.lockWrote
	group := r.group
	r.mu.Unlock()
	var err error
	if commit {
		if len(group) == 0 {
			group = []*Root{r}
		}
		err = Flush(group...)
	}
	r.mu.Lock()
	r.locks--
	if r.locks == 0 {
		r.lockWrote = false
	}
	r.mu.Unlock()
	unix.Close(fd) // closing drops the lock
	return err
}
