// Package oci is the runner's OCI runtime adapter (a runner.Runtime): it
// runs an installed OCI bundle (agent/apps/pack's bundle packages) with
// an OCI runtime's command line, crun or runc, as RDK DSM runs its
// deployment units.
//
// # One run
//
// For each start the adapter writes a bundle of the run's own,
// <Dir>/osm-<id>-<runid>/config.json: the installed config.json with
// root.path made absolute (the installed rootfs, used in place), the
// relative sources of bind mounts made absolute, linux.cgroupsPath set to
// the run's leaf (below), and OSM_APP_ID, OSM_APP_VERSION and OSM_RUNID
// added to process.env. It then runs `<runtime> run` in the foreground
// (create and start in one, with the runtime as the agent's child, which
// exits with the container's exit status: 128+N after signal N, as
// shells do), and polls `state` until the container is running (a
// container that ends before a poll sees it ran, as its --pid-file
// shows, unless the runtime logged an error). `run` rather than `create`
// then `start`: after `create` the runtime exits and the container's init
// is re-parented to the host's init, so its exit status is lost to the
// agent, and with it exit codes and the on-failure policy. The
// container's stdout and stderr are the runtime's, the run's log pipe;
// the runtime's own errors go to crun.log in the run's dir (JSON lines)
// and a start that fails reports the last of them. pause, resume, kill
// (--all: every process of the container) and delete --force drive the
// rest; a run's processes are the container's (those in its pid
// namespace), its init first.
//
// # Cgroups, per mode of the host
//
//   - unified (cgroup v2 only): linux.cgroupsPath is the run's leaf,
//     <base>/app-<id>-<runid> relative to the v2 mount, which the runtime
//     creates (cgroupfs manager); pause is its cgroup.freeze.
//   - hybrid (v1 controllers, a v2 tree at <fs>/unified): crun refuses
//     this layout when the v2 tree holds any controller ("cgroups in
//     hybrid mode not supported", as on hosts where hugetlb stays in v2).
//     So every runtime command runs in a mount namespace of its own in
//     which <fs>/unified is unmounted (unshare(1), then umount(8)): the
//     runtime sees a v1 host, makes v1 cgroups at the same relative path
//     (<ctrl>/…/app-<id>-<runid>, where v1 figures are read) and pauses
//     with the v1 freezer. The runtime itself is cloned into the run's v2
//     leaf (CLONE_INTO_CGROUP), so the container, forked by it, is there
//     from its first instruction: the leaf is Record().Cgroup, as for the
//     process runtime, and groups, counts and sweeps the run.
//   - none (no usable v2 tree, or --app-cgroups off): no leaf;
//     cgroupsPath is <slice>/app-<id>-<runid> for the runtime's own
//     (v1) cgroups, Record().Cgroup is empty, and, as for process runs,
//     runs stop with the agent.
//
// # Adoption and sweep
//
// A record names the container (osm-<id>-<runid>), its init's pid and
// start time. Adopt asks `state`: a container that is running or paused
// with that init is watched again (a pidfd on its init; its exit status
// is then unknown, as for any adopted run); anything else is deleted with
// --force and its leaf removed. Sweep deletes every container in the
// adapter's state dir (--root, its own, so no other user's containers
// are touched) that no record names.
package oci

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/runner"
	"osmanager/agent/proc"
	"osmanager/agent/sysroot"
)

// Choices of the --oci-runtime flag.
const (
	Auto = "auto"
	Crun = "crun"
	Runc = "runc"
)

// Install is what the error of a missing runtime tells the user to do.
const Install = "apt-get install crun"

// Find looks for the runtime choice asks for in path (a PATH list):
// crun or runc, or auto (crun, else runc). It returns the kind found and
// its path, or kind "" when none is installed.
func Find(choice, path string) (kind, bin string, err error) {
	var try []string
	switch choice {
	case Auto, "":
		try = []string{Crun, Runc}
	case Crun, Runc:
		try = []string{choice}
	default:
		return "", "", fmt.Errorf("oci runtime %q: want crun, runc or auto", choice)
	}
	for _, k := range try {
		for _, d := range filepath.SplitList(path) {
			p := filepath.Join(d, k)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
				return k, p, nil
			}
		}
	}
	return "", "", nil
}

