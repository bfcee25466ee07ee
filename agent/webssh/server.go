package webssh

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"osmanager/agent/state"
)

// Server is the web terminal service.
type Server struct {
	cfg   Config
	auth  authenticator
	ssh   *sshAuth // the sshd login, alone or in auto mode; shares log
	log   *slog.Logger
	mux   *http.ServeMux
	page  *pageTemplate
	files map[string]*asset
	up    websocket.Upgrader
	lim   limiter
	pool  chunkPool
	wpool sync.Pool // websocket write buffers, held only while writing

	mu       sync.Mutex
	logins   map[[32]byte]*login
	terms    map[SessionID]*term
	starting map[string]int // sessions reserved but not yet registered, per account
	startAll int            // and in all
	listen   net.Addr       // where Serve listens: the allowed origins follow from it
	closing  bool
	wg       sync.WaitGroup // websocket handlers and sessions

	ifaceAddrs func() ([]net.Addr, error) // the machine's addresses, for allowed origins

	shellMu sync.Mutex     // orders writes of Files.Shells
	shells  map[int]uint64 // live login-mode shells: pid → start time
}

// login is a successful POST /login, named by the hash of its cookie.
type login struct {
	key     [32]byte
	user    string
	addr    string
	mode    Mode
	acct    account
	created time.Time
}

// SessionInfo describes a terminal session for the status page and APIs.
type SessionInfo struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Addr     string    `json:"addr"`
	Mode     Mode      `json:"mode"`
	Started  time.Time `json:"started"`
	Attached bool      `json:"attached"`
	Unacked  int       `json:"unacked"`  // output not yet acknowledged: at most the window
	Buffered int       `json:"buffered"` // memory held for output (whole chunks)
}

// New checks cfg and builds a Server. It does no I/O: Run listens, and
// makes the self-signed certificate if it needs one.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.AsSelf && cfg.Sys.IsHost() && os.Geteuid() == 0 {
		return nil, fmt.Errorf("%w: as-self on the real system root as root would give every account a root shell", ErrConfig)
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Log,
		logins:     make(map[[32]byte]*login),
		terms:      make(map[SessionID]*term),
		starting:   make(map[string]int),
		shells:     make(map[int]uint64),
		ifaceAddrs: net.InterfaceAddrs,
		lim:        limiter{pairMax: cfg.MaxFailures, addrMax: cfg.AddrFailures, window: cfg.FailWindow, budget: cfg.LoginBudget},
	}
	local := &localAuth{sys: cfg.Sys, files: cfg.Files, asSelf: cfg.AsSelf, now: cfg.Clock.Now, hashes: make(chan struct{}, 2)}
	remote := &sshAuth{addr: cfg.SSHAddr, conf: cfg.Conf, file: cfg.Files.KnownHosts, log: cfg.Log}
	s.ssh = remote
	switch cfg.Mode {
	case ModeLogin:
		s.auth = local
	case ModeSSH:
		s.auth = remote
	default:
		s.auth = &autoAuth{ssh: remote, local: local}
	}
	s.up = websocket.Upgrader{
		HandshakeTimeout: helloTimeout,
		// Keystrokes are a few bytes; a paste reads past the buffer. A
		// small buffer of its own lets the HTTP server's 4 kB one go.
		ReadBufferSize:  readBuffer,
		WriteBufferSize: maxFrame + 64,
		WriteBufferPool: &s.wpool,
		CheckOrigin:     func(*http.Request) bool { return true }, // checked before Upgrade
	}
	if err := s.buildPage(); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.handlePage)
	s.mux.HandleFunc("POST /login", s.handleLogin)
	s.mux.HandleFunc("POST /logout", s.handleLogout)
	s.mux.HandleFunc("GET /ws", s.handleWS)
	s.mux.HandleFunc("GET /assets/{name}", s.handleAsset)
	if cfg.AsSelf {
		s.log.Warn("web terminal runs every shell as the agent's own user (as-self): demo only")
	}
	return s, nil
}

// Config returns the configuration in effect: New's, with every default
// filled in.
func (s *Server) Config() Config { return s.cfg }

// SetLogger replaces Config.Log: the supervisor hands the terminal its
// logger, which carries the service attribute (see
// supervisor.LogReceiver). Call it before Run.
func (s *Server) SetLogger(log *slog.Logger) { s.log, s.ssh.log = log, log }

