package runner

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The cgroup file system is kernel state, not a system file (as /proc is
// not): it is written directly, never through sysroot, and never under a
// scratch root.

// CgroupMode is what the host's cgroup hierarchy gives the runs.
type CgroupMode string

// Cgroup modes, as the log and the status document show them.
const (
	// CgroupUnified: cgroup v2 is the only hierarchy, with controllers.
	CgroupUnified CgroupMode = "unified"
	// CgroupHybrid: cgroup v1 controllers beside a controller-less v2
	// tree (/sys/fs/cgroup/unified), which still groups processes and
	// has cgroup.freeze and cgroup.kill; figures come from v1 or /proc.
	CgroupHybrid CgroupMode = "hybrid"
	// CgroupNone: no writable v2 tree; runs are process groups only.
	CgroupNone CgroupMode = "none"
)

// Cgroups is where the runs' cgroups live. The zero value (Mode "") and
// Mode CgroupNone mean process groups only.
type Cgroups struct {
	Mode CgroupMode
	// Base is the host directory (in a v2 mount) holding one leaf per
	// run, app-<id>-<runid>.
	Base string
	// Reason says why Mode is none, or what Base was chosen from.
	Reason string
	// Mount is the v2 mount Base is in; V1, in hybrid mode, the
	// directory of the v1 hierarchies (/sys/fs/cgroup), for limits.
	Mount string
	V1    string
}

// rel is Base's path under its v2 mount (the v1 leaves mirror it).
func (c *Cgroups) rel() string {
	if r, err := filepath.Rel(c.Mount, c.Base); err == nil && c.Mount != "" && !strings.HasPrefix(r, "..") {
		return r
	}
	return filepath.Base(c.Base)
}

// On reports whether runs get cgroups.
func (c *Cgroups) On() bool { return c != nil && c.Base != "" && c.Mode != CgroupNone && c.Mode != "" }

// CgroupConfig says where to look for cgroups.
type CgroupConfig struct {
	FS    string // the cgroup mount point; default /sys/fs/cgroup
	Slice string // under the v2 root when not delegated; default osmanager.slice
	// Self is /proc/self/cgroup's content; default read from /proc.
	Self []byte
	// Base, when set, is used as the runs' parent directly (tests: a
	// cgroup of their own).
	Base string
	Log  *slog.Logger
}

// AgentLeaf is the leaf the agent moves itself into when systemd
// delegates its unit's cgroup: a cgroup with children may hold no
// processes of its own (the no-internal-process rule).
const AgentLeaf = "agent"

// SetupCgroups finds the cgroup v2 tree, decides where the runs' cgroups
// go, creates that directory, and says what it found in the log. It never
// fails: without a usable tree the mode is CgroupNone, with the reason.
//
// Where: under the agent's own cgroup when it is delegated to us (we can
// write in it: systemd's Delegate=yes), after moving the agent into the
// leaf AgentLeaf; else <v2 root>/Slice.
func SetupCgroups(c CgroupConfig) *Cgroups {
	log := cmp.Or(c.Log, slog.New(slog.DiscardHandler))
	cg := setupCgroups(c)
	if cg.Mode == CgroupNone {
		log.Warn("no writable cgroup v2 tree: runs are process groups only, and stop with the agent", "cgroup_mode", cg.Mode, "reason", cg.Reason)
	} else {
		log.Info("runs get cgroups", "cgroup_mode", cg.Mode, "base", cg.Base, "from", cg.Reason)
	}
	return cg
}

func setupCgroups(c CgroupConfig) *Cgroups {
	cg := findCgroups(c)
	if cg.Mode == CgroupNone {
		return cg
	}
	fsDir := cmp.Or(c.FS, "/sys/fs/cgroup")
	if cg.Mount == "" {
		cg.Mount = filepath.Dir(cg.Base)
	}
	switch cg.Mode {
	case CgroupUnified:
		enableControllers(cg.Base)
	case CgroupHybrid:
		cg.V1 = fsDir
	}
	return cg
}

func findCgroups(c CgroupConfig) *Cgroups {
	fsDir := cmp.Or(c.FS, "/sys/fs/cgroup")
	mount, mode := "", CgroupNone
	switch {
	case isCgroup2(fsDir):
		mount, mode = fsDir, CgroupUnified
	case isCgroup2(filepath.Join(fsDir, "unified")):
		mount, mode = filepath.Join(fsDir, "unified"), CgroupHybrid
	}
	if c.Base != "" {
		if !isCgroup2(filepath.Dir(c.Base)) {
			return &Cgroups{Mode: CgroupNone, Reason: c.Base + " is not in a cgroup v2 tree"}
		}
		if mode == CgroupNone {
			mode = CgroupUnified
		}
		if err := os.Mkdir(c.Base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return &Cgroups{Mode: CgroupNone, Reason: err.Error()}
		}
		return &Cgroups{Mode: mode, Base: c.Base, Reason: "configured", Mount: filepath.Dir(c.Base)}
	}
	if mode == CgroupNone {
		return &Cgroups{Mode: CgroupNone, Reason: "no cgroup2 file system at " + fsDir + " or " + fsDir + "/unified"}
	}
	self := c.Self
	if self == nil {
		self, _ = os.ReadFile("/proc/self/cgroup")
	}
	own, ok := OwnCgroup(self)
	if !ok {
		return &Cgroups{Mode: CgroupNone, Reason: "no cgroup v2 line (0::) in /proc/self/cgroup"}
	}
	if own != "/" {
		unit := own
		if filepath.Base(own) == AgentLeaf {
			unit = filepath.Dir(own) // moved there by an earlier agent
		}
		dir := filepath.Join(mount, unit)
		if unix.Access(dir, unix.W_OK) == nil && delegate(dir, filepath.Join(mount, own)) == nil {
			return &Cgroups{Mode: mode, Base: dir, Reason: "delegated cgroup " + unit, Mount: mount}
		}
	}
	base := filepath.Join(mount, cmp.Or(c.Slice, "osmanager.slice"))
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return &Cgroups{Mode: CgroupNone, Reason: fmt.Sprintf("make %s: %v", base, err)}
	}
	return &Cgroups{Mode: mode, Base: base, Reason: "slice " + base, Mount: mount}
}

