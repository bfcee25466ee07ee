// Package api is the agent's local API: HTTP/1.1 with JSON bodies over a
// Unix socket (default /run/osmanager.sock), for osmctl, scripts and
// `curl --unix-socket`. The routes and documents are those of
// agent/api/apitypes; the work is done by an Apps, which the app manager
// implements (this package imports no service).
//
// # Who may call
//
// The socket is mode 0660, owned by root and by the group Config.Group
// (none: root only). The file mode is the first gate; the second is
// SO_PEERCRED on every accepted connection: the caller must be root
// (uid 0), the agent's own user (only a plain-user demo or test agent
// differs from root), or have the API group as its primary or a supplementary group
// (read from /proc/PID/status at accept). Anyone else gets 403 forbidden
// and a log line, whatever the file mode says.
//
// # Limits
//
// JSON bodies are capped at MaxJSON, archive bodies at Config.MaxArchive
// (the store's cap; over it: 413 too_large, before a byte is read when
// Content-Length says so). Request headers must arrive within 10 s, idle
// connections close after 60 s, at most Config.MaxConns connections are
// served at once (more wait in the kernel's backlog). A stream (logs,
// events) write that does not drain within Config.WriteTimeout ends the
// stream; an events reader that falls Config.EventBuffer events behind is
// dropped (apitypes.Hub), never buffered without end.
//
// # Wiring
//
// The agent builds one and runs it beside the other services:
//
//	sock, _ := sys.Path(paths.APISocket) // or the --api-socket flag's host path
//	srv, err := api.New(api.Config{
//		Socket: sock, Group: apiGroup, Sys: sys, GroupFile: paths.Group,
//		Apps: manager, Status: statusSource, Log: log.With("service", "api"),
//	})
//	… supervisor runs srv.Run(ctx)
//
// # Growing
//
// Part 2 of the app manager adds verbs (reload, services, stats) as new
// routes served by optional interfaces an Apps may also implement,
// checked with a type assertion when the routes are built (a missing one
// answers not_found), and alert events on the same stream: Apps itself
// and the documents of apitypes only ever gain fields.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"osmanager/agent/accounts"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/pack"
	"osmanager/agent/sysroot"
)

// Apps is what the API serves: the app manager. Errors carry an
// apperr.Code, which becomes the answer's code and HTTP status; an error
// without one is internal. Every method must return when ctx ends.
type Apps interface {
	// Install installs from req.URL, or from body (an archive stream,
	// then req.URL is empty) when body is not nil.
	Install(ctx context.Context, req apitypes.InstallRequest, body io.Reader) (apitypes.App, error)
	List(ctx context.Context) ([]apitypes.App, error)
	Detail(ctx context.Context, id string) (apitypes.App, error)
	Uninstall(ctx context.Context, id string, purge bool) error
	Start(ctx context.Context, id string) (apitypes.Started, error)
	Once(ctx context.Context, id string) (apitypes.Started, error)
	Rollback(ctx context.Context, id string) (apitypes.App, error)
	Enable(ctx context.Context, id string) (apitypes.App, error)
	Disable(ctx context.Context, id string) (apitypes.App, error)
	Runs(ctx context.Context) ([]apitypes.Run, error)
	Run(ctx context.Context, runid uint64) (apitypes.Run, error)
	Pause(ctx context.Context, runid uint64) (apitypes.Run, error)
	Resume(ctx context.Context, runid uint64) (apitypes.Run, error)
	Terminate(ctx context.Context, runid uint64) (apitypes.Run, error)
	// Logs returns the app's last n lines of output and, with follow,
	// what comes after, until ctx ends (the API then closes it, perhaps
	// while a Read is blocked: Close must unblock it).
	Logs(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error)
	// Subscribe is apitypes.Hub.Subscribe: events from now on, the
	// channel closed when ctx ends or the reader falls buf behind.
	Subscribe(ctx context.Context, buf int) <-chan apitypes.Event
}

// StatusDoc gives the status document; *status.Source is one.
type StatusDoc interface {
	JSON() ([]byte, error)
}

