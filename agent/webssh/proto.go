package webssh

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ProtocolVersion is the websocket protocol version the Hello message carries.
const ProtocolVersion = 1

// MsgType is the first byte of every websocket message.
type MsgType byte

// Client → server messages.
const (
	MsgHello  MsgType = 'h' // first message: new session or resume
	MsgInput  MsgType = 'i' // keystrokes and paste, raw bytes (UTF-8 from the page)
	MsgResize MsgType = 'r' // terminal size changed
	MsgAck    MsgType = 'a' // output processed up to an offset: returns credit
)

// Server → client messages.
const (
	MsgAttached MsgType = 'A' // reply to Hello: which session, from which offsets
	MsgOutput   MsgType = 'o' // shell output starting at an offset
	MsgInputAck MsgType = 'k' // input written to the shell up to an offset: returns credit
	MsgExit     MsgType = 'x' // the session is over; the websocket closes after it
)

// SessionID names a terminal session for resume. The zero ID asks for a new one.
type SessionID [16]byte

// IsZero reports whether id is the zero ID.
func (id SessionID) IsZero() bool { return id == SessionID{} }

// String returns id in hex.
func (id SessionID) String() string { return fmt.Sprintf("%x", id[:]) }

// Attached flags.
const (
	FlagResumed = 1 << 0 // the session existed: same shell as before
	FlagGap     = 1 << 1 // output before Offset is gone: the client missed some
)

// Msg is one websocket message.
type Msg interface {
	Type() MsgType
	// Append appends the message's wire form to b.
	Append(b []byte) []byte
}

// Hello opens a websocket: a new session (zero ID) or a resume of ID, whose
// output the client has received up to Offset.
type Hello struct {
	Version    byte
	ID         SessionID
	Offset     uint64
	Cols, Rows uint16
}

// Input is bytes for the shell. Its size counts against the input window.
type Input struct{ Data []byte }

// Resize is the terminal's size in character cells.
type Resize struct{ Cols, Rows uint16 }

// Ack says the client has processed output up to Offset (absolute).
type Ack struct{ Offset uint64 }

// Attached answers Hello. Output for this connection starts at Offset;
// InOffset is how much input the session has received, so a resuming client
// resends only what never arrived. Window and InWindow are the credits: the
// server keeps at most Window bytes of output not yet acknowledged, and the
// client may send at most InWindow bytes of input beyond the last InputAck.
type Attached struct {
	ID       SessionID
	Flags    byte
	Offset   uint64
	InOffset uint64
	Window   uint32
	InWindow uint32
}

// Output is shell output whose first byte is at Offset in the session's
// output stream. The server does not split a UTF-8 sequence across frames
// (except inside bytes that are not valid UTF-8).
type Output struct {
	Offset uint64
	Data   []byte
}

// InputAck says input up to Offset has been written to the shell.
type InputAck struct{ Offset uint64 }

// Exit ends the session: Code is the shell's exit status, or -1 when the
// session was ended by the agent (Reason says why).
type Exit struct {
	Code   int32
	Reason string
}

// Type implementations.
func (Hello) Type() MsgType    { return MsgHello }
func (Input) Type() MsgType    { return MsgInput }
func (Resize) Type() MsgType   { return MsgResize }
func (Ack) Type() MsgType      { return MsgAck }
func (Attached) Type() MsgType { return MsgAttached }
func (Output) Type() MsgType   { return MsgOutput }
func (InputAck) Type() MsgType { return MsgInputAck }
func (Exit) Type() MsgType     { return MsgExit }

// Append implementations.
func (m Hello) Append(b []byte) []byte {
	b = append(b, byte(MsgHello), m.Version)
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Offset)
	b = binary.BigEndian.AppendUint16(b, m.Cols)
	return binary.BigEndian.AppendUint16(b, m.Rows)
}

func (m Input) Append(b []byte) []byte { return append(append(b, byte(MsgInput)), m.Data...) }

