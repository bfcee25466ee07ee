package web

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"osmanager/agent/internal/testlog"
)

// burst sends n requests for target at once and returns their bodies.
func burst(t *testing.T, e *testEnv, n int, target string) []string {
	t.Helper()
	bodies := make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", target, nil))
			bodies[i], codes[i] = w.Body.String(), w.Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: status %d", i, c)
		}
	}
	return bodies
}

// counters count the page cache's test hooks; the first load waits until
// n requests have missed the cache, so all of them are cold at once.
type counters struct {
	misses, loads, renders atomic.Int64
}

func (c *counters) install(s *Server, n int64) {
	all := make(chan struct{})
	var once sync.Once
	s.hooks.miss = func() {
		if c.misses.Add(1) == n {
			once.Do(func() { close(all) })
		}
	}
	s.hooks.load = func() {
		c.loads.Add(1)
		select {
		case <-all:
		case <-time.After(10 * time.Second): // a bug, not a wait: fail below rather than hang
		}
	}
	s.hooks.render = func() { c.renders.Add(1) }
}

// TestColdBurstOneRender: n requests missing the cache together read,
// compile and render the page once, and share the bytes; after a change
// of the variables ($curtime's minute), the next burst renders once more.
func TestColdBurstOneRender(t *testing.T) {
	const n = 30
	for _, c := range []struct{ name, file string }{
		{"text page", "big.txt"},
		{"html page", "big.html"},
		{"built-in page", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			target := "/"
			if c.file != "" {
				e.write("custom/www/nocookie/"+c.file, strings.Repeat("host $hostname at $curtime; "+strings.Repeat(".", 1000), 448)) // 448 KiB
				target += c.file
			} else {
				e.write("custom/www/nocookie/other.txt", "no index page here")
			}
			var cnt counters
			cnt.install(e.srv, n)
			bodies := burst(t, e, n, target)
			wantLoads := int64(1)
			if c.file == "" {
				wantLoads = 0 // the built-in page is compiled once, in New
			}
			if got := cnt.loads.Load(); got != wantLoads {
				t.Errorf("loads = %d, want %d", got, wantLoads)
			}
			if got := cnt.renders.Load(); got != 1 {
				t.Errorf("renders = %d, want 1", got)
			}
			for i, b := range bodies {
				if b != bodies[0] {
					t.Fatalf("body %d differs", i)
				}
			}
			if c.file != "" && !strings.HasPrefix(bodies[0], "host app1.example.com at 07:08; ") {
				t.Errorf("body starts %.40q", bodies[0])
			}

			e.clock.Advance(time.Minute) // $curtime changes: one new render
			burst(t, e, n, target)
			if got := cnt.renders.Load(); got != 2 {
				t.Errorf("renders after the change = %d, want 2", got)
			}
			if got := cnt.loads.Load(); got != wantLoads {
				t.Errorf("loads after the change = %d, want %d (the file did not change)", got, wantLoads)
			}
		})
	}
}

// TestOverCapServedStatic: a text page too big to substitute, or one that
// could render too big, is sent untouched as a static file, and that is
// logged once, not per request.
func TestOverCapServedStatic(t *testing.T) {
	cases := []struct{ name, page string }{
		{"source over the cap", strings.Repeat("$hostname ", maxSubstSize/10+1)},
		{"render over the cap", strings.Repeat("$hostname", int(maxRenderSize/varMax[varHostname])+1)},
		{"7 MiB text page", strings.Repeat("x $hostname $version1 y\n", 7<<20/24)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, logs := testlog.New(t)
			e := newEnv(t, func(cfg *envConfig) { cfg.Log = log })
			e.write("custom/www/nocookie/big.txt", c.page)
			var cnt counters
			cnt.install(e.srv, 1)
			for i := range 3 {
				r := e.do("GET", "/big.txt")
				got := body(t, r)
				if r.StatusCode != 200 || got != c.page {
					t.Fatalf("request %d: %d, %d bytes, want the file untouched (%d bytes)", i, r.StatusCode, len(got), len(c.page))
				}
				if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=300" {
					t.Errorf("Cache-Control = %q, want a static file's", cc)
				}
			}
			if n := strings.Count(logs.String(), "page too big"); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, logs)
			}
			if got := cnt.renders.Load(); got != 0 {
				t.Errorf("renders = %d, want 0", got)
			}
			// A range request works as for any static file.
			r := e.do("GET", "/big.txt", "Range", "bytes=0-8")
			if got := body(t, r); r.StatusCode != 206 || got != c.page[:9] {
				t.Errorf("range: %d %q", r.StatusCode, got)
			}
		})
	}
}

// TestCacheBytesBound: however many big pages are asked for, the cache
// never holds more than maxCacheBytes.
func TestCacheBytesBound(t *testing.T) {
	e := newEnv(t, nil)
	page := strings.Repeat("$hostname"+strings.Repeat(".", 1015), (maxSubstSize-1024)/1024)
	for i := range 40 {
		name := fmt.Sprintf("p%d.html", i)
		e.write("custom/www/nocookie/"+name, page)
		r := e.do("GET", "/"+name)
		if b := body(t, r); r.StatusCode != 200 || !bytes.HasPrefix([]byte(b), []byte("app1.example.com.")) {
			t.Fatalf("GET /%s: %d %.30q", name, r.StatusCode, b)
		}
		if n, size := e.srv.pages.size(); size > maxCacheBytes {
			t.Fatalf("after %d pages the cache holds %d entries, %d bytes; limit %d", i+1, n, size, maxCacheBytes)
		}
	}
}
