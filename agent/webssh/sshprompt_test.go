package webssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeSSHD is an x/crypto/ssh server on loopback that only
// authenticates, with cfg's callbacks; it records the keyboard-interactive
// answers it got.
type fakeSSHD struct {
	addr string
	mu   sync.Mutex
	got  [][]string // answers per keyboard-interactive round
}

func (d *fakeSSHD) answers() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got
}

// ask is one keyboard-interactive round.
type ask struct {
	questions []string
	echos     []bool
}

// startFakeSSHD serves keyboard-interactive with rounds (each round's
// answers must all be the right password or the code "123456"), password
// when password is set, and nothing else (publickey is offered and always
// refused).
func startFakeSSHD(t *testing.T, password bool, rounds []ask) *fakeSSHD {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	d := &fakeSSHD{}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("no keys here")
		},
	}
	if password {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == testPassword {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if rounds != nil {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			for _, r := range rounds {
				ans, err := client("", "", r.questions, r.echos)
				if err != nil {
					return nil, err
				}
				d.mu.Lock()
				d.got = append(d.got, ans)
				d.mu.Unlock()
				for i, a := range ans {
					if a != testPassword && !(strings.Contains(r.questions[i], "code") && a == "123456") {
						return nil, errors.New("wrong answer")
					}
				}
			}
			return nil, nil
		}
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	var wg sync.WaitGroup
	var connMu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			conns = append(conns, c)
			connMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no shells here")
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	return d
}

// TestSSHPrompts: in ssh mode only password prompts get the password;
// any other prompt refuses the login with a message naming it.
func TestSSHPrompts(t *testing.T) {
	pw := func(q string) ask { return ask{[]string{q}, []bool{false}} }
	for _, tc := range []struct {
		name     string
		rounds   []ask
		want     int
		body     string   // in the answer's body
		answered []string // the answers the server got, per round, joined
	}{
		{"password prompt", []ask{pw("Password: ")}, http.StatusNoContent, "", []string{testPassword}},
		{"password prompt, PAM style", []ask{pw("osmtest's password: ")}, http.StatusNoContent, "", []string{testPassword}},
		{"info round, then password", []ask{{}, pw("Password: ")}, http.StatusNoContent, "", []string{"", testPassword}},
		{"password and code in one round", []ask{{[]string{"Password: ", "Verification code: "}, []bool{false, false}}},
			http.StatusUnauthorized, `"Verification code:"`, nil},
		{"code in a second round", []ask{pw("Password: "), pw("Verification code: ")},
			http.StatusUnauthorized, `"Verification code:"`, []string{testPassword}},
		{"hidden PIN", []ask{pw("PIN: ")}, http.StatusUnauthorized, `"PIN:"`, nil},
		{"visible password question", []ask{{[]string{"Password hint: "}, []bool{true}}}, http.StatusUnauthorized, `"Password hint:"`, nil},
		{"password change", []ask{pw("Current password: "), pw("New password: ")}, http.StatusUnauthorized, `"New password:"`, []string{testPassword}},
		{"control bytes in a prompt", []ask{pw("Token\x1b[2J\r\n: ")}, http.StatusUnauthorized, `"Token [2J  :"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startFakeSSHD(t, false, tc.rounds)
			e := newEnv(t, func(c *Config) { c.Mode = ModeSSH; c.SSHAddr = d.addr; c.AsSelf = false })
			code, body := e.client().post("/login", url.Values{"user": {"root"}, "password": {testPassword}}, nil)
			if code != tc.want || !strings.Contains(body, tc.body) {
				t.Errorf("login: %d %q, want %d with %q", code, body, tc.want, tc.body)
			}
			var got []string
			for _, a := range d.answers() {
				got = append(got, strings.Join(a, ","))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.answered) {
				t.Errorf("sshd got answers %q, want %q", got, tc.answered)
			}
			if strings.Contains(e.log.String(), testPassword) {
				t.Error("the password reached the log")
			}
		})
	}
}

// TestSSHOffersNoPassword: an sshd that takes only keys makes auto mode
// log in locally, and ssh mode say why it cannot.
func TestSSHOffersNoPassword(t *testing.T) {
	t.Run("auto", func(t *testing.T) {
		d := startFakeSSHD(t, false, nil)
		e := newEnv(t, func(c *Config) { c.Mode = ModeAuto; c.SSHAddr = d.addr })
		w := e.mustLogin("root").open()
		w.typeIn("echo lo''cal\n")
		w.expect("local", 10*time.Second)
		if !strings.Contains(e.log.String(), `msg="terminal login" user=root addr=127.0.0.1`) || !strings.Contains(e.log.String(), "mode=login") {
			t.Errorf("auto mode did not fall back to login mode:\n%s", e.log.String())
		}
	})
	t.Run("auto, sshd takes passwords", func(t *testing.T) {
		d := startFakeSSHD(t, true, nil)
		e := newEnv(t, func(c *Config) { c.Mode = ModeAuto; c.SSHAddr = d.addr })
		e.mustLogin("root")
		if !strings.Contains(e.log.String(), "mode=ssh") {
			t.Errorf("auto mode did not use ssh:\n%s", e.log.String())
		}
	})
	t.Run("ssh", func(t *testing.T) {
		d := startFakeSSHD(t, false, nil)
		e := newEnv(t, func(c *Config) { c.Mode = ModeSSH; c.SSHAddr = d.addr; c.AsSelf = false })
		if code := e.client().login("root", testPassword); code != http.StatusServiceUnavailable {
			t.Errorf("login: %d, want 503", code)
		}
		if !strings.Contains(e.log.String(), "sshd offers no password login (it offers publickey)") {
			t.Errorf("no log line saying why:\n%s", e.log.String())
		}
	})
}
