// Package floppy reads the instance configuration file luoyun.ini from the
// floppy the LuoYun compute node attaches to every instance (/dev/fd0 in the
// guest), or from an image file.
//
// # Why no mount
//
// The file is read straight from the device with go-diskfs, in process. A
// mount would need the vfat module, a mount point to create and clean up, and
// would hand a disk image the cloud wrote by hand to the kernel's FAT driver.
// Reading in process keeps the boot step self-contained, read-only (the
// device is opened O_RDONLY and nothing is ever written), and lets a corrupt
// image fail as one error instead of a kernel complaint.
//
// # The formats
//
// The compute node does not run mkfs: it writes a raw 1 MiB image by hand
// (NodeImage reproduces it):
//
//	offset  sector  what
//	0x0000   0      boot sector: 512 B/sector, 1 sector/cluster, 1 reserved
//	                sector, 2 FATs of 8 sectors, 512 root entries, 2048
//	                sectors, media F8, blank label, type string "FAT16"
//	0x0200   1      FAT 1: f8 ff ff | ff 40 00 | 05 60 00 | 07 80 00 | 09 f0 ff
//	0x1200   9      FAT 2, the same
//	0x2200  17      root directory: an LFN entry "luoyun.ini" and the 8.3
//	                entry LUOYUN.INI, first cluster 3, size = body length
//	0x6200  49      cluster 2 (first data cluster)
//	0x6400  51      cluster 3: the body
//
// The type string says FAT16, but 1999 clusters make it FAT12 and the FAT is
// FAT12-encoded: the type is decided by cluster count, never by the string.
// Entry 2 is 0x0FF (neither free nor end of chain; fsck complains, we do not
// care) and the file's chain is fixed at 3→4→…→9, so at most 3584 bytes of
// body come back whole. The node patches the real body length into the size
// field even when it is longer; such an image is refused as corrupt rather
// than read as a truncated body.
//
// Ordinary images work too: a 1.44 MB floppy from `mkfs.vfat -C img 1440`
// (FAT12), FAT16 images, FAT32 images, and luoyun.ini in any letter case in
// the root directory.
//
// # Distrust
//
// go-diskfs trusts the boot sector: it divides by the cluster size, allocates
// the FAT at whatever size the boot sector claims, follows cluster chains
// without a loop check (a loop makes it allocate until the process dies,
// which no recover catches), and ignores short reads of file data. So before the
// image reaches go-diskfs, ReadFile checks the BIOS parameter block for sane
// values, requires the FAT and root directory to lie inside the image, and
// checks that no cluster chain in the FAT loops. It takes the file's size
// from its directory entry and refuses it over MaxSize before reading, reads
// at most that many bytes, and checks each read. A panic inside go-diskfs is
// recovered and reported as ErrCorrupt.
//
// go-diskfs also has fixed ideas that ReadFile holds images to: two FAT
// copies (it places the root directory after two whatever the count says),
// an extended boot signature (0x28 or 0x29), and for FAT32 a root directory
// at cluster 2. An image may be shorter than its boot sector claims, as
// long as everything read lies inside it: a drive may report a size other
// than the image's.
package floppy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"golang.org/x/sys/unix"
)

// FileName is the name of the instance configuration file on the floppy.
// It is matched without regard to letter case.
const FileName = "luoyun.ini"

// MaxSize is the largest luoyun.ini ReadFile accepts.
const MaxSize = 64 << 10

// DefaultPath is the floppy device the compute node attaches to instances.
const DefaultPath = "/dev/fd0"

// Errors returned by ReadFile and Reader.Read, wrapped: test with errors.Is.
var (
	// ErrNotFound: the image is readable but its root directory has no
	// luoyun.ini file (or only a directory of that name).
	ErrNotFound = errors.New("no " + FileName + " in the root directory")
	// ErrTooLarge: luoyun.ini is over MaxSize.
	ErrTooLarge = errors.New(FileName + " too large")
	// ErrNoDevice: the device or image file does not exist.
	ErrNoDevice = errors.New("no floppy device or image")
	// ErrNoMedium: the device exists but holds no medium (ENXIO, ENOMEDIUM,
	// or size zero). A zero-length image file reads the same way, since an
	// empty drive often shows as a device of size zero.
	ErrNoMedium = errors.New("no medium in the drive")
	// ErrCorrupt: not a FAT image ReadFile can read: a bad boot sector,
	// random bytes, a truncated image, a bad or looping cluster chain, or a
	// read error on the device.
	ErrCorrupt = errors.New("not a readable FAT image")
)

// ReadFile reads luoyun.ini (any letter case, from the root directory) from
// the FAT image or block device at path. It never writes to path and never
// panics. Errors are one line, "read floppy PATH: …", and wrap one of the
// package's sentinel errors, except for open errors such as permission
// denied, which wrap the os error.
func ReadFile(path string) ([]byte, error) {
	body, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read floppy %s: %w", path, err)
	}
	return body, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(err)
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: stat: %w", ErrCorrupt, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: it is a directory", ErrNoDevice)
	}
	// Seek finds the size of block devices too, where Stat says 0.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, ioError("find size", err)
	}
	if size == 0 {
		if st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: empty image file", ErrNoMedium)
		}
		return nil, fmt.Errorf("%w: device size is 0", ErrNoMedium)
	}

	boot := make([]byte, 512)
	if err := readAt(f, boot, 0, size); err != nil {
		return nil, ioError("read boot sector", err)
	}
	g, err := parseGeometry(boot, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	fatBytes := make([]byte, g.fatBytes)
	if err := readAt(f, fatBytes, g.fatOffset, size); err != nil {
		return nil, ioError("read FAT", err)
	}
	tbl := newFATTable(g.kind, fatBytes)
	if err := tbl.checkChains(); err != nil {
		return nil, fmt.Errorf("%w: FAT: %w", ErrCorrupt, err)
	}
	if g.kind == kindFAT32 {
		if n := tbl.chainLen(2); int64(n)*g.bytesPerCluster > maxRootDirBytes {
			return nil, fmt.Errorf("%w: root directory of %d clusters is too large", ErrCorrupt, n)
		}
	}

	var body []byte
	err = recovered(func() error {
		var err error
		body, err = readFromFS(file.New(f, true), f, g, size)
		return err
	})
	return body, err
}

