package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"osmanager/internal/scratch"
)

// TestSIGHUPReloads: osmanager run takes SIGHUP as a reload of the
// declared services (the log says so) and goes on running; SIGTERM still
// stops it cleanly.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	if _, err := scratch.Make(dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--no-network", "--floppy", filepath.Join(dir, "floppy.img"),
		"--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot"),
		"--listen-web", "127.0.0.1:0", "--listen-webssh", "127.0.0.1:0", "--heartbeat", "1h")
	cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the agent ended before logging %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no log line with %q in 30 s", want)
			}
		}
	}
	waitLine(`msg="declared services loaded"`)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLine(`msg="declared services reloaded"`)
	cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("osmanager run after SIGHUP and SIGTERM: %v", err)
	}
}
