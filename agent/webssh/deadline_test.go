package webssh

import (
	"net"
	"testing"
	"time"
)

// countingConn counts the write deadlines that reach the connection.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) SetWriteDeadline(time.Time) error { c.n++; return nil }
func (c *countingConn) SetDeadline(time.Time) error      { return nil }

// TestDeadlineConn: a write deadline reaches the connection only when it
// changes (the websocket library sets it before every frame).
func TestDeadlineConn(t *testing.T) {
	cc := &countingConn{}
	h := newDeadlineConn(cc)
	d1, d2 := time.Unix(100, 0), time.Unix(101, 0)
	for _, tc := range []struct {
		name  string
		set   func()
		wantN int
	}{
		{"first", func() { h.SetWriteDeadline(d1) }, 1},
		{"same again", func() { h.SetWriteDeadline(d1) }, 1},
		{"moved", func() { h.SetWriteDeadline(d2) }, 2},
		{"both by SetDeadline, then the same write deadline", func() { h.SetDeadline(d1); h.SetWriteDeadline(d1) }, 2},
		{"after SetDeadline, another", func() { h.SetWriteDeadline(d2) }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			if cc.n != tc.wantN {
				t.Errorf("%d deadlines reached the connection, want %d", cc.n, tc.wantN)
			}
		})
	}
}

// TestAttachmentDeadline: the attachment moves its write deadline only
// once it has come nearer than writeTimeout-deadlineSlack.
func TestAttachmentDeadline(t *testing.T) {
	a := &attachment{}
	a.wdl = time.Now().Add(writeTimeout - deadlineSlack/2)
	old := a.wdl
	a.deadline() // a nil conn would panic if it were set now
	if !a.wdl.Equal(old) {
		t.Errorf("deadline moved at %v ahead, want kept", time.Until(old))
	}
}
