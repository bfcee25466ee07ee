package runner

// CgroupDir is one run's leaf cgroup, a host directory in a v2 tree, for
// other runtimes (the OCI adapter) that keep their runs in the same
// leaves as Process: app-<id>-<runid> under Cgroups.Base.
type CgroupDir string

// Leaf is the leaf of run runid of app id, or "" without cgroups.
func (c *Cgroups) Leaf(id string, runid uint64) CgroupDir {
	return CgroupDir((&Process{Cgroups: c}).leaf(id, runid))
}

// Make creates the leaf (an existing one is reused).
func (d CgroupDir) Make() error { return cgroup(d).make() }

// Procs lists the leaf's processes.
func (d CgroupDir) Procs() ([]int, error) { return cgroup(d).procs() }

// Has reports whether pid is in the leaf.
func (d CgroupDir) Has(pid int) bool { return cgroup(d).has(pid) }

// Remove kills what is left in the leaf, waits until it is empty and
// removes it; a missing leaf is no error.
func (d CgroupDir) Remove() error { return cgroup(d).remove() }

// Kill SIGKILLs every process of the leaf.
func (d CgroupDir) Kill() error { return cgroup(d).kill() }
