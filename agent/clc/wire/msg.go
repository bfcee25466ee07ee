package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// Values carried in the int32 and text fields.
const (
	// OSM_REGISTER_REPLY results.
	RegisterOK     int32 = 1021
	RegisterFailed int32 = 1022

	// OSM_REPORT application statuses: 2000+n is "the status script
	// exited n" for n in 0..127 (0: running and serving).
	AppRunning int32 = 2000
	AppUnknown int32 = 2128 // no script, killed by a signal, timed out
	AppStopped int32 = 2129
	AppFailed  int32 = 2130
)

// AppMeaning says in words what an OSM_REPORT value means, for logs, the
// status page and the local controller's events.
func AppMeaning(v int32) string {
	switch {
	case v == AppRunning:
		return "running (serving)"
	case v > AppRunning && v < AppUnknown:
		return fmt.Sprintf("running, not serving (exit %d)", v-AppRunning)
	case v == AppUnknown:
		return "unknown"
	case v == AppStopped:
		return "stopped"
	case v == AppFailed:
		return "failed"
	}
	return fmt.Sprintf("not a status value (%d)", v)
}

// Agent states, the <status> of OSM_REGISTER_REQUEST and OSM_QUERY_REPLY.
const (
	StateUnknown         int32 = 0
	StateInit            int32 = 2
	StateUnauthenticated int32 = 4
	StateAuthenticating  int32 = 5
	StateAuthenticated   int32 = 6
	StateUnregistered    int32 = 7 // the only status a REGISTER_REQUEST may carry
	StateRegistering     int32 = 8
	StateRegistered      int32 = 9
	StateAppUnknown      int32 = 100
	StateAppRunning      int32 = 101
	StateAppStopped      int32 = 102
)

// MaxIPText is the longest <ip> field: the controller scans it with "%s"
// into a 64-byte buffer.
const MaxIPText = 63

// Message is a packet's decoded data.
type Message interface {
	Type() Type
	// AppendData appends the message's data (no header) to b.
	AppendData(b []byte) []byte
}

// Decode parses p's data according to its type.
func Decode(p Packet) (Message, error) {
	var (
		m   Message
		err error
	)
	switch p.Type {
	case TypeJoin:
		m, err = ParseJoin(p.Data)
	case TypeEchoRequest:
		m = EchoRequest{Data: p.Data}
	case TypeEchoReply:
		m = EchoReply{Data: p.Data}
	case TypeQueryRequest:
		m, err = ParseQueryRequest(p.Data)
	case TypeQueryReply:
		m, err = ParseQueryReply(p.Data)
	case TypeRegisterRequest:
		m, err = ParseRegisterRequest(p.Data)
	case TypeRegisterReply:
		m, err = ParseRegisterReply(p.Data)
	case TypeReport:
		m, err = ParseReport(p.Data)
	case TypeAuthRequest:
		m, err = ParseAuthRequest(p.Data)
	case TypeAuthReply:
		m, err = ParseAuthReply(p.Data)
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownType, uint32(p.Type))
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// AuthRequest is OSM_AUTH_REQUEST: the agent's encrypted challenge (step 1)
// or the controller's plain one (step 3).
type AuthRequest struct {
	Tag  int32
	Data [AuthDataLen]byte
}

// AuthReply is OSM_AUTH_REPLY: the answer to an AuthRequest.
type AuthReply struct {
	Tag  int32
	Data [AuthDataLen]byte
}

// Type returns TypeAuthRequest.
func (AuthRequest) Type() Type { return TypeAuthRequest }

// Type returns TypeAuthReply.
func (AuthReply) Type() Type { return TypeAuthReply }

// AppendData appends the tag and the 40 bytes.
func (m AuthRequest) AppendData(b []byte) []byte { return appendAuth(b, m.Tag, &m.Data) }

// AppendData appends the tag and the 40 bytes.
func (m AuthReply) AppendData(b []byte) []byte { return appendAuth(b, m.Tag, &m.Data) }

func appendAuth(b []byte, tag int32, d *[AuthDataLen]byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(tag))
	return append(b, d[:]...)
}

// ParseAuthRequest parses OSM_AUTH_REQUEST data: exactly 44 bytes.
func ParseAuthRequest(data []byte) (AuthRequest, error) {
	tag, d, err := parseAuth(TypeAuthRequest, data)
	return AuthRequest{Tag: tag, Data: d}, err
}

// ParseAuthReply parses OSM_AUTH_REPLY data: exactly 44 bytes.
func ParseAuthReply(data []byte) (AuthReply, error) {
	tag, d, err := parseAuth(TypeAuthReply, data)
	return AuthReply{Tag: tag, Data: d}, err
}

func parseAuth(t Type, data []byte) (int32, [AuthDataLen]byte, error) {
	var d [AuthDataLen]byte
	if len(data) != 4+AuthDataLen {
		return 0, d, fmt.Errorf("%s: %w: %d bytes, want %d", t, ErrMalformed, len(data), 4+AuthDataLen)
	}
	copy(d[:], data[4:])
	return int32(binary.LittleEndian.Uint32(data)), d, nil
}

