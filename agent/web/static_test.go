package web

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStaticFileCache: a static file is read once and served from memory;
// a change is seen within pageTTL (a new size, or a new mtime at the same
// size), a deleted file is a 404 within pageTTL, and a file back again is
// served. The cached response has the headers the disk one had.
func TestStaticFileCache(t *testing.T) {
	e := newEnv(t, nil)
	var loads atomic.Int64
	e.srv.hooks.load = func() { loads.Add(1) }
	name := filepath.Join(e.www, "nocookie/logo.png")
	e.write("custom/www/nocookie/logo.png", "first")
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	setMtime := func(m time.Time) {
		t.Helper()
		if err := os.Chtimes(name, m, m); err != nil {
			t.Fatal(err)
		}
	}
	setMtime(mtime)

	type want struct {
		code  int
		body  string
		loads int64
	}
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    want
	}{
		{"first request reads the file", func() {}, 0, want{200, "first", 1}},
		{"second is from memory", func() {}, 0, want{200, "first", 1}},
		{"changed, within the interval: the cached file", func() {
			e.write("custom/www/nocookie/logo.png", "second!")
		}, pageTTL - time.Millisecond, want{200, "first", 1}},
		{"changed, the interval over: the new file", func() {}, time.Millisecond, want{200, "second!", 2}},
		{"unchanged after the interval: still from memory", func() {}, pageTTL, want{200, "second!", 2}},
		{"same size, new mtime", func() {
			e.write("custom/www/nocookie/logo.png", "third!!")
			setMtime(mtime.Add(time.Hour))
		}, pageTTL, want{200, "third!!", 3}},
		{"deleted, within the interval", func() {
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
		}, 0, want{200, "third!!", 3}},
		{"deleted, the interval over: 404", func() {}, pageTTL, want{404, "", 3}},
		{"still 404 from memory", func() {}, 0, want{404, "", 3}},
		{"back again", func() { e.write("custom/www/nocookie/logo.png", "fourth") }, 0, want{200, "fourth", 4}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			e.clock.Advance(st.advance)
			r := e.do("GET", "/logo.png")
			b := body(t, r)
			if r.StatusCode != st.want.code || (st.want.code == 200 && b != st.want.body) {
				t.Errorf("GET: %d %q, want %d %q", r.StatusCode, b, st.want.code, st.want.body)
			}
			if got := loads.Load(); got != st.want.loads {
				t.Errorf("reads = %d, want %d", got, st.want.loads)
			}
		})
	}
}

// TestStaticFileHeaders: the file from memory has the headers that
// http.ServeContent gives the file from disk (a file over maxFileCache),
// and HEAD, ranges and both validators work on it.
func TestStaticFileHeaders(t *testing.T) {
	e := newEnv(t, nil)
	small := "\x89PNG" + strings.Repeat("x", 16<<10)
	big := "\x89PNG" + strings.Repeat("y", maxFileCache)
	e.write("custom/www/nocookie/small.png", small)
	e.write("custom/www/nocookie/big.png", big)
	e.write("custom/www/withcookie/small.png", small)
	var loads atomic.Int64
	e.srv.hooks.load = func() { loads.Add(1) }
	headers := []string{"Content-Type", "Content-Length", "Accept-Ranges", "Cache-Control", "X-Content-Type-Options",
		"Content-Security-Policy", "Referrer-Policy", "X-Frame-Options"}
	for _, c := range []struct {
		name, target, body, cacheControl string
		loads                            int64
	}{
		{"from memory", "/small.png", small, "public, max-age=300", 1},
		{"from memory, withcookie", "/small.png?cookie=" + url.QueryEscape(testCookie), small, "private, max-age=300", 2},
		{"from disk", "/big.png", big, "public, max-age=300", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", c.target)
			if got := body(t, r); r.StatusCode != 200 || got != c.body {
				t.Fatalf("GET: %d, %d bytes, want 200, %d bytes", r.StatusCode, len(got), len(c.body))
			}
			if got := loads.Load(); got != c.loads {
				t.Errorf("reads = %d, want %d", got, c.loads)
			}
			want := map[string]string{"Content-Type": "image/png", "Content-Length": strconv.Itoa(len(c.body)),
				"Accept-Ranges": "bytes", "Cache-Control": c.cacheControl, "X-Content-Type-Options": "nosniff"}
			// No document-only headers on a picture, from memory or from disk.
			for _, h := range headers {
				if got := r.Header.Get(h); got != want[h] {
					t.Errorf("%s = %q, want %q", h, got, want[h])
				}
			}
			etag, lm := r.Header.Get("Etag"), r.Header.Get("Last-Modified")
			if etag == "" || lm == "" {
				t.Errorf("ETag %q, Last-Modified %q: want both", etag, lm)
			}
			if r := e.do("HEAD", c.target); r.StatusCode != 200 || body(t, r) != "" || r.Header.Get("Content-Length") != want["Content-Length"] {
				t.Errorf("HEAD: %d, Content-Length %q", r.StatusCode, r.Header.Get("Content-Length"))
			}
			for _, v := range [][2]string{{"If-None-Match", etag}, {"If-Modified-Since", lm}} {
				if r := e.do("GET", c.target, v[0], v[1]); r.StatusCode != 304 || body(t, r) != "" {
					t.Errorf("%s: %d, want 304 without a body", v[0], r.StatusCode)
				}
			}
			if r := e.do("GET", c.target, "Range", "bytes=1-3"); r.StatusCode != 206 || body(t, r) != "PNG" {
				t.Errorf("Range: %d, want 206 PNG", r.StatusCode)
			}
		})
	}
	if n, _ := e.srv.pages.size(); n != 2 {
		t.Errorf("cache holds %d entries, want 2 (the file over %d bytes is not kept)", n, maxFileCache)
	}
}

