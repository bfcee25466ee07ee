package web

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGoldenPagesServed serves the golden inputs as an appliance's pages:
// what the browser gets is byte for byte what the old agent sent.
func TestGoldenPagesServed(t *testing.T) {
	e := newEnv(t, nil) // the golden values: app1.example.com, wordpress 3.5.1, 0.1.0, 07:08
	for _, name := range []string{"oldpage.html", "notes.txt", "app.js", "gbk.html"} {
		page, err := os.ReadFile(filepath.Join("testdata/subst", name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata/subst", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		e.write("custom/www/nocookie/"+name, string(page))
		t.Run(name, func(t *testing.T) {
			r := e.do("GET", "/"+name)
			if got := body(t, r); r.StatusCode != 200 || got != string(want) {
				t.Errorf("GET /%s: %d\n got %q\nwant %q", name, r.StatusCode, got, want)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache (substituted)", cc)
			}
		})
	}
}

func TestCookieSelection(t *testing.T) {
	e := newEnv(t, nil)
	e.write("custom/www/nocookie/index.html", "public $hostname")
	e.write("custom/www/withcookie/index.html", "owner $hostname")
	esc := url.QueryEscape(testCookie)
	for _, tc := range []struct {
		name, target, want string
	}{
		{"no query", "/", "public"},
		{"cookie", "/?cookie=" + esc, "owner"},
		{"cookie among others", "/?a=1&cookie=" + esc + "&b=2", "owner"},
		{"semicolon separator", "/?a=1;cookie=" + esc, "owner"},
		{"index.html", "/index.html?cookie=" + esc, "owner"},
		{"first non-empty value counts", "/?cookie=&cookie=" + esc + "&cookie=bad", "owner"},
		{"first value wrong", "/?cookie=bad&cookie=" + esc, "public"},
		{"wrong cookie", "/?cookie=nope", "public"},
		{"prefix", "/?cookie=" + url.QueryEscape(testCookie[:5]), "public"},
		{"longer", "/?cookie=" + esc + "x", "public"},
		{"empty", "/?cookie=", "public"},
		{"not decoded", "/?cookie=" + testCookie, "public"}, // raw '+', '&', '=' mean other things
		{"other name", "/?Cookie=" + esc, "public"},
		{"as a cookie header is not the query", "/", "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.target, "Cookie", "cookie="+testCookie)
			if got := body(t, r); !strings.HasPrefix(got, tc.want+" ") {
				t.Errorf("GET %s = %q, want the %s page", tc.target, got, tc.want)
			}
			if tc.want == "owner" && r.Header.Get("Cache-Control") != "private, no-cache" {
				t.Errorf("owner page Cache-Control = %q, want private, no-cache", r.Header.Get("Cache-Control"))
			}
		})
	}

	t.Run("no configured cookie matches nothing", func(t *testing.T) {
		e := newEnv(t, func(c *envConfig) { c.Cookie = "" })
		e.write("custom/www/nocookie/index.html", "public")
		e.write("custom/www/withcookie/index.html", "owner")
		for _, target := range []string{"/?cookie=", "/?cookie", "/?cookie=%00", "/?cookie=+"} {
			if got := body(t, e.do("GET", target)); got != "public" {
				t.Errorf("GET %s = %q, want public", target, got)
			}
		}
	})
}

func TestQueryCookie(t *testing.T) {
	for _, tc := range []struct {
		q, want string
		ok      bool
	}{
		{"cookie=abc", "abc", true},
		{"cookie=a+b%20c%2", "a b c%2", true},
		{"cookie=%zz%41", "%zzA", true},
		{"x=1&cookie=", "", false},
		{"cookie", "", false},
		{"c%6fokie=v", "v", true},
		{"a=1;b=2;cookie=v&cookie=w", "v", true},
		{"cookie=a=b", "a=b", true},
	} {
		got, ok := queryCookie(tc.q)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryCookie(%q) = %q, %v; want %q, %v", tc.q, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTraversalRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.write("custom/www/nocookie/index.html", "public")
	e.write("custom/www/nocookie/sub/page.html", "sub page")
	e.write("custom/www/withcookie/owner.html", "OWNER-ONLY")
	e.write("conf/luoyun.conf", "KEY=SECRET-KEY\n")
	// A symlink out of the tree, one to a directory out of it, and one to
	// the other tree.
	outside := filepath.Join(e.dir, "conf/luoyun.conf")
	for name, target := range map[string]string{
		"leak.txt": outside, "leakdir": filepath.Join(e.dir, "conf"), "abs": "/etc",
		"owner.html": filepath.Join(e.www, "withcookie/owner.html"), "rel.txt": "../../../conf/luoyun.conf",
	} {
		if err := os.Symlink(target, filepath.Join(e.www, "nocookie", name)); err != nil {
			t.Fatal(err)
		}
	}
	targets := []string{
		"/../conf/luoyun.conf", "/../../conf/luoyun.conf", "/sub/../../conf/luoyun.conf",
		"/%2e%2e/conf/luoyun.conf", "/%2E%2E/%2e%2e/conf/luoyun.conf", "/.%2e/conf/luoyun.conf",
		"/..%2fconf/luoyun.conf", "/sub/..%2f..%2fconf%2fluoyun.conf", "/%2e%2e%5cconf%5cluoyun.conf",
		"//etc/passwd", "/sub//../../etc/passwd", "/..\\conf\\luoyun.conf", "/\\..\\conf",
		"/%00", "/index.html%00.txt", "/leak.txt", "/leakdir/luoyun.conf", "/abs/passwd", "/rel.txt",
		"/owner.html", "/../withcookie/owner.html", "/./index.html", "/%2e/index.html", "/.env", "/sub/.git/config",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD"} {
				r := e.do(method, target)
				b := body(t, r)
				if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s: status %d, want 400 or 404", method, target, r.StatusCode)
				}
				if strings.Contains(b, "SECRET") || strings.Contains(b, "OWNER-ONLY") || strings.Contains(b, "root:") {
					t.Errorf("%s %s leaked %q", method, target, b)
				}
			}
		})
	}

	// The same through a real connection, where the request line is the
	// attacker's, byte for byte.
	addr, _ := e.run()
	for _, target := range []string{"/../conf/luoyun.conf", "/%2e%2e/conf/luoyun.conf", "//etc/passwd", "/leak.txt", "/..%5cconf/luoyun.conf"} {
		status, b := rawGet(t, addr, target)
		if status != 400 && status != 404 {
			t.Errorf("raw GET %s: status %d, want 400 or 404", target, status)
		}
		if strings.Contains(b, "SECRET") || strings.Contains(b, "root:") {
			t.Errorf("raw GET %s leaked %q", target, b)
		}
	}
	// A symlink inside the tree is fine.
	if err := os.Symlink("sub/page.html", filepath.Join(e.www, "nocookie/alias.html")); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/alias.html"); r.StatusCode != 200 || body(t, r) != "sub page" {
		t.Errorf("symlink inside the tree: %d, want 200 and its target", r.StatusCode)
	}
}