// Run listens on Config.Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	tc, err := s.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return s.Serve(ctx, ln, tc != nil)
}

// noteRequests calls Config.OnRequest before h, when it is set.
func (s *Server) noteRequests(h http.Handler) http.Handler {
	note := s.cfg.OnRequest
	if note == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note()
		h.ServeHTTP(w, r)
	})
}

// Serve serves on ln until ctx ends, then ends every session and waits for
// them. secure says ln is a TLS listener (Secure cookies, no warning).
func (s *Server) Serve(ctx context.Context, ln net.Listener, secure bool) error {
	s.mu.Lock()
	s.closing = false
	s.listen = ln.Addr()
	s.mu.Unlock()
	s.endOrphans()
	lim := s.cfg.HTTP
	hs := &http.Server{
		Handler:           s.noteRequests(http.MaxBytesHandler(s.mux, maxForm)),
		ReadHeaderTimeout: lim.ReadHeader,
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("web terminal listening", "addr", ln.Addr().String(), "tls", secure, "mode", s.cfg.Mode)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	hs.Shutdown(sctx)
	cancel()
	if err == nil {
		<-errc
	}
	s.mu.Lock()
	s.closing = true
	terms := make([]*term, 0, len(s.terms))
	for _, t := range s.terms {
		terms = append(terms, t)
	}
	logins := s.logins
	s.logins = make(map[[32]byte]*login)
	s.mu.Unlock()
	for _, t := range terms {
		t.end("agent stopping")
	}
	s.wg.Wait()
	for _, l := range logins {
		l.acct.close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve web terminal: %w", err)
	}
	return nil
}

// Sessions returns the live terminal sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	terms := make([]*term, 0, len(s.terms))
	for _, t := range s.terms {
		terms = append(terms, t)
	}
	s.mu.Unlock()
	out := make([]SessionInfo, 0, len(terms))
	for _, t := range terms {
		t.mu.Lock()
		out = append(out, SessionInfo{
			ID: t.id.String(), User: t.login.user, Addr: t.login.addr, Mode: t.login.mode,
			Started: t.started, Attached: t.att != nil,
			Unacked: int(t.buf.end - t.acked), Buffered: len(t.buf.chunks) * chunkSize,
		})
		t.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Started.Compare(b.Started) })
	return out
}

func (s *Server) updateState(f func(*state.Terminal)) {
	if s.cfg.State != nil {
		s.cfg.State.UpdateTerminal(f)
	}
}

func cookieKey(v string) [32]byte { return sha256.Sum256([]byte(v)) }

// errTooManyLogins refuses a login when the login table is full: a full
// table never evicts another account's login.
var errTooManyLogins = errors.New("too many logins on this terminal")

// newLogin remembers a successful login and returns its cookie value. An
// account at its UserLogins cap loses its own oldest login (and that
// login's shells); a full table refuses the new one instead.
func (s *Server) newLogin(user, addr string, mode Mode, acct account) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	token := fmt.Sprintf("%x", b[:])
	l := &login{key: cookieKey(token), user: user, addr: addr, mode: mode, acct: acct, created: s.cfg.Clock.Now()}
	var drop, evict []*login
	s.mu.Lock()
	now := s.cfg.Clock.Now()
	var own []*login
	for k, o := range s.logins {
		switch {
		case s.expiredLocked(o, now):
			delete(s.logins, k)
			drop = append(drop, o)
		case o.user == user:
			own = append(own, o)
		}
	}
	for len(own) >= s.cfg.UserLogins {
		oldest := 0
		for i, o := range own {
			if o.created.Before(own[oldest].created) {
				oldest = i
			}
		}
		delete(s.logins, own[oldest].key)
		evict = append(evict, own[oldest])
		own = slices.Delete(own, oldest, oldest+1)
	}
	var err error
	if len(s.logins) >= s.cfg.MaxLogins {
		err = fmt.Errorf("%w (limit %d)", errTooManyLogins, s.cfg.MaxLogins)
	} else {
		s.logins[l.key] = l
	}
	s.mu.Unlock()
	s.dropLogins(drop, "login expired")
	for _, o := range evict {
		s.log.Info("terminal logout", "user", o.user, "addr", o.addr, "reason", "the account's oldest login, replaced by a new one")
	}
	s.dropLogins(evict, "replaced by a newer login of the same account")
	if err != nil {
		return "", err
	}
	return token, nil
}

