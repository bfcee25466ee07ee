package webssh

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// handlerGoroutines counts the goroutines running the websocket's HTTP
// handler.
func handlerGoroutines() int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "webssh.(*Server).handleWS(")
}

// TestIdleSessionKeepsNoHandler: once a websocket is attached, its HTTP
// handler has returned (an idle session keeps no HTTP goroutine, stack or
// buffers), and the session goes on working through its own reader.
func TestIdleSessionKeepsNoHandler(t *testing.T) {
	e := newEnv(t)
	c := e.mustLogin("root")
	w := c.open()
	w.typeIn("echo he''llo\r")
	w.expect("hello", 10*time.Second)
	waitFor(t, "the websocket's HTTP handler to return", 10*time.Second, func() bool { return handlerGoroutines() == 0 })
	w.typeIn("echo ag''ain\r")
	w.expect("again", 10*time.Second)
	if got := len(e.srv.Sessions()); got != 1 {
		t.Errorf("%d sessions, want 1", got)
	}
}