// Runtime runs bundles with crun or runc. Kind and Binary empty: no
// runtime is installed, and every start fails with cant_start naming
// what to install.
type Runtime struct {
	Kind   string // Crun or Runc
	Binary string // its host path
	// Cgroups is the agent's app cgroups (the process runtime's).
	Cgroups *runner.Cgroups
	// CgroupFS is the cgroup mount point; default /sys/fs/cgroup.
	CgroupFS string
	// Slice is the runs' parent for the runtime's own cgroups without a
	// v2 leaf (mode none); default /osmanager.slice.
	Slice string
	// Sys and Dir: the per-run bundle dirs, Dir/osm-<id>-<runid>/.
	Sys *sysroot.Root
	Dir string
	// State is the host dir of the runtime's state (--root), the
	// adapter's own.
	State string
	// PATH finds unshare(1) and umount(8) on hybrid hosts; default
	// runner.DefaultPATH.
	PATH  string
	Table proc.Table
	Log   *slog.Logger

	once      sync.Once
	hide      string // the v2 mount to hide from the runtime (hybrid), or ""
	unshare   string
	hybridErr error
}

// Name is the runtime's kind ("crun", "runc"), or "oci" without one.
func (r *Runtime) Name() string { return cmp.Or(r.Kind, "oci") }

// Mode is the agent's cgroup mode.
func (r *Runtime) Mode() runner.CgroupMode {
	if r.Cgroups.On() {
		return r.Cgroups.Mode
	}
	return runner.CgroupNone
}

func (r *Runtime) log() *slog.Logger { return cmp.Or(r.Log, slog.New(slog.DiscardHandler)) }

func (r *Runtime) fs() string { return cmp.Or(r.CgroupFS, "/sys/fs/cgroup") }

// setup finds out once whether the host is hybrid, so that the runtime
// must not see its v2 tree.
func (r *Runtime) setup() {
	r.once.Do(func() {
		unified := filepath.Join(r.fs(), "unified")
		if isCgroup2(r.fs()) || !isCgroup2(unified) {
			return
		}
		r.hide = unified
		for _, d := range filepath.SplitList(cmp.Or(r.PATH, runner.DefaultPATH)) {
			if p := filepath.Join(d, "unshare"); fileExists(p) {
				r.unshare = p
				break
			}
		}
		if r.unshare == "" {
			r.hybridErr = errors.New("hybrid cgroups: unshare(1) (util-linux) is needed to hide the v2 tree from the OCI runtime")
		}
	})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// ContainerID is the container of run runid of app id.
func ContainerID(id string, runid uint64) string {
	return "osm-" + id + "-" + strconv.FormatUint(runid, 10)
}

// command is one runtime command: in a mount namespace without the v2
// tree on hybrid hosts.
func (r *Runtime) command(args ...string) *exec.Cmd {
	r.setup()
	full := []string{"--root", r.State}
	if r.Kind == Crun {
		full = append(full, "--cgroup-manager=cgroupfs")
	}
	full = append(full, args...)
	env := []string{"PATH=" + cmp.Or(r.PATH, runner.DefaultPATH)}
	if r.hide == "" {
		return &exec.Cmd{Path: r.Binary, Args: append([]string{r.Binary}, full...), Env: env}
	}
	// umount -l: the tree may be busy (a process's cwd); the namespace is
	// private, so the host keeps its mount.
	script := `umount -l "$1" && shift && exec "$@"`
	argv := append([]string{r.unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script, "osmanager-oci", r.hide, r.Binary}, full...)
	return &exec.Cmd{Path: r.unshare, Args: argv, Env: env}
}

// run runs a runtime command to its end; its error holds the runtime's
// message.
func (r *Runtime) run(args ...string) ([]byte, error) {
	cmd := r.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s", r.Name(), args[0], err, msg)
	}
	return out.Bytes(), nil
}

// containerState is what `state` says.
type containerState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"` // creating, created, running, paused, stopped
}

// state asks the runtime about a container; ok false when it has none.
func (r *Runtime) state(cid string) (containerState, bool) {
	cmd := exec.Command(r.Binary, "--root", r.State, "state", cid)
	cmd.Env = []string{"PATH=" + cmp.Or(r.PATH, runner.DefaultPATH)}
	out, err := cmd.Output()
	var st containerState
	if err != nil || json.Unmarshal(out, &st) != nil {
		return containerState{}, false
	}
	return st, true
}

