package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
		{"boot missing floppy", append(bootArgs[:len(bootArgs):len(bootArgs)], "--floppy", filepath.Join(dir, "nope.img")), "boot steps failed: 1 of 8", "failed  floppy"},
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
KEY=k
JSON={"network": [{"mac": "52:54:00:AA:BB:02", "ip": "10.77.0.2", "netmask": "255.255.255.0", "gateway": "10.77.0.1"}, {"ip": "10.78.0.2", "netmask": "16"}]}
`
	os.WriteFile(filepath.Join(dir, "floppy.img"), floppy.NodeImage([]byte(ini)), 0o600)
	boot := func() string {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "boot", "--floppy", filepath.Join(dir, "floppy.img"),
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
