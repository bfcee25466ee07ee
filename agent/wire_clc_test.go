package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clcd"
	"osmanager/agent/conf"
	"osmanager/agent/floppy"
	"osmanager/agent/state"
	"osmanager/agent/supervisor"
)

const clcTestKey = "5b1e0c1e-8d2a-4c51-9a8e-2f0d6f1b7c3a"

// runAgent runs the agent with the given luoyun.ini (nil: no floppy) until
// the test ends.
func runAgent(t *testing.T, ini []byte) (*Agent, string) {
	t.Helper()
	dir := demoDir(t)
	img := filepath.Join(dir, "floppy.img")
	if ini == nil {
		os.Remove(img)
	} else if err := os.WriteFile(img, floppy.NodeImage(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(dir, "LuoYun/custom/scripts/status")
	if err := os.WriteFile(status, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o, buf := testOptions(t, dir)
	o.ListenWeb, o.ListenWebSSH = "127.0.0.1:0", "127.0.0.1:0"
	o.FloppyWait = time.Millisecond
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
		if strings.Contains(buf.String(), clcTestKey) {
			t.Error("the log shows the KEY")
		}
	})
	return a, dir
}

// waitState waits, on the store's change signal, until ok holds; it
// reports whether it did within 10 s.
func waitState(st *state.Store, ok func() bool) bool {
	timeout := time.After(10 * time.Second)
	for {
		ch := st.Changed() // before the read, so no change is missed
		if ok() {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			return false
		}
	}
}

func waitService(t *testing.T, a *Agent, name string, cond func(state.Service) bool) state.Service {
	t.Helper()
	var got state.Service
	if !waitState(a.State(), func() bool {
		for _, s := range a.State().Services() {
			if s.Name == name && cond(s) {
				got = s
				return true
			}
		}
		return false
	}) {
		t.Fatalf("service %s: timed out (services %+v, link %+v)", name, a.State().Services(), a.State().Link())
	}
	return got
}

// TestCLCEndToEnd: `osmanager run` with a node-layout floppy pointing at
// the in-tree controller on loopback registers, reports its status
// script's "running", and shows it in the shared state.
func TestCLCEndToEnd(t *testing.T) {
	srv := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{7: clcTestKey}}
	addr, err := srv.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	defer func() { cancel(); <-srvDone }()

	ini := fmt.Sprintf("CLC_IP=127.0.0.1\nCLC_PORT=%d\nTAG=7\nKEY=%s\nJSON={}\n", addr.Port(), clcTestKey)
	a, _ := runAgent(t, []byte(ini))
	if err := srv.Wait(ctx, func(s clcd.Stats) bool { return s.Registrations[7] == 1 && s.Reports[7] == 2000 }); err != nil {
		t.Fatal(err)
	}
	waitService(t, a, "clc", func(s state.Service) bool { return s.Status == state.ServiceRunning })
	l := a.State().Link()
	if l.Status != state.LinkRegistered || l.Controller != addr.String() {
		t.Errorf("link %+v", l)
	}
	if app := a.State().AppHealth(); app.Code != 2000 || app.Meaning != "running" {
		t.Errorf("app %+v", app)
	}
}

// TestCLCNotConfigured: without TAG and KEY, or without any config, the
// link fails for good with a clear error, and the agent runs on.
func TestCLCNotConfigured(t *testing.T) {
	for _, tc := range []struct {
		name string
		ini  []byte
		want string
	}{
		{"no TAG or KEY", []byte("CLC_IP=127.0.0.1\nJSON={}\n"), "luoyun.conf has no TAG and KEY"},
		{"no KEY", []byte("TAG=3\nJSON={}\n"), "luoyun.conf has no KEY"},
		{"short KEY, refused by conf", []byte("TAG=3\nKEY=abcd\nJSON={}\n"), "luoyun.conf has no KEY (missing, or refused by the conf step)"},
		{"no config at all", nil, "no instance config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := runAgent(t, tc.ini)
			s := waitService(t, a, "clc", func(s state.Service) bool { return s.Status == state.ServiceFailed })
			if !strings.Contains(s.LastError, tc.want) || s.Restarts != 0 {
				t.Errorf("service %+v, want failed for good saying %q", s, tc.want)
			}
			if l := a.State().Link(); l.Status != state.LinkDisconnected || !strings.Contains(l.LastError, tc.want) {
				t.Errorf("link %+v", l)
			}
		})
	}
}

// TestRunCLCConfig: the wiring checks the config itself, whatever the conf
// parser let through: a KEY under 5 bytes fails the service for good,
// named as such; CLC_PORT 0 (what conf gives for CLC_PORT=0 or empty)
// means discovery, not a connect to port 0.
func TestRunCLCConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       conf.Config
		permanent bool
		want      string // in the link's last error
	}{
		{"KEY of 4 bytes", conf.Config{CLCIP: "127.0.0.1", CLCPort: 1369, HasTag: true, Tag: 3, Key: "abcd"}, true, "KEY shorter than 5 bytes"},
		{"CLC_PORT 0: discover", conf.Config{CLCIP: "127.0.0.1", CLCPort: 0, HasTag: true, Tag: 3, Key: clcTestKey}, false, "no controller address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := demoDir(t)
			o, _ := testOptions(t, dir)
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			a.cfg = &tc.cfg
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.runCLC(ctx) }()
			waitState(a.State(), func() bool { return strings.Contains(a.State().Link().LastError, tc.want) })
			if l := a.State().Link(); !strings.Contains(l.LastError, tc.want) {
				t.Errorf("link %+v, want last error saying %q", l, tc.want)
			}
			cancel()
			err = <-done
			if got := supervisor.IsPermanent(err); got != tc.permanent {
				t.Errorf("runCLC = %v: permanent %v, want %v", err, got, tc.permanent)
			}
		})
	}
}
