package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunSignalsReadyAfterBoot(t *testing.T) {
	dir := demoDir(t)
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	o, _ := testOptions(t, dir)
	o.ReadyFile = filepath.Join(t.TempDir(), "ready")
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()

	l.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, err := l.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "READY=1\n") {
		t.Fatalf("notify = %q, %v", buf[:n], err)
	}
	if len(a.State().Steps()) != 9 {
		t.Errorf("READY before the boot steps were done: %d steps", len(a.State().Steps()))
	}
	if _, err := os.Stat(o.ReadyFile); err != nil {
		t.Errorf("ready file: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
	if _, err := os.Stat(o.ReadyFile); !os.IsNotExist(err) {
		t.Errorf("ready file still there after exit: %v", err)
	}
}
