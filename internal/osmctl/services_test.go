package osmctl

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"osmanager/agent/api"
	"osmanager/agent/api/apitest"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
	"osmanager/agent/apps/apperr"
)

// serveApps runs the real API server with apps on a socket.
func serveApps(t *testing.T, apps api.Apps) string {
	t.Helper()
	sock := filepath.Join(tempDir(t), "osm.sock")
	s, err := api.New(api.Config{Socket: sock, Apps: apps, Status: statusDoc{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not up: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// TestServices: osmctl services and reload, tables against golden files,
// --json as sent, and the exit status of a reload with refused entries.
func TestServices(t *testing.T) {
	withProblems := serveApps(t, &apitest.WithServices{Fake: &apitest.Fake{}, Doc: apitest.ServiceList()})
	clean := apitest.ServiceList()
	clean.Services, clean.Problems = clean.Services[:2], []apitypes.ServiceProblem{}
	cleanSock := serveApps(t, &apitest.WithServices{Fake: &apitest.Fake{}, Doc: clean})
	broken := serveApps(t, &apitest.WithServices{Fake: &apitest.Fake{}, Err: apperr.New(apperr.Internal, "the app manager is not running")})
	none := serve(t, &apitest.Fake{})

	code, out, errs := osmctl(t, withProblems, "services")
	if code != ExitOK {
		t.Errorf("services: exit %d, stderr %q", code, errs)
	}
	golden(t, "services", out)

	code, out, errs = osmctl(t, withProblems, "reload")
	if code != ExitFail || errs != "osmctl: reload: 2 declared entries refused or failed\n" {
		t.Errorf("reload with problems: exit %d, stderr %q; want 1 and the count", code, errs)
	}
	golden(t, "reload", out)

	if code, _, errs := osmctl(t, cleanSock, "reload"); code != ExitOK {
		t.Errorf("clean reload: exit %d, stderr %q", code, errs)
	}
	code, out, _ = osmctl(t, cleanSock, "--json", "services")
	raw, err := newClient(cleanSock).Call(t.Context(), servicesRequest())
	if code != ExitOK || err != nil || out != string(raw) {
		t.Errorf("services --json = %q (exit %d), want the API's bytes %q (%v)", out, code, raw, err)
	}
	if code, _, errs := osmctl(t, broken, "services"); code != ExitFail || errs != "osmctl: the app manager is not running\n" {
		t.Errorf("services failing: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := osmctl(t, none, "reload"); code != ExitFail || errs != "osmctl: no such route: /v1/reload (not_found)\n" {
		t.Errorf("reload of an agent without declared services: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := osmctl(t, none, "services", "extra"); code != ExitUsage {
		t.Errorf("services extra: exit %d, want %d", code, ExitUsage)
	}
}

func newClient(sock string) *client.Client { return client.New(sock) }
func servicesRequest() client.Request      { return client.ServicesRequest }
