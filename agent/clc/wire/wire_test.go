package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func mustAppend(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := Append(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func packet(typ Type, length uint32, data string) []byte {
	b := []byte{byte(typ), byte(typ >> 8), byte(typ >> 16), byte(typ >> 24),
		byte(length), byte(length >> 8), byte(length >> 16), byte(length >> 24)}
	return append(b, data...)
}

// The spec's test vector, as the controller computes RC4.
func TestRC4Vector(t *testing.T) {
	var in [AuthDataLen]byte
	copy(in[:], "30d8e15f-0db1-43c3-9bee-4e2eb85ff6c5")
	got, err := Crypt("015e33a8-787d-457e-b84d-c2a101a816e0", in)
	if err != nil {
		t.Fatal(err)
	}
	const want = "ac07ac03a3b84c916c41a12eee803825c998b2207409be06278d949727e2b8dcb20c32d247ec1351"
	if hex.EncodeToString(got[:]) != want {
		t.Errorf("ciphertext %x, want %s", got, want)
	}
	back, _ := Crypt("015e33a8-787d-457e-b84d-c2a101a816e0", got)
	if back != in {
		t.Errorf("decrypt gave %q, want the plaintext", back)
	}
}

// The spec's JOIN datagram for "join 127.0.0.1 1369": 27 bytes, type 101,
// length 19, no NUL.
func TestJoinDatagramBytes(t *testing.T) {
	want := append([]byte{101, 0, 0, 0, 19, 0, 0, 0}, "join 127.0.0.1 1369"...)
	got := mustAppend(t, Join{Addr: netip.MustParseAddrPort("127.0.0.1:1369")})
	if !bytes.Equal(got, want) {
		t.Fatalf("JOIN = % x, want % x", got, want)
	}
	if len(got) != 27 {
		t.Errorf("JOIN is %d bytes, want 27", len(got))
	}
	j, err := ParseJoinDatagram(want)
	if err != nil {
		t.Fatal(err)
	}
	if j.Addr != netip.MustParseAddrPort("127.0.0.1:1369") {
		t.Errorf("parsed %v", j.Addr)
	}
}

func TestMessagesBytes(t *testing.T) {
	var ch [AuthDataLen]byte
	copy(ch[:], "30d8e15f-0db1-43c3-9bee-4e2eb85ff6c5")
	for _, tc := range []struct {
		name string
		m    Message
		want []byte
	}{
		{"register request", RegisterRequest{Tag: 12, Status: StateUnregistered, IP: "10.0.0.12"}, packet(40001, 14, "12 7 10.0.0.12")},
		{"register reply ok", RegisterReply{Result: RegisterOK}, packet(40002, 4, "\xfd\x03\x00\x00")},
		{"register reply failed", RegisterReply{Result: RegisterFailed}, packet(40002, 4, "\xfe\x03\x00\x00")},
		{"report 2000", Report{Status: AppRunning}, packet(40003, 4, "\xd0\x07\x00\x00")},
		{"report 2128", Report{Status: AppUnknown}, packet(40003, 4, "\x50\x08\x00\x00")},
		{"query request", QueryRequest{JobID: 77}, packet(20033, 4, "\x4d\x00\x00\x00")},
		{"query reply", QueryReply{JobID: 77, Tag: 12, Status: StateAppRunning, IP: "10.0.0.12"}, packet(20034, 19, "77 12 101 10.0.0.12")},
		{"auth request", AuthRequest{Tag: 1, Data: ch}, packet(40011, 44, "\x01\x00\x00\x0030d8e15f-0db1-43c3-9bee-4e2eb85ff6c5\x00\x00\x00\x00")},
		{"auth reply negative tag", AuthReply{Tag: -2, Data: ch}, packet(40012, 44, "\xfe\xff\xff\xff30d8e15f-0db1-43c3-9bee-4e2eb85ff6c5\x00\x00\x00\x00")},
		{"echo request", EchoRequest{Data: []byte("ping")}, packet(901, 4, "ping")},
		{"echo reply", EchoReply{Data: []byte("ping")}, packet(902, 4, "ping")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustAppend(t, tc.m)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Append = % x\nwant     % x", got, tc.want)
			}
			p, err := NewReader(bytes.NewReader(got)).Next()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.m, back); diff != "" {
				t.Errorf("round trip (-sent +decoded):\n%s", diff)
			}
		})
	}
}

