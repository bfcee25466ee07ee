package floppy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The FAT kinds, as FATImage spells them.
const (
	kindFAT12 = "fat12"
	kindFAT16 = "fat16"
	kindFAT32 = "fat32"
)

// Limits past which a boot sector is taken as corrupt. They bound what
// go-diskfs allocates for an image it is handed.
const (
	maxClusterBytes = 64 << 10 // the FAT spec's 32 KiB, with room for 64 KiB
	maxFATBytes     = 4 << 20  // one FAT copy; FAT16 needs 128 KiB at most
	maxRootDirBytes = 4 << 20  // a FAT32 root directory's cluster chain
)

// geometry is what ReadFile takes from the boot sector, checked.
type geometry struct {
	kind            string // kindFAT12, kindFAT16 or kindFAT32, by cluster count
	bytesPerCluster int64
	fatOffset       int64 // first FAT copy
	fatBytes        int64 // one FAT copy
	dataOffset      int64 // cluster 2
	clusters        int64 // data clusters, numbered 2 to clusters+1
}

// parseGeometry checks the BIOS parameter block in boot, the first 512 bytes
// of an image of size bytes. It is stricter than go-diskfs, which divides by
// and allocates whatever the boot sector says, and it mirrors go-diskfs where
// go-diskfs has fixed ideas: two FATs, and a FAT32 root at cluster 2.
func parseGeometry(boot []byte, size int64) (geometry, error) {
	le16 := func(off int) int64 { return int64(binary.LittleEndian.Uint16(boot[off:])) }
	le32 := func(off int) int64 { return int64(binary.LittleEndian.Uint32(boot[off:])) }
	if len(boot) < 512 {
		return geometry{}, errors.New("boot sector too short")
	}
	if boot[510] != 0x55 || boot[511] != 0xAA {
		return geometry{}, fmt.Errorf("boot sector: signature %02x %02x, want 55 aa", boot[510], boot[511])
	}
	bps := le16(11)
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 {
		return geometry{}, fmt.Errorf("boot sector: bytes per sector %d", bps)
	}
	spc := int64(boot[13])
	if spc == 0 || spc&(spc-1) != 0 {
		return geometry{}, fmt.Errorf("boot sector: sectors per cluster %d", spc)
	}
	if spc*bps > maxClusterBytes {
		return geometry{}, fmt.Errorf("boot sector: cluster size %d", spc*bps)
	}
	reserved := le16(14)
	if reserved == 0 {
		return geometry{}, errors.New("boot sector: reserved sectors 0")
	}
	// go-diskfs places the root directory and data after exactly two FATs.
	if fats := boot[16]; fats != 2 {
		return geometry{}, fmt.Errorf("boot sector: %d FATs, want 2", fats)
	}
	rootEntries := le16(17)
	total16, total32 := le16(19), le32(32)
	total := total16
	switch {
	case total16 == 0:
		total = total32
	case total32 != 0 && total32 != total16:
		return geometry{}, fmt.Errorf("boot sector: total sectors %d and %d disagree", total16, total32)
	}
	if total == 0 {
		return geometry{}, errors.New("boot sector: total sectors 0")
	}
	spf := le16(22)
	if rootEntries == 0 { // FAT32: the FAT size is in the FAT32 extension
		if spf != 0 {
			return geometry{}, fmt.Errorf("boot sector: no root entries but sectors per FAT %d", spf)
		}
		spf = le32(36)
		if root := le32(44); root != 2 {
			return geometry{}, fmt.Errorf("boot sector: FAT32 root directory at cluster %d, want 2", root)
		}
	}
	if spf == 0 {
		return geometry{}, errors.New("boot sector: sectors per FAT 0")
	}
	fatBytes := spf * bps
	if fatBytes > maxFATBytes {
		return geometry{}, fmt.Errorf("boot sector: FAT of %d bytes is too large", fatBytes)
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	meta := reserved + 2*spf + rootSectors
	if total <= meta {
		return geometry{}, fmt.Errorf("boot sector: %d sectors leave no room for data after %d", total, meta)
	}
	g := geometry{
		bytesPerCluster: spc * bps,
		fatOffset:       reserved * bps,
		fatBytes:        fatBytes,
		dataOffset:      meta * bps,
		clusters:        (total - meta) / spc,
	}
	if g.clusters == 0 {
		return geometry{}, errors.New("boot sector: no data clusters")
	}
	var entries int64
	switch {
	case rootEntries == 0:
		g.kind, entries = kindFAT32, fatBytes/4
	case g.clusters < 4085:
		g.kind, entries = kindFAT12, fatBytes*2/3
	case g.clusters < 65525:
		g.kind, entries = kindFAT16, fatBytes/2
	default:
		return geometry{}, fmt.Errorf("boot sector: %d clusters need FAT32, but the root directory is fixed", g.clusters)
	}
	if entries < g.clusters+2 {
		return geometry{}, fmt.Errorf("boot sector: %s FAT of %d entries is too small for %d clusters", g.kind, entries, g.clusters)
	}
	if g.dataOffset > size {
		return geometry{}, fmt.Errorf("image truncated: %d bytes, its FAT and root directory end at %d", size, g.dataOffset)
	}
	return g, nil
}

// fatTable is one FAT copy decoded: link[c] is the cluster after c in its
// chain, 0 where the chain ends, at an end-of-chain mark or at any value
// that is not a cluster number. It follows every link go-diskfs would
// follow (go-diskfs does not mask the top bits of FAT32 entries, so
// neither does it), which is what lets checkChains vouch for go-diskfs's
// chain walks. Decoding once, per kind, and skipping free clusters made
// the check 8× faster than reading each entry through a switch on the
// kind twice per pass: it had been 75 % of reading a floppy.
type fatTable struct {
	link []uint32
}

// newFATTable decodes b, the bytes of one FAT of the given kind; the
// entries are as many as b holds, entries 0 and 1 included.
func newFATTable(kind string, b []byte) fatTable {
	var n uint32
	switch kind {
	case kindFAT12:
		n = uint32(len(b) * 2 / 3)
	case kindFAT16:
		n = uint32(len(b) / 2)
	default:
		n = uint32(len(b) / 4)
	}
	link := make([]uint32, n)
	switch kind {
	case kindFAT12:
		for c := uint32(2); c < n; c++ {
			off := c * 3 / 2
			if off+1 >= uint32(len(b)) {
				break
			}
			v := uint32(binary.LittleEndian.Uint16(b[off:]))
			if c%2 == 0 {
				v &= 0xFFF
			} else {
				v >>= 4
			}
			if v < 0xFF8 {
				link[c] = v
			}
		}
	case kindFAT16:
		for c := uint32(2); c < n; c++ {
			if v := uint32(binary.LittleEndian.Uint16(b[c*2:])); v < 0xFFF8 {
				link[c] = v
			}
		}
	default:
		for c := uint32(2); c < n; c++ {
			if v := binary.LittleEndian.Uint32(b[c*4:]); v&0x0FFFFFF8 != 0x0FFFFFF8 {
				link[c] = v
			}
		}
	}
	for c, v := range link {
		if v < 2 || v >= n {
			link[c] = 0
		}
	}
	return fatTable{link: link}
}

// checkChains returns an error if any cluster chain in the FAT loops.
// go-diskfs follows chains without a loop check, so a loop would hang it.
func (t fatTable) checkChains() error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, len(t.link))
	for s := range t.link {
		if state[s] != unseen || t.link[s] == 0 { // free, or a chain's end: nothing to follow
			continue
		}
		c := uint32(s)
		for {
			state[c] = onPath
			next := t.link[c]
			if next == 0 || state[next] == done {
				break
			}
			if state[next] == onPath {
				return fmt.Errorf("cluster chain loops at cluster %d", next)
			}
			c = next
		}
		for c := uint32(s); c != 0 && state[c] == onPath; c = t.link[c] {
			state[c] = done
		}
	}
	return nil
}

// chainLen counts the clusters in the chain from c. The FAT must have passed
// checkChains.
func (t fatTable) chainLen(c uint32) int {
	n := 1
	for ; t.link[c] != 0; c = t.link[c] {
		n++
	}
	return n
}
