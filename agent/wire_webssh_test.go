package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
