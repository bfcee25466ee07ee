package webssh

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSlowRequests: a request that trickles in is cut at the read timeout.
func TestSlowRequests(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HTTP = HTTPLimits{ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond} })
	for _, tc := range []struct{ name, send string }{
		{"slow header", "POST /login HTTP/1.1\r\nHost: x\r\n"},
		{"slow body", "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser=ro"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			// The server must close the connection well before this.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection is still open after 5 s")
			}
		})
	}
}

// TestBodyCap: a body beyond the form cap is refused, on every path.
func TestBodyCap(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	big := strings.Repeat("x", 64<<10)
	for _, path := range []string{"/login", "/logout"} {
		code, _ := c.post(path, url.Values{"user": {"root"}, "password": {testPassword}, "pad": {big}}, nil)
		if code != http.StatusBadRequest {
			t.Errorf("%s with 64 KiB: status %d, want 400", path, code)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/", strings.NewReader(big))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestWebsocketOutlivesHTTPTimeouts: once upgraded, a terminal is not cut
// by the HTTP server's read and write timeouts.
func TestWebsocketOutlivesHTTPTimeouts(t *testing.T) {
	// Long enough for the login itself (a crypt(3) check under -race on a
	// loaded machine), short enough that the terminal clearly outlives it.
	const d = time.Second
	lim := HTTPLimits{ReadHeader: d, Read: d, Write: d, Idle: d}
	e := newEnv(t, func(c *Config) { c.HTTP = lim })
	w := e.mustLogin("root").open()
	start := time.Now()
	for i := 0; time.Since(start) < 3*lim.Write; i++ {
		w.typeIn(fmt.Sprintf("echo ro''und %d\n", i))
		w.expect(fmt.Sprintf("round %d", i), 10*time.Second)
	}
	w.typeIn("echo af''ter\n")
	w.expect("after", 10*time.Second)
}

// TestOrigins: state-changing requests need an Origin the terminal is
// reached at; Sec-Fetch-Site and the Host header widen nothing.
func TestOrigins(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Origins = []string{"https://console.example.com"} })
	_, port, _ := net.SplitHostPort(e.host)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"own origin", nil, http.StatusNoContent},
		{"localhost", map[string]string{"Origin": "http://localhost:" + port}, http.StatusNoContent},
		{"allowlisted", map[string]string{"Origin": "https://console.example.com"}, http.StatusNoContent},
		{"no origin", map[string]string{"Origin": ""}, http.StatusForbidden},
		{"no origin, same-origin fetch", map[string]string{"Origin": "", "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"no origin, no fetch metadata", map[string]string{"Origin": "", "Sec-Fetch-Site": "none"}, http.StatusForbidden},
		{"null", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"rebinding: forged host", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port}, http.StatusForbidden},
		{"other port", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"https for http", map[string]string{"Origin": "https://" + e.host}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			form := url.Values{"user": {"root"}, "password": {testPassword}, "csrf": {c.csrf}}
			req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.url)
			for k, v := range tc.hdr {
				switch {
				case k == "Host":
					req.Host = v
				case v == "":
					req.Header.Del(k)
				default:
					req.Header.Set(k, v)
				}
			}
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("login: status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	// The websocket likewise: a page at a rebinding name is refused.
	c := e.mustLogin("root")
	d := websocket.Dialer{Jar: c.jar, NetDial: func(string, string) (net.Conn, error) { return net.Dial("tcp", e.host) }}
	u, _ := url.Parse(e.url)
	for _, ck := range c.jar.Cookies(u) {
		c.jar.SetCookies(&url.URL{Scheme: "http", Host: "evil.example:" + port}, []*http.Cookie{ck})
	}
	_, resp, err := d.Dial("ws://evil.example:"+port+"/ws", http.Header{"Origin": {"http://evil.example:" + port}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket from a rebinding name: %v, %v; want 403", err, resp)
	}
}

// TestAllowedOrigins: what an unspecified or specific listen address allows.
func TestAllowedOrigins(t *testing.T) {
	host, _ := os.Hostname()
	host, hostOK := dnsName(host)
	for _, tc := range []struct {
		name     string
		listen   *net.TCPAddr
		secure   bool
		want     []string
		wantNone []string
	}{
		{"any address", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8001}, false,
			[]string{"http://localhost:8001", "http://10.1.2.3:8001", "http://[2001:db8::5]:8001", "http://vm1.example.com:8001"},
			[]string{"http://10.1.2.3", "https://10.1.2.3:8001", "http://evil.example:8001", "http://[::]:8001", "http://0.0.0.0:8001"}},
		{"one address", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8001}, false,
			[]string{"http://10.1.2.3:8001"},
			[]string{"http://localhost:8001", "http://[2001:db8::5]:8001"}},
		{"listen address named", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8001}, false,
			[]string{"http://term.example.net:8001"}, nil},
		{"default port", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, true,
			[]string{"https://10.1.2.3:443", "https://10.1.2.3"},
			[]string{"http://10.1.2.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{Hostname: "VM1.example.com.", Addr: "term.example.net:8001"}, listen: tc.listen, ifaceAddrs: func() ([]net.Addr, error) {
				return []net.Addr{&net.IPNet{IP: net.IPv4(10, 1, 2, 3)}, &net.IPNet{IP: net.ParseIP("2001:db8::5")}, &net.IPNet{IP: net.IPv4(127, 0, 0, 1)}}, nil
			}}
			got := s.allowedOrigins(tc.secure)
			for _, o := range tc.want {
				if !slices.Contains(got, o) {
					t.Errorf("%q not allowed; allowed: %q", o, got)
				}
			}
			for _, o := range tc.wantNone {
				if slices.Contains(got, o) {
					t.Errorf("%q allowed", o)
				}
			}
			if hostOK && tc.listen.Port == 8001 && !slices.Contains(got, "http://"+host+":8001") {
				t.Errorf("the kernel host name %q not allowed: %q", host, got)
			}
		})
	}
}

