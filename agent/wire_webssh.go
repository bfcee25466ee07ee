package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"osmanager/agent/supervisor"
	"osmanager/agent/webssh"
)

// websshServices builds the web terminal (agent/webssh) from a.cfg and the
// options: none without an instance config or with webssh.status
// "disable"; the address is --listen-webssh, else ":<webssh.port>"
// (default 8001).
func (a *Agent) websshServices() []supervisor.Named {
	addr, _, on := a.websshAddr()
	if !on {
		return nil
	}
	host := ""
	if d := a.cfg.Payload.Domain; d != nil {
		host = d.Name
	}
	srv, err := webssh.New(webssh.Config{
		Addr:       addr,
		Mode:       webssh.Mode(a.opts.WebSSHMode),
		AsSelf:     a.opts.WebSSHAsSelf,
		Sys:        a.sys,
		Conf:       a.ly,
		Files:      webssh.FilesFrom(a.paths),
		CertFile:   a.opts.WebSSHCert,
		KeyFile:    a.opts.WebSSHKey,
		SelfSigned: a.opts.WebSSHTLS,
		Hostname:   host,
		Origins:    a.opts.WebSSHOrigins,
		State:      a.state,
		Log:        a.log.With("service", "webssh"),

		MaxSessions:  a.opts.WebSSHMaxShells,
		UserSessions: a.opts.WebSSHUserShells,
		MaxLogins:    a.opts.WebSSHMaxLogins,
		UserLogins:   a.opts.WebSSHUserLogins,
		LoginBudget:  a.opts.WebSSHLoginBudget,
	})
	run := func(ctx context.Context) error {
		if err != nil {
			return supervisor.Permanent(err)
		}
		rerr := srv.Run(ctx)
		if errors.Is(rerr, webssh.ErrConfig) {
			return supervisor.Permanent(rerr)
		}
		return rerr
	}
	return []supervisor.Named{{Name: "webssh", Service: supervisor.ServiceFunc(run)}}
}

// websshAddr decides where the web terminal listens, for the terminal and
// for the status page's link to it: not at all without an instance config
// or with webssh.status "disable"; else --listen-webssh, else
// ":<webssh.port>" (default 8001). port is the number in addr.
func (a *Agent) websshAddr() (addr string, port int, on bool) {
	if a.cfg == nil {
		return "", 0, false
	}
	w := a.cfg.Payload.WebSSH
	if w != nil && w.Status == "disable" {
		return "", 0, false
	}
	port = webssh.DefaultPort
	if w != nil && w.Port > 0 {
		port = w.Port
	}
	addr = fmt.Sprintf(":%d", port)
	if a.opts.ListenWebSSH != "" {
		addr = a.opts.ListenWebSSH
		if _, p, err := net.SplitHostPort(addr); err == nil {
			port, _ = strconv.Atoi(p)
		}
	}
	return addr, port, true
}
