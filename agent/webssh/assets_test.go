package webssh

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"osmanager/agent/sysroot"
)

// TestAssetGzip: an asset is the embedded bytes, gzip-encoded (with its
// own ETag, and Vary) when the client accepts it, identity otherwise; a
// matching If-None-Match answers 304 for either form.
func TestAssetGzip(t *testing.T) {
	e := newEnv(t)
	want, err := os.ReadFile("assets/vendor/xterm.js") // the source; the binary has only its gzip copy
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
	zbody, err := os.ReadFile("assets/vendor/xterm.js.gz")
	if err != nil {
		t.Fatal(err)
	}
	n := len(want)
	for _, tc := range []struct {
		name, method, ae, rng string
		status                int
		enc, etag             string // Content-Encoding; ETag as plain's or zipped's
		body                  []byte
		length                int
	}{
		{"range", "GET", "", "bytes=0-99", 206, "", "plain", want[:100], 100},
		{"range in the middle", "GET", "", "bytes=200000-200999", 206, "", "plain", want[200000:201000], 1000},
		{"suffix range", "GET", "", "bytes=-100", 206, "", "plain", want[n-100:], 100},
		{"range past the end", "GET", "", fmt.Sprintf("bytes=%d-", n+10), 416, "", "", nil, -1},
		{"gzip range: of the gzip bytes", "GET", "gzip", "bytes=0-99", 206, "gzip", "zipped", zbody[:100], 100},
		{"HEAD", "HEAD", "", "", 200, "", "plain", nil, n},
		{"HEAD gzip", "HEAD", "gzip", "", 200, "gzip", "zipped", nil, len(zbody)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.url+"/assets/xterm.js", nil)
			if tc.ae != "" {
				req.Header.Set("Accept-Encoding", tc.ae)
			}
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d", resp.Status, tc.status)
			}
			if got := resp.Header.Get("Content-Encoding"); got != tc.enc {
				t.Errorf("Content-Encoding %q, want %q", got, tc.enc)
			}
			wantTag := "" // an error has none (net/http drops it)
			switch tc.etag {
			case "plain":
				wantTag = plain.Header.Get("ETag")
			case "zipped":
				wantTag = zipped.Header.Get("ETag")
			}
			if got := resp.Header.Get("ETag"); got != wantTag {
				t.Errorf("ETag %q, want %q", got, wantTag)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body: %d bytes, not the %d wanted", len(body), len(tc.body))
			}
			if tc.length >= 0 && resp.ContentLength != int64(tc.length) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
			}
		})
	}
	t.Run("multiple ranges", func(t *testing.T) {
		resp, body := get(t, map[string]string{"Range": "bytes=300000-300009,10-19"})
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != 206 || err != nil {
			t.Fatalf("status %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for _, w := range [][]byte{want[300000:300010], want[10:20]} {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(p); !bytes.Equal(got, w) {
				t.Errorf("part %q, want %q", got, w)
			}
		}
	})
	t.Run("own file: identity only", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.url+"/assets/term.js", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		src, err := os.ReadFile("assets/term.js")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" || !bytes.Equal(body, src) {
			t.Errorf("status %s, Content-Encoding %q, Vary %q, %d bytes; want 200, the %d bytes of assets/term.js as they are",
				resp.Status, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"), len(body), len(src))
		}
	})
}

// TestVendorGzip: every vendored .js and .css has its gzip copy, which
// decompresses to the file byte for byte and carries no name or time (so
// gengz.go writes the same bytes again); the files are what SHA256SUMS
// says; nothing else is embedded from the vendor dir but the licences.
// A failure here: run `go generate ./agent/webssh`.
func TestVendorGzip(t *testing.T) {
	sums, err := os.ReadFile("assets/vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // name → sha256
	for line := range strings.Lines(string(sums)) {
		if sum, name, ok := strings.Cut(strings.TrimSpace(line), "  "); ok {
			want[name] = sum
		}
	}
	var sources []string
	for name, sum := range want {
		b, err := os.ReadFile(filepath.Join("assets/vendor", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != sum {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, sum)
		}
		if strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css") {
			sources = append(sources, name)
		}
	}
	if len(sources) < 4 {
		t.Fatalf("sources %v: want xterm.js, xterm.css and the addons", sources)
	}
	for _, name := range sources {
		t.Run(name, func(t *testing.T) {
			src, _ := os.ReadFile(filepath.Join("assets/vendor", name))
			if _, err := assetFS.Open("assets/vendor/" + name); err == nil {
				t.Errorf("%s embedded as it is: only its gzip copy should be", name)
			}
			z, err := assetFS.ReadFile("assets/vendor/" + name + ".gz")
			if err != nil {
				t.Fatalf("no gzip copy embedded: run go generate ./agent/webssh (%v)", err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) {
				t.Errorf("%s.gz is stale (%d bytes decompressed, the file has %d): run go generate ./agent/webssh", name, len(got), len(src))
			}
			if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" {
				t.Errorf("gzip header name %q, time %v, comment %q: want none", zr.Name, zr.ModTime, zr.Comment)
			}
		})
	}
	ents, err := fs.ReadDir(assetFS, "assets/vendor")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		base, gz := strings.CutSuffix(e.Name(), ".gz")
		if !(gz && slices.Contains(sources, base)) && !strings.HasPrefix(e.Name(), "LICENSE.") {
			t.Errorf("embedded %s: neither a licence nor the gzip copy of a vendored file", e.Name())
		}
	}
}

// TestGunzipSeeker: reads after any seek give the decompressed bytes from
// there, forward or back, without the file being decompressed whole.
func TestGunzipSeeker(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789abcdefghij"), 5000) // 100 kB
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(src)
	zw.Close()
	g := &gunzipSeeker{gz: bytes.NewReader(z.Bytes()), gzSize: int64(z.Len()), size: int64(len(src))}
	for _, tc := range []struct {
		name   string
		off    int64
		whence int
		n      int
		want   []byte
	}{
		{"end: the size, nothing read", 0, io.SeekEnd, 0, nil},
		{"start", 0, io.SeekStart, 10, src[:10]},
		{"current, forward", 5, io.SeekCurrent, 10, src[15:25]},
		{"far forward", 90000, io.SeekStart, 20, src[90000:90020]},
		{"back", 100, io.SeekStart, 20, src[100:120]},
		{"from the end", -5, io.SeekEnd, 10, src[len(src)-5:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pos, err := g.Seek(tc.off, tc.whence)
			if err != nil {
				t.Fatal(err)
			}
			if tc.whence == io.SeekEnd && tc.off == 0 && pos != int64(len(src)) {
				t.Errorf("Seek(0, end) = %d, want %d", pos, len(src))
			}
			if tc.n == 0 {
				return
			}
			got, err := io.ReadAll(io.LimitReader(g, int64(tc.n)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("read %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := g.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1): no error")
	}
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
