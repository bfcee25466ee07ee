package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"osmanager/agent/state"
	"osmanager/agent/sysroot"
)

// TestBootRelativeRoot: `osmanager boot --root LuoYun --sysroot sysroot
// --floppy floppy.img`, paths relative to the working directory, runs
// every step, the config script among them (it failed with "no such
// file": the script was exec'd by its relative path from its own dir).
func TestBootRelativeRoot(t *testing.T) {
	dir := demoDir(t)
	t.Chdir(dir)
	o, _ := testOptions(t, ".")
	o.Floppy, o.Root, o.Sysroot = "floppy.img", "LuoYun", "sysroot"
	a, err := bootOnce(t, o)
	if err != nil {
		t.Fatalf("boot with relative paths: %v", err)
	}
	for _, s := range a.State().Steps() {
		if s.Status == state.StepFailed {
			t.Errorf("step %s failed: %s", s.Name, s.Error)
		}
		if s.Name == "script" && s.Status != state.StepOK {
			t.Errorf("script step %s (%s), want ok", s.Status, s.Note)
		}
	}
}

// TestBootSyncsBeforeScript: a boot batches its directory syncs, and all
// of them are done before the config script runs (it may reboot at once):
// no directory sync comes after the script has started, and each
// directory is synced once.
func TestBootSyncsBeforeScript(t *testing.T) {
	dir := demoDir(t)
	ran := filepath.Join(dir, "script-ran")
	if err := os.WriteFile(filepath.Join(dir, "LuoYun/custom/scripts/config"), []byte("#!/bin/sh\n: > '"+ran+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o, _ := testOptions(t, dir)
	var synced, late []string
	o.WriteHook = func(s sysroot.Stage, name string) {
		if s != sysroot.StageDirSynced {
			return
		}
		synced = append(synced, name)
		if _, err := os.Stat(ran); err == nil {
			late = append(late, name)
		}
	}
	if _, err := bootOnce(t, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ran); err != nil {
		t.Fatalf("the config script did not run: %v", err)
	}
	if len(late) > 0 {
		t.Errorf("directories synced after the script started, for %v", late)
	}
	// Every file the first boot writes has its directory synced.
	want := []string{"/conf/instance-id", "/conf/luoyun.conf", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/shadow", "/root/.ssh/authorized_keys"}
	slices.Sort(synced)
	if !slices.Equal(synced, want) {
		t.Errorf("directories synced for %v, want %v", synced, want)
	}
}

// TestFirstBootTwoSyncs: with little dirty data on the system, a first boot
// commits all its files (luoyun.conf, instance-id, authorized_keys,
// hostname, hosts, resolv.conf and, last, shadow under its lock) with two
// syncfs calls and no fsync; a boot that changes nothing syncs nothing.
func TestFirstBootTwoSyncs(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	for i, want := range []int64{2, 0} {
		a, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		a.sys.Dirty = func() (int64, error) { return 0, nil }
		a.ly.Dirty = a.sys.Dirty
		if err := a.Boot(context.Background()); err != nil {
			t.Fatal(err)
		}
		s, l := a.sys.Syncs(), a.ly.Syncs()
		if got := s.FileSystems + l.FileSystems; got != want {
			t.Errorf("boot %d: %d syncfs, want %d", i+1, got, want)
		}
		if got := s.Files + s.Dirs + l.Files + l.Dirs; got != 0 {
			t.Errorf("boot %d: %d fsyncs, want none", i+1, got)
		}
		if i == 0 {
			for _, st := range a.State().Steps() {
				if st.Name == "password" && (st.Status != state.StepOK || len(st.Changed) != 1) {
					t.Errorf("password step: %s %v, want ok, changed /etc/shadow", st.Status, st.Changed)
				}
			}
		}
	}
}
