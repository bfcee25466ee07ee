package webssh

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"osmanager/agent/accounts"
)

func TestLogin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFailures = 100 })
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"root", testPassword, http.StatusNoContent},
		{"alice", testPassword, http.StatusNoContent},
		{"sha256", testPassword, http.StatusNoContent},
		{"md5", testPassword, http.StatusNoContent},
		{"rounds", testPassword, http.StatusNoContent},
		{"root", "wrong", http.StatusUnauthorized},
		{"nobody-here", testPassword, http.StatusUnauthorized},
		{"locked", testPassword, http.StatusUnauthorized},
		{"star", testPassword, http.StatusUnauthorized},
		{"nopass", "", http.StatusUnauthorized},
		{"nopass", testPassword, http.StatusUnauthorized},
		{"expired", testPassword, http.StatusUnauthorized},
		{"root:x", testPassword, http.StatusUnauthorized},
		{"", testPassword, http.StatusUnauthorized},
	} {
		t.Run(tc.user+"/"+tc.password, func(t *testing.T) {
			c := e.client()
			if got := c.login(tc.user, tc.password); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			u, _ := url.Parse(e.url)
			var session *http.Cookie
			for _, ck := range c.jar.Cookies(u) {
				if ck.Name == loginCookie {
					session = ck
				}
			}
			if (session != nil) != (tc.want == http.StatusNoContent) {
				t.Fatalf("session cookie %v after status %d", session, tc.want)
			}
			if session != nil && (strings.Contains(session.Value, tc.password) || len(session.Value) != 64) {
				t.Errorf("session cookie value %q: want 64 random hex digits", session.Value)
			}
		})
	}
	if got := e.st.Terminal().LoginFailures; got != 9 {
		t.Errorf("LoginFailures = %d, want 9", got)
	}
	logs := e.log.String()
	for _, want := range []string{`msg="terminal login" user=root addr=127.0.0.1`, `msg="terminal login failed" user=root addr=127.0.0.1`, "reason=\"wrong password\"", "reason=\"account locked\"", "reason=\"account has no password\"", "reason=\"account expired\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, testPassword) || strings.Contains(logs, "s3cret") {
		t.Error("a password reached the log")
	}
}

func TestLoginCookieAttributes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	form := url.Values{"user": {"root"}, "password": {testPassword}, "csrf": {c.csrf}}
	req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", csrfCookie+"="+c.csrf)
	req.Header.Set("Origin", e.url)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{loginCookie + "=", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %q", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("Set-Cookie %q: Secure without TLS", set)
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{"csrf": {""}}, nil},
		{"wrong token", url.Values{"csrf": {strings.Repeat("0", 32)}}, nil},
		{"cross origin", nil, map[string]string{"Origin": "http://evil.example"}},
		{"cross site", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"user": {"root"}, "password": {testPassword}}
			for k, v := range tc.form {
				form[k] = v
			}
			if code, _ := c.post("/login", form, tc.hdr); code != http.StatusForbidden {
				t.Errorf("status %d, want 403", code)
			}
			if code, _ := c.post("/logout", tc.form, tc.hdr); code != http.StatusForbidden {
				t.Errorf("logout: status %d, want 403", code)
			}
		})
	}
	if code, _ := c.post("/login", url.Values{"user": {"root"}, "password": {testPassword}}, map[string]string{"Origin": e.url}); code != http.StatusNoContent {
		t.Errorf("same-origin login: status %d, want 204", code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFailures = 3 })
	c := e.client()
	for i := range 3 {
		if got := c.login("root", "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, got)
		}
	}
	if got := c.login("root", testPassword); got != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: status %d, want 429 even with the right password", got)
	}
}

func TestLoginFailDelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FailDelay = 200 * time.Millisecond })
	c := e.client()
	start := time.Now()
	c.login("root", "wrong")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("failed login answered after %v, want at least 200ms", d)
	}
	start = time.Now()
	c.login("no-such-user", "wrong")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("unknown user answered after %v, want at least 200ms", d)
	}
}

func TestAsSelfRefusedOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the refusal is for a root agent")
	}
	e := newEnv(t)
	cfg := e.srv.cfg
	cfg.AsSelf = true
	cfg.Sys = mustRoot(t, "/")
	if _, err := New(cfg); err == nil {
		t.Error("New accepted as-self on / as root")
	}
}

// TestBadLogin: the accounts package's refusals count as failed logins
// (401), anything else (an unreadable or mangled file) does not.
func TestBadLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		bad  bool
	}{
		{"unknown", accounts.ErrUnknownUser, true},
		{"unknown, short line", fmt.Errorf("%w (/etc/passwd line 3 has 4 fields, want 7)", accounts.ErrUnknownUser), true},
		{"no password", accounts.ErrNoPassword, true},
		{"locked", accounts.ErrLocked, true},
		{"expired", accounts.ErrExpired, true},
		{"bad line", fmt.Errorf("/etc/passwd line 2: %w: bad uid or gid", accounts.ErrLine), false},
		{"read error", os.ErrPermission, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := badLogin(tc.err)
			var bad errBadLogin
			if got := errors.As(err, &bad); got != tc.bad {
				t.Errorf("badLogin(%v) is a failed login: %v, want %v", tc.err, got, tc.bad)
			}
			if err.Error() != tc.err.Error() {
				t.Errorf("text %q, want %q", err, tc.err)
			}
		})
	}
}