// delegate moves the agent from cur into unit/AgentLeaf, so that unit may
// get children.
func delegate(unit, cur string) error {
	leaf := filepath.Join(unit, AgentLeaf)
	if cur == leaf {
		return nil
	}
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
}

// OwnCgroup reads the v2 path ("0::/path") of /proc/PID/cgroup.
func OwnCgroup(b []byte) (string, bool) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(p, "/") {
			return filepath.Clean(p), true
		}
	}
	return "", false
}

func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// cgroup is one run's leaf: a host directory in a v2 tree.
type cgroup string

func (c cgroup) file(name string) string { return filepath.Join(string(c), name) }

func (c cgroup) write(name, v string) error {
	f, err := os.OpenFile(c.file(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", c.file(name), err)
	}
	return nil
}

// make creates the leaf (an existing one is reused).
func (c cgroup) make() error {
	if err := os.Mkdir(string(c), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("make cgroup: %w", err)
	}
	return nil
}

// procs lists the leaf's processes (cgroup.procs: no zombies).
func (c cgroup) procs() ([]int, error) {
	b, err := os.ReadFile(c.file("cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// has reports whether pid is in the leaf.
func (c cgroup) has(pid int) bool {
	pids, _ := c.procs()
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// event reads one key of cgroup.events ("populated", "frozen").
func (c cgroup) event(key string) (bool, error) {
	b, err := os.ReadFile(c.file("cgroup.events"))
	if err != nil {
		return false, err
	}
	return eventValue(b, key), nil
}

func eventValue(b []byte, key string) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			return v == "1"
		}
	}
	return false
}

// waitEvent waits until cgroup.events says key is want, for up to d: the
// kernel wakes a poll on the file (POLLPRI) at every change of it.
func (c cgroup) waitEvent(key string, want bool, d time.Duration) error {
	f, err := os.Open(c.file("cgroup.events"))
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(d)
	buf := make([]byte, 256)
	for {
		n, err := f.ReadAt(buf, 0)
		if err != nil && n == 0 {
			return fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if eventValue(buf[:n], key) == want {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroup %s: %s not %v after %s", c, key, want, d)
		}
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll %s: %w", f.Name(), err)
		}
	}
}

// freeze freezes (or thaws) every process of the leaf and waits until the
// kernel says it is done.
func (c cgroup) freeze(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	if err := c.write("cgroup.freeze", v); err != nil {
		return err
	}
	return c.waitEvent("frozen", on, 5*time.Second)
}

// signal sends sig to every process of the leaf.
func (c cgroup) signal(sig syscall.Signal) error {
	pids, err := c.procs()
	if err != nil {
		return err
	}
	for _, p := range pids {
		unix.Kill(p, sig)
	}
	return nil
}

// kill SIGKILLs every process of the leaf, forks in flight included
// (cgroup.kill, Linux 5.14); on older kernels it signals the listed
// processes until none is left.
func (c cgroup) kill() error {
	if err := c.write("cgroup.kill", "1"); err == nil {
		return nil
	}
	for range 100 {
		pids, err := c.procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
	}
	return fmt.Errorf("cgroup %s: processes left after SIGKILL", c)
}

// remove kills what is left in the leaf, waits until it is empty and
// removes it. A missing leaf is no error.
func (c cgroup) remove() error {
	if _, err := os.Stat(string(c)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if pids, _ := c.procs(); len(pids) > 0 {
		if err := c.kill(); err != nil {
			return err
		}
	}
	if err := c.waitEvent("populated", false, 5*time.Second); err != nil {
		return err
	}
	if err := unix.Rmdir(string(c)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", c, err)
	}
	return nil
}
