package web

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunServes(t *testing.T) {
	e := newEnv(t, nil)
	addr, stop := e.run()
	if got := e.srv.Addr(); got == nil || got.String() != addr {
		t.Errorf("Addr() = %v, want %s", got, addr)
	}
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("status: %d", resp.StatusCode)
	}
	resp.Body.Close()
	stop()
	if e.srv.Addr() != nil {
		t.Error("Addr() after Run returned, want nil")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Run returned")
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newEnv(t, func(c *envConfig) { c.Addr = ln.Addr().String() })
	if err := e.srv.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port = %v, want a listen error", err)
	}
}

// TestSlowClientCut: a client that never finishes its header is cut off
// after ReadHeaderTimeout, so it cannot hold a goroutine.
func TestSlowClientCut(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.ReadHeaderTimeout = 100 * time.Millisecond })
	addr, _ := e.run()
	for _, partial := range []string{"", "GET / HTTP/1.1\r\nHost: x\r\n", "GET / HTTP/1.1\r\nX-Slow: aaaa"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetReadDeadline(start.Add(10 * time.Second)) // the test's own limit, far above the server's
		if _, err := io.WriteString(c, partial); err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, c) // returns when the server closes the connection
		took := time.Since(start)
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("partial header %q: the server kept the connection open for %v", partial, took)
		}
		if took > 5*time.Second {
			t.Errorf("partial header %q: cut after %v, want about 100ms", partial, took)
		}
	}
}

func TestHeaderSizeBounded(t *testing.T) {
	e := newEnv(t, nil)
	addr, _ := e.run()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	}()
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 431") {
		t.Errorf("64 KiB header: got %.40q, want 431", b)
	}
}

// TestGracefulShutdown: a request in flight when the context ends is
// finished, new connections are refused, and Run returns nil after.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	next := e.srv.handler
	e.srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
			io.WriteString(w, "finished")
			return
		}
		next.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(t.Context())
	listening := make(chan net.Addr, 1)
	e.srv.cfg.OnListen = func(a net.Addr) { listening <- a }
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	addr := (<-listening).String()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	// Shutdown closes the listener first: wait for that, by dialling until refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after cancel")
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned %v with a request in flight", err)
		default:
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a request in flight", err)
	default:
	}
	close(release)
	if b := <-got; b != "finished" {
		t.Errorf("in-flight request got %q, want it finished", b)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// TestShutdownDeadline: a request that outlives ShutdownTimeout is cut and
// Run still returns.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.ShutdownTimeout = 50 * time.Millisecond })
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	next := e.srv.handler
	e.srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stuck" {
			close(entered)
			select {
			case <-release:
			case <-r.Context().Done(): // srv.Close cancels it
			}
			return
		}
		next.ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(t.Context())
	listening := make(chan net.Addr, 1)
	e.srv.cfg.OnListen = func(a net.Addr) { listening <- a }
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	addr := (<-listening).String()
	go func() {
		if resp, err := http.Get("http://" + addr + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its shutdown deadline")
	}
}

// TestOnRequest: Config.OnRequest is called once for every request,
// refused ones included.
func TestOnRequest(t *testing.T) {
	n := 0
	e := newEnv(t, func(c *envConfig) { c.OnRequest = func() { n++ } })
	for _, p := range []string{"/", "/api/v1/status", "/metrics", "/a/../b"} {
		e.do("GET", p).Body.Close()
	}
	if n != 4 {
		t.Errorf("OnRequest called %d times for 4 requests", n)
	}
}
