package web

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"osmanager/agent/status"
)

// A request is served from one of two page trees under Config.WWW.
type selection uint8

const (
	noCookie selection = iota
	withCookie
)

func (s selection) dir() string {
	if s == withCookie {
		return "withcookie"
	}
	return "nocookie"
}

// Limits of the page cache. A substituted page costs its source and (at
// most) its rendered bytes while cached; every response shares those bytes,
// so memory does not grow with the number of clients, slow ones included.
const (
	pageTTL       = time.Second // a cached page's file is looked at again after this
	maxPageCache  = 512         // entries; the cache is emptied when full
	maxSubstSize  = 1 << 20     // bigger text files are sent as they are (logged once)
	maxRenderSize = 4 << 20     // so is a page that could render bigger than this
	maxCacheBytes = 24 << 20    // sources, rendered pages and static files; the cache is emptied past it
	maxFileCache  = 1 << 20     // static files up to this are kept in memory; bigger ones are sent from disk
)

// varMax is the longest value each variable can have: a host name, a
// VERSION field, "HH:MM".
var varMax = [numVars]int64{varHostname: 253, varApplication: status.MaxVersionField, varVersion1: status.MaxVersionField,
	varVersion2: status.MaxVersionField, varCurtime: 5}

// selectTree picks the page tree: withcookie/ when the query carries the
// instance cookie, read as the old agent read it (Python 2's parse_qs: pairs
// split on '&' and ';', '+' and %XX decoded, the first non-empty "cookie"
// value counts). An empty configured cookie never matches.
func (s *Server) selectTree(rawQuery string) selection {
	if !s.hasCookie || rawQuery == "" {
		return noCookie
	}
	got, ok := queryCookie(rawQuery)
	if !ok {
		return noCookie
	}
	sum := sha256.Sum256([]byte(got)) // equal lengths: the compare leaks nothing
	if subtle.ConstantTimeCompare(sum[:], s.cookieSum[:]) == 1 {
		return withCookie
	}
	return noCookie
}

func queryCookie(q string) (string, bool) {
	for q != "" {
		var pair string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || v == "" {
			continue
		}
		if unquotePlus(k) == "cookie" {
			return unquotePlus(v), true
		}
	}
	return "", false
}

// unquotePlus is Python 2's urllib.unquote(s.replace('+', ' ')): lenient,
// a '%' not followed by two hex digits stays as it is.
func unquotePlus(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// checkPath refuses request paths that try to leave the page tree or that
// no page has: it returns the HTTP status to refuse with, or 0. Paths are
// checked after percent-decoding, so %2e%2e is "..".
func checkPath(p string) int {
	if p == "" || p[0] != '/' {
		return http.StatusBadRequest
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return http.StatusBadRequest
		}
	}
	if strings.Contains(p, "//") {
		return http.StatusBadRequest
	}
	for rest := p[1:]; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return http.StatusBadRequest
		}
	}
	return 0
}

// hidden reports whether p names a dot file or dot directory (.git,
// .htpasswd), which are never served; /.well-known/ is.
func hidden(p string) bool {
	for rest := p[1:]; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if strings.HasPrefix(seg, ".") && seg != ".well-known" {
			return true
		}
	}
	return false
}

// contentType gives a file's type by its extension, as the old server did
// (no charset: a page declares its own, GBK pages included), from a fixed
// table (the host's, /etc/mime.types or globs2, would cost its parse and
// ~400 KB of memory, and could differ between images); anything else is
// application/octet-stream, sent untouched.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html", ".htm", ".shtml":
		return "text/html"
	case ".txt", ".text", ".log", ".conf", ".ini":
		return "text/plain"
	case ".css":
		return "text/css"
	case ".js", ".mjs":
		return "text/javascript"
	case ".csv":
		return "text/csv"
	case ".tsv":
		return "text/tab-separated-values"
	case ".xml", ".xsl":
		return "text/xml"
	case ".md", ".markdown":
		return "text/markdown"
	case ".ics":
		return "text/calendar"
	case ".vtt":
		return "text/vtt"
	case ".json", ".map":
		return "application/json"
	case ".xhtml":
		return "application/xhtml+xml"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".apng":
		return "image/apng"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".ico":
		return "image/x-icon"
	case ".webp":
		return "image/webp"
	case ".avif":
		return "image/avif"
	case ".bmp":
		return "image/bmp"
	case ".tif", ".tiff":
		return "image/tiff"
	case ".woff":
		return "font/woff"
	case ".woff2":
		return "font/woff2"
	case ".ttf":
		return "font/ttf"
	case ".otf":
		return "font/otf"
	case ".eot":
		return "application/vnd.ms-fontobject"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".ogv":
		return "video/ogg"
	case ".mp3":
		return "audio/mpeg"
	case ".ogg", ".oga":
		return "audio/ogg"
	case ".wav":
		return "audio/wav"
	case ".pdf":
		return "application/pdf"
	case ".wasm":
		return "application/wasm"
	case ".zip":
		return "application/zip"
	case ".gz", ".tgz":
		return "application/gzip"
	case ".tar":
		return "application/x-tar"
	}
	return "application/octet-stream"
}

