package floppy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"golang.org/x/sys/unix"
)

// FuzzReadFile feeds ReadFile arbitrary images: it must not panic or hang,
// and every error must wrap one of the package's sentinels.
func FuzzReadFile(f *testing.F) {
	// The seeds are kept small, since the fuzzer mutates and minimizes
	// whole inputs: the node image is cut after its body, which reads the
	// same as the whole 1 MiB, and the FAT12 image is a 48 KiB one.
	node := NodeImage([]byte(sampleINI))
	f.Add(node[:nodeData+512])
	f.Add(NodeImage(lines(nodeChainBytes+1, "\n"))[:nodeData+4096])
	for _, n := range []int{512, 4096, 20000} {
		f.Add(node[:n])
	}
	small, err := buildFAT("fat12", 48<<10, func(fsys *fat12.FileSystem) error {
		w, err := fsys.OpenFile("/luoyun.ini", os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		defer w.Close()
		_, err = w.Write([]byte(sampleINI))
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)

	sentinels := []error{ErrNotFound, ErrTooLarge, ErrNoDevice, ErrNoMedium, ErrCorrupt}
	// One in-memory file per fuzz worker, rewritten for each input: a temp
	// file per input on a disk file system spent the worker's time creating
	// and freeing inodes (a few inputs a second while minimizing one).
	mfd, err := unix.MemfdCreate("floppy-fuzz", unix.MFD_CLOEXEC)
	if err != nil {
		f.Fatal(err)
	}
	img := os.NewFile(uintptr(mfd), "floppy-fuzz")
	defer img.Close()
	p := fmt.Sprintf("/proc/self/fd/%d", mfd)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := img.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := img.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		body, err := ReadFile(p)
		if err == nil {
			if len(body) > MaxSize {
				t.Fatalf("read %d bytes, over MaxSize", len(body))
			}
			return
		}
		if body != nil {
			t.Errorf("got %d bytes with error %v", len(body), err)
		}
		if !strings.HasPrefix(err.Error(), "read floppy ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q is not one line starting with the operation", err)
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Errorf("error %q wraps none of the sentinels", err)
	})
}
