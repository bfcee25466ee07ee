package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"osmanager/agent/clc"
	"osmanager/agent/conf"
	"osmanager/agent/supervisor"
	"osmanager/agent/webssh"
)

func TestWebsshAddrAndPageLink(t *testing.T) {
	ws := func(status string, port int) *conf.Config {
		return &conf.Config{Payload: conf.Payload{WebSSH: &conf.WebSSH{Status: status, Port: port}}}
	}
	cases := []struct {
		name     string
		cfg      *conf.Config
		listen   string
		wantAddr string
		wantPort int
		wantOn   bool
	}{
		{"no config", nil, "", "", 0, false},
		{"no webssh item", &conf.Config{}, "", ":8001", 8001, true},
		{"port from the config", ws("enable", 9001), "", ":9001", 9001, true},
		{"disabled", ws("disable", 9001), "127.0.0.1:7000", "", 0, false},
		{"flag overrides", ws("enable", 9001), "127.0.0.1:7000", "127.0.0.1:7000", 7000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, _ := testOptions(t, demoDir(t))
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			a.cfg, a.opts.ListenWebSSH = c.cfg, c.listen
			addr, port, on := a.websshAddr()
			if addr != c.wantAddr || port != c.wantPort || on != c.wantOn {
				t.Errorf("websshAddr = %q %d %v, want %q %d %v", addr, port, on, c.wantAddr, c.wantPort, c.wantOn)
			}
			if link := a.webTerminal(); link.Enabled != on || link.Port != port {
				t.Errorf("page link %+v does not follow the terminal (%d, %v)", link, port, on)
			}
			if got := len(a.websshServices()); got != map[bool]int{true: 1, false: 0}[on] {
				t.Errorf("%d terminal services, want one only when on", got)
			}
		})
	}
}

// TestConfigErrorsPermanent: the services' configuration errors tell the
// supervisor themselves that restarting will not help; the wiring maps
// none. A terminal refused login mode fails for good.
func TestConfigErrorsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"clc.ErrConfig wrapped", fmt.Errorf("%w: no KEY", clc.ErrConfig), true},
		{"webssh.ErrConfig wrapped", fmt.Errorf("%w: bad mode", webssh.ErrConfig), true},
		{"other error", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := supervisor.IsPermanent(tc.err); got != tc.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	t.Run("login mode refused", func(t *testing.T) {
		o, _ := testOptions(t, demoDir(t))
		o.WebSSHMode, o.LoginShells = "login", SwitchOff
		a, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		a.cfg = &conf.Config{}
		s := a.websshServices()
		if len(s) != 1 {
			t.Fatalf("%d terminal services, want 1", len(s))
		}
		if err := s[0].Service.Run(context.Background()); !supervisor.IsPermanent(err) || !errors.Is(err, webssh.ErrConfig) {
			t.Errorf("Run = %v, want a permanent webssh.ErrConfig", err)
		}
	})
}

// TestStatusSourceOnce: the status document's source is built once, for
// every reader.
func TestStatusSourceOnce(t *testing.T) {
	o, _ := testOptions(t, demoDir(t))
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s1, err1 := a.statusSource()
	s2, err2 := a.statusSource()
	if err1 != nil || err2 != nil || s1 == nil || s1 != s2 {
		t.Errorf("statusSource = %p %v, then %p %v: want one source", s1, err1, s2, err2)
	}
}

// TestWebSSHLimitFlags: the terminal's limit flags reach the terminal;
// none is fixed in the code.
func TestWebSSHLimitFlags(t *testing.T) {
	var f Options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f.Flags(fs)
	if err := fs.Parse([]string{"--webssh-max-shells", "20", "--webssh-user-shells", "6", "--webssh-max-logins", "30",
		"--webssh-user-logins", "3", "--webssh-login-budget", "7", "--webssh-idle-timeout", "3m",
		"--webssh-max-session", "2h", "--webssh-resume-window", "15s"}); err != nil {
		t.Fatal(err)
	}
	o, _ := testOptions(t, demoDir(t)) // the test's paths, with the flags' limits
	o.WebSSHMaxShells, o.WebSSHUserShells, o.WebSSHMaxLogins, o.WebSSHUserLogins, o.WebSSHLoginBudget =
		f.WebSSHMaxShells, f.WebSSHUserShells, f.WebSSHMaxLogins, f.WebSSHUserLogins, f.WebSSHLoginBudget
	o.WebSSHIdleTimeout, o.WebSSHMaxSession, o.WebSSHResumeWindow = f.WebSSHIdleTimeout, f.WebSSHMaxSession, f.WebSSHResumeWindow
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	a.cfg = &conf.Config{}
	s := a.websshServices()
	if len(s) != 1 {
		t.Fatalf("%d terminal services, want 1", len(s))
	}
	srv, ok := s[0].Service.(*webssh.Server)
	if !ok {
		t.Fatalf("service %T, want *webssh.Server", s[0].Service)
	}
	c := srv.Config()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"max shells", c.MaxSessions, 20},
		{"user shells", c.UserSessions, 6},
		{"max logins", c.MaxLogins, 30},
		{"user logins", c.UserLogins, 3},
		{"login budget", c.LoginBudget, 7},
		{"idle timeout", c.IdleTimeout, 3 * time.Minute},
		{"max session", c.MaxSession, 2 * time.Hour},
		{"resume window", c.ResumeWindow, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}
