package agent

import "osmanager/agent/supervisor"

// websshServices builds the web terminal (agent/webssh) from a.cfg and the options.
func (a *Agent) websshServices() []supervisor.Named { return nil }
