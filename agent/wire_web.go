package agent

import (
	"osmanager/agent/status"
	"osmanager/agent/supervisor"
	"osmanager/agent/web"
	"osmanager/internal/version"
)

// webServices builds the status web server (agent/web) from a.cfg and the options.
func (a *Agent) webServices() []supervisor.Spec {
	srv, err := a.newWeb()
	if err != nil {
		return []supervisor.Spec{failed("web", err)}
	}
	return []supervisor.Spec{{Name: "web", Service: srv}}
}

func (a *Agent) newWeb() (*web.Server, error) {
	www, err := a.ly.Path(a.paths.WWW)
	if err != nil {
		return nil, err
	}
	src, err := a.statusSource()
	if err != nil {
		return nil, err
	}
	cfg := web.Config{
		Addr:   a.opts.ListenWeb,
		WWW:    www,
		Status: src,
		State:  a.state,
		Log:    a.sup.Logger("web"),
		// The first request of each page maps code and tables an idle
		// agent does not need again: trimmed once requests go idle.
		OnRequest: a.trim.Note,
	}
	if a.cfg != nil && a.cfg.Payload.Cookie != nil {
		cfg.Cookie = *a.cfg.Payload.Cookie
	}
	return web.New(cfg)
}

// statusSource returns the status document's source (agent/status),
// built once from the config in force after Boot: the web server renders
// it, and every other reader of the document serves the same one.
func (a *Agent) statusSource() (*status.Source, error) {
	if a.status == nil && a.statusErr == nil {
		a.status, a.statusErr = a.newStatus()
	}
	return a.status, a.statusErr
}

func (a *Agent) newStatus() (*status.Source, error) {
	versionFile, err := a.ly.Path(a.paths.Version)
	if err != nil {
		return nil, err
	}
	cfg := status.Config{
		VersionFile:  versionFile,
		State:        a.state,
		AgentVersion: version.String(),
		Proc:         a.paths.Proc,
		Log:          a.sup.Logger("status"),
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