func (m Resize) Append(b []byte) []byte {
	b = append(b, byte(MsgResize))
	b = binary.BigEndian.AppendUint16(b, m.Cols)
	return binary.BigEndian.AppendUint16(b, m.Rows)
}

func (m Ack) Append(b []byte) []byte {
	return binary.BigEndian.AppendUint64(append(b, byte(MsgAck)), m.Offset)
}

func (m Attached) Append(b []byte) []byte {
	b = append(b, byte(MsgAttached))
	b = append(b, m.ID[:]...)
	b = append(b, m.Flags)
	b = binary.BigEndian.AppendUint64(b, m.Offset)
	b = binary.BigEndian.AppendUint64(b, m.InOffset)
	b = binary.BigEndian.AppendUint32(b, m.Window)
	return binary.BigEndian.AppendUint32(b, m.InWindow)
}

func (m Output) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(append(b, byte(MsgOutput)), m.Offset)
	return append(b, m.Data...)
}

func (m InputAck) Append(b []byte) []byte {
	return binary.BigEndian.AppendUint64(append(b, byte(MsgInputAck)), m.Offset)
}

func (m Exit) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(append(b, byte(MsgExit)), uint32(m.Code))
	return append(b, m.Reason...)
}

// outputHeaderLen is the size of an Output message before its data.
const outputHeaderLen = 1 + 8

// ErrMsg is wrapped by every Parse error.
var ErrMsg = errors.New("bad websocket message")

// Parse decodes one message. Data fields alias b.
func Parse(b []byte) (Msg, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMsg)
	}
	t, p := MsgType(b[0]), b[1:]
	fixed := func(n int) error {
		if len(p) != n {
			return fmt.Errorf("%w: %q is %d bytes, want %d", ErrMsg, t, len(b), n+1)
		}
		return nil
	}
	min := func(n int) error {
		if len(p) < n {
			return fmt.Errorf("%w: %q is %d bytes, want at least %d", ErrMsg, t, len(b), n+1)
		}
		return nil
	}
	be := binary.BigEndian
	switch t {
	case MsgHello:
		if err := fixed(1 + 16 + 8 + 4); err != nil {
			return nil, err
		}
		m := Hello{Version: p[0], Offset: be.Uint64(p[17:]), Cols: be.Uint16(p[25:]), Rows: be.Uint16(p[27:])}
		copy(m.ID[:], p[1:17])
		return m, nil
	case MsgInput:
		return Input{Data: p}, nil
	case MsgResize:
		if err := fixed(4); err != nil {
			return nil, err
		}
		return Resize{Cols: be.Uint16(p), Rows: be.Uint16(p[2:])}, nil
	case MsgAck:
		if err := fixed(8); err != nil {
			return nil, err
		}
		return Ack{Offset: be.Uint64(p)}, nil
	case MsgAttached:
		if err := fixed(16 + 1 + 8 + 8 + 4 + 4); err != nil {
			return nil, err
		}
		m := Attached{Flags: p[16], Offset: be.Uint64(p[17:]), InOffset: be.Uint64(p[25:]),
			Window: be.Uint32(p[33:]), InWindow: be.Uint32(p[37:])}
		copy(m.ID[:], p[:16])
		return m, nil
	case MsgOutput:
		if err := min(8); err != nil {
			return nil, err
		}
		return Output{Offset: be.Uint64(p), Data: p[8:]}, nil
	case MsgInputAck:
		if err := fixed(8); err != nil {
			return nil, err
		}
		return InputAck{Offset: be.Uint64(p)}, nil
	case MsgExit:
		if err := min(4); err != nil {
			return nil, err
		}
		return Exit{Code: int32(be.Uint32(p)), Reason: string(p[4:])}, nil
	}
	return nil, fmt.Errorf("%w: unknown type %#x", ErrMsg, b[0])
}
