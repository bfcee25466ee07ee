package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/crypto/ssh"

	"osmanager/agent/floppy"
	"osmanager/agent/state"
)

type countSSHD struct{ n int }

func (c *countSSHD) Reload(context.Context) (string, error) { c.n++; return "reloaded", nil }

// TestInstanceOncePerInstance boots an image with sshd's host keys and a
// stale terminal pin: the first boot makes new keys and drops the pin, the
// second writes nothing, a floppy with a new TAG makes it all happen again.
func TestInstanceOncePerInstance(t *testing.T) {
	dir := demoDir(t)
	sshDir := filepath.Join(dir, "sysroot/etc/ssh")
	pin := filepath.Join(dir, "LuoYun/conf/webssh-known-hosts")
	if err := os.MkdirAll(sshDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sshDir, "ssh_host_ed25519_key"), []byte("the image's key\n"), 0o600)
	os.WriteFile(pin, []byte("[127.0.0.1]:22 ssh-ed25519 AAAA\n"), 0o600)
	sshd := &countSSHD{}
	boot := func(t *testing.T) (*Agent, state.Step) {
		o, _ := testOptions(t, dir)
		o.SSHD, o.HostKeyBits = sshd, 2048
		a, err := bootOnce(t, o)
		if err != nil {
			t.Fatalf("boot: %v", err)
		}
		return a, steps(a)["instance"]
	}
	keyOf := func() string {
		b, _ := os.ReadFile(filepath.Join(sshDir, "ssh_host_ed25519_key"))
		return string(b)
	}

	t.Run("first boot", func(t *testing.T) {
		_, st := boot(t)
		if st.Status != state.StepOK || !strings.HasPrefix(st.Note, "new instance (no identity recorded)") {
			t.Fatalf("instance step = %+v", st)
		}
		if _, err := ssh.ParsePrivateKey([]byte(keyOf())); err != nil {
			t.Errorf("ed25519 host key: %v", err)
		}
		if _, err := os.Stat(pin); !os.IsNotExist(err) {
			t.Errorf("pin still there: %v", err)
		}
		if sshd.n != 1 {
			t.Errorf("sshd reloaded %d times, want 1", sshd.n)
		}
	})
	first := keyOf()
	t.Run("second boot: nothing", func(t *testing.T) {
		os.WriteFile(pin, []byte("a pin of the new key\n"), 0o600)
		a, st := boot(t)
		if st.Note != "same instance" || len(st.Changed) != 0 {
			t.Errorf("instance step = %+v", st)
		}
		if n := a.sys.Writes() + a.ly.Writes(); n != 0 {
			t.Errorf("second boot wrote %d times", n)
		}
		if keyOf() != first || sshd.n != 1 {
			t.Error("host key changed or sshd reloaded on the same instance")
		}
		if _, err := os.Stat(pin); err != nil {
			t.Errorf("the pin of the same instance was dropped: %v", err)
		}
	})
	t.Run("new TAG", func(t *testing.T) {
		ini, _ := floppy.ReadFile(filepath.Join(dir, "floppy.img"))
		putFloppy(t, dir, floppy.NodeImage([]byte(strings.Replace(string(ini), "TAG=", "TAG=9", 1))))
		_, st := boot(t)
		if !strings.HasPrefix(st.Note, "new instance (identity differs") {
			t.Errorf("instance step = %+v", st)
		}
		if keyOf() == first {
			t.Error("host key kept on a new instance")
		}
		if _, err := os.Stat(pin); !os.IsNotExist(err) {
			t.Errorf("stale pin kept on a new instance: %v", err)
		}
	})
}

// noUpdates is a netconf.Subscriber whose links never change.
type noUpdates struct{}

func (noUpdates) Subscribe(ctx context.Context) (<-chan netlink.LinkUpdate, error) {
	return make(chan netlink.LinkUpdate), nil
}

func TestNetworkStepLeavesLateNICToTheWatcher(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	o.Network, o.Netlink = SwitchOn, fakeLinks{mac: "52:54:00:00:00:99"}
	o.NetSubscriber, o.NetWait = noUpdates{}, 20*time.Millisecond
	putFloppy(t, dir, floppy.NodeImage(nodeIni(`{"network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.2", "netmask": "24"}]}`)))
	a, err := bootOnce(t, o)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	st := steps(a)["network"]
	want := "waiting for 52:54:00:12:34:56: not there after 20ms; will configure it when it appears"
	if st.Status != state.StepOK || st.Note != want {
		t.Errorf("network step = %s %q, want ok %q", st.Status, st.Note, want)
	}
	svc := a.netwatchServices()
	if len(svc) != 1 || svc[0].Name != "netwatch" {
		t.Errorf("services = %v, want netwatch", svc)
	}
}

func TestHostKeyComment(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{{"web1.example.com", true}, {"", false}, {"bad\nname", false}, {"a b", false}, {"bad_name!", false}} {
		if got := hostChars(c.name); got != c.ok {
			t.Errorf("hostChars(%q) = %v, want %v", c.name, got, c.ok)
		}
	}
}

type fakeStopping struct {
	down  bool
	asked int
}

func (f *fakeStopping) Stopping(context.Context) (bool, error) { f.asked++; return f.down, nil }

// TestRunResetsMachineIDAtShutdown: a machine-id reset left pending by a
// new instance's boot is done when Run ends during the system's shutdown,
// and kept for later when the agent alone stops.
func TestRunResetsMachineIDAtShutdown(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef\n"
	sum := sha256.Sum256([]byte(strings.TrimSpace(id)))
	mark := "sha256:" + hex.EncodeToString(sum[:]) + "\n"
	tests := []struct {
		name             string
		stopping         *fakeStopping // nil: none given (a scratch root: not asked)
		wantID, wantMark string
	}{
		{name: "system shutdown: emptied", stopping: &fakeStopping{down: true}, wantID: "", wantMark: "<absent>"},
		{name: "agent restart: pending", stopping: &fakeStopping{}, wantID: id, wantMark: mark},
		{name: "scratch system root, no probe: left alone", wantID: id, wantMark: mark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := demoDir(t)
			idFile, markFile := filepath.Join(dir, "sysroot/etc/machine-id"), filepath.Join(dir, "LuoYun/conf/machine-id-reset")
			os.MkdirAll(filepath.Dir(markFile), 0o700)
			if err := os.WriteFile(idFile, []byte(id), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(markFile, []byte(mark), 0o600); err != nil {
				t.Fatal(err)
			}
			o, _ := testOptions(t, dir)
			o.HostKeyBits = 2048
			if tt.stopping != nil {
				o.Stopping = tt.stopping
			}
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the boot steps, then straight to the stop
			if err := a.Run(ctx); err != nil {
				t.Fatalf("Run = %v", err)
			}
			read := func(p string) string {
				b, err := os.ReadFile(p)
				if err != nil {
					return "<absent>"
				}
				return string(b)
			}
			if got := read(idFile); got != tt.wantID {
				t.Errorf("machine-id = %q, want %q", got, tt.wantID)
			}
			if got := read(markFile); got != tt.wantMark {
				t.Errorf("mark = %q, want %q", got, tt.wantMark)
			}
			if tt.stopping != nil && tt.stopping.asked != 1 {
				t.Errorf("asked whether the system stops %d times, want 1", tt.stopping.asked)
			}
		})
	}
}
