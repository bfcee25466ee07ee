// Package web is the instance's status web server: the owner's pages, the
// status API the controller and tools poll, and Prometheus metrics.
//
// Pages. A request whose query carries cookie=<the instance cookie> is
// served from <WWW>/withcookie/, any other from <WWW>/nocookie/, as the old
// agent's Python server did. In text files (text/html, text/plain, CSS,
// JavaScript, …) the variables $hostname $application $version1 $version2
// $curtime, also written ${name}, are filled in with the exact rules of
// Python's string.Template.safe_substitute: $$ gives $, anything else with a
// $ ($foo, $(…), $.ajax) is left as it is. Other files are sent untouched.
// A directory serves its index.html or index.htm, never a listing; a tree
// without an index page gets the built-in page, embedded in the binary. A
// path that could leave the tree (.., encoded or not, //, backslashes,
// control bytes) is refused, and the tree is opened as an os.Root so a
// symlink out of it is refused too.
//
// API. GET /api/v1/status is the status document (agent/status) as JSON,
// built at most once a second or at once on a change of the shared state,
// and shared by every request (while one request builds the next second's,
// the others are sent the one before rather than wait); GET /metrics is the Prometheus text format
// from a registry private to the server.
//
// Pages and static files up to 1 MiB are kept in memory; their files are
// looked at again at most once a second.
//
// The server is a supervisor service: Run listens, serves until its context
// ends and then shuts down gracefully. Every connection has read, write and
// idle time limits and a bounded header size, so a slow client holds a
// goroutine for seconds at most.
package web

import (
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"osmanager/agent/clock"
	"osmanager/agent/state"
	"osmanager/agent/status"
)

// DefaultAddr is where the server listens unless told otherwise.
const DefaultAddr = ":8080"

// Defaults for Config's time limits.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// Config configures a Server. WWW, Status and State are needed; the rest
// has defaults.
type Config struct {
	Addr string // listen address; default DefaultAddr
	WWW  string // host path of custom/www, holding withcookie/ and nocookie/
	// Cookie is the instance cookie (the JSON's "cookie"); empty matches
	// no request.
	Cookie string
	// Status builds the status document, and gives the page's host name
	// and VERSION.
	Status *status.Source
	State  *state.Store // for the metrics
	Log    *slog.Logger // carries the service attribute; the server adds none

	// FrameAncestors are origins, besides the page's own, that may show
	// the pages in a frame (the cloud console, say).
	FrameAncestors []string

	Clock    clock.Clock
	Location *time.Location // $curtime's zone; default time.Local

	// Connection limits; zero means the Default… value.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration // how long Run waits for requests in flight
	MaxHeaderBytes    int

	// OnListen, if set, is called with the bound address each time Run
	// starts listening (tests and the demo listen on port 0).
	OnListen func(net.Addr)
	// OnRequest, if set, is called at the start of every request (the
	// agent trims its pages once requests go idle: agent/internal/pagetrim).
	OnRequest func()
}

// Server is the status web server. Build it with New; run it with Run.
type Server struct {
	cfg     Config
	log     *slog.Logger
	state   *state.Store
	status  *status.Source
	clock   clock.Clock
	handler http.Handler

	vars    varSource
	pages   pageCache
	doc     statusCache
	loads   singleflight.Group // page reads and compiles in progress
	hooks   testHooks
	metrics *metrics

	hasCookie  bool
	cookieSum  [32]byte
	builtin    []segment // the built-in page, compiled
	builtinCSP []string
	hdr        headers

	addr atomic.Pointer[net.Addr]
}

// testHooks are called, when set, at points of the caches the tests
// count: a request missing the page cache (about to load or render), a page
// read and compiled, a page rendered, the status document built. Set before
// serving; nil in production.
type testHooks struct {
	miss, load, render func()
	status             func() // the status document built
}

//go:embed page/index.html
var defaultPage []byte

// DefaultPage returns the built-in page's template, the one shipped as
// custom/www/{nocookie,withcookie}/index.html.
func DefaultPage() []byte { return append([]byte(nil), defaultPage...) }

