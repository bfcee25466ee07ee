package agent

import (
	"context"
	"net"
	"strconv"

	"osmanager/agent/supervisor"
	"osmanager/agent/web"
	"osmanager/agent/webssh"
)

// webServices builds the status web server (agent/web) from a.cfg and the options.
func (a *Agent) webServices() []supervisor.Named {
	srv, err := a.newWeb()
	if err != nil {
		return []supervisor.Named{{Name: "web", Service: supervisor.ServiceFunc(func(context.Context) error {
			return supervisor.Permanent(err)
		})}}
	}
	return []supervisor.Named{{Name: "web", Service: srv}}
}

func (a *Agent) newWeb() (*web.Server, error) {
	www, err := a.ly.Path(a.paths.WWW)
	if err != nil {
		return nil, err
	}
	version, err := a.ly.Path(a.paths.Version)
	if err != nil {
		return nil, err
	}
	cfg := web.Config{
		Addr:         a.opts.ListenWeb,
		WWW:          www,
		VersionFile:  version,
		State:        a.state,
		AgentVersion: Version,
		Log:          a.log,
		Terminal:     a.webTerminal(),
	}
	if a.cfg != nil {
		p := a.cfg.Payload
		if p.Cookie != nil {
			cfg.Cookie = *p.Cookie
		}
		if p.Domain != nil {
			cfg.Hostname = p.Domain.Name
		}
	}
	return web.New(cfg)
}

// webTerminal says where the page's web-terminal link points, as
// websshServices decides it: off without an instance config or when it says
// "disable"; the port of --listen-webssh, else webssh.port, else 8001.
func (a *Agent) webTerminal() web.Terminal {
	if a.cfg == nil {
		return web.Terminal{}
	}
	t := web.Terminal{Enabled: true, Port: webssh.DefaultPort, TLS: a.opts.WebSSHTLS || a.opts.WebSSHCert != ""}
	if a.cfg.Payload.WebSSH != nil {
		ws := a.cfg.Payload.WebSSH
		t.Enabled = ws.Status != "disable"
		if ws.Port > 0 {
			t.Port = ws.Port
		}
	}
	if a.opts.ListenWebSSH != "" {
		if _, port, err := net.SplitHostPort(a.opts.ListenWebSSH); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n > 0 {
				t.Port = n
			}
		}
	}
	if !t.Enabled {
		return web.Terminal{}
	}
	return t
}
