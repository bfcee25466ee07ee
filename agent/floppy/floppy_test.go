package floppy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
)

// writeImage puts img in a fresh temp dir and returns its path.
func writeImage(t testing.TB, img []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "floppy.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustFAT(t testing.TB, kind, name string, body []byte) []byte {
	t.Helper()
	img, err := FATImage(kind, name, body)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// patch returns a copy of img with b written at off.
func patch(img []byte, off int, b ...byte) []byte {
	img = bytes.Clone(img)
	copy(img[off:], b)
	return img
}

// lines makes a luoyun.ini body of about n bytes.
func lines(n int, eol string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("KEY" + strings.Repeat("x", i%50) + "=value" + eol)
	}
	return b.Bytes()[:n]
}

const sampleINI = "CLC_IP=10.0.0.1\nCLC_PORT=1369\nTAG=42\nKEY=0b8e6c4e-4f0c-4d5e-9a3b-2f1e0d9c8b7a\nJSON={\"webssh\": {\"status\": \"enable\"}}\n"

func TestReadFile(t *testing.T) {
	tests := []struct {
		name string
		img  func(t *testing.T) []byte
		want []byte
	}{
		{"node image", func(*testing.T) []byte { return NodeImage([]byte(sampleINI)) }, []byte(sampleINI)},
		{"node image, body fills the chain", func(*testing.T) []byte { return NodeImage(lines(nodeChainBytes, "\n")) }, lines(nodeChainBytes, "\n")},
		{"node image, CRLF body", func(*testing.T) []byte { return NodeImage(lines(1000, "\r\n")) }, lines(1000, "\r\n")},
		{"node image, empty body", func(*testing.T) []byte { return NodeImage(nil) }, []byte{}},
		{"node image cut after the body", func(*testing.T) []byte { return NodeImage([]byte(sampleINI))[:nodeData+512] }, []byte(sampleINI)},
		{"fat12", func(t *testing.T) []byte { return mustFAT(t, "fat12", "luoyun.ini", []byte(sampleINI)) }, []byte(sampleINI)},
		{"fat16", func(t *testing.T) []byte { return mustFAT(t, "fat16", "luoyun.ini", []byte(sampleINI)) }, []byte(sampleINI)},
		{"fat12 upper case name", func(t *testing.T) []byte { return mustFAT(t, "fat12", "LUOYUN.INI", []byte(sampleINI)) }, []byte(sampleINI)},
		{"fat12 mixed case name", func(t *testing.T) []byte { return mustFAT(t, "fat12", "LuoYun.Ini", []byte(sampleINI)) }, []byte(sampleINI)},
		{"fat16 mixed case name", func(t *testing.T) []byte { return mustFAT(t, "fat16", "LuoYun.Ini", []byte(sampleINI)) }, []byte(sampleINI)},
		{"fat12 empty file", func(t *testing.T) []byte { return mustFAT(t, "fat12", "luoyun.ini", nil) }, []byte{}},
		{"fat16 file of MaxSize", func(t *testing.T) []byte { return mustFAT(t, "fat16", "luoyun.ini", lines(MaxSize, "\n")) }, lines(MaxSize, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.img(t)
			p := writeImage(t, img)
			got, err := ReadFile(p)
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if got == nil || !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes %.40q, want %d bytes %.40q", len(got), got, len(tt.want), tt.want)
			}
			after, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, img) {
				t.Error("ReadFile changed the image")
			}
		})
	}
}