// delete removes a container, stopping it first (--force); a container
// the runtime does not know is no error.
func (r *Runtime) delete(cid string) error {
	if _, ok := r.state(cid); !ok {
		return nil
	}
	_, err := r.run("delete", "--force", cid)
	if _, ok := r.state(cid); !ok {
		return nil
	}
	return err
}

func (r *Runtime) leaf(id string, runid uint64) runner.CgroupDir {
	if !r.Cgroups.On() {
		return ""
	}
	return r.Cgroups.Leaf(id, runid)
}

// cgroupsPath is linux.cgroupsPath of a run: its leaf relative to the v2
// mount, or <slice>/app-<id>-<runid> without one.
func (r *Runtime) cgroupsPath(id string, runid uint64) string {
	name := "app-" + id + "-" + strconv.FormatUint(runid, 10)
	cg := r.leaf(id, runid)
	if cg == "" {
		return filepath.Join("/", cmp.Or(r.Slice, "osmanager.slice"), name)
	}
	mount := r.fs()
	if r.Cgroups.Mode == runner.CgroupHybrid {
		mount = filepath.Join(mount, "unified")
	}
	rel, err := filepath.Rel(mount, string(cg))
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.Join("/", cmp.Or(r.Slice, "osmanager.slice"), name)
	}
	return "/" + rel
}

// runDir is the sysroot name of a run's own bundle dir.
func (r *Runtime) runDir(cid string) string { return r.Dir + "/" + cid }

// Start writes the run's bundle, runs the container and returns once it
// is running.
func (r *Runtime) Start(l runner.Launch) (runner.Instance, error) {
	sp := l.Spec
	if r.Binary == "" {
		return nil, fmt.Errorf("%w: %s is an OCI bundle and no OCI runtime is installed (looked for crun and runc): %s", runner.ErrCantStart, sp.ID, Install)
	}
	r.setup()
	if r.hybridErr != nil {
		return nil, fmt.Errorf("%w: %v", runner.ErrCantStart, r.hybridErr)
	}
	cid := ContainerID(sp.ID, sp.RunID)
	if err := r.delete(cid); err != nil { // a leftover of a crash
		return nil, fmt.Errorf("%w: %v", runner.ErrCantStart, err)
	}
	dir, err := r.writeBundle(sp, cid, l.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", runner.ErrCantStart, sp.ID, err)
	}
	logFile, pidFile := filepath.Join(dir, "crun.log"), filepath.Join(dir, "pid")
	os.Remove(logFile)
	os.Remove(pidFile)
	cmd := r.command("--log", logFile, "--log-format", "json", "run", "--bundle", dir, "--pid-file", pidFile, "--no-new-keyring", cid)
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stdout // stdin nil: /dev/null
	cg := r.leaf(sp.ID, sp.RunID)
	o := proc.Options{Mode: proc.OwnSession, Table: r.Table}
	if cg != "" {
		if err := cg.Remove(); err != nil { // a fresh leaf for every start, as the process runtime's
			return nil, fmt.Errorf("%w: %v", runner.ErrCantStart, err)
		}
		if r.Cgroups.Mode == runner.CgroupHybrid {
			if err := cg.Make(); err != nil {
				return nil, fmt.Errorf("%w: %v", runner.ErrCantStart, err)
			}
			f, err := os.Open(string(cg))
			if err != nil {
				return nil, fmt.Errorf("%w: open cgroup: %v", runner.ErrCantStart, err)
			}
			defer f.Close()
			o.Cgroup = f
		}
	}
	p, err := proc.Start(cmd, o)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", runner.ErrCantStart, r.Name(), err)
	}
	in := &instance{rt: r, cid: cid, cg: cg, runtime: p, done: make(chan struct{})}
	if err := in.watch(p.Pid); err != nil {
		p.Kill()
		p.Wait()
		return nil, fmt.Errorf("%w: %v", runner.ErrCantStart, err)
	}
	st, err := r.waitRunning(cid, p, logFile, pidFile)
	if err != nil {
		in.Kill()
		p.Kill()
		<-in.done
		in.Cleanup()
		in.Remove()
		return nil, fmt.Errorf("%w: %s %s: %v", runner.ErrCantStart, r.Name(), cid, err)
	}
	pst, _ := r.Table.Stat(st.Pid)
	in.pid, in.start = st.Pid, pst.Start
	in.rec = runner.Record{Runtime: r.Name(), ID: sp.ID, RunID: sp.RunID, Pid: st.Pid, StartTime: pst.Start, BootID: r.Table.BootID(), Cgroup: string(cg)}
	return in, nil
}

