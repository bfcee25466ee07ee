package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"osmanager/agent/api/apitest"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
)

var _ Services = (*apitest.WithServices)(nil)

// TestServiceRoutes: GET /v1/services and POST /v1/reload through the
// socket, their errors in the API's format, and not_found from an Apps
// without declared services.
func TestServiceRoutes(t *testing.T) {
	fake := &apitest.WithServices{Fake: &apitest.Fake{}, Doc: apitest.ServiceList()}
	hc := httpClient(func() string { s, _ := serve(t, Config{Apps: fake}); return s }())
	broken := &apitest.WithServices{Fake: &apitest.Fake{}, Err: apperr.New(apperr.Internal, "the app manager is not running")}
	hcBroken := httpClient(func() string { s, _ := serve(t, Config{Apps: broken}); return s }())
	hcNone := httpClient(func() string { s, _ := serve(t, Config{}); return s }())
	for _, c := range []struct {
		name   string
		hc     *http.Client
		method string
		path   string
		status int
		code   string
		want   string
	}{
		{"list", hc, "GET", "/v1/services", 200, "", `"state": "listening"`},
		{"list problems", hc, "GET", "/v1/services", 200, "", `"file": "30-bad.json"`},
		{"reload", hc, "POST", "/v1/reload", 200, "", `"added": [`},
		{"reload with a query", hc, "POST", "/v1/reload?force=1", 400, "bad_request", "unknown query parameter"},
		{"list with a query", hc, "GET", "/v1/services?x=1", 400, "bad_request", "unknown query parameter"},
		{"reload by GET", hc, "GET", "/v1/reload", 405, "bad_request", "method GET not allowed"},
		{"list failing", hcBroken, "GET", "/v1/services", 500, "internal", "not running"},
		{"reload failing", hcBroken, "POST", "/v1/reload", 500, "internal", "not running"},
		{"no services: list", hcNone, "GET", "/v1/services", 404, "not_found", "no such route"},
		{"no services: reload", hcNone, "POST", "/v1/reload", 404, "not_found", "no such route"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, c.hc, c.method, c.path, "", nil)
			if status != c.status {
				t.Errorf("status = %d, want %d; body %s", status, c.status, body)
			}
			if !bytes.Contains(body, []byte(c.want)) {
				t.Errorf("body = %s, want it to contain %q", body, c.want)
			}
			var eb apitypes.ErrorBody
			_ = json.Unmarshal(body, &eb)
			if eb.Error.Code != c.code {
				t.Errorf("error code = %q, want %q", eb.Error.Code, c.code)
			}
		})
	}
	if fake.Reloads != 1 {
		t.Errorf("reloads = %d, want 1", fake.Reloads)
	}
}
