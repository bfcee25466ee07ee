package agent

import "osmanager/agent/supervisor"

// webServices builds the status web server (agent/web) from a.cfg and the options.
func (a *Agent) webServices() []supervisor.Named { return nil }