// rawGet sends one request line as given and returns the status and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("raw GET %s: %v", target, err)
	}
	return r.StatusCode, body(t, r)
}

func TestDirectoriesAndIndexes(t *testing.T) {
	e := newEnv(t, nil)
	e.write("custom/www/nocookie/docs/index.htm", "docs index $hostname")
	e.write("custom/www/nocookie/empty/file.bin", "x")
	e.write("custom/www/withcookie/docs/index.html", "owner docs")

	r := e.do("GET", "/docs?cookie="+url.QueryEscape(testCookie))
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/docs/?cookie="+url.QueryEscape(testCookie) {
		t.Errorf("GET /docs: %d Location %q, want 301 to /docs/ keeping the query", r.StatusCode, r.Header.Get("Location"))
	}
	if got := body(t, e.do("GET", "/docs/")); got != "docs index app1.example.com" {
		t.Errorf("GET /docs/ = %q, want index.htm substituted", got)
	}
	if got := body(t, e.do("GET", "/docs/?cookie="+url.QueryEscape(testCookie))); got != "owner docs" {
		t.Errorf("GET /docs/ with cookie = %q", got)
	}
	r = e.do("GET", "/empty/")
	if b := body(t, r); r.StatusCode != 404 || strings.Contains(b, "file.bin") {
		t.Errorf("GET /empty/: %d %q, want 404 and no listing", r.StatusCode, b)
	}
	if r := e.do("GET", "/missing.html"); r.StatusCode != 404 {
		t.Errorf("missing file: %d, want 404", r.StatusCode)
	}
	if r := e.do("GET", "/index.html/"); r.StatusCode != 404 {
		t.Errorf("file with a slash: %d, want 404", r.StatusCode)
	}
}