// waitRunning polls the container's state until it is running, or the
// runtime has exited, for up to a minute. A runtime that exited without
// logging an error ran a container that ended at once: that is a run
// that started and exited (with its status), not a failure to start.
func (r *Runtime) waitRunning(cid string, p *proc.Process, logFile, pidFile string) (containerState, error) {
	deadline := time.Now().Add(time.Minute)
	wait := 500 * time.Microsecond
	for {
		st, ok := r.state(cid)
		if ok && (st.Status == "running" || st.Status == "paused") && st.Pid > 0 {
			return st, nil
		}
		select {
		case <-p.Done():
			e, _ := p.Wait()
			if msg := logError(logFile); msg != "" {
				return st, fmt.Errorf("exited (%s) before the container ran: %s", e, msg)
			}
			b, _ := os.ReadFile(pidFile) // written once the container was made
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return containerState{ID: cid, Pid: pid, Status: "stopped"}, nil
		default:
		}
		if time.Now().After(deadline) {
			return st, errors.New("not running after a minute")
		}
		time.Sleep(wait) // the runtime tells no one when it is done: poll, with a deadline
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// logError is the runtime's last error in its JSON log, or "".
func logError(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	msg := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		var m struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Level == "error" && m.Msg != "" {
			msg = m.Msg
		}
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return msg
}

// writeBundle writes the run's own bundle dir and returns its host path.
func (r *Runtime) writeBundle(sp runner.Spec, cid string, env []string) (string, error) {
	data, err := os.ReadFile(filepath.Join(sp.Bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read the bundle's config.json: %w", err)
	}
	cfg, err := RunConfig(data, sp.Bundle, r.cgroupsPath(sp.ID, sp.RunID), env)
	if err != nil {
		return "", err
	}
	name := r.runDir(cid)
	if _, err := r.Sys.MkdirAll(name, 0o700, 0o700, sysroot.Keep); err != nil {
		return "", err
	}
	if _, err := r.Sys.WriteFile(name+"/config.json", cfg, sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o700}); err != nil {
		return "", err
	}
	return r.Sys.Path(name)
}

// RunConfig is the config.json of one run of the bundle in dir: data
// with root.path and relative bind-mount sources made absolute (under
// dir), linux.cgroupsPath set, and the OSM_ variables of env added to
// process.env. Members it does not know are kept as they are.
func RunConfig(data []byte, dir, cgroupsPath string, env []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	root, _ := cfg["root"].(map[string]any)
	p, _ := root["path"].(string)
	if clean, err := pack.CleanName(p); err != nil || clean == "." {
		return nil, errors.New(`config.json: "root.path" is not a relative path inside the bundle`)
	}
	root["path"] = filepath.Join(dir, p)
	mounts, _ := cfg["mounts"].([]any)
	for _, m := range mounts {
		mm, _ := m.(map[string]any)
		src, _ := mm["source"].(string)
		if src == "" || filepath.IsAbs(src) || !isBind(mm) {
			continue
		}
		mm["source"] = filepath.Join(dir, src)
	}
	linux, _ := cfg["linux"].(map[string]any)
	if linux == nil {
		linux = map[string]any{}
		cfg["linux"] = linux
	}
	linux["cgroupsPath"] = cgroupsPath
	process, _ := cfg["process"].(map[string]any)
	if process == nil {
		return nil, errors.New(`config.json: no "process"`)
	}
	penv, _ := process["env"].([]any)
	for _, e := range env {
		if strings.HasPrefix(e, "OSM_") && !strings.HasPrefix(e, "OSM_APP_DATA=") { // a host path, meaningless inside
			penv = append(penv, e)
		}
	}
	process["env"] = penv
	return json.MarshalIndent(cfg, "", "  ")
}

func isBind(m map[string]any) bool {
	if t, _ := m["type"].(string); t == "bind" {
		return true
	}
	opts, _ := m["options"].([]any)
	return slices.ContainsFunc(opts, func(o any) bool { s, _ := o.(string); return s == "bind" || s == "rbind" })
}

// Adopt re-attaches to rec's container if it still runs with the same
// init; else it deletes what is left and returns runner.ErrGone.
func (r *Runtime) Adopt(rec runner.Record) (runner.Instance, error) {
	cid := ContainerID(rec.ID, rec.RunID)
	cg := runner.CgroupDir(rec.Cgroup)
	gone := func(why string) (runner.Instance, error) {
		if r.Binary != "" {
			if err := r.delete(cid); err != nil {
				r.log().Warn("cannot delete a gone run's container", "container", cid, "err", err)
			}
		}
		if cg != "" {
			if err := cg.Remove(); err != nil {
				r.log().Warn("cannot clean up a gone run's cgroup", "runid", rec.RunID, "err", err)
			}
		}
		r.Sys.RemoveAll(r.runDir(cid))
		return nil, fmt.Errorf("%w: run %d: %s", runner.ErrGone, rec.RunID, why)
	}
	switch {
	case r.Binary == "":
		return gone("no OCI runtime installed")
	case rec.Cgroup != "" && r.leaf(rec.ID, rec.RunID) != cg:
		return gone("its cgroup " + rec.Cgroup + " is not the agent's")
	}
	alive := func() string {
		st, ok := r.state(cid)
		switch {
		case !ok:
			return "no container " + cid
		case st.Status != "running" && st.Status != "paused":
			return "container " + st.Status
		case st.Pid != rec.Pid:
			return "another init"
		}
		if boot := r.Table.BootID(); rec.BootID != "" && boot != "" && boot != rec.BootID {
			return "another boot"
		}
		if pst, err := r.Table.Stat(rec.Pid); err != nil || pst.Start != rec.StartTime || pst.Zombie() {
			return "init exited"
		}
		return ""
	}
	if why := alive(); why != "" {
		return gone(why)
	}
	in := &instance{rt: r, cid: cid, cg: cg, pid: rec.Pid, start: rec.StartTime, rec: rec, done: make(chan struct{})}
	if err := in.watch(rec.Pid); err != nil {
		return nil, fmt.Errorf("adopt run %d: %w", rec.RunID, err)
	}
	if why := alive(); why != "" { // the pidfd may name a newer process
		in.Detach()
		return gone(why)
	}
	return in, nil
}

// Sweep deletes the containers of the adapter's state dir that no record
// names, and their run dirs.
func (r *Runtime) Sweep(known []runner.Record) []string {
	if r.Binary == "" {
		return nil
	}
	keep := map[string]bool{}
	for _, rec := range known {
		if rec.Runtime == r.Name() {
			keep[ContainerID(rec.ID, rec.RunID)] = true
		}
	}
	out, err := r.run("list", "--quiet")
	if err != nil {
		r.log().Warn("cannot list OCI containers", "err", err)
		return nil
	}
	var swept []string
	for _, cid := range strings.Fields(string(out)) {
		if keep[cid] || !strings.HasPrefix(cid, "osm-") {
			continue
		}
		err := r.delete(cid)
		r.log().Warn("deleted a container of no known run", "container", cid, "err", err)
		swept = append(swept, cid)
	}
	if names, err := r.Sys.ReadDirNames(r.Dir); err == nil {
		for _, n := range names {
			if !keep[n] && strings.HasPrefix(n, "osm-") {
				r.Sys.RemoveAll(r.runDir(n))
			}
		}
	}
	return swept
}

// instance is one container.
type instance struct {
	rt      *Runtime
	cid     string
	cg      runner.CgroupDir
	runtime *proc.Process // the runtime's `run`, our child; nil when adopted
	pid     int           // the container's init
	start   uint64
	rec     runner.Record

	pidfd *os.File
	wg    sync.WaitGroup

	mu     sync.Mutex
	done   chan struct{}
	closed bool
	exit   proc.Exit
	known  bool
}

// watch waits, in the runtime's poller, for pid's exit (the runtime's
// `run`, or an adopted init); Detach ends the wait.
func (in *instance) watch(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.O_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	in.pidfd = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	rc, err := in.pidfd.SyscallConn()
	if err != nil {
		in.pidfd.Close()
		return err
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		err := rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0
		})
		if err != nil {
			return // detached
		}
		if in.runtime != nil {
			e, _ := in.runtime.Wait()
			in.finish(containerExit(e), true)
			return
		}
		in.finish(proc.Exit{Code: -1}, false)
	}()
	return nil
}