// substituted reports whether pages of this type get their $variables
// filled in: text of every kind, as the old agent (which substituted every
// file) did for all the files it could sensibly handle.
func substituted(ctype string) bool { return strings.HasPrefix(ctype, "text/") }

// shownAsPage reports whether a browser may show a response of this type
// as a document of its own, one that can be framed, run script or follow
// links: text and HTML, XML and SVG, JSON (a browser's viewer) and PDF.
// Pictures (but SVG), fonts, audio, video, wasm and archives it shows only
// inside a page or hands to a player or a download (with nosniff, so is
// application/octet-stream), so the headers that only govern documents
// (Referrer-Policy, CSP frame-ancestors, X-Frame-Options) do nothing on
// them and are left off: three of the ten headers a static file had, and
// what kept its header map over the eight entries net/http clones, sorts
// and writes cheaply (2 µs of a 30 µs request).
func shownAsPage(ctype string) bool {
	kind, sub, _ := strings.Cut(ctype, "/")
	switch kind {
	case "image":
		return sub == "svg+xml"
	case "font", "audio", "video":
		return false
	case "application":
		switch sub {
		case "octet-stream", "wasm", "zip", "gzip", "x-tar", "vnd.ms-fontobject":
			return false
		}
	}
	return true
}

// dropPageHeaders takes the document-only headers wrap set off a response
// that is no document (see shownAsPage).
func dropPageHeaders(h http.Header) {
	delete(h, "Referrer-Policy")
	delete(h, "Content-Security-Policy")
	delete(h, "X-Frame-Options")
}

// fileID tells whether a cached file is still the one on disk.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}

func (id fileID) etag() string {
	return fmt.Sprintf(`"%x-%x-%x"`, id.ino, id.size, id.mtime)
}

// pageKey names a cached page: the tree and the request path.
type pageKey struct {
	sel  selection
	path string
}

// pageEntry is a page whose $variables are filled in per request: an
// appliance's text file or the built-in page. Or, with static set, a text
// file too big to substitute, remembered only so that it is logged once.
type pageEntry struct {
	builtin bool
	static  bool
	file    *cachedFile // a static file kept in memory; then only id, cost and checked count
	id      fileID
	ctype   []string // Content-Type header value
	html    bool
	segs    []segment
	cost    int64        // bytes it may hold: source plus the rendered page at its largest
	checked atomic.Int64 // Unix ns when the file was last looked at
	out     atomic.Pointer[renderedPage]
	renders singleflight.Group // one render per gen, whatever the number of requests
}

// newPageEntry compiles a page; cost counts src (which segs point into, so
// kept alive) unless the source is shared (the built-in page).
func newPageEntry(segs []segment, src int) *pageEntry {
	e := &pageEntry{segs: segs}
	e.cost = int64(src) + e.renderBound()
	return e
}

// renderBound is the most bytes the entry's page can render to.
func (e *pageEntry) renderBound() int64 {
	var n int64
	for _, g := range e.segs {
		if g.lit != nil {
			n += int64(len(g.lit))
		} else {
			n += varMax[g.v]
		}
	}
	return n
}

// cachedFile is a static file's bytes and header values, shared by every
// response (never modified).
type cachedFile struct {
	name    string
	modTime time.Time
	body    []byte
	ctype   []string
	etag    []string
	lastMod []string
	length  []string
	page    bool // shownAsPage(ctype)
}

type renderedPage struct {
	gen    uint64
	body   []byte
	etag   []string // header values, shared by every response
	length []string
}

// pageCache holds pageEntries; safe for concurrent use. It holds at most
// maxPageCache entries costing maxCacheBytes in all: past either it is
// emptied (requests in flight keep the pages they hold).
type pageCache struct {
	mu    sync.RWMutex
	m     map[pageKey]*pageEntry
	bytes int64
}