// RegisterRequest is OSM_REGISTER_REQUEST, "<tag> <status> <ip>".
type RegisterRequest struct {
	Tag    int32
	Status int32 // always StateUnregistered from a correct agent
	IP     string
}

// Type returns TypeRegisterRequest.
func (RegisterRequest) Type() Type { return TypeRegisterRequest }

// AppendData appends the text.
func (m RegisterRequest) AppendData(b []byte) []byte {
	b = strconv.AppendInt(b, int64(m.Tag), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Status), 10)
	b = append(b, ' ')
	return append(b, m.IP...)
}

// ParseRegisterRequest parses "<tag> <status> <ip>".
func ParseRegisterRequest(data []byte) (RegisterRequest, error) {
	f, err := fields(TypeRegisterRequest, data, 3)
	if err != nil {
		return RegisterRequest{}, err
	}
	var m RegisterRequest
	if m.Tag, err = parseInt32(TypeRegisterRequest, "tag", f[0]); err != nil {
		return RegisterRequest{}, err
	}
	if m.Status, err = parseInt32(TypeRegisterRequest, "status", f[1]); err != nil {
		return RegisterRequest{}, err
	}
	if m.IP, err = parseIPText(TypeRegisterRequest, f[2]); err != nil {
		return RegisterRequest{}, err
	}
	return m, nil
}

// RegisterReply is OSM_REGISTER_REPLY.
type RegisterReply struct{ Result int32 }

// Type returns TypeRegisterReply.
func (RegisterReply) Type() Type { return TypeRegisterReply }

// AppendData appends the int32.
func (m RegisterReply) AppendData(b []byte) []byte { return appendInt32(b, m.Result) }

// ParseRegisterReply parses exactly 4 bytes.
func ParseRegisterReply(data []byte) (RegisterReply, error) {
	v, err := parseInt32Data(TypeRegisterReply, data)
	return RegisterReply{Result: v}, err
}

// Report is OSM_REPORT. The controller never answers it.
type Report struct{ Status int32 }

// Type returns TypeReport.
func (Report) Type() Type { return TypeReport }

// AppendData appends the int32.
func (m Report) AppendData(b []byte) []byte { return appendInt32(b, m.Status) }

// ParseReport parses exactly 4 bytes.
func ParseReport(data []byte) (Report, error) {
	v, err := parseInt32Data(TypeReport, data)
	return Report{Status: v}, err
}

// QueryRequest is OSM_QUERY_REQUEST, sent when the cloud asks about the
// instance.
type QueryRequest struct{ JobID int32 }

// Type returns TypeQueryRequest.
func (QueryRequest) Type() Type { return TypeQueryRequest }

// AppendData appends the int32.
func (m QueryRequest) AppendData(b []byte) []byte { return appendInt32(b, m.JobID) }

// ParseQueryRequest parses exactly 4 bytes.
func ParseQueryRequest(data []byte) (QueryRequest, error) {
	v, err := parseInt32Data(TypeQueryRequest, data)
	return QueryRequest{JobID: v}, err
}

// QueryReply is OSM_QUERY_REPLY, "<jobid> <tag> <status> <ip>".
type QueryReply struct {
	JobID  int32
	Tag    int32
	Status int32 // an agent state (StateRegistered, StateAppRunning, …)
	IP     string
}

// Type returns TypeQueryReply.
func (QueryReply) Type() Type { return TypeQueryReply }

// AppendData appends the text.
func (m QueryReply) AppendData(b []byte) []byte {
	b = strconv.AppendInt(b, int64(m.JobID), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Tag), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Status), 10)
	b = append(b, ' ')
	return append(b, m.IP...)
}

// ParseQueryReply parses "<jobid> <tag> <status> <ip>".
func ParseQueryReply(data []byte) (QueryReply, error) {
	f, err := fields(TypeQueryReply, data, 4)
	if err != nil {
		return QueryReply{}, err
	}
	var m QueryReply
	if m.JobID, err = parseInt32(TypeQueryReply, "job id", f[0]); err != nil {
		return QueryReply{}, err
	}
	if m.Tag, err = parseInt32(TypeQueryReply, "tag", f[1]); err != nil {
		return QueryReply{}, err
	}
	if m.Status, err = parseInt32(TypeQueryReply, "status", f[2]); err != nil {
		return QueryReply{}, err
	}
	if m.IP, err = parseIPText(TypeQueryReply, f[3]); err != nil {
		return QueryReply{}, err
	}
	return m, nil
}

// Join is JOIN, "join <ip> <port>": where the controller listens. It
// travels by UDP multicast only.
type Join struct{ Addr netip.AddrPort }

// Type returns TypeJoin.
func (Join) Type() Type { return TypeJoin }

