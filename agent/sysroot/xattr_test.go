package sysroot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// aclXattr encodes a POSIX access ACL the way the kernel stores it in
// system.posix_acl_access: version 2, then (tag u16, perm u16, id u32)
// entries, little-endian.
func aclXattr(uid uint32) []byte {
	const (
		userObj, user, groupObj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
		undefined                            = 0xffffffff
	)
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{userObj, 6, undefined}, {user, 4, uid}, {groupObj, 4, undefined}, {mask, 4, undefined}, {other, 0, undefined}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// TestWriteFileKeepsXattrs: a rewrite by temp-and-rename keeps the old
// file's extended attributes (on RHEL-family images, /etc/shadow's
// SELinux label and any ACL). Each attribute is tried where the file
// system and the process's privileges allow setting it, else skipped.
func TestWriteFileKeepsXattrs(t *testing.T) {
	cases := []struct {
		name  string
		value []byte
		root  bool
	}{
		{"user.osmanager.test", []byte("kept"), false},
		{"user.empty", nil, false},
		{"system.posix_acl_access", aclXattr(4242), true},
		{"security.selinux", []byte("system_u:object_r:shadow_t:s0\x00"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			r, dir := newRoot(t)
			name := filepath.Join(dir, "shadow")
			if err := os.WriteFile(name, []byte("old\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(name, c.name, c.value, 0); err != nil {
				if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
					t.Skipf("cannot set %s here: %v", c.name, err)
				}
				t.Fatal(err)
			}
			before, _ := os.Stat(name)
			changed, err := r.WriteFile("/shadow", []byte("new\n"), WriteOptions{Mode: 0o600, Owner: Keep, KeepMeta: true})
			if err != nil || !changed {
				t.Fatalf("WriteFile = %v, %v", changed, err)
			}
			after, _ := os.Stat(name)
			if os.SameFile(before, after) {
				t.Fatal("the file was not replaced")
			}
			buf := make([]byte, 4096)
			n, err := unix.Getxattr(name, c.name, buf)
			if err != nil {
				t.Fatalf("after the rewrite, %s: %v", c.name, err)
			}
			if got := buf[:n]; !bytes.Equal(got, c.value) {
				t.Errorf("%s = %q, want %q", c.name, got, c.value)
			}
			if got, want := after.Mode().Perm(), before.Mode().Perm(); got != want {
				t.Errorf("mode = %v, want %v", got, want)
			}
		})
	}
}