// TestReadFileMkfs reads images made by the tools a person would use.
func TestReadFileMkfs(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH (dosfstools, mtools)", tool)
		}
	}
	tests := []struct {
		name   string
		mkfs   []string // arguments before the image name, and after it
		blocks string
		as     string
	}{
		{"1.44 MB floppy", nil, "1440", "luoyun.ini"},
		{"1.44 MB floppy, upper case name", nil, "1440", "LUOYUN.INI"},
		{"1.44 MB floppy, mixed case name", nil, "1440", "LuoYun.Ini"},
		{"FAT16", []string{"-F", "16", "-s", "2"}, "8192", "luoyun.ini"},
		{"FAT32", []string{"-F", "32"}, "40960", "luoyun.ini"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			src := filepath.Join(dir, "src.ini")
			if err := os.WriteFile(src, []byte(sampleINI), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{}, tt.mkfs...), "-C", img, tt.blocks)
			if out, err := exec.Command("mkfs.vfat", args...).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.vfat %v: %v\n%s", args, err, out)
			}
			if out, err := exec.Command("mcopy", "-i", img, src, "::"+tt.as).CombinedOutput(); err != nil {
				t.Fatalf("mcopy: %v\n%s", err, out)
			}
			got, err := ReadFile(img)
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if string(got) != sampleINI {
				t.Errorf("got %q, want %q", got, sampleINI)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	node := NodeImage([]byte(sampleINI))
	// FAT entry 9 is the high 12 bits of bytes 13-14; pointing it back at 3
	// closes the node's chain 3→…→9 into a loop.
	loop := patch(patch(node, nodeFAT1+13, 0x30, 0x00), nodeFAT2+13, 0x30, 0x00)

	type errCase struct {
		name    string
		path    func(t *testing.T) string
		want    error
		wantMsg string
	}
	tests := []errCase{
		{"missing path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "fd0") }, ErrNoDevice, "no such file or directory"},
		{"path is a directory", func(t *testing.T) string { return t.TempDir() }, ErrNoDevice, "is a directory"},
		{"zero-length image", func(t *testing.T) string { return writeImage(t, nil) }, ErrNoMedium, "empty image file"},
		{"shorter than a boot sector", func(t *testing.T) string { return writeImage(t, node[:100]) }, ErrCorrupt, "truncated"},
		{"cut at 512", func(t *testing.T) string { return writeImage(t, node[:512]) }, ErrCorrupt, "truncated"},
		{"cut at 4096", func(t *testing.T) string { return writeImage(t, node[:4096]) }, ErrCorrupt, "truncated"},
		{"cut at 20000", func(t *testing.T) string { return writeImage(t, node[:20000]) }, ErrCorrupt, "truncated"},
		{"cut inside the body", func(t *testing.T) string { return writeImage(t, node[:nodeData+10]) }, ErrCorrupt, "truncated"},
		{"zeroed BPB", func(t *testing.T) string { return writeImage(t, patch(node, 11, make([]byte, 51)...)) }, ErrCorrupt, "bytes per sector 0"},
		{"bytes per sector 0", func(t *testing.T) string { return writeImage(t, patch(node, 11, 0, 0)) }, ErrCorrupt, "bytes per sector 0"},
		{"bytes per sector 500", func(t *testing.T) string { return writeImage(t, patch(node, 11, 0xF4, 0x01)) }, ErrCorrupt, "bytes per sector 500"},
		{"sectors per cluster 0", func(t *testing.T) string { return writeImage(t, patch(node, 13, 0)) }, ErrCorrupt, "sectors per cluster 0"},
		{"sectors per cluster 3", func(t *testing.T) string { return writeImage(t, patch(node, 13, 3)) }, ErrCorrupt, "sectors per cluster 3"},
		{"no boot signature", func(t *testing.T) string { return writeImage(t, patch(node, 510, 0, 0)) }, ErrCorrupt, "signature"},
		{"total sectors 0", func(t *testing.T) string { return writeImage(t, patch(node, 19, 0, 0)) }, ErrCorrupt, "total sectors 0"},
		{"sectors per FAT 0", func(t *testing.T) string { return writeImage(t, patch(node, 22, 0, 0)) }, ErrCorrupt, "sectors per FAT 0"},
		{"FAT too small", func(t *testing.T) string { return writeImage(t, patch(node, 22, 1, 0)) }, ErrCorrupt, "too small"},
		{"one FAT", func(t *testing.T) string { return writeImage(t, patch(node, 16, 1)) }, ErrCorrupt, "1 FATs"},
		{"no luoyun.ini", func(t *testing.T) string { return writeImage(t, mustFAT(t, "fat12", "other.ini", []byte(sampleINI))) }, ErrNotFound, "no luoyun.ini in the root directory"},
		{"no luoyun.ini on the node image", func(t *testing.T) string { return writeImage(t, patch(node, nodeRootDir, make([]byte, 64)...)) }, ErrNotFound, "no luoyun.ini"},
		{"luoyun.ini is a directory", func(t *testing.T) string { return writeImage(t, mkdirImage(t)) }, ErrNotFound, "only a directory of that name"},
		{"luoyun.ini over 64 KiB", func(t *testing.T) string {
			return writeImage(t, mustFAT(t, "fat16", "luoyun.ini", lines(MaxSize+1, "\n")))
		}, ErrTooLarge, "65537 bytes, limit 65536"},
		{"size field past the chain", func(t *testing.T) string { return writeImage(t, NodeImage(lines(nodeChainBytes+1, "\n"))) }, ErrCorrupt, "luoyun.ini size 3585 exceeds its cluster chain (3584 bytes)"},
		{"size field of 4 GiB", func(t *testing.T) string { return writeImage(t, patch(node, nodeRootDir+60, 0xFF, 0xFF, 0xFF, 0xFF)) }, ErrTooLarge, "4294967295 bytes"},
		{"first cluster 0", func(t *testing.T) string { return writeImage(t, patch(node, nodeRootDir+58, 0, 0)) }, ErrCorrupt, "invalid start cluster"},
		{"looping chain", func(t *testing.T) string { return writeImage(t, loop) }, ErrCorrupt, "loops at cluster"},
	}
	for seed := range uint64(4) {
		random := randomBytes(seed, 64<<10)
		tests = append(tests,
			errCase{fmt.Sprint("random bytes, seed ", seed), func(t *testing.T) string { return writeImage(t, random) }, ErrCorrupt, ""},
			errCase{fmt.Sprint("random bytes with 55 aa, seed ", seed), func(t *testing.T) string {
				return writeImage(t, patch(random, 510, 0x55, 0xAA))
			}, ErrCorrupt, ""},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.path(t)
			got, err := ReadFile(p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFile = %d bytes, %v; want %v", len(got), err, tt.want)
			}
			if got != nil {
				t.Errorf("got %d bytes with the error, want none", len(got))
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "read floppy "+p+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line starting with %q", msg, "read floppy "+p+": ")
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not say %q", msg, tt.wantMsg)
			}
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x10a1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mkdirImage is a FAT12 floppy with a directory named luoyun.ini.
func mkdirImage(t *testing.T) []byte {
	t.Helper()
	img, err := buildFAT("fat12", fat12ImageSize, func(fsys *fat12.FileSystem) error {
		return fsys.Mkdir("/luoyun.ini")
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func BenchmarkReadNodeImage(b *testing.B) {
	p := writeImage(b, NodeImage([]byte(sampleINI)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}
