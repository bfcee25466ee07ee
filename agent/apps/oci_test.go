package apps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/oci"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/apps/runner"
	"osmanager/agent/sysroot"
)

func busyboxRootfs(t testing.TB) []packtest.Entry { return packtest.BusyboxRootfs(t) }

func bundleTar(t testing.TB, name string, args []string, annotations ...string) []byte {
	// Not compressed: gzip of busybox's 2 MB is slow under -race; the
	// gzip path is the extractor's, tested there.
	return packtest.Tar(false, packtest.Bundle(name, packtest.BundleConfig(args, annotations...), busyboxRootfs(t)...)...)
}

// crunFixture is a Manager whose runner runs bundles with the host's
// crun, or skips without root or crun.
func crunFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("OCI containers need root")
	}
	kind, bin, err := oci.Find(oci.Crun, runner.DefaultPATH)
	if err != nil || kind == "" {
		t.Skipf("no crun installed (%s)", oci.Install)
	}
	cg := testCgroups(t)
	t.Cleanup(func() { oci.RemoveV1("", filepath.Base(cg.Base)) }) // what crun made on a hybrid host
	state := filepath.Join(t.TempDir(), "crun")
	f := newFixtureWith(t, cg, "", func(root *sysroot.Root) runner.Runtime {
		return &oci.Runtime{Kind: kind, Binary: bin, Cgroups: cg, Sys: root, Dir: "/apps/.oci", State: state, Log: testLogger(t)}
	})
	return f
}

// TestBundleBusyboxUnderCrun installs a bundle whose rootfs is
// busybox-static with sleep as its process, and starts, pauses, resumes
// and terminates it under crun, with the verbs of any app.
func TestBundleBusyboxUnderCrun(t *testing.T) {
	f := crunFixture(t)
	a := f.mustInstall(bundleTar(t, "sleeper", []string{"/bin/sleep", "1000"}, pack.AnnotationVersion, "1.2.0", pack.AnnotationStopTimeout, "300ms"), false)
	if a.ID != "sleeper" || a.Version != "1.2.0" || !a.Bundle {
		t.Fatalf("installed %+v, want sleeper 1.2.0, a bundle", a)
	}
	st := f.mustStart("sleeper")
	if st.State != apitypes.Active || len(st.PIDs) == 0 {
		t.Fatalf("start: %+v", st)
	}
	packtest.WaitComm(t, st.PIDs[0], "sleep") // the leader is the bundle's sleep
	for _, step := range []struct {
		name string
		verb func() (apitypes.Run, error)
		want apitypes.RunState
	}{
		{"pause", func() (apitypes.Run, error) { return f.m.Pause(ctxT(t), st.RunID) }, apitypes.Paused},
		{"resume", func() (apitypes.Run, error) { return f.m.Resume(ctxT(t), st.RunID) }, apitypes.Active},
		{"terminate", func() (apitypes.Run, error) { return f.m.Terminate(ctxT(t), st.RunID) }, apitypes.Exited},
	} {
		r, err := step.verb()
		if err != nil || r.State != step.want {
			t.Fatalf("%s: %s, %v; want %s", step.name, r.State, err, step.want)
		}
	}
	r := f.waitRun(st.RunID, "exited", func(r apitypes.Run) bool { return r.State == apitypes.Exited })
	if r.LastExit == nil || r.LastExit.Signal != "KILL" {
		t.Errorf("last exit %+v, want KILL (sleep as pid 1 ignores TERM; the stop timeout kills it)", r.LastExit)
	}
	if err := f.m.Uninstall(ctxT(t), "sleeper", true); err != nil {
		t.Fatal(err)
	}
}

