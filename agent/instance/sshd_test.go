package instance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestHostSSHDSystemd(t *testing.T) {
	tests := []struct {
		name      string
		active    string // the unit is-active answers for; "" none
		failRel   bool
		wantNote  string
		wantCalls []string
		wantErr   bool
	}{
		{name: "Debian's ssh.service", active: "ssh.service", wantNote: "reloaded ssh.service",
			wantCalls: []string{"is-active --quiet ssh.service", "reload-or-restart ssh.service"}},
		{name: "RHEL's sshd.service", active: "sshd.service", wantNote: "reloaded sshd.service",
			wantCalls: []string{"is-active --quiet ssh.service", "is-active --quiet sshd.service", "reload-or-restart sshd.service"}},
		{name: "not running", wantNote: "sshd not running",
			wantCalls: []string{"is-active --quiet ssh.service", "is-active --quiet sshd.service"}},
		{name: "reload fails", active: "ssh.service", failRel: true, wantErr: true,
			wantCalls: []string{"is-active --quiet ssh.service", "reload-or-restart ssh.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			h := HostSSHD{
				PidFile:    filepath.Join(t.TempDir(), "none.pid"),
				SystemdDir: t.TempDir(),
				Systemctl: func(_ context.Context, args ...string) ([]byte, error) {
					calls = append(calls, strings.Join(args, " "))
					switch {
					case args[0] == "is-active" && args[2] == tt.active:
						return nil, nil
					case args[0] == "reload-or-restart" && !tt.failRel:
						return nil, nil
					}
					return []byte("failed"), errors.New("exit status 3")
				},
			}
			note, err := h.Reload(context.Background())
			if (err != nil) != tt.wantErr || note != tt.wantNote {
				t.Errorf("Reload = %q, %v; want %q, error %v", note, err, tt.wantNote, tt.wantErr)
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("systemctl calls %q, want %q", calls, tt.wantCalls)
			}
		})
	}
}

func TestHostSSHDPidFile(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	// A process named sshd: a copy of sleep(1), which SIGHUP ends.
	dir := t.TempDir()
	fake := filepath.Join(dir, "sshd")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(fake, data, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(t *testing.T, path string) *exec.Cmd {
		cmd := exec.Command(path, "60")
		if err := cmd.Start(); err != nil {
			t.Skipf("start %s: %v", path, err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	pidFile := filepath.Join(dir, "sshd.pid")
	noSystemd := filepath.Join(dir, "no-systemd")

	t.Run("sshd gets SIGHUP", func(t *testing.T) {
		cmd := start(t, fake)
		os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		note, err := HostSSHD{PidFile: pidFile, SystemdDir: noSystemd}.Reload(context.Background())
		if err != nil || !strings.HasPrefix(note, "sent SIGHUP to sshd") {
			t.Fatalf("Reload = %q, %v", note, err)
		}
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
			t.Errorf("sshd ended with %v, want SIGHUP", cmd.ProcessState)
		}
	})
	t.Run("a stale pid file naming another process", func(t *testing.T) {
		cmd := start(t, sleep)
		os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		note, err := HostSSHD{PidFile: pidFile, SystemdDir: noSystemd}.Reload(context.Background())
		if err != nil || note != "sshd not running" {
			t.Errorf("Reload = %q, %v; want sshd not running", note, err)
		}
		if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
			t.Errorf("the other process is gone: %v", err)
		}
	})
	for _, c := range []struct{ name, data string }{{"garbage", "x\n"}, {"pid 1", "1\n"}} {
		t.Run("pid file "+c.name, func(t *testing.T) {
			os.WriteFile(pidFile, []byte(c.data), 0o644)
			if _, err := (HostSSHD{PidFile: pidFile, SystemdDir: noSystemd}).Reload(context.Background()); err == nil {
				t.Error("no error")
			}
		})
	}
	t.Run("no pid file", func(t *testing.T) {
		note, err := HostSSHD{PidFile: filepath.Join(dir, "none"), SystemdDir: noSystemd}.Reload(context.Background())
		if err != nil || note != "sshd not running" {
			t.Errorf("Reload = %q, %v", note, err)
		}
	})
}
