package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"osmanager/agent"
	"osmanager/agent/floppy"
)

// TestMain lets the test binary stand in for the osmanager binary, so the
// end-to-end test can exec it (inside a network namespace).
func TestMain(m *testing.M) {
	if os.Getenv("OSM_AS_MAIN") == "1" {
		os.Args = append([]string{"osmanager"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := agent.MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	bootArgs := []string{"boot", "--no-network", "--floppy", filepath.Join(dir, "floppy.img"), "--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}
	cases := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"version", []string{"version"}, "", "osmanager dev"},
		{"help", []string{"help"}, "", "commands:"},
		{"no command", nil, "no command", ""},
		{"unknown", []string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{"bad flag", []string{"boot", "--nope"}, "flag provided but not defined", ""},
		{"bad log level", []string{"boot", "--log-level", "loud"}, "--log-level", ""},
		{"extra args", []string{"boot", "x"}, "unexpected arguments", ""},
		{"boot demo", bootArgs, "", "ok      password"},
		{"boot missing floppy", append(bootArgs[:len(bootArgs):len(bootArgs)], "--floppy", filepath.Join(dir, "nope.img")), "boot steps failed: 1 of 9", "failed  floppy"},
		{"boot --net-wait 0", append(bootArgs[:len(bootArgs):len(bootArgs)], "--net-wait", "0"), "", "ok      instance"},
		{"bad --net-wait", append(bootArgs[:len(bootArgs):len(bootArgs)], "--net-wait", "-1s"), "flag -net-wait: negative", ""},
		{"seal dry run", []string{"seal", "--dry-run", "--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}, "", "would remove " + filepath.Join(dir, "LuoYun/conf/luoyun.conf")},
		{"seal extra args", []string{"seal", "now"}, "unexpected arguments", ""},
		{"demo", []string{"demo", "--duration", "10ms"}, "", "0 files written"},
		{"demo says scratch", []string{"demo", "--duration", "10ms"}, "", "changed 1: [<sysroot>/etc/shadow]"},
		{"demo boot result", []string{"demo", "--duration", "10ms"}, "", "; boot ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), c.args, &out, &errb)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q; stderr:\n%s", err, c.wantErr, errb.String())
			}
			if !strings.Contains(out.String(), c.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", c.wantOut, out.String())
			}
			if strings.Contains(out.String(), "boot boot") {
				t.Errorf("stdout doubles a word:\n%s", out.String())
			}
			// The summary on stdout is the per-step report: the log on
			// stderr must not repeat each step.
			if strings.Contains(errb.String(), `msg="boot step"`) {
				t.Errorf("stderr repeats the boot steps:\n%s", errb.String())
			}
		})
	}
}

// TestBootAsNonRoot: a scratch sysroot booted by a plain user skips what
// needs root (giving /root/.ssh to root) and says so; as root it is applied.
func TestBootAsNonRoot(t *testing.T) {
	dir := t.TempDir()
	if _, err := agent.MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"boot", "--no-network", "--floppy", filepath.Join(dir, "floppy.img"), "--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}, &out, &errb)
	if err != nil {
		t.Fatalf("boot: %v\n%s%s", err, out.String(), errb.String())
	}
	want := `(?m)^ok\s+sshkeys\s+\S+\s+changed 2: \[<sysroot>/root/\.ssh <sysroot>/root/\.ssh/authorized_keys\]$`
	if os.Geteuid() != 0 {
		want = `(?m)^skipped sshkeys\s+\S+\s+needs root to give <sysroot>/root/\.ssh to root \(running as uid \d+\)$`
	}
	if !regexp.MustCompile(want).MatchString(out.String()) {
		t.Errorf("summary does not match %s:\n%s", want, out.String())
	}
}

// TestHelpExitsZero runs the binary: asking a command for its flags is no failure.
func TestHelpExitsZero(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // on stderr, where the flag package prints the usage
	}{
		{"boot -h", []string{"boot", "-h"}, "-sysroot"},
		{"run --help", []string{"run", "--help"}, "-listen-web"},
		{"demo -h", []string{"demo", "-h"}, "-duration"},
		{"controller -h", []string{"controller", "-h"}, "usage: osmanager controller"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("exit: %v, want status 0\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out)
			}
		})
	}
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestBootInNetns runs the real binary's boot, network step included, inside
// a network namespace with two veth ends of chosen MACs, twice.
func TestBootInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	ns := fmt.Sprintf("osmtest%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip(t, "-n", ns, "link", "add", "eth0", "address", "52:54:00:aa:bb:01", "type", "veth", "peer", "name", "eth1", "address", "52:54:00:aa:bb:02")

	dir := t.TempDir()
	if _, err := agent.MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	ini := `TAG=3
KEY=0f0e0d0c-1111-2222-3333-444455556666
JSON={"network": [{"mac": "52:54:00:AA:BB:02", "ip": "10.77.0.2", "netmask": "255.255.255.0", "gateway": "10.77.0.1"}, {"ip": "10.78.0.2", "netmask": "16"}]}
`
	os.WriteFile(filepath.Join(dir, "floppy.img"), floppy.NodeImage([]byte(ini)), 0o600)
	boot := func() string {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "boot", "--network=on", "--floppy", filepath.Join(dir, "floppy.img"),
			"--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot"))
		cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("boot in netns: %v\n%s", err, out)
		}
		return string(out)
	}
	out := boot()
	if !strings.Contains(out, "eth1: add 10.77.0.2/24") || !strings.Contains(out, "default route via 10.77.0.1") {
		t.Errorf("first boot output:\n%s", out)
	}
	if a := ip(t, "-n", ns, "-4", "addr", "show", "eth1"); !strings.Contains(a, "inet 10.77.0.2/24") || !strings.Contains(a, "UP") {
		t.Errorf("eth1 (by MAC):\n%s", a)
	}
	// Entry 1 has no MAC: it takes the second Ethernet interface by index.
	if r := ip(t, "-n", ns, "-4", "route", "show", "default"); !strings.Contains(r, "default via 10.77.0.1 dev eth1") {
		t.Errorf("default route:\n%s", r)
	}
	if a := ip(t, "-n", ns, "-4", "addr"); !strings.Contains(a, "inet 10.78.0.2/16") {
		t.Errorf("by-order entry not applied:\n%s", a)
	}
	if out = boot(); !regexp.MustCompile(`(?m)^ok\s+network\s+\S+\s+unchanged$`).MatchString(out) || regexp.MustCompile(`changed [0-9]+:`).MatchString(out) {
		t.Errorf("second boot changed something:\n%s", out)
	}
}