// containerExit reads the container's exit from the runtime's: 128+N
// after signal N.
func containerExit(e proc.Exit) proc.Exit {
	if !e.Signaled() && e.Code > 128 && e.Code < 128+65 {
		return proc.Exit{Code: -1, Signal: syscall.Signal(e.Code - 128)}
	}
	return e
}

func (in *instance) finish(e proc.Exit, known bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.exit, in.known, in.closed = e, known, true
	close(in.done)
}

func (in *instance) Record() runner.Record { return in.rec }
func (in *instance) Done() <-chan struct{} { return in.done }

func (in *instance) Exit() (proc.Exit, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exit, in.known
}

// Pids lists the container's processes, init first: those of the leaf
// in the init's pid namespace (the runtime's `run` shares the leaf on
// hybrid hosts, not the namespace).
func (in *instance) Pids() []int {
	if in.pid == 0 {
		return nil
	}
	ns := in.pidNS(in.pid)
	if in.cg == "" {
		// No leaf: the container's processes are those in its pid
		// namespace (a scan of the process table, as the process
		// runtime's groups without cgroups).
		if ns == "" {
			return nil
		}
		out := []int{in.pid}
		in.rt.Table.Each(func(st proc.Stat) {
			if st.Pid != in.pid && !st.Zombie() && in.pidNS(st.Pid) == ns {
				out = append(out, st.Pid)
			}
		})
		return out
	}
	pids, _ := in.cg.Procs()
	out := make([]int, 0, len(pids))
	for _, p := range pids {
		if p == in.pid || ns == "" || in.pidNS(p) != ns {
			continue
		}
		out = append(out, p)
	}
	if slices.Contains(pids, in.pid) {
		out = append([]int{in.pid}, out...)
	}
	return out
}

