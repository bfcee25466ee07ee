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

// clcServices builds the cloud-controller link (agent/clc) from a.cfg and the options.
func (a *Agent) clcServices() []supervisor.Named {
	return []supervisor.Named{{Name: "clc", Service: supervisor.ServiceFunc(a.runCLC)}}
}

// runCLC runs the link with the instance config in force. Without a
// config, or without TAG and KEY in it, the link cannot start: that is a
// permanent failure of this service only, shown in its state and the
// link's.
func (a *Agent) runCLC(ctx context.Context) error {
	if a.cfg == nil {
		err := errors.New("no instance config (no luoyun.ini from the floppy and no earlier luoyun.conf): the controller link needs TAG and KEY")
		a.state.UpdateLink(func(l *state.Link) { l.Status, l.Since, l.LastError = state.LinkDisconnected, time.Now(), err.Error() })
		return supervisor.Permanent(err)
	}
	status, err := a.ly.Path(a.paths.StatusScript)
	if err != nil {
		return supervisor.Permanent(fmt.Errorf("status script: %w", err))
	}
	confPath, _ := a.ly.Path(a.paths.Conf)
	l := clc.FromConf(a.cfg)
	l.StatusScript = status
	l.ScriptEnv = []string{"LUOYUN_ROOT=" + a.opts.Root, "LUOYUN_CONF=" + confPath, "OSM_SYSROOT=" + a.sys.Dir()}
	l.StatusPeriod = a.opts.StatusPeriod
	l.Heartbeat = a.opts.Heartbeat
	l.State = a.state
	l.Log = a.log
	err = l.Run(ctx)
	if errors.Is(err, clc.ErrConfig) {
		return supervisor.Permanent(err)
	}
	return err
}