// TestHostsInjectionTwoBoots runs the real binary twice: a floppy whose
// domain.ip carries a zone with line breaks, then a good one. The first
// boot must refuse the address and write nothing of it; the second must
// also clear what an agent before the check let the first one write.
func TestHostsInjectionTwoBoots(t *testing.T) {
	dir := t.TempDir()
	if _, err := agent.MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	img, hosts := filepath.Join(dir, "floppy.img"), filepath.Join(dir, "sysroot/etc/hosts")
	boot := func(ip string) (string, error) {
		ini := fmt.Sprintf("TAG=3\nKEY=0f0e0d0c-1111-2222\nJSON={\"domain\": {\"name\": \"app1.example.com\", \"ip\": %q}}\n", ip)
		os.WriteFile(img, floppy.NodeImage([]byte(ini)), 0o600)
		cmd := exec.Command(os.Args[0], "boot", "--floppy", img, "--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot"))
		cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	const bad = "fe80::1%x\n6.6.6.6 bank.example\n#"
	out, err := boot(bad)
	if err == nil || !regexp.MustCompile(`(?m)^failed\s+hostname .*domain.ip .*zone`).MatchString(out) {
		t.Errorf("bad floppy: err %v, output:\n%s", err, out)
	}
	got, _ := os.ReadFile(hosts)
	if want := "127.0.0.1\tlocalhost\n127.0.1.1\tapp1.example.com app1 # osmanager\n"; string(got) != want {
		t.Errorf("hosts after the bad floppy = %q, want %q", got, want)
	}

	// /etc/hosts as the agent before the check left it after the bad floppy.
	os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\nfe80::1%x\n6.6.6.6 bank.example\n#\tapp1.example.com app1 # osmanager\n"), 0o644)
	if out, err := boot("10.0.0.12"); err != nil {
		t.Fatalf("good floppy: %v\n%s", err, out)
	}
	got, _ = os.ReadFile(hosts)
	if want := "127.0.0.1\tlocalhost\n10.0.0.12\tapp1.example.com app1 # osmanager\n"; string(got) != want {
		t.Errorf("hosts after the good floppy = %q, want %q", got, want)
	}
}

