package webssh

import (
	"sync"
	"unicode/utf8"
)

// chunkSize is the unit the output buffer grows and shrinks by.
const chunkSize = 32 << 10

// chunkPool recycles output chunks and read buffers across sessions.
type chunkPool struct{ p sync.Pool }

func (c *chunkPool) get() *[]byte {
	if b, ok := c.p.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, chunkSize)
	return &b
}

func (c *chunkPool) put(b *[]byte) { c.p.Put(b) }

// outbuf is a session's output not yet acknowledged by the client: the
// stream bytes [start, end), in pooled chunks. It is both the send queue
// and the replay buffer for resume; it never holds more than the output
// window (the reader stops reading the shell when it is full), and an idle
// session whose output was all acknowledged holds no chunk at all.
// Callers hold the session's lock.
type outbuf struct {
	pool   *chunkPool
	chunks []*[]byte
	start  uint64 // stream offset of (*chunks[0])[0]
	end    uint64
}

// append copies p to the end of the stream.
func (b *outbuf) append(p []byte) {
	b.end += uint64(len(p))
	for len(p) > 0 {
		if n := len(b.chunks); n == 0 || len(*b.chunks[n-1]) == chunkSize {
			if n == 0 {
				b.start = b.end - uint64(len(p))
			}
			b.chunks = append(b.chunks, b.pool.get())
		}
		c := b.chunks[len(b.chunks)-1]
		k := min(len(p), chunkSize-len(*c))
		*c = append(*c, p[:k]...)
		p = p[k:]
	}
}

// trim releases the chunks wholly before off; everything when off is end.
func (b *outbuf) trim(off uint64) {
	if off >= b.end {
		for _, c := range b.chunks {
			b.pool.put(c)
		}
		clear(b.chunks)
		b.chunks = b.chunks[:0]
		b.start = b.end
		return
	}
	n := 0
	for n < len(b.chunks)-1 && b.start+uint64(len(*b.chunks[n])) <= off {
		b.start += uint64(len(*b.chunks[n]))
		b.pool.put(b.chunks[n])
		n++
	}
	if n > 0 {
		k := copy(b.chunks, b.chunks[n:])
		clear(b.chunks[k:])
		b.chunks = b.chunks[:k]
	}
}

// views appends to dst the slices holding [from, to) and returns dst.
// from and to must lie within [start, end].
func (b *outbuf) views(dst [][]byte, from, to uint64) [][]byte {
	pos := b.start
	for _, c := range b.chunks {
		cs, ce := pos, pos+uint64(len(*c))
		pos = ce
		if ce <= from {
			continue
		}
		if cs >= to {
			break
		}
		lo, hi := max(from, cs)-cs, min(to, ce)-cs
		dst = append(dst, (*c)[lo:hi])
	}
	return dst
}

// cut returns the offset at or before to where a frame may end without
// splitting a UTF-8 sequence: the bytes of an incomplete but so far valid
// sequence at the end are held back. Invalid bytes are never held.
func (b *outbuf) cut(from, to uint64) uint64 {
	var t [utf8.UTFMax - 1]byte
	n := int(min(to-from, utf8.UTFMax-1))
	for i := range n {
		t[i] = b.at(to - uint64(n) + uint64(i))
	}
	return to - uint64(incomplete(t[:n]))
}

// at returns the byte at stream offset off (start <= off < end).
func (b *outbuf) at(off uint64) byte {
	pos := b.start
	for _, c := range b.chunks {
		if off < pos+uint64(len(*c)) {
			return (*c)[off-pos]
		}
		pos += uint64(len(*c))
	}
	return 0
}

// incomplete returns how many bytes at the end of t (at most 3) start a
// valid UTF-8 sequence that needs more bytes; 0 if none.
func incomplete(t []byte) int {
	for i := len(t) - 1; i >= 0 && i >= len(t)-(utf8.UTFMax-1); i-- {
		c := t[i]
		switch {
		case c < 0x80:
			return 0
		case c < 0xC0:
			continue // a continuation byte: the lead is further back
		}
		need := 0
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 2
		case c >= 0xE0 && c <= 0xEF:
			need = 3
		case c >= 0xF0 && c <= 0xF4:
			need = 4
		default:
			return 0
		}
		if have := len(t) - i; have < need && validPrefix(t[i:]) {
			return have
		}
		return 0
	}
	return 0
}

// validPrefix reports whether p, a lead byte and continuation bytes, can
// still become a valid UTF-8 sequence (no overlong form, surrogate or
// code point past U+10FFFF).
func validPrefix(p []byte) bool {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], p)
	for _, fill := range []byte{0x80, 0x90, 0xA0, 0xBF} {
		for i := n; i < utf8.UTFMax; i++ {
			buf[i] = fill
		}
		if r, size := utf8.DecodeRune(buf[:]); r != utf8.RuneError && size > n {
			return true
		}
	}
	return false
}
