package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osmanager/agent/internal/testlog"
)

func write(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		mode     os.FileMode
		timeout  time.Duration
		wantErr  string
		wantExit int
		wantLog  string
	}{
		{name: "ok", body: "#!/bin/sh\necho configured $FOO\n", mode: 0o755, wantLog: "configured bar"},
		{name: "exit 3", body: "#!/bin/sh\necho bad >&2\nexit 3\n", mode: 0o755, wantExit: 3, wantLog: "line=bad"},
		{name: "not executable", body: "#!/bin/sh\n", mode: 0o644, wantErr: "no executable script", wantExit: 0},
		{name: "hangs", body: "#!/bin/sh\necho start\nsleep 60\n", mode: 0o755, timeout: 200 * time.Millisecond, wantErr: "timed out", wantExit: -1, wantLog: "start"},
		{name: "hangs in child", body: "#!/bin/sh\n(sleep 60; echo never) &\nwait\n", mode: 0o755, timeout: 200 * time.Millisecond, wantErr: "timed out", wantExit: -1},
		{name: "killed", body: "#!/bin/sh\nkill -9 $$\n", mode: 0o755, wantErr: "killed by signal", wantExit: -1},
		{name: "bad interpreter", body: "#!/nonexistent/sh\n", mode: 0o755, wantErr: "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, buf := testlog.New(t)
			s := &Script{Path: write(t, c.body, c.mode), Env: []string{"FOO=bar"}, Timeout: c.timeout, Log: log}
			start := time.Now()
			res, err := s.Run(context.Background())
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			if res.ExitCode != c.wantExit {
				t.Errorf("exit = %d, want %d", res.ExitCode, c.wantExit)
			}
			if !strings.Contains(buf.String(), c.wantLog) {
				t.Errorf("log lacks %q", c.wantLog)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v; the timeout did not stop it", time.Since(start))
			}
		})
	}
	if _, err := (&Script{Path: "/nonexistent/config"}).Run(context.Background()); !errors.Is(err, ErrNotExecutable) {
		t.Errorf("missing script: %v, want ErrNotExecutable", err)
	}
}

func TestRunFloodIsBounded(t *testing.T) {
	log, buf := testlog.New(t)
	s := &Script{Path: write(t, "#!/bin/sh\nhead -c 5000000 /dev/zero | tr '\\0' 'y' | fold -w 100\necho done\n", 0o755), MaxLog: 1000, Log: log, Timeout: 30 * time.Second}
	res, err := s.Run(context.Background())
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if len(buf.String()) > 20000 || !strings.Contains(buf.String(), "truncated") {
		t.Errorf("logged %d bytes for a 5 MB flood capped at 1000", len(buf.String()))
	}
}

func TestDaemonLeftRunningDoesNotBlock(t *testing.T) {
	log, _ := testlog.New(t)
	s := &Script{Path: write(t, "#!/bin/sh\nsleep 30 &\necho started\n", 0o755), Log: log}
	start := time.Now()
	res, err := s.Run(context.Background())
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a background child held the run for %v", d)
	}
}

// TestRunExit: the run's end is reported by the one convention of
// agent/proc, an exit code or the signal, and the old fields agree.
func TestRunExit(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		timeout    time.Duration
		want       string
		signaled   bool
		timedOut   bool
	}{
		{name: "ok", body: "#!/bin/sh\nexit 0\n", want: "exit 0"},
		{name: "exit 3", body: "#!/bin/sh\nexit 3\n", want: "exit 3"},
		{name: "term", body: "#!/bin/sh\nkill -TERM $$\n", want: "signal TERM", signaled: true},
		{name: "timeout kills the group", body: "#!/bin/sh\nsleep 60 &\nwait\n", timeout: 200 * time.Millisecond, want: "signal KILL", signaled: true, timedOut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testlog.New(t)
			res, _ := (&Script{Path: write(t, tc.body, 0o755), Timeout: tc.timeout, Log: log}).Run(context.Background())
			if got := res.Exit.String(); got != tc.want {
				t.Errorf("Exit = %s, want %s", got, tc.want)
			}
			if res.Signaled != tc.signaled || res.TimedOut != tc.timedOut || res.ExitCode != res.Exit.Code {
				t.Errorf("Result %+v: want Signaled %v, TimedOut %v, ExitCode = Exit.Code", res, tc.signaled, tc.timedOut)
			}
		})
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := write(t, "#!/bin/sh\ntouch ran\n", 0o755)
	_, err := (&Script{Path: p}).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "ran")); err == nil {
		t.Error("the script ran on a cancelled context")
	}
}

// TestRunRelativePath: a script named by a relative path (a relative
// --root) runs, in its own directory; it once failed with "no such file",
// the relative path exec'd from inside the script's directory.
func TestRunRelativePath(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "LuoYun", "custom", "scripts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("#!/bin/sh\npwd\n[ -f ./config ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	log, out := testlog.New(t)
	for _, c := range []struct{ name, path string }{
		{"relative", "LuoYun/custom/scripts/config"},
		{"dot relative", "./LuoYun/custom/scripts/config"},
		{"relative with ..", "LuoYun/../LuoYun/custom/scripts/config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := (&Script{Path: c.path, Timeout: 10 * time.Second, Log: log}).Run(context.Background())
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run(%q) = exit %d, %v; want exit 0 (it runs in its own dir)", c.path, res.ExitCode, err)
			}
		})
	}
	if real, _ := filepath.EvalSymlinks(dir); !strings.Contains(out.String(), real) && !strings.Contains(out.String(), dir) {
		t.Errorf("the script did not run in its own dir %s:\n%s", dir, out.String())
	}
}
