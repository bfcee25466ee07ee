package webssh

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// deadlineConn is a websocket's TCP connection that passes a write deadline
// on only when it changes: the websocket library sets the connection's
// deadline before every frame, and the attachment moves it once a second
// (attachment.deadline), so the runtime's timer is touched once a second,
// not per frame.
type deadlineConn struct {
	net.Conn
	dmu sync.Mutex // control frames may be written beside data frames
	wdl time.Time  // the write deadline last passed on
}

func newDeadlineConn(c net.Conn) *deadlineConn { return &deadlineConn{Conn: c} }

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
