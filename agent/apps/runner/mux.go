package runner

import (
	"fmt"
	"slices"
)

// Mux is the runtime of a runner that runs both kinds of runs: a Spec
// with a Bundle goes to OCI, any other to Process. Adopt goes by the
// record's runtime name; Sweep asks both (OCI first: it deletes its
// containers, then Process clears what is left in the app cgroups).
type Mux struct {
	Process Runtime
	// OCI runs bundles; nil when the agent has none configured.
	OCI Runtime
}

// Name is "mux"; records carry the name of the runtime that made them.
func (m *Mux) Name() string { return "mux" }

// Mode is the process runtime's (both share the agent's cgroups).
func (m *Mux) Mode() CgroupMode { return m.Process.Mode() }

// Start starts l on the runtime its Spec asks for.
func (m *Mux) Start(l Launch) (Instance, error) {
	if l.Spec.Bundle == "" {
		return m.Process.Start(l)
	}
	if m.OCI == nil {
		return nil, fmt.Errorf("%w: %s is an OCI bundle and this agent has no OCI runtime", ErrCantStart, l.Spec.ID)
	}
	return m.OCI.Start(l)
}

// Adopt hands rec to the runtime named in it.
func (m *Mux) Adopt(rec Record) (Instance, error) {
	if m.OCI != nil && rec.Runtime == m.OCI.Name() {
		return m.OCI.Adopt(rec)
	}
	if rec.Runtime != "" && rec.Runtime != m.Process.Name() {
		return nil, fmt.Errorf("%w: run %d was started by runtime %q, which this agent has not", ErrGone, rec.RunID, rec.Runtime)
	}
	return m.Process.Adopt(rec)
}

// Sweep sweeps both runtimes.
func (m *Mux) Sweep(known []Record) []string {
	var out []string
	if m.OCI != nil {
		out = m.OCI.Sweep(known)
	}
	return slices.Concat(out, m.Process.Sweep(known))
}
