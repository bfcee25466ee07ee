package sysroot

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// copiedXattrs are the namespaces of extended attributes a rewrite carries
// over from the old file: the SELinux label (security.selinux) and other
// security labels, POSIX ACLs (system.posix_acl_access) and user
// attributes. trusted.* needs CAP_SYS_ADMIN and is the file system's own.
var copiedXattrs = []string{"security.", "system.", "user."}

// copyXattrs gives the temp file tmp the extended attributes of the file
// it replaces, base in dirfd, if there is one: a rename would otherwise
// lose them (on RHEL-family images /etc/shadow would lose shadow_t, and
// sshd could no longer read it). A file system without xattrs is no error;
// an attribute the kernel has already given the temp file with the same
// value (an inherited label) is left as it is.
func copyXattrs(dirfd int, base string, tmp int) error {
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open for xattrs: %w", err)
	}
	defer unix.Close(fd)
	names, err := listXattrs(fd)
	if unsupported(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range names {
		if !copied(name) {
			continue
		}
		val, err := getXattr(fd, name)
		if errors.Is(err, unix.ENODATA) {
			continue // gone meanwhile
		}
		if err != nil {
			return fmt.Errorf("read xattr %s: %w", name, err)
		}
		if cur, err := getXattr(tmp, name); err == nil && bytes.Equal(cur, val) {
			continue
		}
		if err := unix.Fsetxattr(tmp, name, val, 0); err != nil && !unsupported(err) {
			return fmt.Errorf("copy xattr %s: %w", name, err)
		}
	}
	return nil
}

func copied(name string) bool {
	for _, p := range copiedXattrs {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// listXattrs returns the names of fd's extended attributes.
func listXattrs(fd int) ([]string, error) {
	buf, err := sized(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) })
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range bytes.Split(buf, []byte{0}) {
		if len(n) > 0 {
			names = append(names, string(n))
		}
	}
	return names, nil
}

func getXattr(fd int, name string) ([]byte, error) {
	return sized(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// sized calls f with a nil buffer for the size, then with a buffer of that
// size, again if the value grew in between (ERANGE).
func sized(f func([]byte) (int, error)) ([]byte, error) {
	for range 3 {
		n, err := f(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = f(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
}