// expiredLocked reports whether l is past the maximum session length.
func (s *Server) expiredLocked(l *login, now time.Time) bool {
	return !now.Before(l.created.Add(s.cfg.MaxSession))
}

// lookupLogin returns the live login a cookie value names, or nil.
func (s *Server) lookupLogin(token string) *login {
	if token == "" {
		return nil
	}
	k := cookieKey(token)
	s.mu.Lock()
	l := s.logins[k]
	if l != nil && s.expiredLocked(l, s.cfg.Clock.Now()) {
		delete(s.logins, k)
		s.mu.Unlock()
		s.dropLogins([]*login{l}, "login expired")
		return nil
	}
	s.mu.Unlock()
	return l
}

// removeLogin forgets the login a cookie names and ends its sessions.
func (s *Server) removeLogin(token string) *login {
	k := cookieKey(token)
	s.mu.Lock()
	l := s.logins[k]
	delete(s.logins, k)
	s.mu.Unlock()
	if l != nil {
		s.dropLogins([]*login{l}, "logged out")
	}
	return l
}

func (s *Server) dropLogins(ls []*login, reason string) {
	if len(ls) == 0 {
		return
	}
	s.mu.Lock()
	var ts []*term
	for _, t := range s.terms {
		if slices.Contains(ls, t.login) {
			ts = append(ts, t)
		}
	}
	s.mu.Unlock()
	for _, t := range ts {
		t.end(reason)
	}
	for _, l := range ls {
		l.acct.close()
	}
}

// findTerm returns l's session id, or nil.
func (s *Server) findTerm(id SessionID, l *login) *term {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.terms[id]; t != nil && t.login == l {
		return t
	}
	return nil
}

// errLimit is the session limit.
var errLimit = errors.New("too many terminal sessions")

// startTerm starts a shell for l and registers its session, within the
// account's cap and the global one: a full cap refuses, it ends no shell.
func (s *Server) startTerm(l *login, cols, rows uint16) (*term, error) {
	user := l.user
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, errors.New("agent stopping")
	}
	all, own := s.startAll, s.starting[user]
	for _, t := range s.terms {
		all++
		if t.login.user == user {
			own++
		}
	}
	switch {
	case own >= s.cfg.UserSessions:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w for %s (limit %d per account)", errLimit, user, s.cfg.UserSessions)
	case all >= s.cfg.MaxSessions:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (limit %d)", errLimit, s.cfg.MaxSessions)
	}
	s.startAll++
	s.starting[user]++
	s.mu.Unlock()
	sh, err := l.acct.start(cols, rows)
	if err == nil {
		s.noteShell(sh, true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startAll--
	if s.starting[user]--; s.starting[user] == 0 {
		delete(s.starting, user)
	}
	if err != nil {
		return nil, err
	}
	var id SessionID
	rand.Read(id[:])
	t := newTerm(s, id, l, sh)
	if s.closing {
		// Stopping began while the shell started: run it only to end it.
		t.hangup = "agent stopping"
	}
	s.terms[id] = t
	s.wg.Add(2)
	go func() { defer s.wg.Done(); t.read() }()
	go func() { defer s.wg.Done(); t.run() }()
	s.updateState(func(st *state.Terminal) { st.Active++; st.Sessions++ })
	s.log.Debug("terminal session start", "user", l.user, "addr", l.addr, "session", id.String())
	return t, nil
}

// removeTerm forgets an ended session and writes its audit line.
func (s *Server) removeTerm(t *term, reason string, code int) {
	s.noteShell(t.sh, false)
	d := t.clk.Now().Sub(t.started)
	// The audit line comes first: a session no longer listed is logged.
	s.log.Info("terminal session end", "user", t.login.user, "addr", t.login.addr,
		"duration", d.Round(time.Millisecond).String(), "reason", reason, "exit", code, "session", t.id.String())
	s.mu.Lock()
	delete(s.terms, t.id)
	s.mu.Unlock()
	s.updateState(func(st *state.Terminal) { st.Active-- })
}