// TestStaticFileConcurrent: requests at once for a cold file read it once;
// requests racing with replacements of the file (renamed into place, as a
// deploy does) and the clock moving each get one version whole, with that
// version's length (run with -race).
func TestStaticFileConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	var loads atomic.Int64
	e.srv.hooks.load = func() { loads.Add(1) }
	versions := []string{strings.Repeat("a", 20000), strings.Repeat("b", 3000), strings.Repeat("c", 70000)}
	e.write("custom/www/nocookie/app.wasm", versions[0])
	bodies := burst(t, e, 32, "/app.wasm")
	for i, b := range bodies {
		if b != versions[0] {
			t.Fatalf("body %d: %d bytes, want version 0", i, len(b))
		}
	}
	if got := loads.Load(); got != 1 {
		t.Errorf("32 requests at once: %d reads, want 1", got)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				w := httptest.NewRecorder()
				e.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/app.wasm", nil))
				b := w.Body.Bytes()
				if w.Code != 200 || len(b) == 0 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) ||
					w.Header().Get("Content-Length") != strconv.Itoa(len(b)) {
					t.Errorf("during replacements: %d, %d bytes, Content-Length %s", w.Code, len(b), w.Header().Get("Content-Length"))
					return
				}
			}
		})
	}
	dst := filepath.Join(e.www, "nocookie/app.wasm")
	for i := range 60 {
		tmp := dst + ".new"
		if err := os.WriteFile(tmp, []byte(versions[i%len(versions)]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(pageTTL / 2)
	}
	close(done)
	wg.Wait()
	e.clock.Advance(pageTTL)
	if got := body(t, e.do("GET", "/app.wasm")); got != versions[59%len(versions)] {
		t.Errorf("after the replacements: %d bytes, want the last version", len(got))
	}
}

func TestContentType(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"index.html", "text/html"},
		{"PAGE.HTM", "text/html"},
		{"notes.md", "text/markdown"},
		{"a.js", "text/javascript"},
		{"a.min.css", "text/css"},
		{"logo.PNG", "image/png"},
		{"font.woff2", "font/woff2"},
		{"clip.mp4", "video/mp4"},
		{"app.wasm", "application/wasm"},
		{"README", "application/octet-stream"},
		{"archive.unknownext", "application/octet-stream"},
		{"dir.d/file", "application/octet-stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := contentType(c.name); got != c.want {
				t.Errorf("contentType(%q) = %q, want %q", c.name, got, c.want)
			}
		})
	}
}

// TestShownAsPage: every type the extension table gives, and which of them
// a browser may show as a document (those keep Referrer-Policy, CSP
// frame-ancestors and X-Frame-Options).
func TestShownAsPage(t *testing.T) {
	pages := []string{"index.html", "a.txt", "a.css", "a.js", "a.csv", "a.tsv", "a.xml", "a.md", "a.ics", "a.vtt",
		"a.json", "a.map", "a.xhtml", "a.svg", "a.pdf"}
	others := []string{"a.png", "a.apng", "a.jpg", "a.gif", "a.ico", "a.webp", "a.avif", "a.bmp", "a.tiff",
		"a.woff", "a.woff2", "a.ttf", "a.otf", "a.eot", "a.mp4", "a.webm", "a.ogv", "a.mp3", "a.ogg", "a.wav",
		"a.wasm", "a.zip", "a.tgz", "a.tar", "README", "a.unknownext"}
	for _, c := range [...]struct {
		names []string
		want  bool
	}{{pages, true}, {others, false}} {
		for _, name := range c.names {
			if ct := contentType(name); shownAsPage(ct) != c.want {
				t.Errorf("shownAsPage(%q) (for %s) = %v, want %v", ct, name, !c.want, c.want)
			}
		}
	}
	// Types outside the table (none reach it today) count as documents.
	for _, ct := range []string{"", "text/plain; charset=utf-8", "application/x-unknown", "model/gltf+json"} {
		if !shownAsPage(ct) {
			t.Errorf("shownAsPage(%q) = false, want true (unknown types keep every header)", ct)
		}
	}
}
