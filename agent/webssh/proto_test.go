package webssh

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

func TestMessagesRoundTrip(t *testing.T) {
	id := SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, m := range []Msg{
		Hello{Version: 1, ID: id, Offset: 1 << 40, Cols: 80, Rows: 24},
		Input{Data: []byte("ls -l\r")},
		Resize{Cols: 300, Rows: 100},
		Ack{Offset: 12345},
		Attached{ID: id, Flags: FlagResumed | FlagGap, Offset: 7, InOffset: 9, Window: 1 << 19, InWindow: 1 << 16},
		Output{Offset: 99, Data: []byte("中文")},
		InputAck{Offset: 5},
		Exit{Code: -1, Reason: "idle timeout"},
	} {
		b := m.Append(nil)
		got, err := Parse(b)
		if err != nil {
			t.Errorf("%c: %v", m.Type(), err)
			continue
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("%c round trip (-want +got):\n%s", m.Type(), diff)
		}
	}
	for _, b := range [][]byte{nil, {'h', 1}, {'r', 0, 1, 0}, {'a'}, {'o', 1}, {'Z'}, {'x', 0, 0}} {
		if _, err := Parse(b); !errors.Is(err, ErrMsg) {
			t.Errorf("Parse(% x) = %v, want ErrMsg", b, err)
		}
	}
}

// FuzzParse checks that every message Parse accepts appends back to the
// same bytes.
func FuzzParse(f *testing.F) {
	f.Add(Hello{Version: 1, Cols: 80, Rows: 24}.Append(nil))
	f.Add(Output{Offset: 3, Data: []byte("x")}.Append(nil))
	f.Add(Exit{Code: 1, Reason: "bye"}.Append(nil))
	f.Add(Attached{Window: 1}.Append(nil))
	f.Add([]byte("r\x00\x50\x00\x18"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if got := m.Append(nil); !bytes.Equal(got, b) {
			t.Fatalf("Parse(% x).Append = % x", b, got)
		}
	})
}

func TestIncompleteUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"abc", 0},
		{"a\xe4", 1},
		{"a\xe4\xb8", 2},
		{"a\xe4\xb8\xad", 0},
		{"\xf0\x9f\x98", 3},
		{"\xf0\x9f", 2},
		{"\xc3", 1},
		{"\xc3\xa4", 0},
		{"\xc0", 0},     // never valid
		{"\xe0\x80", 0}, // overlong
		{"\xed\xa0", 0}, // surrogate
		{"\xf4\x90", 0}, // past U+10FFFF
		{"\xff", 0},
		{"\x80\x80\x80", 0},
	} {
		if got := incomplete([]byte(tc.in)); got != tc.want {
			t.Errorf("incomplete(% x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestOutbuf(t *testing.T) {
	var pool chunkPool
	b := outbuf{pool: &pool}
	var all []byte
	for i := range 5000 {
		p := []byte(strings.Repeat("ü", i%50) + "中")
		b.append(p)
		all = append(all, p...)
	}
	if b.end != uint64(len(all)) {
		t.Fatalf("end %d, want %d", b.end, len(all))
	}
	for _, r := range [][2]uint64{{0, 10}, {100, 40000}, {32767, 32769}, {0, b.end}} {
		got := bytes.Join(b.views(nil, r[0], r[1]), nil)
		if !bytes.Equal(got, all[r[0]:r[1]]) {
			t.Errorf("views(%d, %d) wrong", r[0], r[1])
		}
		if c := b.cut(r[0], r[1]); !utf8.Valid(all[r[0]:c]) && utf8.Valid(all[:r[0]]) {
			t.Errorf("cut(%d, %d) = %d splits a character", r[0], r[1], c)
		}
	}
	b.trim(100000)
	if b.start > 100000 || b.start+chunkSize <= 100000 {
		t.Errorf("after trim(100000): start %d", b.start)
	}
	got := bytes.Join(b.views(nil, 100000, b.end), nil)
	if !bytes.Equal(got, all[100000:]) {
		t.Error("views after trim wrong")
	}
	b.trim(b.end)
	if len(b.chunks) != 0 || b.start != b.end {
		t.Errorf("after trimming all: %d chunks, start %d end %d", len(b.chunks), b.start, b.end)
	}
	b.append([]byte("more"))
	if got := bytes.Join(b.views(nil, b.end-4, b.end), nil); string(got) != "more" {
		t.Errorf("after refill: %q", got)
	}
}

func TestTLSSelfSigned(t *testing.T) {
	e := newEnv(t)
	cfg := e.srv.cfg
	cfg.SelfSigned, cfg.Hostname = true, "vm1.example.com"
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := srv.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DefaultFiles().Cert, DefaultFiles().Key} {
		st, err := os.Stat(filepath.Join(cfg.Conf.Dir(), f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, st, err)
		}
	}
	leaf, _ := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err := leaf.VerifyHostname("vm1.example.com"); err != nil {
		t.Error(err)
	}
	// The second start keeps the certificate.
	tc2, err := srv.tlsConfig()
	if err != nil || !bytes.Equal(tc2.Certificates[0].Certificate[0], tc.Certificates[0].Certificate[0]) {
		t.Fatalf("second start made a new certificate (%v)", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, tls.NewListener(ln, tc), true) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	base := "https://" + ln.Addr().String()
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if strings.Contains(page.String(), "not encrypted") {
		t.Error("the TLS page warns about plain HTTP")
	}
	csrf := csrfRE.FindStringSubmatch(page.String())[1]
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"user": {"root"}, "password": {testPassword}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusNoContent || !strings.HasPrefix(set, "__Host-"+loginCookie+"=") || !strings.Contains(set, "Secure") {
		t.Fatalf("TLS login: %s, Set-Cookie %q; want a Secure __Host- cookie", resp.Status, set)
	}
	d := websocket.Dialer{Jar: jar, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
	conn, _, err := d.Dial("wss://"+ln.Addr().String()+"/ws", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	w := &wsConn{t: t, conn: conn}
	defer conn.Close()
	w.send(Hello{Version: ProtocolVersion, Cols: 80, Rows: 24})
	if _, ok := w.next(10 * time.Second).(Attached); !ok {
		t.Fatal("no Attached over TLS")
	}
	w.typeIn("echo ov''er tls\n")
	w.expect("over tls", 10*time.Second)
}