func TestBuiltinPageWhenNoPages(t *testing.T) {
	e := newEnv(t, nil)
	if err := os.RemoveAll(e.www); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/", "/index.html", "/?cookie=" + url.QueryEscape(testCookie)} {
		r := e.do("GET", target)
		b := body(t, r)
		if r.StatusCode != 200 || !strings.Contains(b, `<h1 id="hostname">app1.example.com</h1>`) {
			t.Errorf("GET %s: %d, want the built-in page with the host name", target, r.StatusCode)
		}
		if !strings.Contains(b, "wordpress") || !strings.Contains(b, "3.5.1") || !strings.Contains(b, "07:08") {
			t.Errorf("GET %s: values missing from the built-in page", target)
		}
		if strings.Contains(b, "$hostname") {
			t.Errorf("GET %s: variables left in the built-in page", target)
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "style-src 'sha256-", "connect-src 'self'", "frame-ancestors 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("built-in page CSP %q lacks %q", csp, want)
			}
		}
	}
	if r := e.do("GET", "/other.html"); r.StatusCode != 404 {
		t.Errorf("other file without pages: %d, want 404", r.StatusCode)
	}

	// An appliance page, once there, wins (after the cache's second).
	e.write("custom/www/nocookie/index.html", "appliance page")
	e.clock.Advance(pageTTL)
	if got := body(t, e.do("GET", "/")); got != "appliance page" {
		t.Errorf("after adding index.html: %q", got)
	}
}

