package webssh

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair is a loopback TCP connection: the accepted end and the dialled one.
func tcpPair(t *testing.T) (srv, cli net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	cli, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	srv, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { srv.Close() })
	return srv, cli
}

// TestRawReadWrite: the raw syscalls read and write a non-blocking fd as
// read(2) and write(2) do, EAGAIN included.
func TestRawReadWrite(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	buf := make([]byte, 8)
	for _, tc := range []struct {
		name    string
		do      func() (int, error)
		wantN   int
		wantErr error
	}{
		{"read of an empty pipe", func() (int, error) { return rawRead(fds[0], buf) }, 0, unix.EAGAIN},
		{"write", func() (int, error) { return rawWrite(fds[1], []byte("key")) }, 3, nil},
		{"read", func() (int, error) { return rawRead(fds[0], buf) }, 3, nil},
		{"empty buffer", func() (int, error) { return rawRead(fds[0], nil) }, 0, nil},
		{"bad fd", func() (int, error) { return rawWrite(-1, []byte("x")) }, 0, unix.EBADF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tc.do()
			if n != tc.wantN || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("got %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
		})
	}
	if string(buf[:3]) != "key" {
		t.Errorf("read %q, want %q", buf[:3], "key")
	}
}

// TestDeadlineConnRaw: on a TCP connection, reads and small writes go by
// the raw syscalls and keep net.Conn's behaviour: data both ways, a write
// that waits for room, deadlines, end of stream, and a close that ends a
// read in progress.
func TestDeadlineConnRaw(t *testing.T) {
	t.Run("pipe has no fd: the plain path", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if d := newDeadlineConn(a); d.rc != nil {
			t.Error("a net.Pipe end got a raw fd")
		}
	})
	t.Run("both ways", func(t *testing.T) {
		s, c := tcpPair(t)
		d := newDeadlineConn(s)
		if d.rc == nil {
			t.Fatal("a TCP connection has no raw fd")
		}
		if _, err := c.Write([]byte("ab")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := d.Read(buf)
		if err != nil || string(buf[:n]) != "ab" {
			t.Errorf("read %q, %v; want %q", buf[:n], err, "ab")
		}
		for _, size := range []int{3, rawSmall, rawSmall + 1, 256 << 10} {
			p := bytes.Repeat([]byte{'x'}, size)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, size)
				_, err := io.ReadFull(c, b)
				if err != nil {
					b = nil
				}
				got <- b
			}()
			if n, err := d.Write(p); n != size || err != nil {
				t.Errorf("write of %d: %d, %v", size, n, err)
			}
			if b := <-got; !bytes.Equal(b, p) {
				t.Errorf("write of %d: the peer read %d bytes, not what was written", size, len(b))
			}
		}
	})
	t.Run("a small write waits for room", func(t *testing.T) {
		s, c := tcpPair(t)
		d := newDeadlineConn(s)
		s.(*net.TCPConn).SetWriteBuffer(4 << 10)
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		// Fill the socket until a raw write would block.
		chunk := bytes.Repeat([]byte{'y'}, rawSmall)
		sent := 0
		full := make(chan struct{})
		go func() {
			defer close(full)
			for {
				d.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := d.Write(chunk)
				sent += n
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("write on a full socket: %v, want a deadline error", err)
					}
					return
				}
			}
		}()
		<-full
		d.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := d.Write([]byte("end"))
			done <- err
		}()
		b := make([]byte, 64<<10)
		var got []byte
		for !bytes.HasSuffix(got, []byte("end")) {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(b)
			if err != nil {
				t.Fatalf("peer read after %d bytes: %v", len(got), err)
			}
			got = append(got, b[:n]...)
		}
		if err := <-done; err != nil {
			t.Errorf("write once there was room: %v", err)
		}
		if want := sent + len("end"); len(got) != want {
			t.Errorf("peer read %d bytes, %d were written", len(got), want)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		s, _ := tcpPair(t)
		d := newDeadlineConn(s)
		d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var ne net.Error
		if _, err := d.Read(make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read past the deadline: %v, want a timeout", err)
		}
	})
	t.Run("end of stream", func(t *testing.T) {
		s, c := tcpPair(t)
		d := newDeadlineConn(s)
		c.Close()
		if n, err := d.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("read after the peer closed: %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("close ends a read", func(t *testing.T) {
		s, _ := tcpPair(t)
		d := newDeadlineConn(s)
		errc := make(chan error, 1)
		go func() {
			_, err := d.Read(make([]byte, 8))
			errc <- err
		}()
		d.Close() // before or during the read: either way it ends
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("read on a closed connection: %v, want net.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("read not ended by close")
		}
	})
}
