package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"osmanager/agent/clc"
	"osmanager/agent/state"
	"osmanager/agent/supervisor"
)

// clcServices builds the cloud-controller link (agent/clc) from a.cfg and
// the options. Without a config the link cannot start: that is a
// permanent failure of this service only, shown in its state and the
// link's. A config without TAG and KEY fails the same way, from the link
// itself (clc.ErrConfig says restarting will not help).
func (a *Agent) clcServices() []supervisor.Spec {
	if a.cfg == nil {
		err := errors.New("no instance config (no luoyun.ini from the floppy and no earlier luoyun.conf): the controller link needs TAG and KEY")
		return []supervisor.Spec{{Name: "clc", Service: supervisor.ServiceFunc(func(context.Context) error {
			a.state.UpdateLink(func(l *state.Link) { l.Status, l.Since, l.LastError = state.LinkDisconnected, time.Now(), err.Error() })
			return supervisor.Permanent(err)
		})}}
	}
	status, err := a.ly.Path(a.paths.StatusScript)
	if err != nil {
		return []supervisor.Spec{failed("clc", fmt.Errorf("status script: %w", err))}
	}
	l := clc.FromConf(a.cfg)
	l.StatusScript = status
	l.ScriptEnv = a.scriptEnv()
	l.StatusPeriod = a.opts.StatusPeriod
	l.Heartbeat = a.opts.Heartbeat
	l.State = a.state
	l.Log = a.sup.Logger("clc")
	return []supervisor.Spec{{Name: "clc", Service: l}}
}

// runCLC runs the link as the supervisor would, once.
func (a *Agent) runCLC(ctx context.Context) error {
	return a.clcServices()[0].Service.Run(ctx)
}