// TestShippedTemplates keeps custom/www's copies the same as the built-in page.
func TestShippedTemplates(t *testing.T) {
	for _, tree := range []string{"nocookie", "withcookie"} {
		b, err := os.ReadFile(filepath.Join("../../custom/www", tree, "index.html"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(DefaultPage()) {
			t.Errorf("custom/www/%s/index.html differs from agent/web/page/index.html; copy it over", tree)
		}
	}
	// The inline script and style must come through substitution intact,
	// or their CSP hashes would not match.
	page := string(DefaultPage())
	for _, tag := range []string{"script", "style"} {
		i, j := strings.Index(page, "<"+tag+">"), strings.Index(page, "</"+tag+">")
		if i < 0 || j < i {
			t.Fatalf("no <%s> in the page", tag)
		}
		if strings.Contains(page[i:j], "$") {
			t.Errorf("the page's <%s> holds a '$', which substitution would touch", tag)
		}
	}
}

func TestHeadersAndTypes(t *testing.T) {
	e := newEnv(t, nil)
	e.write("custom/www/nocookie/index.html", "<p>$hostname</p>")
	e.write("custom/www/nocookie/logo.png", "\x89PNG$hostname$$")
	e.write("custom/www/nocookie/style.css", "body{} /* $version1 */")
	e.write("custom/www/nocookie/data.json", `{"h":"$hostname"}`)
	e.write("custom/www/nocookie/README", "$hostname")
	e.write("custom/www/nocookie/Page.HTM", "$hostname")
	e.write("custom/www/nocookie/icon.svg", "<svg/>")
	e.write("custom/www/nocookie/font.woff2", "wOF2")
	for _, tc := range []struct {
		target, ctype, body string
		page                bool // gets the headers that govern documents
	}{
		{"/", "text/html", "<p>app1.example.com</p>", true},
		{"/logo.png", "image/png", "\x89PNG$hostname$$", false},
		{"/style.css", "text/css", "body{} /* 0.1.0 */", true},
		{"/data.json", "application/json", `{"h":"$hostname"}`, true},
		{"/README", "application/octet-stream", "$hostname", false},
		{"/Page.HTM", "text/html", "app1.example.com", true},
		{"/icon.svg", "image/svg+xml", "<svg/>", true},
		{"/font.woff2", "font/woff2", "wOF2", false},
	} {
		r := e.do("GET", tc.target)
		if got := body(t, r); r.StatusCode != 200 || got != tc.body {
			t.Errorf("GET %s: %d %q, want %q", tc.target, r.StatusCode, got, tc.body)
		}
		if got := r.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.target, got, tc.ctype)
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "SAMEORIGIN",
			"Content-Security-Policy": "frame-ancestors 'self'",
		} {
			if !tc.page && h != "X-Content-Type-Options" {
				want = ""
			}
			if got := r.Header.Get(h); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.target, h, got, want)
			}
		}
		if r.Header.Get("Etag") == "" {
			t.Errorf("GET %s: no ETag", tc.target)
		}
	}

	// Static files: Last-Modified, and both validators give 304.
	r := e.do("GET", "/logo.png")
	etag, lm := r.Header.Get("Etag"), r.Header.Get("Last-Modified")
	if lm == "" || !strings.HasPrefix(r.Header.Get("Cache-Control"), "public, max-age=") {
		t.Errorf("static: Last-Modified %q, Cache-Control %q", lm, r.Header.Get("Cache-Control"))
	}
	if r := e.do("GET", "/logo.png", "If-None-Match", etag); r.StatusCode != 304 {
		t.Errorf("If-None-Match: %d, want 304", r.StatusCode)
	}
	if r := e.do("GET", "/logo.png", "If-Modified-Since", lm); r.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", r.StatusCode)
	}
	if r := e.do("GET", "/logo.png", "Range", "bytes=1-3"); r.StatusCode != 206 || body(t, r) != "PNG" {
		t.Errorf("Range: %d, want 206 PNG", r.StatusCode)
	}
	// Substituted pages: no Last-Modified, an ETag of the bytes sent.
	r = e.do("GET", "/")
	if r.Header.Get("Last-Modified") != "" {
		t.Errorf("substituted page has Last-Modified")
	}
	if r := e.do("GET", "/", "If-None-Match", r.Header.Get("Etag")); r.StatusCode != 304 {
		t.Errorf("substituted If-None-Match: %d, want 304", r.StatusCode)
	}
	// $curtime moves: a minute later the page and its ETag change.
	etag = r.Header.Get("Etag")
	e.write("custom/www/nocookie/index.html", "$curtime")
	e.clock.Advance(time.Minute)
	r = e.do("GET", "/")
	if got := body(t, r); got != "07:09" || r.Header.Get("Etag") == etag {
		t.Errorf("a minute later: %q etag %s (was %s)", got, r.Header.Get("Etag"), etag)
	}
	// HEAD: headers, no body.
	r = e.do("HEAD", "/style.css")
	if b := body(t, r); r.StatusCode != 200 || b != "" || r.Header.Get("Content-Length") != "18" {
		t.Errorf("HEAD: %d %q length %q", r.StatusCode, b, r.Header.Get("Content-Length"))
	}
	// Other methods.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		for _, target := range []string{"/", "/api/v1/status", "/metrics"} {
			if r := e.do(m, target); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, want 405", m, target, r.StatusCode)
			}
		}
	}
}

func TestSpecialFilesRefused(t *testing.T) {
	e := newEnv(t, nil)
	if err := syscall.Mkfifo(filepath.Join(e.www, "nocookie/fifo.html"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	done := make(chan int, 1)
	go func() { done <- e.do("GET", "/fifo.html").StatusCode }()
	select {
	case code := <-done:
		if code != 404 {
			t.Errorf("FIFO: %d, want 404", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO in the tree blocked the request")
	}
}

func TestFrameAncestors(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.FrameAncestors = []string{"https://console.example.com"} })
	r := e.do("GET", "/")
	if got := r.Header.Get("X-Frame-Options"); got != "" {
		t.Errorf("X-Frame-Options = %q, want none when other origins may frame", got)
	}
	if got := r.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'self' https://console.example.com") {
		t.Errorf("CSP = %q", got)
	}
	if _, err := New(Config{WWW: "x", Status: e.src, State: e.state, FrameAncestors: []string{"a; script-src *"}}); err == nil {
		t.Error("New took a frame ancestor with a ';'")
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b.html", "/../x", "//x", "/a/./b", "/a\\b", "/.well-known/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != 0 {
			return
		}
		// What passes is absolute, clean, and cannot climb.
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
			t.Fatalf("checkPath passed %q", p)
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("checkPath passed %q", p)
			}
		}
		if c := filepath.Clean(p); c != p && c+"/" != p {
			t.Fatalf("checkPath passed %q, which cleans to %q", p, c)
		}
	})
}
