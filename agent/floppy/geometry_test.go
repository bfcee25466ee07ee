package floppy

import (
	"encoding/binary"
	"strings"
	"testing"
)

// fatBytes encodes entries as a FAT of the given kind.
func fatBytes(kind string, entries []uint32) []byte {
	switch kind {
	case kindFAT12:
		b := make([]byte, (len(entries)*3+1)/2)
		for i, v := range entries {
			off := i * 3 / 2
			w := binary.LittleEndian.Uint16(b[off:])
			if i%2 == 0 {
				w = w&0xF000 | uint16(v&0xFFF)
			} else {
				w = w&0x000F | uint16(v&0xFFF)<<4
			}
			binary.LittleEndian.PutUint16(b[off:], w)
		}
		return b
	case kindFAT16:
		b := make([]byte, len(entries)*2)
		for i, v := range entries {
			binary.LittleEndian.PutUint16(b[i*2:], uint16(v))
		}
		return b
	}
	b := make([]byte, len(entries)*4)
	for i, v := range entries {
		binary.LittleEndian.PutUint32(b[i*4:], v)
	}
	return b
}

// TestFATTable: the decoded links and the loop check, for each kind, on
// chains that end, run out of range, join another chain or loop.
func TestFATTable(t *testing.T) {
	eoc := map[string]uint32{kindFAT12: 0xFFF, kindFAT16: 0xFFFF, kindFAT32: 0x0FFFFFFF}
	for _, kind := range []string{kindFAT12, kindFAT16, kindFAT32} {
		e := eoc[kind]
		for _, c := range []struct {
			name     string
			entries  []uint32 // from entry 0
			wantLen  int      // chainLen(2), when no loop
			wantLoop string   // the error's text, "" for none
		}{
			{"one chain, free clusters around", []uint32{0xFF0, e, 3, 4, e, 0, 0, 0}, 3, ""},
			{"two chains joining", []uint32{0xFF0, e, 3, 4, e, 4, 5, 0}, 3, ""},
			{"link past the end ends the chain", []uint32{0xFF0, e, 3, 99, 0, 0}, 2, ""},
			{"link to cluster 1 ends the chain", []uint32{0xFF0, e, 1, 0}, 1, ""},
			{"loop after a start", []uint32{0xFF0, e, 3, 4, 5, 3, 0}, 0, "loops at cluster 3"},
			{"self loop of a cluster no chain reaches", []uint32{0xFF0, e, e, 0, 0, 5, 0}, 0, "loops at cluster 5"},
			{"loop reached from a later chain", []uint32{0xFF0, e, e, 4, 3, 3, 0}, 0, "loops at cluster"},
		} {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				tbl := newFATTable(kind, fatBytes(kind, c.entries))
				if got := len(tbl.link); got < len(c.entries) {
					t.Fatalf("%d entries decoded, want at least %d", got, len(c.entries))
				}
				err := tbl.checkChains()
				switch {
				case c.wantLoop == "" && err != nil:
					t.Fatalf("checkChains: %v, want nil", err)
				case c.wantLoop != "" && (err == nil || !strings.Contains(err.Error(), c.wantLoop)):
					t.Fatalf("checkChains: %v, want %q", err, c.wantLoop)
				case c.wantLoop == "":
					if got := tbl.chainLen(2); got != c.wantLen {
						t.Errorf("chainLen(2) = %d, want %d", got, c.wantLen)
					}
				}
			})
		}
	}
	// FAT32's top four bits are not masked, as go-diskfs does not: a link
	// with them set is no cluster number, and ends the chain.
	tbl := newFATTable(kindFAT32, fatBytes(kindFAT32, []uint32{0, 0, 0x10000003, 2}))
	if err := tbl.checkChains(); err != nil || tbl.chainLen(2) != 1 {
		t.Errorf("FAT32 high bits: checkChains %v, chainLen(2) = %d, want nil, 1", err, tbl.chainLen(2))
	}
}