func (c *pageCache) get(k pageKey) *pageEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

func (c *pageCache) put(k pageKey, e *pageEntry) {
	if e == nil && c.get(k) == nil {
		return // nothing to forget: no write lock for every static file
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		delete(c.m, k)
		c.bytes -= old.cost
	}
	if e == nil {
		return
	}
	if c.m == nil || len(c.m) >= maxPageCache || c.bytes+e.cost > maxCacheBytes {
		c.m, c.bytes = map[pageKey]*pageEntry{}, 0
	}
	c.m[k] = e
	c.bytes += e.cost
}

// size reports the entries and bytes the cache holds.
func (c *pageCache) size() (int, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}

// resolution is what a request path names in a page tree.
type resolution struct {
	kind resKind
	name string // file name inside the tree
	f    *os.File
	fi   fs.FileInfo
}

type resKind uint8

const (
	resNotFound resKind = iota
	resBuiltin          // the tree has no index page: the built-in page
	resFile
	resDir // a directory named without its trailing slash
)

// resolve finds what p names in the selected tree. The tree is opened as an
// os.Root, so neither ".." nor a symlink can lead out of it (a symlink
// inside it is followed). A directory serves its index.html or index.htm,
// never a listing. The caller closes res.f.
func (s *Server) resolve(sel selection, p string) (resolution, error) {
	name := p[1:]
	isIndex := name == "" || name == "index.html"
	root, err := os.OpenRoot(filepath.Join(s.cfg.WWW, sel.dir()))
	if err != nil {
		if isIndex && errors.Is(err, fs.ErrNotExist) {
			return resolution{kind: resBuiltin}, nil
		}
		return resolution{}, err
	}
	defer root.Close()
	if name == "" || strings.HasSuffix(name, "/") {
		for _, idx := range []string{"index.html", "index.htm"} {
			f, fi, err := openRegular(root, name+idx)
			if err == nil {
				return resolution{kind: resFile, name: name + idx, f: f, fi: fi}, nil
			}
		}
		if name == "" {
			return resolution{kind: resBuiltin}, nil
		}
		return resolution{kind: resNotFound}, nil
	}
	fi, err := root.Stat(name)
	switch {
	case err != nil && isIndex && errors.Is(err, fs.ErrNotExist):
		return resolution{kind: resBuiltin}, nil
	case err != nil:
		return resolution{}, err
	case fi.IsDir():
		return resolution{kind: resDir}, nil
	}
	f, fi, err := openRegular(root, name)
	if err != nil {
		return resolution{}, err
	}
	return resolution{kind: resFile, name: name, f: f, fi: fi}, nil
}

