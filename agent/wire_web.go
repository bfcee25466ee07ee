package agent

import (
	"context"

	"osmanager/agent/supervisor"
	"osmanager/agent/web"
	"osmanager/internal/version"
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
	versionFile, err := a.ly.Path(a.paths.Version)
	if err != nil {
		return nil, err
	}
	cfg := web.Config{
		Addr:         a.opts.ListenWeb,
		WWW:          www,
		VersionFile:  versionFile,
		State:        a.state,
		AgentVersion: version.String(),
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

// webTerminal is the status page's link to the web terminal, where
// websshAddr puts it.
func (a *Agent) webTerminal() web.Terminal {
	_, port, on := a.websshAddr()
	if !on {
		return web.Terminal{}
	}
	return web.Terminal{Enabled: true, Port: port, TLS: a.opts.WebSSHTLS || a.opts.WebSSHCert != ""}
}
