package agent

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc"
	"osmanager/agent/paths"
	"osmanager/agent/web"
	"osmanager/agent/webssh"
)

// TestFlagDefaults: the flags default to the values the agent and its
// parts use for a zero option, so each default is written once.
func TestFlagDefaults(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	o.Flags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"floppy", o.Floppy, paths.DefaultFloppy},
		{"root", o.Root, paths.DefaultRoot},
		{"script-timeout", o.ScriptTimeout, DefaultScriptTimeout},
		{"status-period", o.StatusPeriod, clc.DefaultPeriod},
		{"heartbeat", o.Heartbeat, clc.DefaultPeriod},
		{"listen-web", o.ListenWeb, web.DefaultAddr},
		{"webssh-mode", webssh.Mode(o.WebSSHMode), webssh.ModeAuto},
		{"webssh-max-shells", o.WebSSHMaxShells, webssh.DefaultMaxSessions},
		{"webssh-idle-timeout", o.WebSSHIdleTimeout, webssh.DefaultIdleTimeout},
		{"webssh-max-session", o.WebSSHMaxSession, webssh.DefaultMaxSession},
		{"webssh-resume-window", o.WebSSHResumeWindow, webssh.DefaultResumeWindow},
		{"network", o.Network, SwitchAuto},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("--%s defaults to %v, want %v", c.name, c.got, c.want)
			}
		})
	}
	var b Options
	bfs := flag.NewFlagSet("boot", flag.ContinueOnError)
	bfs.SetOutput(io.Discard)
	b.BootFlags(bfs)
	if err := bfs.Parse([]string{"--listen-web", ":1"}); err == nil {
		t.Error("boot takes --listen-web, a flag of the services")
	}
}

// TestNegativeDurationRefused: a negative duration is refused, naming
// the flag, instead of ending in a panic in a ticker.
func TestNegativeDurationRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Options)
	}{
		{"--status-period", func(o *Options) { o.StatusPeriod = -time.Second }},
		{"--heartbeat", func(o *Options) { o.Heartbeat = -time.Second }},
		{"--script-timeout", func(o *Options) { o.ScriptTimeout = -time.Second }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _ := testOptions(t, demoDir(t))
			c.set(&o)
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), c.name) {
				t.Errorf("New = %v, want an error naming %s", err, c.name)
			}
		})
	}
}

// TestOCIRuntimeFlag: --oci-runtime takes crun, runc or auto (the
// default, empty) and refuses anything else, naming the choices.
func TestOCIRuntimeFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
		bad  bool
	}{
		{nil, "", false},
		{[]string{"--oci-runtime", "crun"}, "crun", false},
		{[]string{"--oci-runtime", "runc"}, "runc", false},
		{[]string{"--oci-runtime", "auto"}, "auto", false},
		{[]string{"--oci-runtime", "docker"}, "", true},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Flags(fs)
			err := fs.Parse(c.args)
			if (err != nil) != c.bad || o.OCIRuntime != c.want {
				t.Errorf("parse %q: OCIRuntime %q, %v; want %q (error %v)", c.args, o.OCIRuntime, err, c.want, c.bad)
			}
			if c.bad && !strings.Contains(err.Error(), "crun, runc or auto") {
				t.Errorf("error %v does not name the choices", err)
			}
		})
	}
}