func TestReader(t *testing.T) {
	reg := packet(40001, 14, "12 7 10.0.0.12")
	echo := packet(901, 3, "abc")
	big := packet(901, MaxData, strings.Repeat("x", MaxData))
	for _, tc := range []struct {
		name    string
		r       func([]byte) io.Reader
		in      []byte
		want    []Type
		wantErr error // after the packets in want; nil means a clean io.EOF
	}{
		{name: "two packets in one read", in: append(append([]byte{}, reg...), echo...), want: []Type{TypeRegisterRequest, TypeEchoRequest}},
		{name: "split byte by byte", r: func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
			in: append(append([]byte{}, reg...), echo...), want: []Type{TypeRegisterRequest, TypeEchoRequest}},
		{name: "largest packet", in: big, want: []Type{TypeEchoRequest}},
		{name: "empty data", in: packet(902, 0, ""), want: []Type{TypeEchoReply}},
		{name: "oversized length", in: packet(901, MaxData+1, ""), wantErr: ErrTooLong},
		{name: "length with the top bit set", in: packet(901, 0x80000004, "abcd"), wantErr: ErrTooLong},
		{name: "unknown type", in: append(append([]byte{}, echo...), packet(40004, 4, "abcd")...), want: []Type{TypeEchoRequest}, wantErr: ErrUnknownType},
		{name: "type zero", in: packet(0, 0, ""), wantErr: ErrUnknownType},
		{name: "truncated header", in: reg[:5], wantErr: ErrTruncated},
		{name: "truncated data", in: reg[:len(reg)-1], wantErr: ErrTruncated},
		{name: "truncated after a good packet", in: append(append([]byte{}, echo...), reg[:9]...), want: []Type{TypeEchoRequest}, wantErr: ErrTruncated},
		{name: "empty stream", in: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tc.in)
			if tc.r != nil {
				src = tc.r(tc.in)
			}
			r := NewReader(src)
			var got []Type
			var err error
			for {
				var p Packet
				p, err = r.Next()
				if err != nil {
					break
				}
				got = append(got, p.Type)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("packets (-want +got):\n%s", diff)
			}
			if tc.wantErr == nil {
				if err != io.EOF {
					t.Errorf("end: %v, want io.EOF", err)
				}
			} else if !errors.Is(err, tc.wantErr) {
				t.Errorf("end: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestAppendLimits(t *testing.T) {
	b, err := Append(nil, EchoRequest{Data: make([]byte, MaxData)})
	if err != nil || len(b) != MaxPacket {
		t.Errorf("largest echo: %d bytes, %v; want %d, nil", len(b), err, MaxPacket)
	}
	b, err = Append([]byte("keep"), EchoRequest{Data: make([]byte, MaxData+1)})
	if !errors.Is(err, ErrTooLong) || string(b) != "keep" {
		t.Errorf("echo one byte too long: %q, %v; want the buffer unchanged and ErrTooLong", b[:min(len(b), 8)], err)
	}
	if _, err := AppendPacket(nil, Type(40004), nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("AppendPacket of an unknown type: %v", err)
	}
	if _, err := AppendPacket(nil, TypeEchoReply, make([]byte, MaxData+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("AppendPacket too long: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  Type
		data string
	}{
		{"register: two fields", TypeRegisterRequest, "12 7"},
		{"register: double space", TypeRegisterRequest, "12  7 1.2.3.4"},
		{"register: plus sign", TypeRegisterRequest, "+12 7 1.2.3.4"},
		{"register: leading zero", TypeRegisterRequest, "012 7 1.2.3.4"},
		{"register: minus zero", TypeRegisterRequest, "-0 7 1.2.3.4"},
		{"register: tag over int32", TypeRegisterRequest, "2147483648 7 1.2.3.4"},
		{"register: trailing NUL", TypeRegisterRequest, "12 7 1.2.3.4\x00"},
		{"register: trailing newline", TypeRegisterRequest, "12 7 1.2.3.4\n"},
		{"register: ip too long", TypeRegisterRequest, "12 7 " + strings.Repeat("1", 64)},
		{"query reply: three fields", TypeQueryReply, "1 2 3"},
		{"query reply: hex", TypeQueryReply, "0x1 2 3 1.2.3.4"},
		{"register reply: 3 bytes", TypeRegisterReply, "abc"},
		{"report: 5 bytes", TypeReport, "abcde"},
		{"report: empty", TypeReport, ""},
		{"query request: 8 bytes", TypeQueryRequest, "abcdefgh"},
		{"auth request: 43 bytes", TypeAuthRequest, strings.Repeat("a", 43)},
		{"auth reply: 45 bytes", TypeAuthReply, strings.Repeat("a", 45)},
		{"join: no port", TypeJoin, "join 127.0.0.1"},
		{"join: port 0", TypeJoin, "join 127.0.0.1 0"},
		{"join: port 65536", TypeJoin, "join 127.0.0.1 65536"},
		{"join: IPv6", TypeJoin, "join ::1 1369"},
		{"join: host name", TypeJoin, "join clc.example 1369"},
		{"join: trailing NUL", TypeJoin, "join 127.0.0.1 1369\x00"},
		{"join: upper case", TypeJoin, "JOIN 127.0.0.1 1369"},
		{"join: leading zero octet", TypeJoin, "join 127.0.0.01 1369"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(Packet{Type: tc.typ, Data: []byte(tc.data)})
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%s %q) = %#v, %v; want ErrMalformed", tc.typ, tc.data, m, err)
			}
		})
	}
}

func TestParseJoinDatagram(t *testing.T) {
	good := mustAppend(t, Join{Addr: netip.MustParseAddrPort("10.1.2.3:4000")})
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"good", good, nil},
		{"empty", nil, ErrTruncated},
		{"short header", good[:7], ErrTruncated},
		{"length past the end", good[:len(good)-1], ErrTruncated},
		{"bytes past the length", append(append([]byte{}, good...), 0), ErrMalformed},
		{"echo, not join", mustAppend(t, EchoRequest{Data: []byte("join 1.2.3.4 5")}), ErrMalformed},
		{"unknown type", packet(7, 4, "join"), ErrUnknownType},
		{"garbage text", packet(101, 5, "hello"), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJoinDatagram(tc.in)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("ParseJoinDatagram: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\x00{4}$`)
	seen := map[Challenge]bool{}
	for range 100 {
		c := NewUUIDChallenge()
		if !uuid.Match(c[:]) {
			t.Fatalf("challenge %q is not a v4 UUID padded with 4 NULs", c[:])
		}
		if seen[c] {
			t.Fatal("the same challenge twice")
		}
		seen[c] = true
	}
	c := NewUUIDChallenge()
	upper := [AuthDataLen]byte(bytes.ToUpper(c[:]))
	if !c.Equal([AuthDataLen]byte(c)) || c.Equal(upper) && !bytes.Equal(c[:], upper[:]) {
		t.Error("Equal must compare all 40 bytes exactly")
	}
	if !c.MatchesFold(upper) {
		t.Error("MatchesFold must ignore letter case like strcasecmp")
	}
	trailing := [AuthDataLen]byte(c)
	trailing[38] = 'x' // after the terminating NUL: strcasecmp never looks
	if !c.MatchesFold(trailing) {
		t.Error("MatchesFold must stop at the NUL")
	}
	wrong := [AuthDataLen]byte(c)
	wrong[0] ^= 1
	if c.MatchesFold(wrong) || c.Equal(wrong) {
		t.Error("a changed byte must not match")
	}
	for _, k := range []string{"", "abcd"} {
		if err := CheckKey(k); err == nil {
			t.Errorf("CheckKey accepted %q: the field's RC4 refuses keys under 40 bits", k)
		}
	}
	if err := CheckKey("abcde"); err != nil {
		t.Errorf("CheckKey(5 bytes) = %v", err)
	}
	if _, err := Crypt(strings.Repeat("k", 257), [AuthDataLen]byte{}); err == nil {
		t.Error("Crypt accepted a 257-byte key")
	}
}

func TestTypeString(t *testing.T) {
	if got := TypeQueryReply.String(); got != "OSM_QUERY_REPLY" {
		t.Errorf("String = %q", got)
	}
	if got := Type(7).String(); got != "type 7" {
		t.Errorf("String = %q", got)
	}
}

func TestAppMeaning(t *testing.T) {
	for v, want := range map[int32]string{
		AppRunning: "running (serving)", AppRunning + 3: "running, not serving (exit 3)", AppRunning + 127: "running, not serving (exit 127)",
		AppUnknown: "unknown", AppStopped: "stopped", AppFailed: "failed", 7: "not a status value (7)",
	} {
		if got := AppMeaning(v); got != want {
			t.Errorf("AppMeaning(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	if len(a) != 36 || a[8] != '-' || a[13] != '-' || a[14] != '4' || a[18] != '-' || a[23] != '-' || a == b {
		t.Errorf("NewKey = %q, %q; want two different version-4 UUID strings", a, b)
	}
	if strings.ContainsRune(a, 0) || CheckKey(a) != nil {
		t.Errorf("NewKey %q is not a usable KEY", a)
	}
}

// TestNewChallengeUniform: the agent's challenge has no structure a fake
// controller could use: over many challenges, every byte position is
// uniform over its 16 high and 16 low nibble values (chi-square, 15 degrees
// of freedom, bound at p ≈ 1e-7 per test), and the pooled bytes over 256
// values. The old UUID challenges fail all of it (fixed dashes and NULs,
// hex digits only).
func TestNewChallengeUniform(t *testing.T) {
	const n = 2000
	var hi, lo [AuthDataLen][16]int
	var all [256]int
	for range n {
		c := NewChallenge()
		for i, b := range c {
			hi[i][b>>4]++
			lo[i][b&15]++
			all[b]++
		}
	}
	chi := func(counts []int, total int) float64 {
		want := float64(total) / float64(len(counts))
		x := 0.0
		for _, c := range counts {
			x += (float64(c) - want) * (float64(c) - want) / want
		}
		return x
	}
	for i := range AuthDataLen {
		if x := chi(hi[i][:], n); x > 60 {
			t.Errorf("byte %d: high nibbles chi-square %.1f > 60: not uniform", i, x)
		}
		if x := chi(lo[i][:], n); x > 60 {
			t.Errorf("byte %d: low nibbles chi-square %.1f > 60: not uniform", i, x)
		}
	}
	// 255 degrees of freedom: mean 255, sd 22.6; 420 is beyond 7 sd.
	if x := chi(all[:], n*AuthDataLen); x > 420 {
		t.Errorf("pooled bytes chi-square %.1f > 420: not uniform", x)
	}
}
