package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/apperr"
)

// Peer is the process at the other end of a connection, from SO_PEERCRED
// and /proc/PID/status at accept.
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
	Err    error    // the credentials could not be read: refused
}

type peerKey struct{}

// PeerOf returns the caller of a request served from the socket.
func PeerOf(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc.peer)
	}
	return context.WithValue(ctx, peerKey{}, Peer{Err: errors.New("not a socket connection")})
}

// readPeer reads the credentials of a Unix socket's peer.
func readPeer(c net.Conn, procDir string) Peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{Err: errors.New("not a Unix socket")}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{Err: err}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{Err: err}
	}
	if cerr != nil {
		return Peer{Err: fmt.Errorf("SO_PEERCRED: %w", cerr)}
	}
	p := Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
	if p.UID != 0 {
		data, err := os.ReadFile(procDir + "/" + strconv.Itoa(int(p.PID)) + "/status")
		if err != nil {
			p.Err = fmt.Errorf("read the caller's groups: %w", err)
			return p
		}
		p.Groups, p.Err = parseGroups(data)
	}
	return p
}

// parseGroups reads the "Groups:" line of /proc/PID/status.
func parseGroups(status []byte) ([]uint32, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Groups:"))
		if !ok {
			continue
		}
		var gs []uint32
		for f := range bytes.FieldsSeq(rest) {
			g, err := strconv.ParseUint(string(f), 10, 32)
			if err != nil {
				return nil, errors.New("bad Groups: line in the caller's status")
			}
			gs = append(gs, uint32(g))
		}
		return gs, nil
	}
	return nil, errors.New("no Groups: line in the caller's status")
}

// allowed says whether p may use the API.
func (s *Server) allowed(p Peer) bool {
	if p.Err != nil {
		return false
	}
	// Root, and the agent's own user: a caller running as the agent's uid
	// could act as the agent anyway (a demo or test agent runs as a plain
	// user; in production the agent is root, so this adds no one).
	if p.UID == 0 || int64(p.UID) == int64(os.Getuid()) {
		return true
	}
	if s.gid < 0 {
		return false
	}
	g := uint32(s.gid)
	if p.GID == g {
		return true
	}
	for _, x := range p.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// guard refuses callers that are neither root nor in the API group.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PeerOf(r.Context())
		if !s.allowed(p) {
			msg := "permission denied: only root may use this API"
			if s.gid >= 0 {
				msg = "permission denied: only root and members of group " + s.cfg.Group + " may use this API"
			}
			args := []any{"pid", p.PID, "uid", p.UID, "gid", p.GID, "method", r.Method, "path", r.URL.Path}
			if p.Err != nil {
				args = append(args, "err", p.Err)
			}
			s.log.Warn("api caller refused", args...)
			writeError(w, apperr.New(apperr.Forbidden, msg))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// limitListener serves at most n connections at once and reads each
// one's peer at accept.
type limitListener struct {
	net.Listener
	sem     chan struct{}
	done    chan struct{}
	once    sync.Once
	procDir string
}

func newLimitListener(l net.Listener, n int, procDir string) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{}), procDir: procDir}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &peerConn{Conn: c, peer: readPeer(c, l.procDir), release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type peerConn struct {
	net.Conn
	peer    Peer
	once    sync.Once
	release func()
}

func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func inode(path string) uint64 {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