// Defaults of Config.
const (
	MaxJSON             = 64 << 10
	DefaultMaxConns     = 32
	DefaultEventBuffer  = 256
	DefaultWriteTimeout = 10 * time.Second
	DefaultLogLines     = 100
	MaxLogLines         = 100000
	socketMode          = 0o660
)

// Config configures a Server.
type Config struct {
	Socket    string        // host path of the socket; its directory must exist
	Group     string        // the API group's name; "" for root only
	Sys       *sysroot.Root // where GroupFile is read (needed with Group)
	GroupFile string        // the group file in Sys (paths.Group)
	Apps      Apps
	Status    StatusDoc    // nil: GET /v1/status is internal
	Log       *slog.Logger // carries service=api; nil logs nothing

	MaxArchive   int64         // archive body cap; 0: pack.DefaultMaxArchive (the store's)
	MaxConns     int           // 0: DefaultMaxConns
	EventBuffer  int           // 0: DefaultEventBuffer
	WriteTimeout time.Duration // 0: DefaultWriteTimeout
	ProcDir      string        // "": /proc
}

// Server is the local API service.
type Server struct {
	cfg Config
	log *slog.Logger
	gid int64 // the API group's gid; -1 for none
}

// New checks cfg and resolves the API group.
func New(cfg Config) (*Server, error) {
	if cfg.Socket == "" {
		return nil, errors.New("api: no socket path")
	}
	if cfg.Apps == nil {
		return nil, errors.New("api: no Apps")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxArchive <= 0 {
		cfg.MaxArchive = pack.DefaultMaxArchive
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ProcDir == "" {
		cfg.ProcDir = "/proc"
	}
	s := &Server{cfg: cfg, log: cfg.Log, gid: -1}
	if cfg.Group != "" {
		if cfg.Sys == nil || cfg.GroupFile == "" {
			return nil, errors.New("api: a group needs Sys and GroupFile")
		}
		if !accounts.ValidName(cfg.Group) {
			return nil, fmt.Errorf("api: bad group name %q", cfg.Group)
		}
		gid, ok := accounts.GroupID(cfg.Sys, accounts.Files{Group: cfg.GroupFile}, cfg.Group)
		if !ok {
			return nil, fmt.Errorf("api: group %q not found in %s", cfg.Group, cfg.GroupFile)
		}
		s.gid = int64(gid)
	}
	return s, nil
}

// Run listens on the socket and serves until ctx ends; then it closes the
// listener, ends the streams and removes the socket. It returns nil on
// cancellation.
func (s *Server) Run(ctx context.Context) error {
	ln, ino, err := s.listen()
	if err != nil {
		return err
	}
	defer s.removeSocket(ino)
	ll := newLimitListener(ln, s.cfg.MaxConns, s.cfg.ProcDir)
	hs := &http.Server{
		Handler:           s.guard(s.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("api listening", "socket", s.cfg.Socket, "group", s.cfg.Group)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ll) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve %s: %w", s.cfg.Socket, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-errc
	s.log.Info("api stopped", "socket", s.cfg.Socket)
	return nil
}

// listen binds the socket under a temporary name, sets its mode and
// owner, and renames it into place, so no caller ever finds it with the
// wrong mode. A stale socket (nobody listens) is removed first; anything
// else at the path is left alone and is an error.
func (s *Server) listen() (net.Listener, uint64, error) {
	path := s.cfg.Socket
	if err := removeStale(path); err != nil {
		return nil, 0, err
	}
	tmp := path + ".new"
	if err := removeStale(tmp); err != nil {
		return nil, 0, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, 0, fmt.Errorf("api: listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, uint64, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, 0, fmt.Errorf("api: socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(err)
	}
	if s.gid >= 0 || os.Geteuid() == 0 {
		if err := os.Chown(tmp, 0, int(max(s.gid, 0))); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return ln, inode(path), nil
}

// removeStale removes path if it is a socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("api: %w", err)
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("api: %s exists and is not a socket; not removed", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("api: %s: another process listens on it (a second agent?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api: remove stale socket: %w", err)
	}
	return nil
}

// removeSocket removes the socket if it is still the one Run made.
func (s *Server) removeSocket(ino uint64) {
	if inode(s.cfg.Socket) == ino && ino != 0 {
		os.Remove(s.cfg.Socket)
	}
}
