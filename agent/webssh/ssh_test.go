package webssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testSSHD is a private sshd on a loopback port with its own host key and
// a throw-away user, for ssh mode.
type testSSHD struct {
	addr     string
	user     string
	password string
	hostKey  ssh.PublicKey
}

const sshdPath = "/usr/sbin/sshd"

// startSSHD starts sshd -D with a temp config; kbd selects
// keyboard-interactive (through PAM) instead of plain password auth.
func startSSHD(t *testing.T, kbd bool) *testSSHD {
	t.Helper()
	auth := "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n"
	if kbd {
		auth = "PasswordAuthentication no\nKbdInteractiveAuthentication yes\nUsePAM yes\n"
	}
	return startSSHDAuth(t, auth)
}

// sshdKeysOnly is the sshd_config of many cloud images: keys only.
const sshdKeysOnly = "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"

// startSSHDAuth starts sshd with auth as its authentication settings.
func startSSHDAuth(t *testing.T, auth string) *testSSHD {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sshd and a test user need root")
	}
	for _, tool := range []string{sshdPath, "/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/sbin/chpasswd"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("%s missing (install openssh-server / passwd)", tool)
		}
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "host_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)

	var rnd [4]byte
	rand.Read(rnd[:])
	d := &testSSHD{user: fmt.Sprintf("osmtest%x", rnd), password: fmt.Sprintf("pw-%x!", rnd), hostKey: signer.PublicKey()}
	home := filepath.Join(dir, "home")
	if out, err := exec.Command("/usr/sbin/useradd", "-M", "-d", home, "-s", "/bin/sh", d.user).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("/usr/sbin/userdel", d.user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", d.user, err, out)
		}
	})
	os.Mkdir(home, 0o755)
	os.Chown(home, lookupUID(t, d.user), -1)
	chp := exec.Command("/usr/sbin/chpasswd")
	chp.Stdin = strings.NewReader(d.user + ":" + d.password + "\n")
	if out, err := chp.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(d.addr)
	conf := filepath.Join(dir, "sshd_config")
	body := fmt.Sprintf("Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile none\n%sPermitRootLogin no\n"+
		"StrictModes no\nAuthorizedKeysFile none\nPrintMotd no\nPrintLastLog no\nAllowUsers %s\n", port, keyFile, auth, d.user)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
		os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation dir
		t.Cleanup(func() { os.Remove("/run/sshd") })
	}
	var logs bytes.Buffer
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		t.Logf("sshd log:\n%s", logs.String())
	})
	waitFor(t, "sshd to listen", 10*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", logs.String())
		default:
		}
		c, err := net.Dial("tcp", d.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return d
}

func lookupUID(t *testing.T, name string) int {
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	var uid int
	fmt.Sscan(string(out), &uid)
	return uid
}

func TestSSHMode(t *testing.T) {
	for _, kbd := range []bool{false, true} {
		name := "password"
		if kbd {
			name = "keyboard-interactive"
		}
		t.Run(name, func(t *testing.T) {
			d := startSSHD(t, kbd)
			e := newEnv(t, func(c *Config) { c.Mode = ModeSSH; c.SSHAddr = d.addr; c.AsSelf = false })
			c := e.client()
			if code := c.login(d.user, "wrong"); code != http.StatusUnauthorized {
				t.Fatalf("wrong password: status %d, want 401", code)
			}
			if code := c.login(d.user, d.password); code != http.StatusNoContent {
				t.Fatalf("login: status %d, want 204", code)
			}
			w := c.open()
			w.typeIn("echo \"I am $(id -un)\"; stty size\n")
			w.expect("I am "+d.user, 10*time.Second)
			w.expect("24 80", 10*time.Second)
			w.send(Resize{Cols: 100, Rows: 30})
			w.typeIn("stty size\n")
			w.expect("30 100", 10*time.Second)
			w.typeIn("exit 4\n")
			if ex := w.waitExit(10 * time.Second); ex.Code != 4 {
				t.Errorf("Exit = %+v, want status 4", ex)
			}

			// The host key is pinned, 0600.
			st, err := os.Stat(filepath.Join(e.srv.cfg.Conf.Dir(), DefaultFiles().KnownHosts))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("pinned host key file: %v %v", st, err)
			}
			pinned, err := (&sshAuth{addr: d.addr, conf: e.srv.cfg.Conf, file: DefaultFiles().KnownHosts}).pinned()
			if err != nil || pinned == nil || !bytes.Equal(pinned.Marshal(), d.hostKey.Marshal()) {
				t.Fatalf("pinned %v, %v; want the sshd's key", pinned, err)
			}
		})
	}
}

func TestSSHHostKeyChanged(t *testing.T) {
	d := startSSHD(t, false)
	e := newEnv(t, func(c *Config) { c.Mode = ModeAuto; c.SSHAddr = d.addr; c.AsSelf = false })
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(other)
	line := fmt.Sprintf("[127.0.0.1]:%s %s", strings.Split(d.addr, ":")[1], ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(filepath.Join(e.srv.cfg.Conf.Dir(), DefaultFiles().KnownHosts), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	if code := c.login(d.user, d.password); code != http.StatusServiceUnavailable {
		t.Errorf("login with a changed host key: status %d, want 503", code)
	}
	if !strings.Contains(e.log.String(), "host key differs") || !strings.Contains(e.log.String(), "mode=ssh") {
		t.Error("no log line about the changed host key in ssh mode")
	}
}

func TestAutoModeWithoutSSHD(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Mode = ModeAuto })
	e.mustLogin("root")
	if !strings.Contains(e.log.String(), "mode=login") {
		t.Error("auto mode without sshd did not use login mode")
	}
}

// TestSSHDKeysOnly: a real sshd that takes only keys; auto mode logs in
// locally (and ssh mode refuses with a reason).
func TestSSHDKeysOnly(t *testing.T) {
	d := startSSHDAuth(t, sshdKeysOnly)
	e := newEnv(t, func(c *Config) { c.Mode = ModeAuto; c.SSHAddr = d.addr; c.AsSelf = false })
	e.mustLogin("root")
	if !strings.Contains(e.log.String(), "mode=login") {
		t.Error("auto mode did not fall back to login mode")
	}
	e2 := newEnv(t, func(c *Config) { c.Mode = ModeSSH; c.SSHAddr = d.addr; c.AsSelf = false })
	if code := e2.client().login(d.user, d.password); code != http.StatusServiceUnavailable {
		t.Errorf("ssh mode: status %d, want 503", code)
	}
}
