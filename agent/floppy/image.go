package floppy

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
	"unicode/utf16"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
)

// The compute node's hand-laid image.
const (
	nodeImageSize  = 1 << 20
	nodeFAT1       = 0x0200 // sector 1
	nodeFAT2       = 0x1200 // sector 9
	nodeRootDir    = 0x2200 // sector 17
	nodeData       = 0x6400 // cluster 3; cluster 2 is at sector 49
	nodeFirstClust = 3
	nodeChainBytes = 7 * 512 // clusters 3 to 9
)

// nodeFAT is how both FAT copies on the node's image begin: entries 0 and 1
// (FF8, FFF), entry 2 = 0FF, and the chain 3→4→…→9→FFF, FAT12-encoded.
var nodeFAT = []byte{0xf8, 0xff, 0xff, 0xff, 0x40, 0x00, 0x05, 0x60, 0x00, 0x07, 0x80, 0x00, 0x09, 0xf0, 0xff, 0x00}

// NodeImage returns the image the LuoYun compute node writes by hand with
// body as luoyun.ini: 1 MiB, the layout in the package comment. Like the
// node, it writes a body longer than the 3584-byte cluster chain on
// regardless, contiguously from cluster 3 (growing the image if needed), and
// puts the full length in the size field.
func NodeImage(body []byte) []byte {
	img := make([]byte, max(nodeImageSize, nodeData+len(body)))

	bs := img[:512]
	copy(bs[0:], []byte{0xEB, 0x3C, 0x90})       // jump
	copy(bs[3:], "mkdosfs\x00")                  // OEM name
	binary.LittleEndian.PutUint16(bs[11:], 512)  // bytes per sector
	bs[13] = 1                                   // sectors per cluster
	binary.LittleEndian.PutUint16(bs[14:], 1)    // reserved sectors
	bs[16] = 2                                   // FATs
	binary.LittleEndian.PutUint16(bs[17:], 512)  // root entries
	binary.LittleEndian.PutUint16(bs[19:], 2048) // total sectors
	bs[21] = 0xF8                                // media
	binary.LittleEndian.PutUint16(bs[22:], 8)    // sectors per FAT
	binary.LittleEndian.PutUint16(bs[24:], 0x20) // sectors per track
	binary.LittleEndian.PutUint16(bs[26:], 0x40) // heads
	// hidden sectors, total sectors (32-bit), drive number, reserved: 0
	bs[38] = 0x29                                 // extended boot signature
	copy(bs[39:], []byte{0xED, 0xEE, 0x74, 0xF0}) // serial number
	copy(bs[43:], "           ")                  // volume label: blank
	copy(bs[54:], "FAT16   ")                     // the type string, wrong
	bs[510], bs[511] = 0x55, 0xAA

	copy(img[nodeFAT1:], nodeFAT)
	copy(img[nodeFAT2:], nodeFAT)

	short := [11]byte{'L', 'U', 'O', 'Y', 'U', 'N', ' ', ' ', 'I', 'N', 'I'}
	lfn := img[nodeRootDir : nodeRootDir+32]
	lfn[0] = 0x41 // first and last LFN slot, number 1
	lfn[11] = 0x0F
	lfn[13] = shortNameChecksum(short)
	putLFNChars(lfn, FileName)

	de := img[nodeRootDir+32 : nodeRootDir+64]
	copy(de, short[:])
	de[11] = 0x20 // archive
	binary.LittleEndian.PutUint16(de[26:], nodeFirstClust)
	binary.LittleEndian.PutUint32(de[28:], uint32(len(body)))

	copy(img[nodeData:], body)
	return img
}

// putLFNChars writes name, which must fit one slot (13 UTF-16 units), into
// the name fields of the LFN entry e: NUL-terminated if shorter, then padded
// with 0xFFFF.
func putLFNChars(e []byte, name string) {
	u := utf16.Encode([]rune(name))
	if len(u) < 13 {
		u = append(u, 0)
	}
	for len(u) < 13 {
		u = append(u, 0xFFFF)
	}
	offs := [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for i, off := range offs {
		binary.LittleEndian.PutUint16(e[off:], u[i])
	}
}

// shortNameChecksum is the checksum of an 8.3 name that LFN entries carry.
func shortNameChecksum(name [11]byte) byte {
	var sum byte
	for _, c := range name {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// Sizes of the images FATImage makes.
const (
	fat12ImageSize = 1440 << 10 // a 1.44 MB floppy, as `mkfs.vfat -C img 1440`
	fat16ImageSize = 8 << 20    // the smallest FAT16 go-diskfs makes is about 4.2 MB
)

// FATImage makes a FAT image with go-diskfs holding one file, name, in the
// root directory with body as its contents. kind "fat12" makes a 1.44 MB
// floppy (as `mkfs.vfat -C img 1440` does), "fat16" an 8 MiB FAT16 image.
func FATImage(kind, name string, body []byte) ([]byte, error) {
	var size int64
	switch kind {
	case kindFAT12:
		size = fat12ImageSize
	case kindFAT16:
		size = fat16ImageSize
	default:
		return nil, fmt.Errorf("make %q image: unknown kind, want fat12 or fat16", kind)
	}
	img, err := buildFAT(kind, size, func(fsys *fat12.FileSystem) error {
		f, err := fsys.OpenFile("/"+name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		defer f.Close()
		if len(body) > 0 {
			if _, err := f.Write(body); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("make %s image with %s: %w", kind, name, err)
	}
	return img, nil
}

// buildFAT formats a size-byte image in memory as kind with go-diskfs and
// lets fill put files in it.
func buildFAT(kind string, size int64, fill func(*fat12.FileSystem) error) ([]byte, error) {
	m := &memFile{b: make([]byte, size)}
	st := file.New(m, false)
	var fsys *fat12.FileSystem
	switch kind {
	case kindFAT12:
		f, err := fat12.Create(st, size, 0, 512, "", true)
		if err != nil {
			return nil, err
		}
		fsys = f
	case kindFAT16:
		f, err := fat16.Create(st, size, 0, 512, "", true)
		if err != nil {
			return nil, err
		}
		fsys = f.FileSystem
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	if err := fill(fsys); err != nil {
		return nil, err
	}
	return m.b, nil
}

// memFile is a fixed-size in-memory disk for go-diskfs to format and fill.
type memFile struct {
	b   []byte
	off int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return memInfo{size: int64(len(m.b))}, nil }
func (m *memFile) Close() error               { return nil }

func (m *memFile) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	return n, err
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write %d bytes at %d: past the end of a %d-byte image", len(p), off, len(m.b))
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += int64(len(m.b))
	}
	if offset < 0 {
		return m.off, fs.ErrInvalid
	}
	m.off = offset
	return offset, nil
}

type memInfo struct{ size int64 }

func (i memInfo) Name() string       { return "image" }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