// openRegular opens a regular file; O_NONBLOCK keeps a FIFO from blocking
// the open, and anything but a regular file is refused.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("open %s: not a regular file (%s)", name, fi.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// servePage serves an appliance page or the built-in page, for GET and
// HEAD (see methods).
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if hidden(p) {
		http.NotFound(w, r)
		return
	}
	sel := s.selectTree(r.URL.RawQuery)
	key := pageKey{sel, p}
	now := s.clock.Now()
	e := s.pages.get(key)
	if e != nil && !e.static {
		last := e.checked.Load()
		if age := now.UnixNano() - last; age >= 0 && age < int64(pageTTL) || !e.checked.CompareAndSwap(last, now.UnixNano()) {
			// Fresh, or another request is looking at the file right now.
			if e.file != nil {
				s.writeFile(w, r, e.file, sel)
				return
			}
			s.writePage(w, r, e, sel, now)
			return
		}
	}
	res, err := s.resolve(sel, p)
	if err != nil {
		s.log.Debug("page not served", "path", p, "tree", sel.dir(), "err", err)
		s.pages.put(key, nil)
		http.NotFound(w, r)
		return
	}
	if res.f != nil {
		defer res.f.Close()
	}
	switch res.kind {
	case resNotFound:
		s.pages.put(key, nil)
		http.NotFound(w, r)
		return
	case resDir:
		s.pages.put(key, nil)
		loc := r.URL.EscapedPath() + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header()["Location"] = []string{loc}
		w.WriteHeader(http.StatusMovedPermanently)
		return
	case resBuiltin:
		if e == nil || !e.builtin {
			// One entry however many requests miss at once, so that they
			// share one render.
			v, _, _ := s.loads.Do(sel.dir()+"\x00"+p+"\x00builtin", func() (any, error) {
				if cur := s.pages.get(key); cur != nil && cur.builtin {
					return cur, nil // made by a request that came just before
				}
				ne := s.newBuiltinEntry(now)
				s.pages.put(key, ne)
				return ne, nil
			})
			e = v.(*pageEntry)
		}
		e.checked.Store(now.UnixNano())
		s.writePage(w, r, e, sel, now)
		return
	}
	ctype := contentType(res.name)
	id := idOf(res.fi)
	if !substituted(ctype) {
		if e != nil && e.file != nil && e.id == id {
			e.checked.Store(now.UnixNano())
			s.writeFile(w, r, e.file, sel)
			return
		}
		if res.fi.Size() > maxFileCache {
			s.pages.put(key, nil)
			s.writeStatic(w, r, res, ctype, sel)
			return
		}
		// One read per file version, however many requests miss at once.
		v, err, _ := s.loads.Do(sel.dir()+"\x00"+p+"\x00"+id.etag()+"\x00file", func() (any, error) {
			if cur := s.pages.get(key); cur != nil && cur.file != nil && cur.id == id {
				return cur, nil
			}
			return s.loadFile(key, res, ctype, id, now)
		})
		if err != nil {
			s.log.Warn("read file", "path", p, "tree", sel.dir(), "err", err)
			http.Error(w, "500 cannot read the file", http.StatusInternalServerError)
			return
		}
		s.writeFile(w, r, v.(*pageEntry).file, sel)
		return
	}
	if e == nil || e.builtin || e.id != id {
		if s.hooks.miss != nil {
			s.hooks.miss()
		}
		// One read and compile per file, however many requests miss at once.
		v, err, _ := s.loads.Do(sel.dir()+"\x00"+p+"\x00"+id.etag(), func() (any, error) {
			if cur := s.pages.get(key); cur != nil && !cur.builtin && cur.id == id {
				return cur, nil // loaded by a request that came just before
			}
			return s.loadPage(key, res, ctype, id, now)
		})
		if err != nil {
			s.log.Warn("read page", "path", p, "tree", sel.dir(), "err", err)
			http.Error(w, "500 cannot read the page", http.StatusInternalServerError)
			return
		}
		e = v.(*pageEntry)
	}
	if e.static {
		s.writeStatic(w, r, res, ctype, sel)
		return
	}
	e.checked.Store(now.UnixNano())
	s.writePage(w, r, e, sel, now)
}

// loadPage reads and compiles a text page into the cache. A page over
// maxSubstSize, or one that could render to more than maxRenderSize, is
// sent as it is, untouched: it is cached as static, so the line saying so
// is logged once per file.
func (s *Server) loadPage(key pageKey, res resolution, ctype string, id fileID, now time.Time) (*pageEntry, error) {
	if s.hooks.load != nil {
		s.hooks.load()
	}
	tooBig := func(why string) *pageEntry {
		s.log.Info("page too big to fill in its variables; sent as it is", "path", key.path, "tree", key.sel.dir(),
			"bytes", res.fi.Size(), "limit", why)
		e := &pageEntry{static: true, id: id}
		s.pages.put(key, e)
		return e
	}
	if res.fi.Size() > maxSubstSize {
		return tooBig(fmt.Sprintf("source over %d bytes", maxSubstSize)), nil
	}
	body, err := io.ReadAll(io.LimitReader(res.f, maxSubstSize+1))
	if err != nil {
		return nil, err
	}
	if _, err := res.f.Seek(0, io.SeekStart); err != nil { // writeStatic may need it yet
		return nil, err
	}
	if len(body) > maxSubstSize {
		return tooBig(fmt.Sprintf("source over %d bytes", maxSubstSize)), nil
	}
	e := newPageEntry(compile(body), len(body))
	if e.renderBound() > maxRenderSize {
		return tooBig(fmt.Sprintf("could render over %d bytes", maxRenderSize)), nil
	}
	e.id, e.ctype, e.html = id, []string{ctype}, ctype == "text/html"
	e.checked.Store(now.UnixNano())
	s.pages.put(key, e)
	return e, nil
}

