package agent

import (
	"context"

	"osmanager/agent/status"
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
	src, err := a.newStatus()
	if err != nil {
		return nil, err
	}
	cfg := web.Config{
		Addr:   a.opts.ListenWeb,
		WWW:    www,
		Status: src,
		State:  a.state,
		Log:    a.log,
	}
	if a.cfg != nil && a.cfg.Payload.Cookie != nil {
		cfg.Cookie = *a.cfg.Payload.Cookie
	}
	return web.New(cfg)
}

// newStatus builds the status document's source (agent/status), which the
// web server renders.
func (a *Agent) newStatus() (*status.Source, error) {
	versionFile, err := a.ly.Path(a.paths.Version)
	if err != nil {
		return nil, err
	}
	cfg := status.Config{
		VersionFile:  versionFile,
		State:        a.state,
		AgentVersion: version.String(),
		Log:          a.log.With("service", "web"),
		Terminal:     a.webTerminal(),
	}
	if a.cfg != nil && a.cfg.Payload.Domain != nil {
		cfg.Hostname = a.cfg.Payload.Domain.Name
	}
	return status.New(cfg)
}

// webTerminal is the status page's link to the web terminal, where
// websshAddr puts it.
func (a *Agent) webTerminal() status.Terminal {
	_, port, on := a.websshAddr()
	if !on {
		return status.Terminal{}
	}
	return status.Terminal{Enabled: true, Port: port, TLS: a.opts.WebSSHTLS || a.opts.WebSSHCert != ""}
}
