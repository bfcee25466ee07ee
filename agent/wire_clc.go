package agent

import "osmanager/agent/supervisor"

// clcServices builds the cloud-controller link (agent/clc) from a.cfg and the options.
func (a *Agent) clcServices() []supervisor.Named { return nil }
