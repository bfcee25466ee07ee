package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/oci"
	"osmanager/agent/apps/pack/packtest"
)

const apiHelperEnv = "OSM_AGENT_TEST_API_CALL"

// TestAPIHelper is the refused caller of TestAppsThroughSocket: run as
// uid 65534, it lists the apps and prints what came of it.
func TestAPIHelper(t *testing.T) {
	sock := os.Getenv(apiHelperEnv)
	if sock == "" {
		t.Skip("the helper process of TestAppsThroughSocket")
	}
	_, err := client.New(sock).List(context.Background())
	fmt.Printf("RESULT code=%q err=%v\n", apperr.CodeOf(err), err)
}

// TestAppsThroughSocket: the agent serves the app manager on its local
// API socket in the scratch system root; osmctl's client installs a
// package built here, starts it, lists it and terminates it; a caller
// that is not root is refused.
func TestAppsThroughSocket(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	a.Boot(context.Background()) // a failed step does not matter here
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	sock := filepath.Join(dir, "sysroot", "run", "osmanager.sock")
	c := client.New(sock)
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.List(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no API at %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	archive := packtest.Tar(true,
		packtest.Manifest("tick", "1.0.0"),
		packtest.Entry{Name: "bin/", Type: tar.TypeDir},
		packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\nwhile :; do echo tick; sleep 1; done\n"},
	)
	app, err := c.InstallArchive(ctx, bytes.NewReader(archive), "", false)
	if err != nil || app.ID != "tick" || app.Version != "1.0.0" {
		t.Fatalf("install = %+v, %v", app, err)
	}
	if _, err := c.InstallArchive(ctx, bytes.NewReader(archive), "", false); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("install again = %v; want conflict", err)
	}
	st, err := c.Start(ctx, "tick")
	if err != nil || st.State != apitypes.Active {
		t.Fatalf("start = %+v, %v", st, err)
	}
	apps, err := c.List(ctx)
	if err != nil || len(apps) != 1 || len(apps[0].Runs) != 1 || apps[0].Runs[0].RunID != st.RunID {
		t.Fatalf("list = %+v, %v; want tick with run %d", apps, err, st.RunID)
	}
	if got := a.State().Apps(); !got.AppsRunning() || len(got.Apps) != 1 {
		t.Errorf("state.Apps = %+v; want tick running", got)
	}
	if doc, err := c.Status(ctx); err != nil || !bytes.Contains(doc, []byte("{")) {
		t.Errorf("status = %.100s, %v", doc, err)
	}
	r, err := c.RunVerb(ctx, st.RunID, "terminate")
	if err != nil || r.State != apitypes.Exited {
		t.Errorf("terminate = %+v, %v", r, err)
	}

	t.Run("refused caller", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: the other caller runs as uid 65534")
		}
		if err := os.Chmod(sock, 0o666); err != nil { // SO_PEERCRED is then the only gate
			t.Fatal(err)
		}
		got := callAsNobody(t, sock)
		if !strings.HasPrefix(got, `code="forbidden"`) {
			t.Errorf("uid 65534: %s; want forbidden", got)
		}
	})
}

func callAsNobody(t *testing.T, sock string) string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "osm-agent-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	os.Chmod(tmp, 0o755)
	bin := filepath.Join(tmp, "agent.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	if err = errors.Join(err, dst.Close()); err != nil {
		t.Fatal(err)
	}
	// The socket's dirs must be searchable by the caller.
	for d := filepath.Dir(sock); d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o001)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestAPIHelper$")
	cmd.Env = append(os.Environ(), apiHelperEnv+"="+sock)
	cmd.Dir = tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			return r
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
	return ""
}