// readFromFS finds luoyun.ini with go-diskfs and reads its data from r.
func readFromFS(b backend.Storage, r io.ReaderAt, g geometry, size int64) ([]byte, error) {
	fsys, err := openFS(b, g, size)
	if err != nil {
		return nil, err
	}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("%w: read root directory: %w", ErrCorrupt, err)
	}
	var found []fs.DirEntry
	for _, e := range entries {
		if isConfigName(e) {
			found = append(found, e)
		}
	}
	switch {
	case len(found) == 0:
		return nil, ErrNotFound
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d entries named %s in the root directory", ErrCorrupt, len(found), FileName)
	case found[0].IsDir():
		return nil, fmt.Errorf("%w, only a directory of that name", ErrNotFound)
	}

	f, err := fsys.OpenFile("/"+FileName, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrCorrupt, FileName, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: stat %s: %w", ErrCorrupt, FileName, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w, only a directory of that name", ErrNotFound)
	}
	n := st.Size()
	if n > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxSize)
	}
	if n == 0 {
		return []byte{}, nil
	}
	ff, ok := f.(*fat12.File)
	if !ok {
		return nil, fmt.Errorf("%w: go-diskfs returned a %T", ErrCorrupt, f)
	}
	ranges, err := ff.GetDiskRanges()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, FileName, err)
	}
	var chain int64
	for _, rg := range ranges {
		chain += int64(rg.Length)
	}
	if chain < n {
		return nil, fmt.Errorf("%w: %s size %d exceeds its cluster chain (%d bytes)", ErrCorrupt, FileName, n, chain)
	}

	body := make([]byte, n)
	var off int64
	for _, rg := range ranges {
		if off == n {
			break
		}
		k := min(int64(rg.Length), n-off)
		if err := readAt(r, body[off:off+k], int64(rg.Offset), size); err != nil {
			return nil, ioError("read "+FileName+" data", err)
		}
		off += k
	}
	return body, nil
}

func isConfigName(e fs.DirEntry) bool {
	if strings.EqualFold(e.Name(), FileName) {
		return true
	}
	info, err := e.Info()
	if err != nil {
		return false
	}
	short, ok := info.(interface{ ShortName() string })
	return ok && strings.EqualFold(short.ShortName(), FileName)
}

// openFS tries go-diskfs's readers in the order fat12, fat16, fat32; each
// decides by cluster count and refuses what is not its kind. The one that
// succeeds must agree with g, whose entry width checkChains used.
func openFS(b backend.Storage, g geometry, size int64) (*fat12.FileSystem, error) {
	readers := []struct {
		kind string
		read func() (*fat12.FileSystem, error)
	}{
		{kindFAT12, func() (*fat12.FileSystem, error) { return fat12.Read(b, size, 0, 0) }},
		{kindFAT16, func() (*fat12.FileSystem, error) {
			fsys, err := fat16.Read(b, size, 0, 0)
			if err != nil {
				return nil, err
			}
			return fsys.FileSystem, nil
		}},
		{kindFAT32, func() (*fat12.FileSystem, error) {
			fsys, err := fat32.Read(b, size, 0, 0)
			if err != nil {
				return nil, err
			}
			return fsys.FileSystem, nil
		}},
	}
	var wantErr error
	for _, r := range readers {
		fsys, err := r.read()
		if err != nil {
			if r.kind == g.kind {
				wantErr = err
			}
			continue
		}
		if r.kind != g.kind {
			return nil, fmt.Errorf("%w: go-diskfs reads it as %s, the boot sector says %s", ErrCorrupt, r.kind, g.kind)
		}
		return fsys, nil
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, g.kind, wantErr)
}

// recovered runs fn and turns a panic into an error wrapping ErrCorrupt.
func recovered(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: go-diskfs panicked: %v", ErrCorrupt, p)
		}
	}()
	return fn()
}

// readAt fills p from r at off, treating a short read as the image ending
// early. size is the image size, for the message.
func readAt(r io.ReaderAt, p []byte, off, size int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("image truncated: needs %d bytes at offset %d, image is %d bytes", len(p), off, size)
	}
	return err
}

// openError classifies an error from opening the device or image.
func openError(err error) error {
	var errno unix.Errno
	errors.As(err, &errno)
	switch {
	case errors.Is(err, fs.ErrNotExist), errno == unix.ENODEV:
		return fmt.Errorf("%w: %w", ErrNoDevice, cause(err))
	case errno == unix.ENXIO, errno == unix.ENOMEDIUM:
		return fmt.Errorf("%w: %w", ErrNoMedium, cause(err))
	}
	return fmt.Errorf("open: %w", cause(err))
}

// ioError classifies an error reading an open device or image.
func ioError(op string, err error) error {
	if errors.Is(err, unix.ENOMEDIUM) || errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("%w: %s: %w", ErrNoMedium, op, cause(err))
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, op, cause(err))
}

// cause drops the *fs.PathError wrapper, whose path the caller already names.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