// TestBundleStore: bundles have versions, force, rollback and uninstall
// as packages do (no runtime needed: nothing is started).
func TestBundleStore(t *testing.T) {
	f := newFixture(t, nil, "")
	v := func(ver string) []byte {
		return bundleTar(t, "box", []string{"/bin/sleep", "1"}, pack.AnnotationVersion, ver)
	}
	f.mustInstall(v("1.0.0"), false)
	if _, err := f.install(v("1.0.0"), false); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("same version again: %v, want conflict", err)
	}
	f.mustInstall(v("1.0.0"), true)
	a := f.mustInstall(v("2.0.0"), false)
	if a.Version != "2.0.0" || a.Previous != "1.0.0" {
		t.Errorf("after 2.0.0: %s (previous %s)", a.Version, a.Previous)
	}
	a, err := f.m.Rollback(ctxT(t), "box")
	if err != nil || a.Version != "1.0.0" || !a.Bundle {
		t.Errorf("rollback: %+v, %v", a, err)
	}
	noVersion := packtest.Tar(false, packtest.Bundle("plain", packtest.BundleConfig([]string{"/bin/sleep", "1"}), busyboxRootfs(t)...)...)
	if a := f.mustInstall(noVersion, false); a.Version != "0" {
		t.Errorf("version without the annotation: %q, want 0", a.Version)
	}
	for _, id := range []string{"box", "plain"} {
		if err := f.m.Uninstall(ctxT(t), id, true); err != nil {
			t.Fatal(err)
		}
	}
	if names, _ := f.root.ReadDirNames("/apps"); len(names) > 0 {
		for _, n := range names {
			if !strings.HasPrefix(n, ".") && n != "state.json" {
				t.Errorf("left in /apps: %s", n)
			}
		}
	}
}

// TestBundleBadInput: a bundle with a missing rootfs, a broken
// config.json or a root path outside the bundle is refused at install,
// leaving nothing; with no OCI runtime, a bundle installs and its start
// is cant_start naming what to install.
func TestBundleBadInput(t *testing.T) {
	f := newFixtureWith(t, nil, "", func(root *sysroot.Root) runner.Runtime { return &oci.Runtime{Sys: root, Dir: "/apps/.oci"} })
	good := packtest.BundleConfig([]string{"/bin/sleep", "1"})
	rootOut := strings.Replace(good, `"path": "rootfs"`, `"path": "../../rootfs"`, 1)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"missing rootfs", packtest.Tar(false, packtest.Entry{Name: "app/config.json", Body: good}), "app/rootfs does not exist"},
		{"broken config.json", packtest.Tar(false, packtest.Bundle("app", good[:len(good)/2], busyboxRootfs(t)...)...), "config.json: not valid JSON"},
		{"root path outside the bundle", packtest.Tar(false, packtest.Bundle("app", rootOut, busyboxRootfs(t)...)...), "not inside the bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.install(tc.data, false)
			if apperr.CodeOf(err) != apperr.BadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("install = %v, want bad_request saying %q", err, tc.want)
			}
			if _, err := f.m.Detail(ctxT(t), "app"); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("after a refused install: %v, want not found", err)
			}
			if names, _ := f.root.ReadDirNames("/apps/.staging"); len(names) > 0 {
				t.Errorf("staging dirs left: %q", names)
			}
		})
	}
	t.Run("crun missing", func(t *testing.T) {
		f.mustInstall(bundleTar(t, "app", []string{"/bin/sleep", "1"}), false)
		_, err := f.m.Start(ctxT(t), "app")
		if apperr.CodeOf(err) != apperr.CantStart || !strings.Contains(err.Error(), "apt-get install crun") {
			t.Errorf("start = %v, want cant_start naming apt-get install crun", err)
		}
	})
}

// TestBundleAdoptedAfterRestart: a bundle's container outlives its agent
// (with cgroups) and the next one adopts it from runs.json and crun's
// state: the same init, running, not started again.
func TestBundleAdoptedAfterRestart(t *testing.T) {
	f := crunFixture(t)
	f.keep = true
	f.mustInstall(bundleTar(t, "keeper", []string{"/bin/sh", "-c", `trap "exit 0" TERM; echo up; sleep 1000 & wait`}), false)
	st := f.mustStart("keeper")
	f.waitLog("keeper", "up")
	f.stop()
	if !alive(st.PIDs[0]) {
		t.Fatalf("container init %d did not outlive its agent", st.PIDs[0])
	}
	f.start()
	r, err := f.m.Run(ctxT(t), st.RunID)
	if err != nil || r.State != apitypes.Active || len(r.PIDs) == 0 || r.PIDs[0] != st.PIDs[0] {
		t.Fatalf("after restart run %d = %+v, %v; want adopted, running, init %d first", st.RunID, r, err, st.PIDs[0])
	}
	if a, _ := f.m.Detail(ctxT(t), "keeper"); len(a.Runs) != 1 {
		t.Errorf("runs = %+v; want the adopted one only", a.Runs)
	}
	f.keep = false
	r, err = f.m.Terminate(ctxT(t), st.RunID)
	if err != nil || r.State != apitypes.Exited {
		t.Errorf("terminate of the adopted run = %+v, %v", r, err)
	}
	f.waitGone(st.PIDs[0])
}
