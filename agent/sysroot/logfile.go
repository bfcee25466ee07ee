package sysroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Log files are streams, not documents: they are appended to and rotated,
// never replaced atomically. These calls keep the rooted walk (no "..",
// no symlink followed) for them.

// OpenLog opens name for appending, creating it with mode (and its parent
// directories with dirMode when non-zero). A symlink at name is refused.
func (r *Root) OpenLog(name string, mode, dirMode fs.FileMode) (*os.File, error) {
	return r.openStream(name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, mode, dirMode)
}

// OpenLogReader opens the log file name for reading.
func (r *Root) OpenLogReader(name string) (*os.File, error) {
	f, err := r.open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// MakeFIFO makes name a named pipe with mode, or checks that it is one.
func (r *Root) MakeFIFO(name string, mode, dirMode fs.FileMode) error {
	dirfd, base, err := r.openDir(name, dirMode)
	if err != nil {
		return fmt.Errorf("mkfifo %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	if err := unix.Mkfifoat(dirfd, base, uint32(mode.Perm())); err == nil {
		r.writes.Add(1)
		return nil
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkfifo %s: %w", r.show(name), err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("mkfifo %s: %w", r.show(name), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("mkfifo %s: exists and is not a named pipe", r.show(name))
	}
	return nil
}

// OpenFIFO opens the named pipe name with flag (unix.O_RDWR, maybe with
// O_NONBLOCK; O_RDONLY without O_NONBLOCK waits for a writer).
func (r *Root) OpenFIFO(name string, flag int) (*os.File, error) {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		err = ErrSymlink
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: errors.New("not a named pipe")}
	}
	return os.NewFile(uintptr(fd), r.show(name)), nil
}

// RotateLog renames name to name.1, name.1 to name.2 and so on, keeping
// keep old files (the oldest is dropped). Missing files are no error.
func (r *Root) RotateLog(name string, keep int) error {
	dirfd, base, err := r.openDir(name, 0)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	old := func(i int) string {
		if i == 0 {
			return base
		}
		return fmt.Sprintf("%s.%d", base, i)
	}
	if keep < 1 {
		err := unix.Unlinkat(dirfd, base, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("rotate %s: %w", r.show(name), err)
		}
		return nil
	}
	for i := keep - 1; i >= 0; i-- {
		err := unix.Renameat(dirfd, old(i), dirfd, old(i+1))
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("rotate %s: %w", r.show(name), err)
		}
	}
	r.writes.Add(1)
	return nil
}

// RemoveLog removes the file name; a missing file is no error.
func (r *Root) RemoveLog(name string) error {
	dirfd, base, err := r.openDir(name, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	if err := unix.Unlinkat(dirfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", r.show(name), err)
	}
	r.writes.Add(1)
	return nil
}

func (r *Root) openStream(name string, flag int, mode, dirMode fs.FileMode) (*os.File, error) {
	dirfd, base, err := r.openDir(name, dirMode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.show(name), err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat(dirfd, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if errors.Is(err, unix.ELOOP) {
		err = ErrSymlink
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: r.show(name), Err: errors.New("not a regular file")}
	}
	return os.NewFile(uintptr(fd), r.show(name)), nil
}
