package clc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/script"
	"osmanager/agent/state"
)

// appStatus is the latest application status, shared by the status loop
// (writer) and the session (reader).
type appStatus struct {
	mu      sync.Mutex
	code    int32
	known   bool
	changed chan struct{} // capacity 1: "look again"
}

func (a *appStatus) set(code int32) (changed bool) {
	a.mu.Lock()
	changed = !a.known || a.code != code
	a.code, a.known = code, true
	a.mu.Unlock()
	if changed {
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}
	return changed
}

func (a *appStatus) get() (int32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.code, a.known
}

// statusLoop runs the status script every StatusPeriod until ctx ends,
// whether or not the link is up, so the status page is always current and
// a registration can report at once. When the appliance has no executable
// script, the app manager's record decides (appsCode), and the loop also
// wakes on every change to the shared state, so an app that stops is
// reported at once rather than at the next period.
func (r *runner) statusLoop(ctx context.Context) {
	s := &script.Script{
		Path:    r.StatusScript,
		Env:     r.ScriptEnv,
		Timeout: r.StatusTimeout,
		MaxLog:  4 << 10,
		// Every 30 s: its output is for debugging, not for the log.
		Log: slog.New(debugOnly{r.log.Handler()}),
	}
	for {
		var (
			res script.Result
			err error
		)
		// The next run's timer starts now, so the period runs from start to
		// start, and whoever sees this run's result knows the timer is set.
		t := r.clock.NewTimer(r.StatusPeriod)
		start := r.clock.Now()
		changed := r.State.Changed() // taken before the apps are read: no change is missed
		if r.StatusScript == "" {
			err = script.ErrNotExecutable
		} else {
			res, err = s.Run(ctx)
		}
		if ctx.Err() != nil {
			t.Stop()
			return
		}
		byApps := errors.Is(err, script.ErrNotExecutable)
		code, meaning := appCode(res, err)
		if byApps {
			code, meaning = appsCode(r.State.Apps())
		}
		r.publishStatus(code, meaning, start, res.Duration)
		if !byApps {
			changed = nil // the script decides: state changes do not matter
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
				waiting = false
			case <-changed:
				// Any change wakes us (the link's own, the page's counters);
				// only a new verdict is published, which wakes us once more.
				changed = r.State.Changed()
				if c, m := appsCode(r.State.Apps()); c != code || m != meaning {
					code, meaning = c, m
					r.publishStatus(code, meaning, r.clock.Now(), 0)
				}
			}
		}
	}
}

// publishStatus records a status in the shared state and hands a new code
// to the session, which reports it.
func (r *runner) publishStatus(code int32, meaning string, checked time.Time, took time.Duration) {
	r.State.SetAppHealth(state.AppHealth{Code: code, Meaning: meaning, Checked: checked, Duration: took.Round(time.Microsecond)})
	if r.status.set(code) {
		r.log.Info("application status", "code", code, "meaning", meaning, "took", took.Round(time.Microsecond))
	}
}

// appsCode maps the app manager's record to the REPORT value, for an
// appliance without an executable status script: 2000 when every app whose
// desired state is running has a run that is running (state.AppsRunning);
// 2130 (failed) when one of those has failed for good (its latest run
// failed: start limit hit, cannot start); 2129 (stopped) when one is not
// running otherwise (exited, starting, paused, stopping, never started).
// With no app installed there is nothing to judge by: 2128 (unknown), as
// before the app manager.
func appsCode(a state.Apps) (int32, string) {
	if len(a.Apps) == 0 {
		if a.Cgroups == "" {
			return wire.AppUnknown, "unknown (no executable status script)" // no app manager has reported
		}
		return wire.AppUnknown, "unknown (no executable status script, no app installed)"
	}
	if a.AppsRunning() {
		return wire.AppRunning, "running (every app meant to run is running)"
	}
	var down []string // "id: state" of each app meant to run that does not
	failed := ""
	for _, app := range a.Apps {
		if app.Desired != "running" || slices.ContainsFunc(app.Runs, func(r state.RunView) bool { return r.State == "running" }) {
			continue
		}
		var latest *state.RunView
		for i := range app.Runs {
			if latest == nil || app.Runs[i].RunID > latest.RunID {
				latest = &app.Runs[i]
			}
		}
		what := "not started"
		if latest != nil {
			what = latest.State
		}
		if latest != nil && latest.State == "failed" && failed == "" {
			failed = app.ID
			if latest.Reason != "" {
				what += ", " + latest.Reason
			}
		}
		down = append(down, app.ID+": "+what)
	}
	detail := strings.Join(down[:min(len(down), 3)], "; ")
	if len(down) > 3 {
		detail += fmt.Sprintf("; %d more", len(down)-3)
	}
	if failed != "" {
		return wire.AppFailed, "failed (" + detail + ")"
	}
	return wire.AppStopped, "not running (" + detail + ")"
}

// appCode maps a status-script run to the REPORT value: exit 0 → 2000
// (serving), exit n in 1..127 → 2000+n (running, not serving), and no
// script, a signal, a timeout or anything else → 2128 (unknown).
func appCode(res script.Result, err error) (int32, string) {
	switch {
	case errors.Is(err, script.ErrNotExecutable):
		return wire.AppUnknown, "unknown (no executable status script)"
	case res.TimedOut:
		return wire.AppUnknown, "unknown (status script timed out)"
	case res.Signaled:
		return wire.AppUnknown, "unknown (status script killed by a signal)"
	case err != nil:
		return wire.AppUnknown, "unknown (status script failed: " + err.Error() + ")"
	case res.ExitCode == 0:
		return wire.AppRunning, "running"
	case res.ExitCode >= 1 && res.ExitCode <= 127:
		return wire.AppRunning + int32(res.ExitCode), fmt.Sprintf("not serving (exit %d)", res.ExitCode)
	}
	return wire.AppUnknown, fmt.Sprintf("unknown (exit %d)", res.ExitCode)
}

// queryState is the agent state a registered link puts in a query reply.
func queryState(code int32, known bool) int32 {
	switch {
	case !known || code == wire.AppUnknown:
		return wire.StateAppUnknown
	case code == wire.AppRunning:
		return wire.StateAppRunning
	}
	return wire.StateAppStopped
}

// debugOnly logs every record at debug level.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(as)} }
func (d debugOnly) WithGroup(g string) slog.Handler       { return debugOnly{d.h.WithGroup(g)} }
