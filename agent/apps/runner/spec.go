package runner

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"osmanager/agent/internal/lazyre"
)

// Policy says whether a run whose leader exited is started again.
type Policy string

// Restart policies, as the manifest spells them.
const (
	RestartNo        Policy = "no"         // the default
	RestartOnFailure Policy = "on-failure" // after an exit other than 0 (or a signal)
	RestartAlways    Policy = "always"     // after any exit
)

// StartLimit bounds automatic restarts: more than Burst starts within
// Interval and the run ends failed. Burst 0 means the default, 5 in 10 s.
type StartLimit struct {
	Burst    int
	Interval time.Duration
}

// Defaults of a Spec.
const (
	DefaultStopTimeout = 10 * time.Second
	DefaultBurst       = 5
	DefaultInterval    = 10 * time.Second
)

// Spec is one run: what the manager makes of an installed app's manifest.
// It is the runner's own, so the manifest format can change without it.
type Spec struct {
	ID      string // the app's id
	Version string
	RunID   uint64
	Exec    string   // absolute host path of the program
	Args    []string // after the program's name
	Env     map[string]string
	// Data is the app's data dir (OSM_APP_DATA), a host path.
	Data string
	// Credential runs the program as that user; nil runs it as root.
	Credential *syscall.Credential
	User       string // the user's name, for USER and LOGNAME
	Home       string // the user's home, for HOME; default /
	Workdir    string // host path; default Data, else /
	Restart    Policy
	StartLimit StartLimit
	// StopTimeout is how long terminate waits after SIGTERM before
	// SIGKILL; default 10 s.
	StopTimeout time.Duration
	// Limits caps the run's resources in its cgroup.
	Limits Limits
	// Log is the sysroot name of the run's log file (stdout and stderr);
	// Log+".1" … are its rotated predecessors, Log+".pipe" the named pipe
	// the run writes into.
	Log string

	// Listen are listening sockets handed to every start of the run as
	// systemd does (fds 3, 4, …, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
	// from ListenNames, one per socket). The caller owns them.
	Listen      []*os.File
	ListenNames []string
	// StopWithAgent terminates the run when the runner stops, even where
	// runs are otherwise left for the next agent (a run holding the
	// agent's sockets).
	StopWithAgent bool
	// OCI bundles (part 2): Bundle is the host directory of an OCI
	// runtime bundle, run by the OCI runtime (see Mux) instead of Exec,
	// which is then empty; Args, Credential, Workdir and Env's PATH,
	// HOME, USER are the bundle config's business.
	Bundle string
}

// Pipe is the named pipe between the run and the agent's log writer.
func (sp Spec) Pipe() string { return sp.Log + ".pipe" }

// Dir is the run's working directory.
func (sp Spec) Dir() string {
	switch {
	case sp.Workdir != "":
		return sp.Workdir
	case sp.Data != "":
		return sp.Data
	}
	return "/"
}

var (
	idRE  = lazyre.New(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	envRE = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// withDefaults fills what the Spec leaves out.
func (sp Spec) withDefaults() Spec {
	if sp.Restart == "" {
		sp.Restart = RestartNo
	}
	if sp.StopTimeout <= 0 {
		sp.StopTimeout = DefaultStopTimeout
	}
	if sp.StartLimit.Burst <= 0 {
		sp.StartLimit.Burst = DefaultBurst
	}
	if sp.StartLimit.Interval <= 0 {
		sp.StartLimit.Interval = DefaultInterval
	}
	return sp
}

// Check says what is wrong with the Spec.
func (sp Spec) Check() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: run %d of %q: %s", ErrBadSpec, sp.RunID, sp.ID, fmt.Sprintf(f, a...))
	}
	switch {
	case !idRE.MatchString(sp.ID):
		return bad("id is not [a-z0-9][a-z0-9._-]{0,63}")
	case sp.RunID == 0:
		return bad("no runid")
	case sp.Bundle != "" && (sp.Exec != "" || !path.IsAbs(sp.Bundle) || path.Clean(sp.Bundle) != sp.Bundle):
		return bad("bundle %q is not a clean absolute path, or an exec is given too", sp.Bundle)
	case sp.Bundle != "" && len(sp.Listen) > 0:
		return bad("an OCI bundle takes no listening sockets (socket activation is for programs)")
	case sp.Bundle == "" && (!path.IsAbs(sp.Exec) || path.Clean(sp.Exec) != sp.Exec):
		return bad("exec %q is not a clean absolute path", sp.Exec)
	case sp.Log == "" || !path.IsAbs(sp.Log):
		return bad("no absolute log path")
	case !slices.Contains([]Policy{"", RestartNo, RestartOnFailure, RestartAlways}, sp.Restart):
		return bad("restart policy %q is not no, on-failure or always", sp.Restart)
	case sp.StartLimit.Burst < 0 || sp.StartLimit.Interval < 0 || sp.StopTimeout < 0:
		return bad("negative start limit or stop timeout")
	}
	for _, s := range append([]string{sp.Version, sp.Data, sp.Workdir, sp.User, sp.Home}, sp.Args...) {
		if strings.IndexByte(s, 0) >= 0 {
			return bad("a NUL byte in a value")
		}
	}
	if len(sp.ListenNames) != len(sp.Listen) {
		return bad("%d listening sockets but %d names", len(sp.Listen), len(sp.ListenNames))
	}
	for i, f := range sp.Listen {
		if f == nil {
			return bad("listening socket %d is nil", i)
		}
		if n := sp.ListenNames[i]; n == "" || strings.ContainsAny(n, ":\x00\n") {
			return bad("listening socket name %q is empty or holds a colon or control byte", n)
		}
	}
	for k, v := range sp.Env {
		switch {
		case !envRE.MatchString(k):
			return bad("environment name %q is not [A-Za-z_][A-Za-z0-9_]*", k)
		case strings.HasPrefix(k, "OSM_"):
			return bad("environment name %s: OSM_ names are the agent's", k)
		case strings.IndexByte(v, 0) >= 0:
			return bad("environment %s holds a NUL byte", k)
		}
	}
	return nil
}

// Environ builds the run's environment from scratch: PATH (pathList), HOME,
// USER, LOGNAME, the Spec's own, then the OSM_ names. Nothing of the
// agent's environment gets in.
func (sp Spec) Environ(pathList string) []string {
	m := map[string]string{"PATH": pathList, "HOME": "/"}
	if sp.Home != "" {
		m["HOME"] = sp.Home
	}
	if sp.User != "" {
		m["USER"], m["LOGNAME"] = sp.User, sp.User
	} else if sp.Credential == nil {
		m["USER"], m["LOGNAME"] = "root", "root"
	}
	for k, v := range sp.Env {
		m[k] = v
	}
	m["OSM_APP_ID"] = sp.ID
	m["OSM_APP_VERSION"] = sp.Version
	m["OSM_APP_DATA"] = sp.Data
	m["OSM_RUNID"] = strconv.FormatUint(sp.RunID, 10)
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