func (in *instance) pidNS(pid int) string {
	s, _ := os.Readlink(filepath.Join(cmp.Or(in.rt.Table.Dir, proc.DefaultDir), strconv.Itoa(pid), "ns/pid"))
	return s
}

func (in *instance) Paused() bool {
	st, ok := in.rt.state(in.cid)
	return ok && st.Status == "paused"
}

func (in *instance) Pause() error {
	_, err := in.rt.run("pause", in.cid)
	return err
}

func (in *instance) Resume() error {
	_, err := in.rt.run("resume", in.cid)
	return err
}

// Signal sends sig to every process of the container.
func (in *instance) Signal(sig syscall.Signal) error {
	_, err := in.rt.run("kill", "--all", in.cid, strconv.Itoa(int(sig)))
	if err != nil {
		if st, ok := in.rt.state(in.cid); !ok || st.Status == "stopped" {
			return nil // ended meanwhile
		}
	}
	return err
}

func (in *instance) Kill() error {
	err := in.Signal(syscall.SIGKILL)
	if in.cg != "" {
		err = errors.Join(err, in.cg.Kill())
	}
	return err
}

// Cleanup deletes the container (the runtime's `run` does when it ends
// by itself) and kills what is left in the leaf.
func (in *instance) Cleanup() error {
	err := in.rt.delete(in.cid)
	if in.cg != "" {
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, perr := in.cg.Procs()
			if perr != nil || len(pids) == 0 {
				break
			}
			in.cg.Kill()
			if time.Now().After(deadline) {
				err = errors.Join(err, fmt.Errorf("cgroup %s: processes left after SIGKILL", in.cg))
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if in.pidfd != nil {
		in.pidfd.Close()
	}
	in.wg.Wait()
	return err
}

// Remove removes the leaf and the run's dir.
func (in *instance) Remove() error {
	in.rt.Sys.RemoveAll(in.rt.runDir(in.cid))
	if in.cg == "" {
		return nil
	}
	return in.cg.Remove()
}

// Detach stops watching; the container goes on.
func (in *instance) Detach() {
	if in.pidfd != nil {
		in.pidfd.Close()
	}
	in.wg.Wait()
}

// RemoveV1 removes the empty v1 cgroups the runtime made for a parent
// name (a slice, relative to each v1 controller's mount under fs), as on
// hybrid and v1 hosts the runtime leaves the parents of the runs' cgroups
// behind. Cgroups that still hold processes stay; their error is
// returned.
func RemoveV1(fs, name string) error {
	dirs, _ := filepath.Glob(filepath.Join(cmp.Or(fs, "/sys/fs/cgroup"), "*", name))
	var errs []error
	for _, d := range dirs {
		if isCgroup2(filepath.Dir(d)) {
			continue
		}
		subs, _ := os.ReadDir(d)
		for _, s := range subs {
			if s.IsDir() {
				if err := os.Remove(filepath.Join(d, s.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := os.Remove(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