// TestHelloTextFrame: the protocol is binary only; a Hello in a text
// frame starts no shell.
func TestHelloTextFrame(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	conn, _, err := c.dial(e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, Hello{Version: ProtocolVersion, Cols: 80, Rows: 24}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	w := &wsConn{t: t, conn: conn}
	if code := w.closeCode(5 * time.Second); code != websocket.CloseProtocolError {
		t.Errorf("close code %d, want %d", code, websocket.CloseProtocolError)
	}
	if n := e.st.Terminal().Sessions; n != 0 {
		t.Errorf("%d sessions started, want 0", n)
	}
}

// TestPtyOwnedByUser: the login shell's terminal is the user's, group
// tty, mode 0620, as login(1) makes it (screen, tmux, write need it).
func TestPtyOwnedByUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	e := newEnv(t)
	w := e.mustLogin("alice").open()
	w.typeIn("stat -c 'O=%u:%g:%a' \"$(tty)\"\n")
	w.expect("O=65534:5:620\r\n", 10*time.Second)
}

// TestCertHostnames: only DNS names and IPs go into the self-signed
// certificate; a bad domain.name leaves the name out, and the terminal
// still starts.
func TestCertHostnames(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		host    string
		dns, ip string // what the certificate must name besides localhost
	}{
		{host: "vm1.example.com", dns: "vm1.example.com"},
		{host: "VM1.Example.COM.", dns: "vm1.example.com"},
		{host: "10.0.0.5", ip: "10.0.0.5"},
		{host: "2001:db8::7", ip: "2001:db8::7"},
		{host: "bücher.example"},
		{host: "私の.example"},
		{host: "under_score.example"},
		{host: "-lead.example"},
		{host: "a..b"},
		{host: strings.Repeat("a", 64) + ".example"},
		{host: "evil\nname"},
		{host: "*.example.com"},
		{host: ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			certPEM, _, err := makeCert(tc.host, now)
			if err != nil {
				t.Fatalf("makeCert: %v", err)
			}
			blk, _ := pem.Decode(certPEM)
			leaf, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"localhost"}
			if tc.dns != "" {
				want = append(want, tc.dns)
			}
			if !slices.Equal(leaf.DNSNames, want) {
				t.Errorf("DNS names %q, want %q", leaf.DNSNames, want)
			}
			if tc.ip != "" && !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.String() == tc.ip }) {
				t.Errorf("IPs %v lack %s", leaf.IPAddresses, tc.ip)
			}
		})
	}
	t.Run("server starts", func(t *testing.T) {
		e := newEnv(t)
		cfg := e.srv.cfg
		cfg.SelfSigned, cfg.Hostname = true, "bücher.example"
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv.cfg.Addr = "127.0.0.1:0"
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		waitFor(t, "the TLS terminal to listen", 10*time.Second, func() bool {
			select {
			case err := <-done:
				t.Fatalf("Run with a non-ASCII host name: %v", err)
			default:
			}
			return strings.Count(e.log.String(), "web terminal listening") == 2
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if !strings.Contains(e.log.String(), "host name left out") {
			t.Error("no log line about the host name left out")
		}
	})
}
