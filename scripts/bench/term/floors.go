package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"osmanager/agent/webssh"
)

// ptyTerm is the pty+shell floor: the same login shell, with the
// agent's environment, on a pty whose master this process reads itself,
// in the measuring goroutine: a blocking read, no poller, no hand-off.
type ptyTerm struct {
	cmd *exec.Cmd
	fd  int
	buf []byte
}

func openPty(tmp string) (*ptyTerm, error) {
	m, tty, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	fd, err := unix.Dup(int(m.Fd())) // Fd leaves it blocking
	m.Close()
	if err != nil {
		return nil, err
	}
	unix.SetNonblock(fd, false)
	pty.Setsize(tty, &pty.Winsize{Cols: 120, Rows: 40})
	home := filepath.Join(tmp, "home")
	cmd := exec.Command(shellBin)
	cmd.Args = []string{"-" + filepath.Base(shellBin)}
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "SHELL=" + shellBin, "USER=root", "LOGNAME=root",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm-256color", "COLORTERM=truecolor", "LANG=C.UTF-8"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &ptyTerm{cmd: cmd, fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (p *ptyTerm) send(keys string) error {
	_, err := unix.Write(p.fd, []byte(keys))
	return err
}

// recv reads the master directly; poll only bounds the wait, and only when
// nothing is ready (a ready master is read at once).
func (p *ptyTerm) recv(timeout time.Duration) ([]byte, error) {
	for {
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if n == 0 && err == nil {
			n, err = unix.Poll(fds, int(timeout.Milliseconds())+1)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errors.New("timeout")
		}
		k, err := unix.Read(p.fd, p.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if k <= 0 || err != nil {
			return nil, fmt.Errorf("pty read: %v", err)
		}
		return p.buf[:k], nil
	}
}

// close hangs up the terminal (closing the master: the shell's writes fail
// and it gets SIGHUP), and kills the shell if it is still there after 2 s.
func (p *ptyTerm) close() {
	unix.Close(p.fd)
	p.cmd.Process.Signal(syscall.SIGHUP)
	t := time.AfterFunc(2*time.Second, func() { p.cmd.Process.Kill() })
	p.cmd.Wait()
	t.Stop()
}

// serveRelay is a child: the relay floor, the least a websocket terminal
// does. Per connection, after the Hello, the same login shell on a pty
// whose master is on the runtime poller; one goroutine reads the master
// and writes each read as an Output frame, the connection's own reads the
// Inputs and writes them to the master. No window, no acks (ignored), no
// deadlines: what the agent's design costs is the agent against this.
func serveRelay(tmp, addr string) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, WriteBufferSize: 64<<10 + 64}
	return serveWS(addr, up, func(c *websocket.Conn) {
		if _, _, err := c.ReadMessage(); err != nil { // the Hello
			return
		}
		p, err := openPty(tmp)
		if err != nil {
			return
		}
		defer p.close()
		fd, err := unix.Dup(p.fd)
		if err != nil {
			return
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return
		}
		master := os.NewFile(uintptr(fd), "/dev/ptmx") // on the poller
		defer master.Close()
		go func() {
			buf := make([]byte, 64<<10)
			off := uint64(0)
			for {
				n, err := master.Read(buf)
				if err != nil {
					c.Close()
					return
				}
				if c.WriteMessage(websocket.BinaryMessage, webssh.Output{Offset: off, Data: buf[:n]}.Append(nil)) != nil {
					return
				}
				off += uint64(n)
			}
		}()
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if m, err := webssh.Parse(b); err == nil {
				if in, ok := m.(webssh.Input); ok {
					master.Write(in.Data)
				}
			}
		}
	})
}

// startRelay starts the relay floor's child.
func startRelay(tmp string) (string, func(), error) {
	return startChild("relay " + tmp)
}

// serveEcho is a child: a bare gorilla websocket server echoing every
// message, the websocket floor.
func serveEcho(addr string) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return serveWS(addr, up, func(c *websocket.Conn) {
		for {
			t, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, b); err != nil {
				return
			}
		}
	})
}

// serveWS is a child's server: it listens on addr, says READY, and hands
// each upgraded connection to handle (closed after).
func serveWS(addr string, up websocket.Upgrader, handle func(*websocket.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("READY")
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}))
}

func startEcho() (string, func(), error) { return startChild("wsecho") }

