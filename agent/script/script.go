// Package script runs the appliance's hook scripts (custom/scripts/config
// at boot, custom/scripts/status for the controller link) with a timeout,
// in their own process group so a timeout kills everything they started,
// and with their output bounded and logged one line per output line.
package script

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"osmanager/agent/proc"
)

// ErrNotExecutable means the script is absent or not executable: the
// appliance does not ship that hook.
var ErrNotExecutable = errors.New("no executable script")

// Script says what to run and how.
type Script struct {
	Path    string
	Dir     string   // working directory; default the script's directory
	Env     []string // KEY=VALUE pairs, PATH among them, on top of HOME=/root and LANG=C.UTF-8
	Timeout time.Duration
	// MaxLog caps how many bytes of output are logged; the rest is read and
	// dropped, so a flooding script neither blocks nor fills the log.
	// Default 64 KiB.
	MaxLog int
	Log    *slog.Logger
}

// Result is how a run ended.
type Result struct {
	Exit     proc.Exit // the exit code, or the signal (including our timeout kill)
	ExitCode int       // Exit.Code: the exit status, or -1 when killed by a signal
	Signaled bool      // Exit.Signaled()
	TimedOut bool
	Duration time.Duration
	Lines    int // output lines logged
}

// Run runs the script and waits for it. err is nil when the script ran to
// an exit status (zero or not): the status is in Result. err wraps
// ErrNotExecutable when there is nothing to run, and is non-nil on a timeout
// or a signal.
func (s *Script) Run(ctx context.Context) (Result, error) {
	var res Result
	st, err := os.Stat(s.Path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (!st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0)) {
		return res, fmt.Errorf("run %s: %w", s.Path, ErrNotExecutable)
	}
	if err != nil {
		return res, fmt.Errorf("run %s: %w", s.Path, err)
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("run %s: %w", s.Path, err)
	}
	// The script runs in its own directory: a relative path (from a
	// relative --root) would then name a file relative to that directory,
	// not to ours, and not be found.
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", s.Path, err)
	}
	cmd := exec.Command(abs)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = filepath.Dir(abs)
	}
	cmd.Env = append([]string{"HOME=/root", "LANG=C.UTF-8"}, s.Env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("run %s: %w", s.Path, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	// Its own group: a timeout kills everything it started.
	p, err := proc.Start(cmd, proc.Options{Mode: proc.OwnGroup})
	pw.Close()
	if err != nil {
		pr.Close()
		return res, fmt.Errorf("run %s: %w", s.Path, err)
	}
	lines := make(chan int, 1)
	go func() { lines <- s.logOutput(pr) }()
	exit, werr := p.WaitContext(ctx)
	// A script may leave a daemon running that still holds the output
	// pipe: read what comes for a moment, then stop listening.
	grace := time.NewTimer(time.Second)
	select {
	case res.Lines = <-lines:
	case <-grace.C:
		pr.Close()
		res.Lines = <-lines
	}
	grace.Stop()
	pr.Close()
	res.Duration = time.Since(start)
	res.Exit, res.ExitCode, res.Signaled = exit, exit.Code, exit.Signaled()
	switch {
	case ctx.Err() == context.DeadlineExceeded && (res.Signaled || res.ExitCode < 0):
		res.TimedOut = true
		return res, fmt.Errorf("run %s: timed out after %s", s.Path, s.Timeout)
	case res.Signaled:
		return res, fmt.Errorf("run %s: killed by signal %s", s.Path, proc.SignalName(exit.Signal))
	case ctx.Err() != nil:
		return res, fmt.Errorf("run %s: %w", s.Path, ctx.Err())
	}
	if werr != nil {
		return res, fmt.Errorf("run %s: %w", s.Path, werr)
	}
	return res, nil
}

// logOutput logs each output line up to MaxLog bytes and drains the rest.
func (s *Script) logOutput(r io.Reader) int {
	max := s.MaxLog
	if max <= 0 {
		max = 64 << 10
	}
	br := bufio.NewReaderSize(r, 4096)
	n, logged := 0, 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && s.Log != nil {
			if logged < max {
				if len(line) > max-logged {
					line = line[:max-logged]
				}
				logged += len(line)
				n++
				s.Log.Info("script output", "script", s.Path, "line", string(trimNL(line)))
				if logged >= max {
					s.Log.Warn("script output truncated", "script", s.Path, "after_bytes", max)
				}
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n
		}
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
