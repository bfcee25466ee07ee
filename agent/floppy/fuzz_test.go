package floppy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
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
	dir := f.TempDir() // one per fuzz worker; cheaper than t.TempDir per input
	f.Fuzz(func(t *testing.T, img []byte) {
		p := writeTemp(t, dir, img)
		defer os.Remove(p)
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

func writeTemp(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "floppy-*.img")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
