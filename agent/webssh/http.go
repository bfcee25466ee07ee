package webssh

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"osmanager/agent/state"
)

//go:generate go run gengz.go

// The page, the terminal's own script and style, and the vendored files:
// xterm.js and its addons only as the gzip copies gengz.go writes
// (assets/vendor/X.gz; the sources stay in the repository for the
// licences, the audit trail and TestVendorGzip, not in the binary).
//
//go:embed assets/index.html assets/term.js assets/term.css assets/vendor/*.gz assets/vendor/LICENSE.*
var assetFS embed.FS

// asset is an embedded file served under /assets/. Its bytes stay in the
// binary's read-only data: served from there, never copied to the heap.
// A vendored file is embedded gzip-compressed only: sent as it is to a
// client that accepts gzip, decompressed as it streams out to one that
// does not. The ETag (a hash of the embedded bytes) is computed at the
// first request, so start-up reads nothing.
type asset struct {
	path  string // in assetFS
	ctype string
	gz    bool // the embedded bytes are gzip

	once  sync.Once
	data  io.ReaderAt // the embedded bytes, read in place
	dsize int64       // their size
	etag  string      // identity; the gzip form's adds "-gz"
	size  int64       // identity size (a gzip file's ISIZE)
	err   error
}

const (
	csrfCookie  = "osm_csrf"
	loginCookie = "osm_term"
	maxForm     = 4 << 10
)

// assetTypes is the fixed MIME table of the assets (mime.TypeByExtension
// would load the host's whole table, 400 kB of heap, for three types).
var assetTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

func (s *Server) buildPage() error {
	page, err := parsePage(assetFS, "assets/index.html")
	if err != nil {
		return fmt.Errorf("web terminal page: %w", err)
	}
	s.page = page
	s.files = make(map[string]*asset)
	return fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "assets/index.html" {
			return err
		}
		name, gz := strings.CutSuffix(path.Base(p), ".gz")
		ct, ok := assetTypes[path.Ext(name)]
		switch {
		case strings.HasPrefix(name, "LICENSE"):
			ct = "text/plain; charset=utf-8"
		case !ok:
			return nil
		}
		s.files[name] = &asset{path: p, ctype: ct, gz: gz}
		return nil
	})
}

// prepare hashes the asset and reads a gzip file's size, once.
func (a *asset) prepare() error {
	a.once.Do(func() { a.err = a.load() })
	return a.err
}

func (a *asset) load() error {
	// An embed.FS file reads in place (ReadFile would copy), its ReadAt
	// is safe for concurrent use, and it holds no descriptor: kept open
	// for every request's section reader.
	f, err := assetFS.Open(a.path)
	if err != nil {
		return err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return fmt.Errorf("%s: not an io.ReaderAt", a.path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	a.data, a.dsize, a.size = ra, n, n
	a.etag = fmt.Sprintf(`"%x"`, h.Sum(nil)[:12])
	if a.gz {
		// RFC 1952: the trailer's last 4 bytes are the input size mod
		// 2^32; the vendored files are far smaller than that.
		var isize [4]byte
		if n < 18 {
			return fmt.Errorf("%s: not gzip", a.path)
		}
		if _, err := ra.ReadAt(isize[:], n-4); err != nil {
			return err
		}
		a.size = int64(binary.LittleEndian.Uint32(isize[:]))
	}
	return nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip
// (listed, or "*", with a q other than 0).
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q == 0 {
				continue
			}
		}
		return true
	}
	return false
}

// cookieName hardens names under TLS: __Host- cookies are Secure, host-only
// and path /, so no sibling host or plain-HTTP page can set them.
func (s *Server) cookieName(base string, r *http.Request) string {
	if r.TLS != nil {
		return "__Host-" + base
	}
	return base
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(base, r), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.User == nil && u.Fragment == "" && o == u.Scheme+"://"+u.Host
}