// AppendData appends the text.
func (m Join) AppendData(b []byte) []byte {
	b = append(b, "join "...)
	b = m.Addr.Addr().AppendTo(b)
	b = append(b, ' ')
	return strconv.AppendUint(b, uint64(m.Addr.Port()), 10)
}

// ParseJoin parses "join <ip> <port>": a dotted-quad IPv4 address (the
// controller is IPv4-only) and a port 1..65535, single spaces, nothing else.
func ParseJoin(data []byte) (Join, error) {
	rest, ok := bytes.CutPrefix(data, []byte("join "))
	if !ok {
		return Join{}, fmt.Errorf("%s: %w: does not start with \"join \"", TypeJoin, ErrMalformed)
	}
	ipText, portText, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return Join{}, fmt.Errorf("%s: %w: want \"join <ip> <port>\"", TypeJoin, ErrMalformed)
	}
	ip, err := netip.ParseAddr(string(ipText))
	if err != nil || !ip.Is4() {
		return Join{}, fmt.Errorf("%s: %w: %q is not an IPv4 address", TypeJoin, ErrMalformed, ipText)
	}
	port, ok := parseDecimal(portText, 65535)
	if !ok || port == 0 {
		return Join{}, fmt.Errorf("%s: %w: %q is not a port", TypeJoin, ErrMalformed, portText)
	}
	return Join{Addr: netip.AddrPortFrom(ip, uint16(port))}, nil
}

// ParseJoinDatagram parses a whole JOIN datagram, header included.
func ParseJoinDatagram(b []byte) (Join, error) {
	p, err := ParseDatagram(b)
	if err != nil {
		return Join{}, err
	}
	if p.Type != TypeJoin {
		return Join{}, fmt.Errorf("%w: %s datagram, want %s", ErrMalformed, p.Type, TypeJoin)
	}
	return ParseJoin(p.Data)
}

// EchoRequest is ECHO_REQUEST: any bytes, to be sent back. The controller
// refuses to send an empty packet, so a heartbeat carries some bytes.
type EchoRequest struct{ Data []byte }

// EchoReply is ECHO_REPLY: the request's bytes.
type EchoReply struct{ Data []byte }

// Type returns TypeEchoRequest.
func (EchoRequest) Type() Type { return TypeEchoRequest }

// Type returns TypeEchoReply.
func (EchoReply) Type() Type { return TypeEchoReply }

// AppendData appends the bytes.
func (m EchoRequest) AppendData(b []byte) []byte { return append(b, m.Data...) }

// AppendData appends the bytes.
func (m EchoReply) AppendData(b []byte) []byte { return append(b, m.Data...) }

func appendInt32(b []byte, v int32) []byte { return binary.LittleEndian.AppendUint32(b, uint32(v)) }

func parseInt32Data(t Type, data []byte) (int32, error) {
	if len(data) != 4 {
		return 0, fmt.Errorf("%s: %w: %d bytes, want 4", t, ErrMalformed, len(data))
	}
	return int32(binary.LittleEndian.Uint32(data)), nil
}

// fields splits text on single spaces into exactly n non-empty fields.
func fields(t Type, data []byte, n int) ([][]byte, error) {
	f := bytes.Split(data, []byte(" "))
	if len(f) != n {
		return nil, fmt.Errorf("%s: %w: %d space-separated fields, want %d", t, ErrMalformed, len(f), n)
	}
	for _, x := range f {
		if len(x) == 0 {
			return nil, fmt.Errorf("%s: %w: empty field", t, ErrMalformed)
		}
	}
	return f, nil
}

// parseInt32 parses canonical decimal: an optional '-', no '+', no
// leading zeros, no "-0", within int32.
func parseInt32(t Type, what string, s []byte) (int32, error) {
	neg := len(s) > 0 && s[0] == '-'
	digits := s
	if neg {
		digits = s[1:]
	}
	limit := uint64(1<<31 - 1)
	if neg {
		limit++
	}
	v, ok := parseDecimal(digits, limit)
	if !ok || (neg && v == 0) {
		return 0, fmt.Errorf("%s: %w: %s %q is not a decimal int32", t, ErrMalformed, what, s)
	}
	if neg {
		return int32(-int64(v)), nil
	}
	return int32(v), nil
}

// parseDecimal parses digits without sign or leading zeros, up to max.
func parseDecimal(s []byte, max uint64) (uint64, bool) {
	if len(s) == 0 || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= max
}

// parseIPText checks the <ip> field: printable ASCII without spaces, short
// enough for the controller's buffer. Agents send the connection's local
// address; the old agent sent "empty" when it had none, so it is not
// required to parse as an address.
func parseIPText(t Type, s []byte) (string, error) {
	if len(s) > MaxIPText {
		return "", fmt.Errorf("%s: %w: ip field of %d bytes, at most %d", t, ErrMalformed, len(s), MaxIPText)
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("%s: %w: ip field %q has a byte that is not printable ASCII", t, ErrMalformed, s)
		}
	}
	return string(s), nil
}