// startChild starts this program as the child role, listening on a free
// address it returns.
func startChild(role string) (string, func(), error) {
	addr := freeAddr()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"="+role+" "+addr)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	if l := bufio.NewScanner(out); !l.Scan() || l.Text() != "READY" {
		stop()
		return "", nil, fmt.Errorf("%s did not start", strings.Fields(role)[0])
	}
	return addr, stop, nil
}

// wsEcho times n round trips of a 2-byte message (an Input of one key)
// through the echo server, with the client's reader handing each message
// on through a channel, as the agent's client does.
func wsEcho(addr string, n int) ([]float64, error) {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			out <- b
		}
	}()
	const warm = 10
	ds := make([]float64, 0, n)
	for i := range n + warm {
		start := time.Now()
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte{'i', byte('a' + i%26)}); err != nil {
			return nil, err
		}
		select {
		case _, ok := <-out:
			if !ok {
				return nil, errors.New("echo server closed")
			}
		case <-time.After(10 * time.Second):
			return nil, errors.New("echo timeout")
		}
		if i >= warm {
			ds = append(ds, float64(time.Since(start).Nanoseconds())/1e3)
		}
	}
	return ds, nil
}

// siabServer is Debian's shellinaboxd on loopback, running the same shell.
type siabServer struct {
	cmd *exec.Cmd
	url string
}

func startSIAB(tmp string) (*siabServer, error) {
	if _, err := os.Stat(*siabBin); err != nil {
		return nil, fmt.Errorf("%s missing (apt-get install shellinabox)", *siabBin)
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	u, g := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	cmd := exec.Command(*siabBin, "-t", "--localhost-only", "-p", port, "--no-beep",
		"-s", "/:"+u+":"+g+":"+filepath.Join(tmp, "home")+":"+shellBin+" -l")
	cmd.Stderr = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{"HOME=" + filepath.Join(tmp, "home"), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &siabServer{cmd: cmd, url: "http://" + addr + "/"}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return s, nil
		}
		if i > 100 {
			s.stop()
			return nil, errors.New("shellinaboxd did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *siabServer) stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	s.cmd.Wait()
}

// siabSession drives shellinabox's long-poll protocol: a POST with the
// session id waits for output (JSON {"session", "data"}); keys go in their
// own POST as hex.
type siabSession struct {
	url     string
	session string
	hc      *http.Client
	out     chan []byte
	errc    chan error
	stop    chan struct{}
}

func (srv *siabServer) open() (*siabSession, error) {
	s := &siabSession{url: srv.url, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		out: make(chan []byte, 1024), errc: make(chan error, 1), stop: make(chan struct{})}
	sid, data, err := s.post(url.Values{"width": {"120"}, "height": {"40"}, "rooturl": {s.url}})
	if err != nil {
		return nil, err
	}
	if sid == "" {
		return nil, errors.New("shellinabox gave no session")
	}
	s.session = sid
	if len(data) > 0 {
		s.out <- data
	}
	go func() {
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			_, data, err := s.post(url.Values{"width": {"120"}, "height": {"40"}, "session": {s.session}})
			if err != nil {
				s.errc <- err
				return
			}
			if len(data) > 0 {
				select {
				case s.out <- data:
				case <-s.stop:
					return
				}
			}
		}
	}()
	return s, nil
}

func (s *siabSession) close() {
	close(s.stop)
	s.send("exit\r")
	s.hc.CloseIdleConnections()
}

func (s *siabSession) post(form url.Values) (session string, data []byte, err error) {
	resp, err := s.hc.PostForm(s.url, form)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != 200 {
		return "", nil, fmt.Errorf("shellinabox: %s", resp.Status)
	}
	var r struct {
		Session string `json:"session"`
		Data    string `json:"data"`
	}
	if len(body) > 0 && body[0] == '{' {
		if err := json.Unmarshal(body, &r); err != nil {
			return "", nil, fmt.Errorf("shellinabox reply: %w", err)
		}
	}
	return r.Session, []byte(r.Data), nil
}

func (s *siabSession) send(keys string) error {
	_, _, err := s.post(url.Values{"width": {"120"}, "height": {"40"}, "session": {s.session}, "keys": {strings.ToUpper(fmt.Sprintf("%x", keys))}})
	return err
}

func (s *siabSession) recv(timeout time.Duration) ([]byte, error) {
	return recvOutput(s.out, s.errc, timeout)
}
