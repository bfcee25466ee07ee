package agent

import "osmanager/agent/supervisor"

// netwatchServices runs the watcher the network step left for the NICs
// that were not there in time; it ends once it configured them all.
func (a *Agent) netwatchServices() []supervisor.Named {
	if a.netwatch == nil {
		return nil
	}
	return []supervisor.Named{{Name: "netwatch", Service: a.netwatch, Policy: supervisor.OnFailure}}
}