// serveAgent runs an agent's services on o until the returned stop is
// called, and returns a client of its API once it answers.
func serveAgent(t *testing.T, o Options, sock string) (*client.Client, func()) {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	a.Boot(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve = %v", err)
			}
		}
	}
	t.Cleanup(stop)
	c := client.New(sock)
	t.Cleanup(c.Close)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.List(ctx); err == nil {
			return c, stop
		} else if time.Now().After(deadline) {
			t.Fatalf("no API at %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAppsSurviveAgentRestart: with --app-cgroups=on, a run outlives
// its agent and the next agent on the same dirs adopts it (the same
// runid and leader), with its own slice for the scratch root.
func TestAppsSurviveAgentRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	o.AppCgroups = SwitchOn
	sock := filepath.Join(dir, "sysroot", "run", "osmanager.sock")
	c, stop := serveAgent(t, o, sock)
	ctx := context.Background()
	archive := packtest.Tar(true,
		packtest.Manifest("tick", "1.0.0"),
		packtest.Entry{Name: "bin/", Type: tar.TypeDir},
		packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\nwhile :; do echo tick; sleep 1; done\n"},
	)
	if _, err := c.InstallArchive(ctx, bytes.NewReader(archive), "", false); err != nil {
		t.Fatal(err)
	}
	st, err := c.Start(ctx, "tick")
	if err != nil {
		t.Fatal(err)
	}
	if st.Cgroup == "none" || st.Cgroup == "" {
		t.Skipf("no writable cgroup v2 tree here (mode %q)", st.Cgroup)
	}
	t.Cleanup(func() {
		for _, m := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			if ents, _ := filepath.Glob(m + "/osmanager-*.slice"); len(ents) > 0 {
				for _, e := range ents {
					os.Remove(e) // only if empty: the host agent's slice is not named so
				}
			}
		}
	})
	leader := st.PIDs[0]
	stop()
	if syscall.Kill(leader, 0) != nil {
		t.Fatalf("leader %d did not outlive its agent", leader)
	}
	c2, _ := serveAgent(t, o, sock)
	r, err := c2.Run(ctx, st.RunID)
	if err != nil || r.State != apitypes.Active || len(r.PIDs) == 0 || r.PIDs[0] != leader {
		t.Fatalf("after the restart: run %d = %+v, %v; want adopted with leader %d", st.RunID, r, err, leader)
	}
	if r, err := c2.RunVerb(ctx, st.RunID, "terminate"); err != nil || r.State != apitypes.Exited {
		t.Errorf("terminate of the adopted run = %+v, %v", r, err)
	}
}

// TestBundleThroughSocket: the agent's wiring runs an OCI bundle
// (busybox-static rootfs, sleep) with the host's crun: install through
// the API socket, start, pause, resume, terminate. The scratch root has
// no app cgroups (mode none: crun's own cgroups, no leaf).
func TestBundleThroughSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("OCI containers need root")
	}
	if _, err := exec.LookPath("crun"); err != nil {
		t.Skip("no crun installed (apt-get install crun)")
	}
	rootfs := packtest.BusyboxRootfs(t)
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	o.OCIRuntime = "crun"
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	a.Boot(context.Background())
	// crun's v1 cgroups (mode none on a hybrid or v1 host) are under the
	// scratch root's slice.
	t.Cleanup(func() { oci.RemoveV1("", fmt.Sprintf("osmanager-%08x.slice", crc32.ChecksumIEEE([]byte(a.ly.Dir())))) })
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	c := client.New(filepath.Join(dir, "sysroot", "run", "osmanager.sock"))
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.List(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no API: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cfg := packtest.BundleConfig([]string{"/bin/sleep", "1000"}, "org.opencontainers.image.version", "3.0", "org.osmanager.stop_timeout", "200ms")
	app, err := c.InstallArchive(ctx, bytes.NewReader(packtest.Tar(false, packtest.Bundle("nap", cfg, rootfs...)...)), "", false)
	if err != nil || app.ID != "nap" || app.Version != "3.0" || !app.Bundle {
		t.Fatalf("install = %+v, %v", app, err)
	}
	st, err := c.Start(ctx, "nap")
	if err != nil || st.State != apitypes.Active || len(st.PIDs) == 0 {
		t.Fatalf("start = %+v, %v", st, err)
	}
	packtest.WaitComm(t, st.PIDs[0], "sleep") // the run's leader is the bundle's sleep
	for _, v := range []struct {
		verb string
		want apitypes.RunState
	}{{"pause", apitypes.Paused}, {"resume", apitypes.Active}, {"terminate", apitypes.Exited}} {
		r, err := c.RunVerb(ctx, st.RunID, v.verb)
		if err != nil || r.State != v.want {
			t.Fatalf("%s = %+v, %v; want %s", v.verb, r, err, v.want)
		}
	}
}
