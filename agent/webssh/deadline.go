package webssh

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// deadlineConn is a websocket's TCP connection that passes a write deadline
// on only when it changes: the websocket library sets the connection's
// deadline before every frame, and the attachment moves it once a second
// (attachment.deadline), so the runtime's timer is touched once a second,
// not per frame. On a connection with a file descriptor (TCP, not TLS), its
// reads and small writes go by rawRead and rawWrite on the runtime poller.
type deadlineConn struct {
	net.Conn
	dmu sync.Mutex      // control frames may be written beside data frames
	wdl time.Time       // the write deadline last passed on
	rc  syscall.RawConn // nil: no descriptor, the connection's own Read and Write
}

func newDeadlineConn(c net.Conn) *deadlineConn {
	d := &deadlineConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			d.rc = rc
		}
	}
	return d
}

// rawSmall is the largest write that goes by rawWrite.
const rawSmall = 4 << 10

// Read reads what the connection has, waiting on the runtime poller while
// it has nothing, as net.Conn's Read does (deadlines, close, io.EOF).
func (c *deadlineConn) Read(p []byte) (int, error) {
	if c.rc == nil || len(p) == 0 {
		return c.Conn.Read(p)
	}
	var n int
	var err error
	if rerr := c.rc.Read(func(fd uintptr) bool {
		n, err = rawRead(int(fd), p)
		return !errors.Is(err, unix.EAGAIN)
	}); rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting on the runtime poller for room; writes
// larger than rawSmall take the connection's own Write.
func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.rc == nil || len(p) > rawSmall {
		return c.Conn.Write(p)
	}
	n := 0
	var err error
	if werr := c.rc.Write(func(fd uintptr) bool {
		var k int
		k, err = rawWrite(int(fd), p[n:])
		if errors.Is(err, unix.EAGAIN) {
			err = nil
			return false
		}
		n += k
		return err != nil || n == len(p)
	}); werr != nil {
		return n, werr
	}
	return n, err
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if t.Equal(c.wdl) {
		return nil
	}
	c.wdl = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.wdl = t
	return c.Conn.SetDeadline(t)
}

// hijackWriter hands the websocket upgrader a deadlineConn for the hijacked
// connection.
type hijackWriter struct {
	http.ResponseWriter
	conn *deadlineConn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = newDeadlineConn(c)
	return w.conn, brw, nil
}