// originAllowed checks an Origin header exactly against the origins the
// terminal is reached at (allowedOrigins) and the configured allowlist.
// The request's Host header plays no part: a DNS-rebinding page has its
// own name in both Host and Origin.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	for _, o := range s.cfg.Origins {
		if strings.EqualFold(origin, o) {
			return true
		}
	}
	return slices.ContainsFunc(s.allowedOrigins(r.TLS != nil), func(o string) bool { return strings.EqualFold(origin, o) })
}

// checkPost guards the state-changing POSTs against cross-site requests:
// the double-submitted CSRF token must match its cookie, and the Origin
// header must be present and ours (every browser sends it on a POST; a
// request without one is no page of ours).
func (s *Server) checkPost(w http.ResponseWriter, r *http.Request) bool {
	if o := r.Header.Get("Origin"); !s.originAllowed(r, o) {
		if o == "" {
			http.Error(w, "request without an Origin refused", http.StatusForbidden)
		} else {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
		}
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	c := cookieValue(r, s.cookieName(csrfCookie, r))
	f := r.PostForm.Get("csrf")
	if c == "" || subtle.ConstantTimeCompare([]byte(c), []byte(f)) != 1 {
		http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
		return false
	}
	return true
}

func (s *Server) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	anc := "'self'"
	for _, o := range s.cfg.Origins {
		anc += " " + o
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors "+anc)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

type pageData struct {
	Title  string
	CSRF   string
	User   string
	Secure bool
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	s.securityHeaders(w)
	csrf := cookieValue(r, s.cookieName(csrfCookie, r))
	if len(csrf) != 32 {
		var b [16]byte
		rand.Read(b[:])
		csrf = fmt.Sprintf("%x", b[:])
		s.setCookie(w, r, csrfCookie, csrf, 0)
	}
	d := pageData{Title: s.cfg.Hostname, CSRF: csrf, Secure: r.TLS != nil}
	if l := s.lookupLogin(cookieValue(r, s.cookieName(loginCookie, r))); l != nil {
		d.User = l.user
	}
	if d.Title == "" {
		d.Title = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			d.Title = h
		}
	}
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, d); err != nil {
		http.Error(w, "page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.files[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err := a.prepare(); err != nil {
		http.Error(w, "asset", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", a.ctype)
	// http.ServeContent answers HEAD, ranges and conditional requests
	// against the ETag set here, for either form: ranges of the gzip form
	// are of its bytes (its own ETag says which form they are of).
	var content io.ReadSeeker = io.NewSectionReader(a.data, 0, a.dsize)
	etag := a.etag
	if a.gz {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			etag = a.etag[:len(a.etag)-1] + `-gz"`
			if r.Header.Get("Range") == "" {
				// ServeContent leaves the length out of an encoded
				// response (and a range's to the range).
				h.Set("Content-Length", strconv.FormatInt(a.dsize, 10))
			}
		} else {
			content = &gunzipSeeker{gz: a.data, gzSize: a.dsize, size: a.size}
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, content)
}

// gunzipSeeker reads a gzip file's content as an io.ReadSeeker for
// http.ServeContent: the size is known from the trailer, so seeking to
// the end reads nothing; a seek forward decompresses and drops what it
// skips, a seek back starts again from the top (a range request seeks
// once, a multi-range one a few times). Bytes are decompressed only as
// they are read, through the decompressor's own window: nothing the size
// of the file is allocated.
type gunzipSeeker struct {
	gz     io.ReaderAt
	gzSize int64
	size   int64 // decompressed

	zr  *gzip.Reader // nil until the first read, or after a seek back
	pos int64        // of zr
	off int64        // where the next Read is to start
}

func (g *gunzipSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	case io.SeekEnd:
		offset += g.size
	default:
		return 0, errors.New("gunzip seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("gunzip seek: negative position")
	}
	g.off = offset
	return offset, nil
}

func (g *gunzipSeeker) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if g.zr == nil || g.off < g.pos {
		zr, err := gzip.NewReader(io.NewSectionReader(g.gz, 0, g.gzSize))
		if err != nil {
			return 0, err
		}
		g.zr, g.pos = zr, 0
	}
	if g.off > g.pos {
		n, err := io.CopyN(io.Discard, g.zr, g.off-g.pos)
		g.pos += n
		if err != nil {
			return 0, err
		}
	}
	p = p[:min(int64(len(p)), g.size-g.off)]
	n, err := g.zr.Read(p)
	g.pos += int64(n)
	g.off = g.pos
	if err == io.EOF && g.off < g.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// handleLogin checks a user name and password. Failures answer no sooner
// than FailDelay after the request came in (whatever failed, so timing
// tells nothing); the limiter refuses, without a check, an account and
// address or an address with too many recent failures, and every check
// beyond the global budget.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.securityHeaders(w)
	if !s.checkPost(w, r) {
		return
	}
	user, password := r.PostForm.Get("user"), r.PostForm.Get("password")
	addr, key := r.RemoteAddr, clientKey(r.RemoteAddr)
	now := s.cfg.Clock.Now()
	if v, retry, logIt := s.lim.begin(key, user, now); v != allowed {
		msg, reason := "too many failed logins: try again later", "too many failed logins"
		switch v {
		case refusedPair:
			reason = "too many failed logins for this account from this address"
		case refusedAddr:
			reason = "too many failed logins from this address"
		case refusedBudget:
			msg, reason = "too many logins on this terminal right now: try again in a minute", "login budget spent"
		}
		if v != refusedBudget || logIt {
			attrs := []any{"user", logUser(user), "addr", addr, "reason", reason}
			if v == refusedBudget {
				attrs = append(attrs, "budget", s.cfg.LoginBudget, "period", budgetPeriod.String())
			}
			s.log.Warn("terminal login refused", attrs...)
		}
		s.updateState(func(t *state.Terminal) { t.LoginFailures++ })
		w.Header().Set("Retry-After", fmt.Sprint(max(1, int(retry.Round(time.Second).Seconds()))))
		http.Error(w, msg, http.StatusTooManyRequests)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	acct, mode, err := s.authenticate(ctx, user, password)
	cancel()
	var bad errBadLogin
	var prompt errPrompt
	if err != nil {
		s.lim.end(key, user, false)
		status, msg := http.StatusUnauthorized, "login incorrect"
		switch {
		case errors.As(err, &prompt):
			msg = prompt.userMessage()
		case errors.As(err, &bad):
		default:
			status, msg = http.StatusServiceUnavailable, "login failed: the server could not check it; see the agent's log"
		}
		s.updateState(func(t *state.Terminal) { t.LoginFailures++ })
		s.log.Warn("terminal login failed", "user", logUser(user), "addr", addr, "mode", mode, "reason", err.Error())
		if d := s.cfg.FailDelay - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
		http.Error(w, msg, status)
		return
	}
	s.lim.end(key, user, true)
	token, err := s.newLogin(user, addr, mode, acct)
	if err != nil {
		acct.close()
		s.log.Warn("terminal login refused", "user", user, "addr", addr, "mode", mode, "reason", err.Error())
		w.Header().Set("Retry-After", "60")
		http.Error(w, err.Error()+": log out elsewhere, or try again later", http.StatusServiceUnavailable)
		return
	}
	s.setCookie(w, r, loginCookie, token, 0)
	s.log.Info("terminal login", "user", user, "addr", addr, "mode", mode)
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) authenticate(ctx context.Context, user, password string) (account, Mode, error) {
	if a, ok := s.auth.(*autoAuth); ok {
		return a.pick(ctx, user, password)
	}
	acct, err := s.auth.login(ctx, user, password)
	return acct, s.cfg.Mode, err
}

// logUser keeps a user name printable and short in the audit log (people
// type passwords into the user field; at least cap what lands there).
func logUser(u string) string {
	u = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, u)
	if len(u) > 32 {
		u = u[:32] + "…"
	}
	return u
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.securityHeaders(w)
	if !s.checkPost(w, r) {
		return
	}
	if l := s.removeLogin(cookieValue(r, s.cookieName(loginCookie, r))); l != nil {
		s.log.Info("terminal logout", "user", l.user, "addr", r.RemoteAddr)
	}
	s.setCookie(w, r, loginCookie, "", -1)
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleWS upgrades an authenticated same-origin request and runs the
// protocol: Hello, then Attached and the session's traffic.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r, r.Header.Get("Origin")) {
		s.log.Warn("terminal websocket refused", "addr", r.RemoteAddr, "reason", "origin not allowed", "origin", logUser(r.Header.Get("Origin")))
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	l := s.lookupLogin(cookieValue(r, s.cookieName(loginCookie, r)))
	if l == nil {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "agent stopping", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	hw := &hijackWriter{ResponseWriter: w}
	conn, err := s.up.Upgrade(hw, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	closeConn := true
	defer func() {
		if closeConn {
			conn.Close()
		}
	}()
	// The HTTP server's read and write timeouts stay on the connection
	// after the upgrade; the websocket keeps its own deadlines instead.
	conn.NetConn().SetDeadline(time.Time{})
	conn.SetReadLimit(int64(s.cfg.InWindow) + 64)
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		return
	}
	m, err := Parse(data)
	hello, ok := m.(Hello)
	if typ != websocket.BinaryMessage || err != nil || !ok || hello.Version != ProtocolVersion {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, "expected hello"), time.Now().Add(time.Second))
		return
	}
	var t *term
	resumed := false
	if !hello.ID.IsZero() {
		t = s.findTerm(hello.ID, l)
		resumed = t != nil
	}
	if t == nil {
		if t, err = s.startTerm(l, max(hello.Cols, 1), max(hello.Rows, 1)); err != nil {
			code := websocket.CloseInternalServerErr
			if errors.Is(err, errLimit) {
				code = websocket.CloseTryAgainLater
			}
			s.log.Warn("terminal session refused", "user", l.user, "addr", r.RemoteAddr, "reason", err.Error())
			send(conn, Exit{Code: -1, Reason: err.Error()})
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, err.Error()), time.Now().Add(time.Second))
			return
		}
	}
	a := &attachment{conn: conn}
	offset := uint64(0)
	if resumed {
		offset = hello.Offset
	}
	if err := t.attach(a, offset, resumed); err != nil {
		t.detach(a)
		return
	}
	if resumed && hello.Cols > 0 && hello.Rows > 0 {
		t.sh.Resize(hello.Cols, hello.Rows)
	}
	conn.SetReadDeadline(time.Now().Add(readTimeout))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(readTimeout)) })
	// The attachment's reader is a goroutine of its own, so this handler
	// returns: the HTTP connection's goroutine, its deep stack and its
	// buffers go, which an idle session would otherwise keep for hours.
	closeConn = false
	user, addr := l.user, r.RemoteAddr
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer conn.Close()
		err := s.readLoop(t, a)
		if errors.Is(err, errProtocol) || errors.Is(err, ErrMsg) {
			s.log.Warn("terminal websocket closed", "user", user, "addr", addr, "reason", err.Error())
			a.close(websocket.CloseProtocolError, err.Error())
		}
		t.detach(a)
	}()
}

func (s *Server) readLoop(t *term, a *attachment) error {
	for {
		typ, data, err := a.conn.ReadMessage()
		if err != nil {
			return err
		}
		if typ != websocket.BinaryMessage {
			return fmt.Errorf("%w: text message", errProtocol)
		}
		m, err := Parse(data)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case Input:
			if err := t.input(m.Data); err != nil {
				return fmt.Errorf("%w: input past the window", err)
			}
		case Resize:
			if m.Cols > 0 && m.Rows > 0 {
				t.sh.Resize(m.Cols, m.Rows)
			}
		case Ack:
			if err := t.ack(a, m.Offset); err != nil {
				return fmt.Errorf("%w: ack past the output sent", err)
			}
		default:
			return fmt.Errorf("%w: unexpected %q", errProtocol, m.Type())
		}
	}
}
