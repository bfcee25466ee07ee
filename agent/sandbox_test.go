package agent

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"

	"osmanager/agent/floppy"
	"osmanager/agent/state"
	"osmanager/agent/webssh"
)

func TestSwitches(t *testing.T) {
	cases := []struct {
		name    string
		host    bool
		s       Switch
		wantOn  bool
		wantWhy string
	}{
		{"host, auto", true, SwitchAuto, true, ""},
		{"host, off", true, SwitchOff, false, "--network=off"},
		{"host, on", true, SwitchOn, true, ""},
		{"scratch, auto", false, SwitchAuto, false, "--sysroot is not /; --network=on to force"},
		{"scratch, off", false, SwitchOff, false, "--network=off"},
		{"scratch, on", false, SwitchOn, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, _ := testOptions(t, demoDir(t))
			if c.host {
				o.Sysroot = "/"
			}
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			if on, why := a.allowed(c.s, "--network"); on != c.wantOn || why != c.wantWhy {
				t.Errorf("allowed = %v %q, want %v %q", on, why, c.wantOn, c.wantWhy)
			}
		})
	}
	for _, v := range []string{"auto", "on", "off"} {
		if _, err := ParseSwitch(v); err != nil {
			t.Errorf("ParseSwitch(%q) = %v", v, err)
		}
	}
	if _, err := ParseSwitch("yes"); err == nil {
		t.Error("ParseSwitch(yes) accepted")
	}
}

// countingLinks is fakeLinks counting every netlink call.
type countingLinks struct {
	fakeLinks
	calls *atomic.Int64
}

func (c countingLinks) LinkList() ([]netlink.Link, error) {
	c.calls.Add(1)
	return c.fakeLinks.LinkList()
}

// TestScratchSysrootLeavesHost: with a system root other than "/", the
// network step and the floppy driver load are skipped unless asked for.
func TestScratchSysrootLeavesHost(t *testing.T) {
	const entry = `{"network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.2", "netmask": "24"}]}`
	cases := []struct {
		name      string
		network   Switch
		wantCalls int64
		wantStep  state.StepStatus
		wantNote  string
	}{
		{"auto", SwitchAuto, 0, state.StepSkipped, "--sysroot is not /; --network=on to force"},
		{"off", SwitchOff, 0, state.StepSkipped, "--network=off"},
		{"on", SwitchOn, 1, state.StepOK, ""},
	}
	for _, c := range cases {
		t.Run("network "+c.name, func(t *testing.T) {
			dir := demoDir(t)
			putFloppy(t, dir, floppy.NodeImage(nodeIni(entry)))
			o, _ := testOptions(t, dir)
			var calls atomic.Int64
			o.Network, o.Netlink = c.network, countingLinks{fakeLinks{mac: "52:54:00:12:34:56"}, &calls}
			a, _ := bootOnce(t, o)
			st := steps(a)["network"]
			if st.Status != c.wantStep || st.Note != c.wantNote {
				t.Errorf("network step %s %q (%s), want %s %q", st.Status, st.Note, st.Error, c.wantStep, c.wantNote)
			}
			if got := calls.Load(); got != c.wantCalls {
				t.Errorf("netlink calls = %d, want %d", got, c.wantCalls)
			}
			if c.wantNote != "" && !strings.Contains(o.Out.(interface{ String() string }).String(), c.wantNote) {
				t.Errorf("the boot summary does not say why:\n%s", o.Out)
			}
		})
	}
	t.Run("modprobe auto", func(t *testing.T) {
		o, _ := testOptions(t, demoDir(t))
		o.Floppy = "/dev/osmanager-test-no-such-fd"
		a, _ := bootOnce(t, o)
		st := steps(a)["floppy"]
		if want := "floppy driver not loaded: --sysroot is not /; --modprobe=on to force"; st.Status != state.StepFailed || !strings.Contains(st.Error, want) {
			t.Errorf("floppy step %s %q, want failed with %q", st.Status, st.Error, want)
		}
	})
}

// TestWebsshLoginShells: login-mode shells (as a uid from the system
// root's passwd) are off with a scratch system root unless asked for.
func TestWebsshLoginShells(t *testing.T) {
	cases := []struct {
		name     string
		host     bool
		mode     string
		asSelf   bool
		shells   Switch
		wantMode webssh.Mode
		wantErr  bool
	}{
		{"scratch, auto: ssh only", false, "auto", false, SwitchAuto, webssh.ModeSSH, false},
		{"scratch, default mode: ssh only", false, "", false, SwitchAuto, webssh.ModeSSH, false},
		{"scratch, login: refused", false, "login", false, SwitchAuto, "", true},
		{"scratch, login, shells on", false, "login", false, SwitchOn, webssh.ModeLogin, false},
		{"scratch, auto, shells on", false, "auto", false, SwitchOn, webssh.ModeAuto, false},
		{"scratch, ssh", false, "ssh", false, SwitchAuto, webssh.ModeSSH, false},
		{"scratch, as-self demo", false, "login", true, SwitchAuto, webssh.ModeLogin, false},
		{"scratch, bad mode passes to webssh", false, "telnet", false, SwitchAuto, "telnet", false},
		{"host, login", true, "login", false, SwitchAuto, webssh.ModeLogin, false},
		{"host, login, shells off", true, "login", false, SwitchOff, "", true},
		{"host, auto, shells off", true, "auto", false, SwitchOff, webssh.ModeSSH, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, _ := testOptions(t, demoDir(t))
			if c.host {
				o.Sysroot = "/"
			}
			o.WebSSHMode, o.WebSSHAsSelf, o.LoginShells = c.mode, c.asSelf, c.shells
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			mode, err := a.websshMode()
			if mode != c.wantMode || (err != nil) != c.wantErr {
				t.Errorf("websshMode = %q, %v; want %q, error %v", mode, err, c.wantMode, c.wantErr)
			}
			if err != nil && (!errors.Is(err, webssh.ErrConfig) || !strings.Contains(err.Error(), "--webssh-login-shells")) {
				t.Errorf("err = %v, want ErrConfig naming the flag", err)
			}
		})
	}
}
