package sysroot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Remove deletes the file (or symlink) name, and syncs its directory (in a
// batch, at its end). It
// reports whether anything was removed: a missing file, or a missing
// directory on the way, is no error. A directory is refused, and so is a
// symlink in an earlier component.
func (r *Root) Remove(name string) (removed bool, err error) {
	dirfd, base, err := r.openDir(name, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	if err := unix.Unlinkat(dirfd, base, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("remove %s: %w", r.show(name), err)
	}
	r.writes.Add(1)
	if r.deferSync(dirfd, name) {
		return true, nil // synced at Flush or EndBatch
	}
	r.dirSyncs.Add(1)
	if err := unix.Fsync(dirfd); err != nil {
		return true, fmt.Errorf("remove %s: sync directory: %w", r.show(name), err)
	}
	return true, nil
}

// ReadDirNames returns the names in the directory name, unsorted; a
// missing directory has none.
func (r *Root) ReadDirNames(name string) ([]string, error) {
	fd, err := r.openTree(name)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dir %s: %w", r.show(name), err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read dir %s: %w", r.show(name), err)
	}
	return names, nil
}