// loadFile reads a static file (at most maxFileCache bytes) into the
// cache.
func (s *Server) loadFile(key pageKey, res resolution, ctype string, id fileID, now time.Time) (*pageEntry, error) {
	if s.hooks.load != nil {
		s.hooks.load()
	}
	body, err := io.ReadAll(io.LimitReader(res.f, maxFileCache+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxFileCache {
		return nil, fmt.Errorf("grew past %d bytes while read", maxFileCache)
	}
	mt := res.fi.ModTime()
	f := &cachedFile{name: res.name, modTime: mt, body: body, ctype: []string{ctype}, etag: []string{id.etag()},
		length: []string{strconv.Itoa(len(body))}, page: shownAsPage(ctype)}
	if !mt.IsZero() && mt.Unix() != 0 { // as ServeContent does
		f.lastMod = []string{mt.UTC().Format(http.TimeFormat)}
	}
	e := &pageEntry{file: f, id: id, cost: int64(len(body))}
	e.checked.Store(now.UnixNano())
	s.pages.put(key, e)
	return e, nil
}

func (s *Server) newBuiltinEntry(now time.Time) *pageEntry {
	e := newPageEntry(s.builtin, 0) // the source is the binary's
	e.builtin, e.ctype, e.html = true, s.hdr.htmlUTF8, true
	e.checked.Store(now.UnixNano())
	return e
}

// writePage sends a substituted page. Its ETag is a hash of the bytes sent,
// so a browser revalidates cheaply; no-cache because $curtime moves.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, e *pageEntry, sel selection, now time.Time) {
	v := s.vars.get(now)
	out := e.out.Load()
	if out == nil || out.gen != v.gen {
		if s.hooks.miss != nil {
			s.hooks.miss()
		}
		// One render per page and gen: requests that miss together wait
		// for it and share its bytes.
		o, _, _ := e.renders.Do(strconv.FormatUint(v.gen, 10), func() (any, error) {
			if cur := e.out.Load(); cur != nil && cur.gen == v.gen {
				return cur, nil
			}
			if s.hooks.render != nil {
				s.hooks.render()
			}
			vals := &v.vals
			if e.html {
				vals = &v.html
			}
			body := render(e.segs, vals)
			sum := sha256.Sum256(body)
			out := &renderedPage{gen: v.gen, body: body, etag: []string{`"` + hex.EncodeToString(sum[:12]) + `"`},
				length: []string{strconv.Itoa(len(body))}}
			e.out.Store(out)
			return out, nil
		})
		out = o.(*renderedPage)
	}
	h := w.Header()
	h["Content-Type"] = e.ctype
	h["Etag"] = out.etag
	if sel == withCookie {
		h["Cache-Control"] = s.hdr.privateNoCache
	} else {
		h["Cache-Control"] = s.hdr.noCache
	}
	if e.builtin {
		h["Content-Security-Policy"] = s.builtinCSP
	}
	if _, ranged := r.Header["Range"]; ranged {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(out.body))
		return
	}
	// The common case, without ServeContent's copying: a conditional GET
	// answered from the ETag, or the page in one write.
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, out.etag[0]) {
		delete(h, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = out.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(out.body)
	}
}

// etagMatches reports whether an If-None-Match header lists etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatches(header []string, etag string) bool {
	for _, line := range header {
		for _, t := range strings.Split(line, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// writeFile sends a static file from the cache. A plain GET or HEAD is
// answered from the header values made when the file was read, in one
// write when it fits; a conditional or range request goes through
// http.ServeContent.
func (s *Server) writeFile(w http.ResponseWriter, r *http.Request, f *cachedFile, sel selection) {
	h := w.Header()
	if !f.page {
		dropPageHeaders(h)
	}
	h["Content-Type"] = f.ctype
	h["Etag"] = f.etag
	if sel == withCookie {
		h["Cache-Control"] = s.hdr.privateStatic
	} else {
		h["Cache-Control"] = s.hdr.publicStatic
	}
	for _, k := range [...]string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[k]; ok {
			http.ServeContent(w, r, f.name, f.modTime, bytes.NewReader(f.body))
			return
		}
	}
	if f.lastMod != nil {
		h["Last-Modified"] = f.lastMod
	}
	h["Accept-Ranges"] = s.hdr.acceptRanges
	h["Content-Length"] = f.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(f.body)
	}
}

// writeStatic sends a file untouched, with validators for conditional and
// range requests.
func (s *Server) writeStatic(w http.ResponseWriter, r *http.Request, res resolution, ctype string, sel selection) {
	h := w.Header()
	if !shownAsPage(ctype) {
		dropPageHeaders(h)
	}
	h["Content-Type"] = []string{ctype}
	h["Etag"] = []string{idOf(res.fi).etag()}
	if sel == withCookie {
		h["Cache-Control"] = s.hdr.privateStatic
	} else {
		h["Cache-Control"] = s.hdr.publicStatic
	}
	http.ServeContent(w, r, res.name, res.fi.ModTime(), res.f)
}
