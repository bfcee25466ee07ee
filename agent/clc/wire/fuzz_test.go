package wire

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// FuzzDecode feeds any byte stream to the framing reader and decodes each
// packet: it must never panic, never return a packet the limits refuse,
// and every message it decodes must append back to the packet's exact bytes.
func FuzzDecode(f *testing.F) {
	var ch [AuthDataLen]byte
	copy(ch[:], "30d8e15f-0db1-43c3-9bee-4e2eb85ff6c5")
	for _, m := range []Message{
		RegisterRequest{Tag: 1, Status: 7, IP: "127.0.0.1"}, RegisterReply{Result: 1021}, Report{Status: 2000},
		QueryRequest{JobID: 5}, QueryReply{JobID: 5, Tag: 1, Status: 9, IP: "127.0.0.1"}, AuthRequest{Tag: 1, Data: ch},
		AuthReply{Tag: 1, Data: ch}, EchoRequest{Data: []byte("x")}, EchoReply{}, Join{Addr: netip.MustParseAddrPort("127.0.0.1:1369")},
	} {
		b, _ := Append(nil, m)
		f.Add(b)
	}
	f.Add(packet(901, MaxData+1, ""))
	f.Add(packet(40004, 0, ""))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		off := 0
		for {
			p, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrUnknownType) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			raw := in[off : off+HeaderLen+len(p.Data)]
			off += len(raw)
			if !p.Type.Known() || len(p.Data) > MaxData {
				t.Fatalf("reader passed %s with %d bytes", p.Type, len(p.Data))
			}
			m, err := Decode(p)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("decode: unexpected error kind: %v", err)
				}
				continue
			}
			back, err := Append(nil, m)
			if err != nil {
				t.Fatalf("append of decoded %#v: %v", m, err)
			}
			if !bytes.Equal(back, raw) {
				t.Fatalf("round trip of %s:\n got % x\nwant % x", p.Type, back, raw)
			}
		}
	})
}

// FuzzParseJoin: any datagram; a JOIN that parses appends back to the same
// bytes, and its address is a usable IPv4 address and port.
func FuzzParseJoin(f *testing.F) {
	f.Add(append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 1369"...))
	f.Add(append([]byte{101, 0, 0, 0, 20, 0, 0, 0}, "join 127.0.0.1 1369\x00"...))
	f.Add(append([]byte{101, 0, 0, 0, 5, 0, 0, 0}, "join "...))
	f.Add([]byte("join 10.0.0.1 65535"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if j, err := ParseJoin(in); err == nil {
			if !j.Addr.Addr().Is4() || j.Addr.Port() == 0 {
				t.Fatalf("ParseJoin(%q) = %v", in, j.Addr)
			}
			if back := j.AppendData(nil); !bytes.Equal(back, in) {
				t.Fatalf("ParseJoin(%q) appends back as %q", in, back)
			}
		}
		j, err := ParseJoinDatagram(in)
		if err != nil {
			return
		}
		back, err := Append(nil, j)
		if err != nil || !bytes.Equal(back, in) {
			t.Fatalf("datagram %q appends back as %q, %v", in, back, err)
		}
	})
}
