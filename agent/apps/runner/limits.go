package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limits caps a run's resources in its cgroup. Zero fields are no cap.
//
// Unified mode: memory.max, cpu.max ("<quota> 100000") and pids.max of
// the run's leaf, written before the program is cloned into it, so no
// process of the run is ever without them. The controllers must be
// enabled for the runs' parent (cgroup.subtree_control; SetupCgroups
// enables what the tree lets it).
//
// Hybrid mode (v1 controllers beside a controller-less v2 tree): the v2
// tree has no controller files, so the run is also placed in a leaf of
// the v1 memory, cpu and pids hierarchies (the same name under the same
// path as its v2 leaf), with memory.limit_in_bytes, cpu.cfs_quota_us
// and pids.max. v1 has no clone-into, so the leader is moved there just
// after its start: a child it forks in that moment is outside the v1
// caps (it stays in the v2 leaf, so it is still stopped with the run).
//
// Without cgroups (mode none) nothing can be capped. A cap that cannot be
// applied fails the start, unless Soft: then the run starts without it
// and the log says so.
type Limits struct {
	Memory int64   // bytes
	CPU    float64 // cores: 0.5 is half of one core
	Pids   int64
	Soft   bool
}

// Empty reports whether no cap is set.
func (l Limits) Empty() bool { return l.Memory == 0 && l.CPU == 0 && l.Pids == 0 }

// cpuPeriod is the CFS period a CPU cap is written with, in µs.
const cpuPeriod = 100000

// controllers are the cgroup controllers l needs.
func (l Limits) controllers() []string {
	var out []string
	if l.Memory > 0 {
		out = append(out, "memory")
	}
	if l.CPU > 0 {
		out = append(out, "cpu")
	}
	if l.Pids > 0 {
		out = append(out, "pids")
	}
	return out
}

// ErrNoLimits: the host cannot apply a run's limits.
var ErrNoLimits = errors.New("limits cannot be applied")

// CheckLimits says why l cannot be applied to the runs here, or nil. It
// is what the manager asks before an install of an app with limits.
func (c *Cgroups) CheckLimits(l Limits) error {
	if l.Empty() {
		return nil
	}
	if !c.On() {
		reason := "no cgroups"
		if c != nil && c.Reason != "" {
			reason += " (" + c.Reason + ")"
		}
		return fmt.Errorf("%w: the runs are process groups only: %s", ErrNoLimits, reason)
	}
	switch c.Mode {
	case CgroupUnified:
		b, err := os.ReadFile(filepath.Join(c.Base, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoLimits, err)
		}
		have := strings.Fields(string(b))
		for _, ctl := range l.controllers() {
			if !slices.Contains(have, ctl) {
				return fmt.Errorf("%w: the %s controller is not enabled for the runs' cgroups (%s/cgroup.subtree_control: %q)", ErrNoLimits, ctl, c.Base, strings.TrimSpace(string(b)))
			}
		}
	case CgroupHybrid:
		for _, ctl := range l.controllers() {
			dir := filepath.Join(c.V1, ctl)
			if !isCgroup1(dir) || unix.Access(dir, unix.W_OK) != nil {
				return fmt.Errorf("%w: hybrid cgroups without a writable v1 %s hierarchy at %s", ErrNoLimits, ctl, dir)
			}
		}
	}
	return nil
}

func isCgroup1(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC
}

// limitFiles are the files and values that apply l, unified or v1.
func (l Limits) limitFiles(v1 bool) map[string][][2]string {
	out := map[string][][2]string{}
	quota := strconv.FormatInt(max(int64(l.CPU*cpuPeriod), 1000), 10)
	if l.Memory > 0 {
		f := "memory.max"
		if v1 {
			f = "memory.limit_in_bytes"
		}
		out["memory"] = [][2]string{{f, strconv.FormatInt(l.Memory, 10)}}
	}
	if l.CPU > 0 {
		if v1 {
			out["cpu"] = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)}, {"cpu.cfs_quota_us", quota}}
		} else {
			out["cpu"] = [][2]string{{"cpu.max", quota + " " + strconv.Itoa(cpuPeriod)}}
		}
	}
	if l.Pids > 0 {
		out["pids"] = [][2]string{{"pids.max", strconv.FormatInt(l.Pids, 10)}}
	}
	return out
}

// applyUnified writes l into a v2 leaf.
func applyUnified(cg cgroup, l Limits) error {
	var errs []error
	for _, ctl := range l.controllers() {
		for _, kv := range l.limitFiles(false)[ctl] {
			if err := cg.write(kv[0], kv[1]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ctl, err))
			}
		}
	}
	return errors.Join(errs...)
}

// v1Leaves are the v1 leaves of a run for the controllers l needs.
func (p *Process) v1Leaves(leaf cgroup, l Limits) map[string]string {
	out := map[string]string{}
	for _, ctl := range l.controllers() {
		out[ctl] = filepath.Join(p.Cgroups.V1, ctl, p.Cgroups.rel(), filepath.Base(string(leaf)))
	}
	return out
}

// makeV1 makes the run's v1 leaves and writes l into them.
func (p *Process) makeV1(leaf cgroup, l Limits) (map[string]string, error) {
	dirs := p.v1Leaves(leaf, l)
	var errs []error
	for ctl, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ctl, err))
			continue
		}
		for _, kv := range l.limitFiles(true)[ctl] {
			if err := cgroup(dir).write(kv[0], kv[1]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ctl, err))
			}
		}
	}
	return dirs, errors.Join(errs...)
}

// enterV1 moves pid into the run's v1 leaves.
func enterV1(dirs map[string]string, pid int) error {
	var errs []error
	for ctl, dir := range dirs {
		if err := cgroup(dir).write("cgroup.procs", strconv.Itoa(pid)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ctl, err))
		}
	}
	return errors.Join(errs...)
}

// removeV1 removes a run's v1 leaves (empty once its processes are
// gone); a missing one is no error.
func (p *Process) removeV1(leaf cgroup) {
	if p.Cgroups == nil || p.Cgroups.Mode != CgroupHybrid || p.Cgroups.V1 == "" || leaf == "" {
		return
	}
	for _, ctl := range []string{"memory", "cpu", "pids"} {
		dir := filepath.Join(p.Cgroups.V1, ctl, p.Cgroups.rel(), filepath.Base(string(leaf)))
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			p.log().Warn("cannot remove a run's v1 cgroup", "cgroup", dir, "err", err)
		}
	}
}

// enableControllers enables, for the runs' cgroups, the v2 controllers
// limits use, each on its own (one the tree does not give fails alone).
func enableControllers(base string) {
	for _, ctl := range []string{"memory", "cpu", "pids", "io"} {
		cgroup(base).write("cgroup.subtree_control", "+"+ctl)
	}
}

// CheckLimits says why l cannot be applied to this runtime's runs.
func (p *Process) CheckLimits(l Limits) error { return p.Cgroups.CheckLimits(l) }

// CheckLimits says why l cannot be applied to the runs (nil when it
// can, or the runtime does not say).
func (r *Runner) CheckLimits(l Limits) error {
	if c, ok := r.rt.(interface{ CheckLimits(Limits) error }); ok {
		return c.CheckLimits(l)
	}
	return nil
}
