package sysroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// The tree operations below serve the app store and the package
// extractor: they build and move whole directory trees inside the root,
// with the same rules as the file writes (every component walked with
// openat and O_NOFOLLOW, no symlink below the root followed). They are not
// atomic one by one; the store makes them so by building a tree in a
// staging dir and moving it into place with one Rename.

// StageTreeRenamed is the Hook stage after a Rename.
const StageTreeRenamed Stage = "tree-renamed"

// Mkdir makes the directory name with mode; its parent must exist, and an
// existing name is an error (fs.ErrExist).
func (r *Root) Mkdir(name string, mode fs.FileMode) error {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	defer unix.Close(dirfd)
	if err := unix.Mkdirat(dirfd, base, uint32(mode.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	r.writes.Add(1)
	// mkdirat applies the umask; the mode asked for is the mode wanted.
	if err := unix.Fchmodat(dirfd, base, uint32(mode.Perm()), 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	return nil
}

// Create makes a new regular file name with mode (exactly, whatever the
// umask) and returns it open for writing. The parent must exist; an
// existing name, even a symlink, is an error (fs.ErrExist).
func (r *Root) Create(name string, mode fs.FileMode) (*os.File, error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, base, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: err}
	}
	r.writes.Add(1)
	f := os.NewFile(uintptr(fd), name)
	if err := f.Chmod(mode.Perm()); err != nil {
		f.Close()
		unix.Unlinkat(dirfd, base, 0)
		return nil, &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	return f, nil
}

// Open opens a regular file for reading; a symlink at name is refused.
func (r *Root) Open(name string) (*os.File, error) { return r.open(name) }

// Symlink makes name a symlink holding target. The target is not checked:
// the caller decides which targets are allowed.
func (r *Root) Symlink(target, name string) error {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	defer unix.Close(dirfd)
	if err := unix.Symlinkat(target, dirfd, base); err != nil {
		return &fs.PathError{Op: "symlink", Path: name, Err: err}
	}
	r.writes.Add(1)
	return nil
}

// Readlink returns the target of the symlink name.
func (r *Root) Readlink(name string) (string, error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", name, err)
	}
	defer unix.Close(dirfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, base, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(buf[:n]), nil
}

// Link makes newname a hard link to the regular file oldname; both are
// inside the root, and a symlink at oldname is linked as itself, never
// followed.
func (r *Root) Link(oldname, newname string) error {
	ofd, obase, err := r.openDir(oldname, 0)
	if err != nil {
		return fmt.Errorf("link %s: %w", oldname, err)
	}
	defer unix.Close(ofd)
	nfd, nbase, err := r.openDir(newname, 0)
	if err != nil {
		return fmt.Errorf("link %s: %w", newname, err)
	}
	defer unix.Close(nfd)
	if err := unix.Linkat(ofd, obase, nfd, nbase, 0); err != nil {
		return &fs.PathError{Op: "link", Path: newname, Err: err}
	}
	r.writes.Add(1)
	return nil
}

// Rename moves oldname to newname inside the root (one rename(2), so a
// whole directory tree moves at once) and never replaces: an existing
// newname is an error (fs.ErrExist). The parent of newname is fsynced,
// so the move survives a crash once Rename returns.
func (r *Root) Rename(oldname, newname string) error {
	if err := r.settleAll(); err != nil { // it may move or remove a staged file's directory
		return err
	}
	ofd, obase, err := r.openDir(oldname, 0)
	if err != nil {
		return fmt.Errorf("rename %s: %w", oldname, err)
	}
	defer unix.Close(ofd)
	nfd, nbase, err := r.openDir(newname, 0)
	if err != nil {
		return fmt.Errorf("rename %s: %w", newname, err)
	}
	defer unix.Close(nfd)
	err = unix.Renameat2(ofd, obase, nfd, nbase, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: check, then rename. The
		// store is the only writer of its dirs, so the gap is harmless.
		var st unix.Stat_t
		if unix.Fstatat(nfd, nbase, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			err = unix.EEXIST
		} else {
			err = unix.Renameat(ofd, obase, nfd, nbase)
		}
	}
	if err != nil {
		return &fs.PathError{Op: "rename", Path: oldname + " -> " + newname, Err: err}
	}
	r.writes.Add(1)
	r.hook(StageTreeRenamed, newname)
	if err := unix.Fsync(nfd); err != nil {
		return fmt.Errorf("rename %s: sync directory: %w", newname, err)
	}
	if ofd != nfd {
		unix.Fsync(ofd) // the old name's removal; durability only
	}
	return nil
}

// RemoveAll removes name and everything below it, like os.RemoveAll but
// rooted: a symlink is removed, never followed. A missing name is no
// error.
func (r *Root) RemoveAll(name string) error {
	if err := r.settleAll(); err != nil { // it may move or remove a staged file's directory
		return err
	}
	dirfd, base, err := r.openDir(name, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer unix.Close(dirfd)
	if err := r.removeAt(dirfd, base, 0); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// removeAt removes base in dirfd, recursing into directories.
func (r *Root) removeAt(dirfd int, base string, depth int) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil {
		r.writes.Add(1)
		return nil
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if depth > 4096 {
		return errors.New("directory tree too deep")
	}
	fd, err := openat(dirfd, base)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = r.removeAt(fd, n, depth+1); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	r.writes.Add(1)
	return nil
}

// SyncTree fsyncs every regular file and directory below name (and name),
// deepest first, so a tree built without syncing each file is on disk
// before it is renamed into place. Symlinks are not followed.
func (r *Root) SyncTree(name string) error {
	fd, err := r.openTree(name)
	if err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := syncDir(fd, 0); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// syncDir syncs what is below the directory fd, then fd; it closes fd.
func syncDir(fd, depth int) error {
	d := os.NewFile(uintptr(fd), "dir")
	defer d.Close()
	if depth > 4096 {
		return errors.New("directory tree too deep")
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			sub, err := openat(fd, n)
			if err != nil {
				return err
			}
			if err := syncDir(sub, depth+1); err != nil {
				return err
			}
		case unix.S_IFREG:
			f, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			err = unix.Fsync(f)
			unix.Close(f)
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	return unix.Fsync(fd)
}

// openTree opens the directory name (the root itself for "/").
func (r *Root) openTree(name string) (int, error) {
	parts, err := split(name)
	if err != nil {
		return -1, err
	}
	// A tree operation may list, move or remove a staged file's directory.
	if err := r.settleAll(); err != nil {
		return -1, err
	}
	if len(parts) == 0 {
		return unix.Open(r.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dirfd)
	return openat(dirfd, base)
}
