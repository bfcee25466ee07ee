package agent

import (
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
func (a *Agent) websshServices() []supervisor.Spec {
	addr, _, on := a.websshAddr()
	if !on {
		return nil
	}
	host := ""
	if d := a.cfg.Payload.Domain; d != nil {
		host = d.Name
	}
	mode, err := a.websshMode()
	if err != nil {
		return []supervisor.Spec{failed("webssh", err)}
	}
	srv, err := webssh.New(webssh.Config{
		Addr:       addr,
		Mode:       mode,
		AsSelf:     a.opts.WebSSHAsSelf,
		Sys:        a.sys,
		Conf:       a.ly,
		Files:      websshFiles(a.paths),
		CertFile:   a.opts.WebSSHCert,
		KeyFile:    a.opts.WebSSHKey,
		SelfSigned: a.opts.WebSSHTLS,
		Hostname:   host,
		Origins:    a.opts.WebSSHOrigins,
		State:      a.state,
		Log:        a.sup.Logger("webssh"),
		OnRequest:  a.trim.Note,

		MaxSessions:  a.opts.WebSSHMaxShells,
		UserSessions: a.opts.WebSSHUserShells,
		MaxLogins:    a.opts.WebSSHMaxLogins,
		UserLogins:   a.opts.WebSSHUserLogins,
		LoginBudget:  a.opts.WebSSHLoginBudget,
		IdleTimeout:  a.opts.WebSSHIdleTimeout,
		MaxSession:   a.opts.WebSSHMaxSession,
		ResumeWindow: a.opts.WebSSHResumeWindow,
	})
	if err != nil {
		return []supervisor.Spec{failed("webssh", err)}
	}
	return []supervisor.Spec{{Name: "webssh", Service: srv}}
}

// websshMode is --webssh-mode, unless login shells are off (a system root
// other than "/" without --webssh-login-shells=on): a login-mode shell
// runs as the uid the system root's passwd file gives, on the real host,
// so a scratch passwd would choose who the shell runs as. Then auto is
// ssh only (the host's own sshd checks the host's own accounts) and
// login is refused. The demo's as-self mode never switches users, so it
// is not affected.
func (a *Agent) websshMode() (webssh.Mode, error) {
	mode := webssh.Mode(a.opts.WebSSHMode)
	if a.opts.WebSSHAsSelf || mode != webssh.ModeLogin && mode != webssh.ModeAuto && mode != "" {
		return mode, nil // ssh, or a bad mode webssh.New refuses
	}
	on, why := a.allowed(a.opts.LoginShells, "--webssh-login-shells")
	if on {
		return mode, nil
	}
	if mode == webssh.ModeLogin {
		return "", fmt.Errorf("%w: login mode refused: login shells are off (%s)", webssh.ErrConfig, why)
	}
	a.sup.Logger("webssh").Info("web terminal in ssh mode only: login shells are off", "reason", why)
	return webssh.ModeSSH, nil
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