// headers are header values shared by every response (never modified).
type headers struct {
	nosniff, referrer, frameOptions, frameCSP []string
	allowGetHead, htmlUTF8, json, noStore     []string
	noCache, privateNoCache                   []string
	publicStatic, privateStatic, cspNone      []string
	acceptRanges                              []string
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.State == nil {
		return nil, errors.New("web: no state store")
	}
	if cfg.Status == nil {
		return nil, errors.New("web: no status source")
	}
	if cfg.WWW == "" {
		return nil, errors.New("web: WWW is needed")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for _, o := range cfg.FrameAncestors {
		if o == "" || strings.ContainsAny(o, " ;,'\"\r\n") {
			return nil, fmt.Errorf("web: bad frame ancestor %q", o)
		}
	}

	s := &Server{cfg: cfg, log: cfg.Log, state: cfg.State, status: cfg.Status, clock: cfg.Clock}
	s.vars = varSource{ident: cfg.Status.Identity, location: cfg.Location}
	if cfg.Cookie != "" {
		s.hasCookie, s.cookieSum = true, sha256.Sum256([]byte(cfg.Cookie))
	}
	s.builtin = compile(defaultPage)
	ancestors := strings.Join(append([]string{"'self'"}, cfg.FrameAncestors...), " ")
	s.hdr = headers{
		nosniff:        []string{"nosniff"},
		referrer:       []string{"no-referrer"}, // the cookie rides in page URLs: never hand it on
		frameCSP:       []string{"frame-ancestors " + ancestors},
		allowGetHead:   []string{"GET, HEAD"},
		htmlUTF8:       []string{"text/html; charset=utf-8"},
		json:           []string{"application/json"},
		noStore:        []string{"no-store"},
		noCache:        []string{"no-cache"},
		privateNoCache: []string{"private, no-cache"},
		publicStatic:   []string{"public, max-age=300"},
		privateStatic:  []string{"private, max-age=300"},
		cspNone:        []string{"default-src 'none'; frame-ancestors 'none'"},
		acceptRanges:   []string{"bytes"},
	}
	if len(cfg.FrameAncestors) == 0 {
		s.hdr.frameOptions = []string{"SAMEORIGIN"}
	}
	csp, err := builtinCSP(defaultPage, ancestors)
	if err != nil {
		return nil, err
	}
	s.builtinCSP = []string{csp}
	s.metrics = newMetrics(s)

	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/status", s.methods(s.serveStatus))
	mux.Handle("/metrics", s.methods(s.metrics.handler.ServeHTTP))
	mux.HandleFunc("/", s.methods(s.servePage))
	s.handler = s.wrap(mux)
	return s, nil
}

// builtinCSP allows the built-in page its own inline style and script (by
// hash) and fetches to its own origin, and nothing else.
func builtinCSP(page []byte, ancestors string) (string, error) {
	hashes := func(open, close string) (string, error) {
		var out []string
		for rest := string(page); ; {
			i := strings.Index(rest, open)
			if i < 0 {
				break
			}
			rest = rest[i+len(open):]
			j := strings.Index(rest, close)
			if j < 0 {
				return "", fmt.Errorf("web: built-in page: %s without %s", open, close)
			}
			sum := sha256.Sum256([]byte(rest[:j]))
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
			rest = rest[j:]
		}
		if len(out) == 0 {
			return "'none'", nil
		}
		return strings.Join(out, " "), nil
	}
	script, err := hashes("<script>", "</script>")
	if err != nil {
		return "", err
	}
	style, err := hashes("<style>", "</style>")
	if err != nil {
		return "", err
	}
	return "default-src 'none'; script-src " + script + "; style-src " + style +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors " + ancestors, nil
}

// Handler returns the server's HTTP handler (for tests and benchmarks that
// bring their own listener).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address Run is listening on, or nil when it is not.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// SetLogger replaces Config.Log: the supervisor hands the server its
// logger, which carries the service attribute (see
// supervisor.LogReceiver). Call it before Run.
func (s *Server) SetLogger(log *slog.Logger) { s.log = log }

// Run listens on Config.Addr and serves until ctx ends, then stops
// accepting, lets requests in flight finish (up to ShutdownTimeout) and
// returns nil. It returns an error if it cannot listen or serving fails.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", s.cfg.Addr, err)
	}
	addr := ln.Addr()
	s.addr.Store(&addr)
	defer s.addr.Store(nil)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("listening", "addr", addr.String())
	if s.cfg.OnListen != nil {
		s.cfg.OnListen(addr)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown: closing connections still busy", "err", err)
		srv.Close()
	}
	<-served // http.ErrServerClosed
	s.log.Info("stopped")
	return nil
}

// wrap adds what every response gets: security headers, path checks and
// request metrics.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.cfg.OnRequest != nil {
			s.cfg.OnRequest()
		}
		h := w.Header()
		h["X-Content-Type-Options"] = s.hdr.nosniff
		h["Referrer-Policy"] = s.hdr.referrer
		h["Content-Security-Policy"] = s.hdr.frameCSP // handlers may set a fuller one
		if s.hdr.frameOptions != nil {
			h["X-Frame-Options"] = s.hdr.frameOptions
		}
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		handler := "page"
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/api/"):
			handler = "api"
		case p == "/metrics":
			handler = "metrics"
		}
		if code := checkPath(r.URL.Path); code != 0 {
			s.log.Debug("path refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(rec, http.StatusText(code), code)
		} else {
			next.ServeHTTP(rec, r)
		}
		s.metrics.observe(handler, rec.code, time.Since(start))
		if rec.code >= 500 {
			s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", rec.code)
		}
	})
}

// methods limits a handler to GET and HEAD.
func (s *Server) methods(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header()["Allow"] = s.hdr.allowGetHead
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f(w, r)
	}
}

// recorder notes the status code a handler sent.
type recorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for static files.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wroteHeader = true
	return io.Copy(r.ResponseWriter, src)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
