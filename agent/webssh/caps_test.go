package webssh

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLoginCaps: an account at its cap loses its own oldest login, never
// another account's; a full table refuses new logins.
func TestLoginCaps(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UserLogins, c.MaxLogins = 2, 4 })
	root1 := e.mustLogin("root")
	w1 := root1.open()
	root2 := e.mustLogin("root")
	alice1 := e.mustLogin("alice")
	aw := alice1.open()
	e.mustLogin("alice")

	// A third root login replaces root's oldest, and ends its shell.
	root3 := e.mustLogin("root")
	if ex := w1.waitExit(10 * time.Second); ex.Code != -1 || !strings.Contains(ex.Reason, "replaced") {
		t.Errorf("root's oldest shell: Exit %+v, want ended as replaced", ex)
	}
	for name, c := range map[string]*client{"root2": root2, "root3": root3, "alice1": alice1} {
		conn, resp, err := c.dial(e.url)
		if err != nil {
			t.Errorf("%s: login lost (%v, %v)", name, err, resp)
			continue
		}
		conn.Close()
	}
	if _, resp, err := root1.dial(e.url); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("root1 after eviction: %v, %v; want 401", err, resp)
	}

	// The table is full (2 root, 2 alice): another account is refused,
	// and nobody is logged out for it.
	c := e.client()
	code, body := c.post("/login", map[string][]string{"user": {"sha256"}, "password": {testPassword}}, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many logins") {
		t.Errorf("login into a full table: %d %q, want 503 too many logins", code, body)
	}
	aw.typeIn("echo st''ill here\n")
	aw.expect("still here", 10*time.Second)
	if !strings.Contains(e.log.String(), "too many logins on this terminal") {
		t.Error("no log line for the refused login")
	}
}

// TestShellCaps: shells are capped per account and in all; a full cap
// refuses the new shell and ends none.
func TestShellCaps(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UserSessions, c.MaxSessions = 2, 3 })
	root := e.mustLogin("root")
	r1 := root.open()
	root.open()
	refused := func(c *client, want string) {
		t.Helper()
		conn, _, err := c.dial(e.url)
		if err != nil {
			t.Fatal(err)
		}
		w := &wsConn{t: t, conn: conn}
		w.send(Hello{Version: ProtocolVersion, Cols: 80, Rows: 24})
		ex, ok := w.next(10 * time.Second).(Exit)
		if !ok || !strings.Contains(ex.Reason, want) {
			t.Errorf("got %+v, want an Exit with %q", ex, want)
		}
		if code := w.closeCode(5 * time.Second); code != websocket.CloseTryAgainLater {
			t.Errorf("close code %d, want %d", code, websocket.CloseTryAgainLater)
		}
	}
	refused(root, "per account")
	alice := e.mustLogin("alice")
	alice.open()
	refused(alice, "too many terminal sessions (limit 3)")
	r1.typeIn("echo st''ill here\n")
	r1.expect("still here", 10*time.Second)
}

// TestConfigLimits: limits default sensibly and refuse negative values.
func TestConfigLimits(t *testing.T) {
	base := func() Config {
		return Config{Sys: mustRoot(t, t.TempDir()), Conf: mustRoot(t, t.TempDir()), Log: slog.New(slog.DiscardHandler)}
	}
	c := base()
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	got := [...]int{c.MaxSessions, c.UserSessions, c.MaxLogins, c.UserLogins, c.LoginBudget, c.MaxFailures, c.AddrFailures}
	if want := [...]int{8, 4, 256, 8, 60, 5, 10}; got != want {
		t.Errorf("defaults %v, want %v", got, want)
	}
	c = base()
	c.MaxSessions, c.MaxLogins = 2, 3
	c.setDefaults()
	if c.UserSessions != 2 || c.UserLogins != 3 {
		t.Errorf("per-account caps %d, %d above the global ones 2, 3", c.UserSessions, c.UserLogins)
	}
	for _, set := range []func(*Config){
		func(c *Config) { c.MaxSessions = -1 },
		func(c *Config) { c.UserSessions = -1 },
		func(c *Config) { c.MaxLogins = -1 },
		func(c *Config) { c.UserLogins = -1 },
		func(c *Config) { c.LoginBudget = -1 },
		func(c *Config) { c.IdleTimeout = -time.Second },
		func(c *Config) { c.MaxSession = -time.Second },
		func(c *Config) { c.ResumeWindow = -time.Second },
	} {
		c := base()
		set(&c)
		if err := c.setDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("negative limit: %v, want ErrConfig", err)
		}
	}
}
