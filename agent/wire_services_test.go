package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/pack/packtest"
)

// TestDeclaredServicesWiring: the agent reads <root>/apps.d, binds a
// service's Unix socket in the system root, serves GET /v1/services and
// POST /v1/reload on its socket, and reloads on its Reload channel
// (SIGHUP in osmanager run).
func TestDeclaredServicesWiring(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	hup := make(chan os.Signal, 1)
	o.Reload = hup
	appsd := filepath.Join(dir, "LuoYun", "apps.d")
	if err := os.MkdirAll(appsd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appsd, "10-web.json"), []byte(`{"services": {"web": "svc"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := serveAgent(t, o, filepath.Join(dir, "sysroot", "run", "osmanager.sock"))
	ctx := context.Background()
	l, err := c.Services(ctx)
	if err != nil || len(l.Services) != 0 || len(l.Problems) != 1 || l.Problems[0].Message != `app "svc" is not installed` || l.Dir != "/apps.d" {
		t.Fatalf("services before the install = %+v, %v", l, err)
	}
	archive := packtest.Tar(true,
		packtest.Manifest("svc", "1.0.0", `"socket": {"listen": "/run/svc.sock"}`),
		packtest.Entry{Name: "bin/", Type: tar.TypeDir},
		packtest.Entry{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\nsleep 60\n"},
	)
	if _, err := c.InstallArchive(ctx, bytes.NewReader(archive), "", false); err != nil {
		t.Fatal(err)
	}
	// The install applied the declaration read at start again: the
	// service is there, and a reload finds it unchanged.
	rep, err := c.Reload(ctx)
	if err != nil || len(rep.Unchanged) != 1 || len(rep.Services) != 1 || rep.Services[0].State != apitypes.Listening {
		t.Fatalf("reload = %+v, %v", rep, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "sysroot", "run", "svc.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the service's socket in the system root: %v, %v", fi, err)
	}
	os.Remove(filepath.Join(appsd, "10-web.json"))
	hup <- syscall.SIGHUP
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := c.Services(ctx)
		if err == nil && len(l.Services) == 0 && len(l.Problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload: %+v, %v", l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "sysroot", "run", "svc.sock")); !os.IsNotExist(err) {
		t.Errorf("socket of a removed service left: %v", err)
	}
}