// TestScratchSysrootNotSandbox runs the real binary with a scratch system
// root and no switches: the network step must skip (inside a network
// namespace, whose interface must stay as it was), the floppy driver must
// not be loaded, and the web terminal must refuse login-mode shells.
func TestScratchSysrootNotSandbox(t *testing.T) {
	dir := t.TempDir()
	if _, err := agent.MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "floppy.img")
	flags := []string{"--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}
	self := func(args ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
		return cmd
	}

	t.Run("network", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace")
		}
		if _, err := exec.LookPath("ip"); err != nil {
			t.Skip("needs ip (iproute2)")
		}
		ns := fmt.Sprintf("osmsbx%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot create a network namespace: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ip(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
		os.WriteFile(img, floppy.NodeImage([]byte("TAG=3\nKEY=0f0e0d0c-1111-2222\nJSON={\"network\": [{\"ip\": \"10.79.0.2\", \"netmask\": \"24\"}]}\n")), 0o600)
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0], "boot", "--floppy", img}, flags...)...)
		cmd.Env = append(os.Environ(), "OSM_AS_MAIN=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^skipped network .*--sysroot is not /; --network=on to force$`).Match(out) {
			t.Errorf("boot: %v\n%s", err, out)
		}
		if a := ip(t, "-n", ns, "-4", "addr"); strings.Contains(a, "10.79.0.2") {
			t.Errorf("the network step changed an interface:\n%s", a)
		}
	})

	t.Run("modprobe", func(t *testing.T) {
		out, err := self(append([]string{"boot", "--floppy", "/dev/osmanager-test-no-such-fd"}, flags...)...).CombinedOutput()
		if err == nil || !regexp.MustCompile(`(?m)^failed\s+floppy .*floppy driver not loaded: --sysroot is not /; --modprobe=on to force$`).Match(out) {
			t.Errorf("boot: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "loading the floppy driver") {
			t.Errorf("the driver was loaded:\n%s", out)
		}
	})

	t.Run("login shells", func(t *testing.T) {
		os.WriteFile(img, floppy.NodeImage([]byte("TAG=3\nKEY=0f0e0d0c-1111-2222\nJSON={\"webssh\": {\"status\": \"enable\"}}\n")), 0o600)
		cmd := self(append([]string{"run", "--floppy", img, "--webssh-mode", "login", "--listen-web", "127.0.0.1:0",
			"--listen-webssh", "127.0.0.1:0", "--heartbeat", "1h"}, flags...)...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		found := make(chan string, 1)
		var logged strings.Builder
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logged.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "login mode refused") && strings.Contains(sc.Text(), "--webssh-login-shells=on to force") {
					found <- sc.Text()
					break
				}
			}
			io.Copy(io.Discard, stderr)
			close(found)
		}()
		select {
		case line, ok := <-found:
			if !ok {
				t.Errorf("no log line refusing login mode:\n%s", logged.String())
			}
			t.Log(line)
		case <-time.After(20 * time.Second):
			t.Errorf("no log line refusing login mode in 20 s")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
}
