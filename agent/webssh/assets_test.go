package webssh

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"

	"osmanager/agent/sysroot"
)

// TestAssetGzip: an asset is the embedded bytes, gzip-encoded (with its
// own ETag, and Vary) when the client accepts it, identity otherwise; a
// matching If-None-Match answers 304 for either form.
func TestAssetGzip(t *testing.T) {
	e := newEnv(t)
	want, err := assetFS.ReadFile("assets/vendor/xterm.js")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true} // headers as sent, body as received
	defer tr.CloseIdleConnections()
	get := func(t *testing.T, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+"/assets/xterm.js", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	plain, _ := get(t, nil)
	zipped, _ := get(t, map[string]string{"Accept-Encoding": "gzip"})
	for _, tc := range []struct {
		name     string
		ae       string
		wantGzip bool
	}{
		{"none", "", false},
		{"gzip", "gzip", true},
		{"list with q", "br;q=1.0, gzip;q=0.8", true},
		{"star", "*", true},
		{"gzip refused", "gzip;q=0, deflate", false},
		{"identity only", "identity", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.ae != "" {
				hdr["Accept-Encoding"] = tc.ae
			}
			resp, body := get(t, hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %s", resp.Status)
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.wantGzip {
				t.Fatalf("gzip = %v, want %v (Content-Encoding %q)", got, tc.wantGzip, resp.Header.Get("Content-Encoding"))
			}
			if got := resp.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary = %q, want Accept-Encoding", got)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if tc.wantGzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if resp.Header.Get("ETag") != zipped.Header.Get("ETag") {
					t.Errorf("ETag %q, want the gzip one %q", resp.Header.Get("ETag"), zipped.Header.Get("ETag"))
				}
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body: %d bytes, want the embedded %d", len(body), len(want))
			}
		})
	}
	if p, z := plain.Header.Get("ETag"), zipped.Header.Get("ETag"); p == "" || p == z {
		t.Errorf("ETags identity %q, gzip %q: want two different ones", p, z)
	}
	if n := zipped.ContentLength; n <= 0 || n > int64(len(want))/2 {
		t.Errorf("gzip Content-Length %d for %d bytes", n, len(want))
	}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"identity", map[string]string{"If-None-Match": plain.Header.Get("ETag")}},
		{"gzip", map[string]string{"If-None-Match": zipped.Header.Get("ETag"), "Accept-Encoding": "gzip"}},
	} {
		t.Run("304 "+tc.name, func(t *testing.T) {
			if resp, body := get(t, tc.hdr); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("status %s with %d bytes, want 304 and none", resp.Status, len(body))
			}
		})
	}
	t.Run("range", func(t *testing.T) {
		resp, body := get(t, map[string]string{"Range": "bytes=0-99"})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[:100]) {
			t.Errorf("status %s, %d bytes; want 206 and the first 100", resp.Status, len(body))
		}
	})
}

// TestNewCopiesNoAssets: building a server copies no asset into the heap
// (xterm.js and its addons are 750 kB; they are served from the binary).
func TestNewCopiesNoAssets(t *testing.T) {
	sys, err := sysroot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mode: ModeLogin, Sys: sys, Conf: sys, Log: slog.New(slog.DiscardHandler)}
	New(cfg) // warm: package-level state, templates' first use
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	if got := m1.TotalAlloc - m0.TotalAlloc; got > 200<<10 {
		t.Errorf("New allocated %d kB, want < 200 kB (no asset copies)", got>>10)
	}
}
