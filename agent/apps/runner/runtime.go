package runner

import (
	"errors"
	"os"
	"syscall"
	"time"

	"osmanager/agent/proc"
)

// Runtime is what starts a run's processes and controls them: the
// built-in process runtime (Process) here; an OCI runtime (crun, runc)
// is another. The runner's state machine, restart policy, start limit and
// logs are the same for every runtime.
type Runtime interface {
	// Name is the runtime's name in records ("process", "crun").
	Name() string
	// Start starts the run l describes. The error says why it cannot.
	Start(l Launch) (Instance, error)
	// Adopt re-attaches to a run an earlier agent started, when it still
	// lives; else it cleans up what is left of it and returns ErrGone.
	Adopt(rec Record) (Instance, error)
	// Sweep stops every process in the runtime's keeping (the agent's
	// app cgroups) that belongs to none of known, and says what it
	// stopped.
	Sweep(known []Record) []string
	// Mode says how runs are grouped: a CgroupMode.
	Mode() CgroupMode
}

// Launch is one start of a run.
type Launch struct {
	Spec   Spec
	Env    []string // the whole environment
	Stdout *os.File // stdout and stderr; stdin is /dev/null
}

// Instance is one started (or adopted) process tree of a run. Its methods
// are called from the run's loop only, but Pids and Done from anywhere.
type Instance interface {
	// Record names the instance for good, for adoption by a later agent.
	Record() Record
	// Pids lists the run's processes, the group leader first while it
	// lives.
	Pids() []int
	Pause() error
	Resume() error
	// Paused reports whether the instance is paused now (an adopted run
	// may have been paused by the earlier agent).
	Paused() bool
	// Signal sends sig to every process of the run.
	Signal(sig syscall.Signal) error
	// Kill sends SIGKILL to every process of the run.
	Kill() error
	// Done is closed once the leader has exited.
	Done() <-chan struct{}
	// Exit is how the leader ended, once Done; known is false for an
	// adopted leader (not our child: its status went to init).
	Exit() (e proc.Exit, known bool)
	// Cleanup, after Done, kills what is left of the run (forked
	// children) and releases what the instance holds. The run's cgroup
	// stays for the next start; Remove drops it.
	Cleanup() error
	// Remove, after Cleanup, removes the run's cgroup.
	Remove() error
	// Detach stops watching the instance and leaves it running, for the
	// next agent to adopt.
	Detach()
}

// Record is what the manager persists of a live run, so that an agent
// that restarts can adopt it.
type Record struct {
	Runtime   string    `json:"runtime"`
	ID        string    `json:"id"`
	RunID     uint64    `json:"runid"`
	Pid       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // clock ticks since boot, /proc/PID/stat
	BootID    string    `json:"boot_id,omitempty"`
	Cgroup    string    `json:"cgroup,omitempty"` // host directory of the run's leaf
	Started   time.Time `json:"started"`
	Restarts  int       `json:"restarts"`
}

// Errors of the runner, checked with errors.Is.
var (
	// ErrGone: an adopted run no longer lives.
	ErrGone = errors.New("run is gone")
	// ErrInvalidState: the run is not in a state the verb applies to
	// (pause of an exited run).
	ErrInvalidState = errors.New("invalid state")
	// ErrUnknownRun: no run has that runid.
	ErrUnknownRun = errors.New("no such run")
	// ErrCantStart: the run's program could not be started.
	ErrCantStart = errors.New("cannot start")
	// ErrBadSpec: the Spec is not valid.
	ErrBadSpec = errors.New("bad run spec")
)
