package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"osmanager/agent/state"
)

// TestOneServiceAttribute: the supervisor alone adds service=: every line
// a service, the wiring or the supervisor logs about a service carries it
// once, and each service logs under its own name.
func TestOneServiceAttribute(t *testing.T) {
	dir := demoDir(t)
	o, buf := testOptions(t, dir)
	o.LoginShells = SwitchOff // ssh only: the wiring logs why, for webssh
	o.Floppy = filepath.Join(dir, "floppy.img")
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for _, name := range []string{"web", "webssh"} {
		waitService(t, a, name, func(s state.Service) bool { return s.Status == state.ServiceRunning })
	}
	waitState(a.State(), func() bool {
		s := buf.String()
		return strings.Contains(s, `msg="web terminal listening"`) && strings.Contains(s, `msg=listening`) && strings.Contains(s, "controller link starting")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ msg, service string }{
		{"listening", "web"},
		{"web terminal listening", "webssh"},
		{"web terminal in ssh mode only", "webssh"},
		{"controller link starting", "clc"},
	} {
		found := false
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, `msg="`+want.msg) || strings.Contains(l, "msg="+want.msg+" ") {
				found = true
				if !strings.Contains(l, "service="+want.service) {
					t.Errorf("line without service=%s: %s", want.service, l)
				}
			}
		}
		if !found {
			t.Errorf("no line %q in the log:\n%s", want.msg, buf.String())
		}
	}
	for _, l := range strings.Split(buf.String(), "\n") {
		if n := strings.Count(l, "service="); n > 1 {
			t.Errorf("line with service= %d times: %s", n, l)
		}
	}
}
