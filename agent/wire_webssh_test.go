package agent

import (
	"testing"

	"osmanager/agent/conf"
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
