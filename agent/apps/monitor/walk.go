package monitor

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Directory reading without allocation: getdents64 into a buffer kept
// per depth, names used in place (the kernel NUL-terminates them), and
// fstatat and openat by raw syscalls relative to the directory's fd.

// dirent64 layout: ino u64, off u64, reclen u16, type u8, name.
const (
	direntReclen = 16
	direntType   = 18
	direntName   = 19
)

// eachDirent calls f with every entry of the directory fd (but "." and
// ".."), from its start: the name's offset in buf (NUL-terminated) and
// its type. f returns false to stop.
func eachDirent(fd int, buf []byte, f func(buf []byte, name int, typ byte) bool) error {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return err
	}
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off+direntName < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclen:]))
			if reclen == 0 {
				break
			}
			name := off + direntName
			if !(buf[name] == '.' && (buf[name+1] == 0 || buf[name+1] == '.' && buf[name+2] == 0)) {
				if !f(buf, name, buf[off+direntType]) {
					return nil
				}
			}
			off += reclen
		}
	}
}

func fstatat(dirfd int, name *byte, st *unix.Stat_t) error {
	_, _, e := unix.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func openat(dirfd int, name *byte, flags int) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// walker sums the disk use of a tree (st_blocks × 512, as du), at most
// maxEntries entries and maxDepth levels deep, following no symlink and
// crossing no mount.
type walker struct {
	path       [4096]byte // the top's name, NUL-terminated
	bufs       [maxDepth][]byte
	st         unix.Stat_t
	maxEntries int
	left       int
	dev        uint64
	sum        uint64
	partial    bool
}

const maxDepth = 32

// du walks the tree at path; partial says the bound cut it short.
func (w *walker) du(path string) (bytes uint64, partial bool, err error) {
	if len(path) >= len(w.path) {
		return 0, false, errNameTooLong
	}
	w.path[copy(w.path[:], path)] = 0
	fd, err := openat(unix.AT_FDCWD, &w.path[0], unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &w.st); err != nil {
		return 0, false, err
	}
	w.dev, w.sum, w.partial, w.left = w.st.Dev, uint64(w.st.Blocks)*512, false, w.maxEntries
	w.dir(fd, 0)
	return w.sum, w.partial, nil
}

func (w *walker) dir(fd, depth int) {
	if depth >= maxDepth {
		w.partial = true
		return
	}
	if w.bufs[depth] == nil {
		w.bufs[depth] = make([]byte, 8192)
	}
	eachDirent(fd, w.bufs[depth], func(buf []byte, name int, typ byte) bool {
		if w.left <= 0 {
			w.partial = true
			return false
		}
		w.left--
		if fstatat(fd, &buf[name], &w.st) != nil {
			return true // gone meanwhile
		}
		w.sum += uint64(w.st.Blocks) * 512
		if w.st.Mode&unix.S_IFMT == unix.S_IFDIR && w.st.Dev == w.dev {
			sub, err := openat(fd, &buf[name], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err == nil {
				w.dir(sub, depth+1)
				unix.Close(sub)
			}
		}
		return true
	})
}
