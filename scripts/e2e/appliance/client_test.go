package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	osmstatus "osmanager/agent/status"
	"osmanager/agent/webssh"
)

// hostKeys records the guest's SSH host keys as seen by the client.
type hostKeys struct {
	mu   sync.Mutex
	seen []string
}

func (h *hostKeys) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, ssh.FingerprintSHA256(key))
	return nil
}

// dialSSH connects to root@127.0.0.1:port with auth.
func dialSSH(port int, auth ssh.AuthMethod, hk *hostKeys) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{auth}, HostKeyCallback: hk.callback, Timeout: 10 * time.Second}
	return ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
}

// passwordAuth answers both password and keyboard-interactive prompts.
func passwordAuth(pw string) []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
		a := make([]string, len(q))
		for i := range a {
			a[i] = pw
		}
		return a, nil
	})}
}

// run runs cmd on the guest and returns its stdout; a failure carries
// stderr.
func run(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(cmd); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// get fetches http://127.0.0.1:port/path.
func get(ctx context.Context, port int, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

func status(ctx context.Context, port int) (osmstatus.Status, error) {
	var st osmstatus.Status
	b, err := get(ctx, port, "/api/v1/status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("/api/v1/status: %w", err)
	}
	return st, nil
}

// terminalRun logs in to the web terminal at 127.0.0.1:port as root with
// password, opens a shell over the websocket protocol, types cmd and
// waits for want in the output. The Origin is the one the guest's page
// has (localhost on the guest's port): the forward changes the port.
func terminalRun(ctx context.Context, port int, password, cmd, want string) (string, error) {
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	origin := fmt.Sprintf("http://localhost:%d", guestTerm)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	// The page sets the CSRF cookie its token goes with.
	resp, err := hc.Get(base + "/")
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`data-csrf="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		return "", errors.New("no CSRF token in the terminal page")
	}
	form := url.Values{"user": {"root"}, "password": {password}, "csrf": {string(m[1])}}
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err = hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return "", fmt.Errorf("login: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	d := websocket.Dialer{Jar: jar, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, "ws://127.0.0.1:"+fmt.Sprint(port)+"/ws", http.Header{"Origin": {origin}})
	if err != nil {
		return "", fmt.Errorf("websocket: %w", err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.BinaryMessage, webssh.Hello{Version: webssh.ProtocolVersion, Cols: 120, Rows: 40}.Append(nil)); err != nil {
		return "", err
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, webssh.Input{Data: []byte(cmd + "\r")}.Append(nil)); err != nil {
		return "", err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	conn.SetReadDeadline(dl)
	var out []byte
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return string(out), fmt.Errorf("read: %w (output so far %q)", err, out)
		}
		msg, err := webssh.Parse(data)
		if err != nil {
			return string(out), err
		}
		switch msg := msg.(type) {
		case webssh.Output:
			out = append(out, msg.Data...)
			if err := conn.WriteMessage(websocket.BinaryMessage, webssh.Ack{Offset: msg.Offset + uint64(len(msg.Data))}.Append(nil)); err != nil {
				return string(out), err
			}
			if bytes.Contains(out, []byte(want)) {
				return string(out), nil
			}
		case webssh.Exit:
			return string(out), fmt.Errorf("shell ended: %s", msg.Reason)
		}
	}
}

// statusDoc is the status document with the helpers the checks use.
type statusDoc osmstatus.Status

func (s statusDoc) steps() string {
	var b strings.Builder
	for _, x := range s.Boot.Steps {
		fmt.Fprintf(&b, "[%s %s %.2fs changed=%v note=%q error=%q] ", x.Name, x.Status, x.Duration.Seconds(), x.Changed, x.Note, x.Error)
	}
	return b.String()
}

func (s statusDoc) hasAddr(cidr string) bool {
	for _, i := range s.Addresses {
		for _, a := range i.Addrs {
			if a == cidr {
				return true
			}
		}
	}
	return false
}
