// Package wire is the byte format of the LuoYun cloud-controller protocol
// (spec: controller-protocol.md), shared by the agent's link (agent/clc) and
// the local controller (agent/clcd).
//
// # Framing
//
// Over TCP, and in each multicast datagram, a packet is an 8-byte header
// followed by its data:
//
//	offset 0  uint32  type    (one of the Type constants)
//	offset 4  uint32  length  (bytes of data that follow)
//	offset 8  length bytes of data: no padding, no NUL terminator
//
// The controller writes the header fields in its host byte order. Every
// controller in the field is x86, so the wire order is little-endian; this
// package says binary.LittleEndian explicitly (not NativeEndian), so an
// arm64 or big-endian agent still speaks what the field speaks.
//
// The controller's receive buffer is 40960 bytes and it closes a
// connection whose packet does not fit: a packet is at most MaxPacket
// (40959) bytes, so data at most MaxData (40951). Append refuses to build a
// longer packet and Reader refuses (the caller closes) a longer length. The
// controller also closes on a type it does not know, and does not set
// TCP_NODELAY, so packets arrive split anywhere or several in one read:
// Reader frames strictly by the length field and refuses unknown types.
//
// # Messages
//
//	type   name                  data
//	101    JOIN                  ASCII "join <ip> <port>" (UDP multicast)
//	901    ECHO_REQUEST          any bytes
//	902    ECHO_REPLY            the request's bytes
//	20033  OSM_QUERY_REQUEST     int32 job id
//	20034  OSM_QUERY_REPLY       ASCII "<jobid> <tag> <status> <ip>"
//	40001  OSM_REGISTER_REQUEST  ASCII "<tag> <status> <ip>"
//	40002  OSM_REGISTER_REPLY    int32 result (1021 ok, 1022 failed)
//	40003  OSM_REPORT            int32 application status, exactly 4 bytes
//	40011  OSM_AUTH_REQUEST      int32 tag + 40 bytes
//	40012  OSM_AUTH_REPLY        int32 tag + 40 bytes
//
// int32 fields are little-endian like the header. Numbers in text are
// decimal. Each message is a Go type with a Parse function and an
// AppendData method; Append frames any of them and Decode turns a Packet
// back into one. The parsers accept exactly what Append writes (canonical
// decimal, single spaces, no NUL), so Append(Decode(p)) gives p's bytes
// back: the fuzz tests hold them to that.
//
// # Authentication
//
// Both sides prove they know the instance's KEY by RC4 challenge–response;
// see Crypt and NewChallenge in auth.go.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Type is a packet type, the header's first field.
type Type uint32

// Packet types of the protocol. Nothing else may be sent: the controller
// closes the connection on a type it does not know.
const (
	TypeJoin            Type = 101
	TypeEchoRequest     Type = 901
	TypeEchoReply       Type = 902
	TypeQueryRequest    Type = 20033
	TypeQueryReply      Type = 20034
	TypeRegisterRequest Type = 40001
	TypeRegisterReply   Type = 40002
	TypeReport          Type = 40003
	TypeAuthRequest     Type = 40011
	TypeAuthReply       Type = 40012
)

var typeNames = map[Type]string{
	TypeJoin:            "JOIN",
	TypeEchoRequest:     "ECHO_REQUEST",
	TypeEchoReply:       "ECHO_REPLY",
	TypeQueryRequest:    "OSM_QUERY_REQUEST",
	TypeQueryReply:      "OSM_QUERY_REPLY",
	TypeRegisterRequest: "OSM_REGISTER_REQUEST",
	TypeRegisterReply:   "OSM_REGISTER_REPLY",
	TypeReport:          "OSM_REPORT",
	TypeAuthRequest:     "OSM_AUTH_REQUEST",
	TypeAuthReply:       "OSM_AUTH_REPLY",
}

// String returns the spec's name of the type, or its number.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type " + strconv.FormatUint(uint64(t), 10)
}

// Known reports whether t is one of the protocol's types.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Sizes.
const (
	HeaderLen   = 8
	MaxPacket   = 40959 // header + data; the controller's buffer is one byte more
	MaxData     = MaxPacket - HeaderLen
	AuthDataLen = 40 // the challenge field of the AUTH messages
)

