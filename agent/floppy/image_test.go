package floppy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeImageLayout pins NodeImage to the bytes the compute node writes.
func TestNodeImageLayout(t *testing.T) {
	body := []byte(sampleINI)
	img := NodeImage(body)
	tests := []struct {
		name string
		off  int
		want string
	}{
		{"jump and OEM name", 0x000, "eb3c90 6d6b646f73667300"},
		{"BPB", 0x00b, "0002 01 0100 02 0002 0008 f8 0800 2000 4000 00000000 00000000"},
		{"extended BPB", 0x024, "00 00 29 edee74f0 2020202020202020202020 4641543136202020"},
		{"signature", 0x1fe, "55aa"},
		{"FAT 1", 0x200, "f8 ff ff ff 40 00 05 60 00 07 80 00 09 f0 ff 00"},
		{"FAT 2", 0x1200, "f8 ff ff ff 40 00 05 60 00 07 80 00 09 f0 ff 00"},
		// LFN slot: 0x41, "luoy" "u" | attr 0f, type 0, checksum | "n.ini" NUL | cluster 0 | FFFF FFFF
		{"LFN entry", 0x2200, "41 6c00 7500 6f00 7900 7500 0f 00 ca 6e00 2e00 6900 6e00 6900 0000 0000 ffff ffff"},
		{"8.3 entry", 0x2220, "4c554f59554e2020 494e49 20 00 00 0000 0000 0000 0000 0000 0000 0300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			if got := img[tt.off : tt.off+len(want)]; !bytes.Equal(got, want) {
				t.Errorf("at %#x got % x, want % x", tt.off, got, want)
			}
		})
	}
	if len(img) != 1<<20 {
		t.Errorf("image is %d bytes, want 1 MiB", len(img))
	}
	if got := binary.LittleEndian.Uint32(img[0x223c:]); got != uint32(len(body)) {
		t.Errorf("size field %d, want %d", got, len(body))
	}
	if got := img[0x6400 : 0x6400+len(body)]; !bytes.Equal(got, body) {
		t.Errorf("body at 0x6400 is %q, want %q", got, body)
	}
	// Everything not named above is zero.
	named := [][2]int{{0, 62}, {0x1fe, 0x200}, {0x200, 0x210}, {0x1200, 0x1210}, {0x2200, 0x2240}, {0x6400, 0x6400 + len(body)}}
	for i, b := range img {
		if b == 0 {
			continue
		}
		inNamed := false
		for _, r := range named {
			inNamed = inNamed || (i >= r[0] && i < r[1])
		}
		if !inNamed {
			t.Fatalf("byte %#x is %#x, want 0", i, b)
		}
	}
}

func TestNodeImageLongBody(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		wantSize int
	}{
		{"past the chain", nodeChainBytes + 100, 1 << 20},
		{"past the end of the image", 1<<20 - nodeData + 10, nodeData + 1<<20 - nodeData + 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := lines(tt.n, "\n")
			img := NodeImage(body)
			if len(img) != tt.wantSize {
				t.Errorf("image is %d bytes, want %d", len(img), tt.wantSize)
			}
			if got := binary.LittleEndian.Uint32(img[0x223c:]); got != uint32(tt.n) {
				t.Errorf("size field %d, want %d", got, tt.n)
			}
			if !bytes.Equal(img[nodeData:nodeData+tt.n], body) {
				t.Error("body not written contiguously at cluster 3")
			}
		})
	}
}

// TestNodeImageMtools has mtools read the node image, which checks the LFN
// checksum (mdir shows the long name only when it matches).
func TestNodeImageMtools(t *testing.T) {
	for _, tool := range []string{"mdir", "mtype"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH (mtools)", tool)
		}
	}
	p := writeImage(t, NodeImage([]byte(sampleINI)))
	out, err := exec.Command("mdir", "-i", p, "::").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " luoyun.ini") {
		t.Errorf("mdir does not show the long name luoyun.ini:\n%s", out)
	}
	out, err = exec.Command("mtype", "-i", p, "::luoyun.ini").Output()
	if err != nil {
		t.Fatalf("mtype: %v", err)
	}
	if string(out) != sampleINI {
		t.Errorf("mtype: got %q, want %q", out, sampleINI)
	}
}

func TestFATImageKinds(t *testing.T) {
	tests := []struct {
		kind     string
		wantSize int
		wantErr  bool
	}{
		{"fat12", 1440 << 10, false},
		{"fat16", 8 << 20, false},
		{"fat32", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			img, err := FATImage(tt.kind, FileName, []byte(sampleINI))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("FATImage(%q) made %d bytes, want an error", tt.kind, len(img))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(img) != tt.wantSize {
				t.Errorf("image is %d bytes, want %d", len(img), tt.wantSize)
			}
			g, err := parseGeometry(img[:512], int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			if g.kind != tt.kind {
				t.Errorf("by cluster count it is %s, want %s", g.kind, tt.kind)
			}
		})
	}
}