// Errors of framing and parsing. Each is wrapped with detail.
var (
	ErrTooLong     = errors.New("packet too long")
	ErrUnknownType = errors.New("unknown packet type")
	ErrTruncated   = errors.New("truncated packet")
	ErrMalformed   = errors.New("malformed packet")
)

// Packet is one framed packet.
type Packet struct {
	Type Type
	Data []byte
}

// AppendPacket appends the packet of type t with data to b. It refuses an
// unknown type and data longer than MaxData, so nothing the controller
// would close on is ever built.
func AppendPacket(b []byte, t Type, data []byte) ([]byte, error) {
	if !t.Known() {
		return b, fmt.Errorf("append packet: %w %d", ErrUnknownType, uint32(t))
	}
	if len(data) > MaxData {
		return b, fmt.Errorf("append %s: %w: %d bytes of data, at most %d", t, ErrTooLong, len(data), MaxData)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(t))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...), nil
}

// Append appends m, framed, to b.
func Append(b []byte, m Message) ([]byte, error) {
	if !m.Type().Known() {
		return b, fmt.Errorf("append packet: %w %d", ErrUnknownType, uint32(m.Type()))
	}
	// Build the data in place after a header-sized gap, then fill the header.
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b = m.AppendData(b)
	n := len(b) - start - HeaderLen
	if n > MaxData {
		return b[:start], fmt.Errorf("append %s: %w: %d bytes of data, at most %d", m.Type(), ErrTooLong, n, MaxData)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(m.Type()))
	binary.LittleEndian.PutUint32(b[start+4:], uint32(n))
	return b, nil
}

// parseHeader checks a header and returns its type and length.
func parseHeader(h []byte) (Type, int, error) {
	t := Type(binary.LittleEndian.Uint32(h))
	n := binary.LittleEndian.Uint32(h[4:])
	if !t.Known() {
		return t, 0, fmt.Errorf("%w %d", ErrUnknownType, uint32(t))
	}
	if n > MaxData {
		return t, 0, fmt.Errorf("%s: %w: length %d, at most %d", t, ErrTooLong, n, MaxData)
	}
	return t, int(n), nil
}

// Reader reads packets from a stream, framing strictly by the length
// field: a packet may arrive split into any pieces or share a read with
// others.
type Reader struct {
	br  *bufio.Reader
	hdr [HeaderLen]byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{br: bufio.NewReaderSize(r, 4096)} }

// Next returns the next packet. At a clean end between packets it returns
// io.EOF; a stream that ends inside a packet gives ErrTruncated, a length
// over MaxData ErrTooLong and a type not in the protocol ErrUnknownType,
// after which the stream is out of step and the caller must close it.
// Data is freshly allocated for each packet.
func (r *Reader) Next() (Packet, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Packet{}, fmt.Errorf("%w: stream ended inside a header", ErrTruncated)
		}
		return Packet{}, err
	}
	t, n, err := parseHeader(r.hdr[:])
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Type: t, Data: make([]byte, n)}
	if _, err := io.ReadFull(r.br, p.Data); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Packet{}, fmt.Errorf("%w: %s of %d bytes cut short", ErrTruncated, t, n)
		}
		return Packet{}, err
	}
	return p, nil
}

// Buffered returns how many bytes have been read from the stream but not
// yet returned as packets.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ParseDatagram parses b as exactly one packet, as a UDP datagram carries
// it: the length field must account for every byte after the header.
func ParseDatagram(b []byte) (Packet, error) {
	if len(b) < HeaderLen {
		return Packet{}, fmt.Errorf("%w: %d-byte datagram is shorter than a header", ErrTruncated, len(b))
	}
	t, n, err := parseHeader(b)
	if err != nil {
		return Packet{}, err
	}
	switch {
	case n > len(b)-HeaderLen:
		return Packet{}, fmt.Errorf("%w: %s says %d bytes of data, datagram has %d", ErrTruncated, t, n, len(b)-HeaderLen)
	case n < len(b)-HeaderLen:
		return Packet{}, fmt.Errorf("%w: %s says %d bytes of data, datagram has %d", ErrMalformed, t, n, len(b)-HeaderLen)
	}
	return Packet{Type: t, Data: b[HeaderLen:]}, nil
}
