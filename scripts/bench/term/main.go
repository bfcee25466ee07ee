// Command term benchmarks the web terminal (agent/webssh) beside
// shellinabox, in one run on this machine:
//
//   - output throughput: `cat` of a base64 file (default 100 MB) to a Go
//     client until a marker printed after it, in MB/s;
//   - server CPU seconds per 100 MB of that output;
//   - keystroke echo latency, p50 and p99 over 1000 keys;
//   - agent memory per idle session (Go heap and stacks in use, and RSS),
//     and RSS after a burst, sampled until it is back to idle;
//   - the same file rendered by xterm.js in headless Chromium (our page).
//
// shellinabox (Debian's shellinaboxd) is started on loopback, driven through
// its long-poll protocol (POST width/height/session[/keys]) from Go. The
// agent side runs in a child process (this program re-executed) so its CPU
// and memory are its own.
//
//	go run ./scripts/bench/term [-mb 100] [-keys 1000] [-idle 100] [-no-browser] [-no-siab]
//
// OSM_BENCH_WINDOW=bytes sets the agent's output window; OSM_BENCH_PPROF=file
// writes a CPU profile of the agent side.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/gorilla/websocket"

	"osmanager/agent/sysroot"
	"osmanager/agent/webssh"
)

const (
	serveEnv = "OSM_BENCH_TERM_SERVE" // set in the child: "sysroot-dir listen-addr"
	password = "bench-password"
	marker   = "END_OF_BENCH"
	typedEnd = "E''ND_OF_BENCH" // what is typed: the echo of it is not the marker
)

var (
	mb        = flag.Int("mb", 100, "size of the file cat prints, in MB")
	keys      = flag.Int("keys", 1000, "keystrokes for the echo latency")
	idle      = flag.Int("idle", 100, "idle sessions for the memory figure")
	noBrowser = flag.Bool("no-browser", false, "skip the Chromium rendering run")
	noSIAB    = flag.Bool("no-siab", false, "skip shellinabox")
	siabBin   = flag.String("shellinaboxd", "/usr/bin/shellinaboxd", "shellinabox daemon")

	browserDebug = flag.Bool("browser-debug", false, "print the renderer in use and xterm.js's own parse time for 20 MB")
)

func main() {
	if v := os.Getenv(serveEnv); v != "" {
		if err := serve(v); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench term:", err)
		os.Exit(1)
	}
}

// serve is the child: a webssh server in login mode on a scratch system
// root. SIGUSR1 prints the Go memory in use after a GC.
func serve(arg string) error {
	dir, addr, _ := strings.Cut(arg, " ")
	sys, err := sysroot.New(filepath.Join(dir, "sys"))
	if err != nil {
		return err
	}
	ly, err := sysroot.New(filepath.Join(dir, "ly"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := webssh.New(webssh.Config{
		Mode: webssh.ModeLogin, AsSelf: os.Geteuid() != 0, Sys: sys, Conf: ly,
		MaxSessions: 1000, UserSessions: 1000, UserLogins: 1000, LoginBudget: 1 << 20, FailDelay: -1, Window: envInt("OSM_BENCH_WINDOW"),
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if p := os.Getenv("OSM_BENCH_PPROF"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, false) }()
	fmt.Println("READY")
	for {
		select {
		case err := <-done:
			return err
		case <-usr:
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Printf("MEM %d %d %d\n", m.HeapInuse, m.StackInuse, runtime.NumGoroutine())
		}
	}
}

type result struct {
	mbps, cpuPer100, p50, p99 float64
	err                       error
}

func run() error {
	tmp, err := os.MkdirTemp("", "osm-bench-term-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	if err := makeSysroot(tmp); err != nil {
		return err
	}
	file := filepath.Join(tmp, "data.b64")
	size, err := makeData(file, *mb<<20)
	if err != nil {
		return err
	}
	fmt.Printf("file: %s, %.1f MB of base64 lines\n", file, float64(size)/1e6)

	// The agent side, in a child process.
	addr := freeAddr()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), serveEnv+"="+tmp+" "+addr)
	child.Stderr = os.Stderr
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "READY" {
		return errors.New("bench server did not start")
	}
	agent := &agentClient{base: "http://" + addr}
	if err := agent.login(); err != nil {
		return err
	}
	memstat := func() (heap, stack, rss int64) {
		child.Process.Signal(syscall.SIGUSR1)
		for lines.Scan() {
			if f := strings.Fields(lines.Text()); len(f) == 4 && f[0] == "MEM" {
				h, _ := strconv.ParseInt(f[1], 10, 64)
				s, _ := strconv.ParseInt(f[2], 10, 64)
				return h, s, rss1(child.Process.Pid)
			}
		}
		return 0, 0, 0
	}

	// Throughput, CPU and echo latency: agent.
	var ours, siab result
	var best float64
	sess, err := agent.open()
	if err != nil {
		return err
	}
	for range 3 {
		r := throughput(sess, file, size, []int{child.Process.Pid})
		if r.err != nil {
			return fmt.Errorf("agent throughput: %w", r.err)
		}
		if r.mbps > best {
			best, ours.mbps, ours.cpuPer100 = r.mbps, r.mbps, r.cpuPer100
		}
	}
	ours.p50, ours.p99, err = latency(sess)
	if err != nil {
		return fmt.Errorf("agent echo: %w", err)
	}
	sess.close()
	isess, err := agent.open() // a fresh shell: the echo test leaves its stty behind
	if err != nil {
		return err
	}
	ctrlC, err := interrupt(isess)
	if err != nil {
		return fmt.Errorf("agent Ctrl-C: %w", err)
	}
	isess.close()

	// shellinabox.
	if !*noSIAB {
		siab = runSIAB(tmp, file, size)
	}

	// Memory: idle sessions, then a burst.
	h0, s0, r0 := memstat()
	var conns []*agentSession
	for range *idle {
		c, err := agent.open()
		if err != nil {
			return fmt.Errorf("idle session: %w", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if err := c.run("echo re''ady", "ready"); err != nil {
			return err
		}
	}
	h1, s1, r1 := memstat()
	perHeap := float64((h1+s1)-(h0+s0)) / float64(*idle)
	perRSS := float64(r1-r0) / float64(*idle)
	burst := throughput(conns[0], file, size, []int{child.Process.Pid})
	if burst.err != nil {
		return burst.err
	}
	_, _, rb := memstat()
	back := -1.0
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		if rss1(child.Process.Pid) <= r1+r1/10 {
			back = time.Since(start).Seconds()
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	_, _, r2 := memstat()
	for _, c := range conns {
		c.close()
	}

	// Browser.
	var browser float64
	var browserErr error
	if !*noBrowser {
		browser, browserErr = renderInBrowser(agent.base, file, size)
	}

	fmt.Printf("\n%-44s %14s %14s %10s\n", "measurement", "agent", "shellinabox", "target")
	row := func(name, a, b, target string) { fmt.Printf("%-44s %14s %14s %10s\n", name, a, b, target) }
	f1 := func(v float64, unit string) string { return fmt.Sprintf("%.1f %s", v, unit) }
	sv := func(v float64, unit string) string {
		if *noSIAB || siab.err != nil {
			return "-"
		}
		return f1(v, unit)
	}
	row(fmt.Sprintf("throughput, cat %d MB (best of 3 / 1)", *mb), f1(ours.mbps, "MB/s"), sv(siab.mbps, "MB/s"), "≥10×")
	row("server CPU per 100 MB", fmt.Sprintf("%.2f s", ours.cpuPer100), sv(siab.cpuPer100, "s"), "≤1/8")
	row(fmt.Sprintf("echo latency p50 (%d keys)", *keys), f1(ours.p50, "µs"), sv(siab.p50, "µs"), "≤250 µs")
	row(fmt.Sprintf("echo latency p99 (%d keys)", *keys), f1(ours.p99, "µs"), sv(siab.p99, "µs"), "≤500 µs")
	row("Ctrl-C during a `yes` flood → prompt (median of 5)", fmt.Sprintf("%.0f ms", ctrlC), "", "≤200 ms")
	row(fmt.Sprintf("memory per idle session, heap+stacks (%d)", *idle), fmt.Sprintf("%.1f kB", perHeap/1024), "", "≤64 kB")
	row("memory per idle session, RSS", fmt.Sprintf("%.1f kB", perRSS/1024), "", "")
	row("RSS idle / after burst / +30 s", fmt.Sprintf("%.1f/%.1f/%.1f MB", float64(r1)/1e6, float64(rb)/1e6, float64(r2)/1e6), "", "")
	backS := "not in 30 s"
	if back >= 0 {
		backS = fmt.Sprintf("%.1f s", back)
	}
	row("back to idle RSS (+10%) after the burst", backS, "", "≤30 s")
	if !*noBrowser {
		if browserErr != nil {
			row("Chromium xterm.js rendering", "error", "", "≥10 MB/s")
			fmt.Println("browser:", browserErr)
		} else {
			row("Chromium xterm.js rendering", f1(browser, "MB/s"), "", "≥10 MB/s")
		}
	}
	if siab.err != nil {
		fmt.Println("shellinabox:", siab.err)
	}
	if siab.mbps > 0 {
		fmt.Printf("\nratios: throughput %.1f× shellinabox, CPU per 100 MB %.2f of shellinabox's\n", ours.mbps/siab.mbps, ours.cpuPer100/siab.cpuPer100)
	}
	return nil
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func makeSysroot(dir string) error {
	h, err := shacrypt.NewSHA512()
	if err != nil {
		return err
	}
	d, err := h.Hash(password)
	if err != nil {
		return err
	}
	home := filepath.Join(dir, "home")
	files := map[string]string{
		"sys/etc/passwd":         "root:x:0:0:root:" + home + ":/bin/sh\n",
		"sys/etc/shadow":         "root:" + d.Encode() + ":19000:0:99999:7:::\n",
		"sys/etc/group":          "root:x:0:\n",
		"sys/etc/default/locale": "LANG=C.UTF-8\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	os.MkdirAll(home, 0o755)
	return os.MkdirAll(filepath.Join(dir, "ly/conf"), 0o700)
}

// makeData writes base64 lines of random bytes, about n bytes.
func makeData(path string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	raw := make([]byte, 57)
	line := make([]byte, 77)
	total := 0
	for total < n {
		rand.Read(raw)
		base64.StdEncoding.Encode(line, raw)
		line[76] = '\n'
		w.Write(line)
		total += len(line)
	}
	f.Chmod(0o644)
	return total, w.Flush()
}

// cpuTicks sums utime+stime (clock ticks) of the pids and of every
// process whose name is in names.
func cpuTicks(pids []int, names ...string) int64 {
	set := map[int]bool{}
	for _, p := range pids {
		set[p] = true
	}
	if len(names) > 0 {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				b, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
				if slices.Contains(names, strings.TrimSpace(string(b))) {
					set[pid] = true
				}
			}
		}
	}
	var total int64
	for pid := range set {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}

const ticksPerSecond = 100 // Linux USER_HZ

func rss1(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// terminal is a session of either server, as the measurements see it.
type terminal interface {
	send(keys string) error
	// recv returns the next output bytes.
	recv(timeout time.Duration) ([]byte, error)
}

// waitFor reads output until it contains s.
func waitFor(t terminal, s string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	var tail []byte
	n := 0
	for {
		b, err := t.recv(time.Until(deadline))
		if err != nil {
			return n, err
		}
		n += len(b)
		tail = append(tail, b...)
		if bytes.Contains(tail, []byte(s)) {
			return n, nil
		}
		if len(tail) > 64 {
			tail = tail[len(tail)-64:]
		}
	}
}

func throughput(t terminal, file string, size int, pids []int, names ...string) result {
	c0 := cpuTicks(pids, names...)
	start := time.Now()
	if err := t.send("cat " + file + "; echo " + typedEnd + "\r"); err != nil {
		return result{err: err}
	}
	n, err := waitFor(t, marker, 10*time.Minute)
	if err != nil {
		return result{err: err}
	}
	d := time.Since(start)
	cpu := float64(cpuTicks(pids, names...)-c0) / ticksPerSecond
	if n < size {
		return result{err: fmt.Errorf("received %d bytes, file has %d", n, size)}
	}
	return result{mbps: float64(size) / 1e6 / d.Seconds(), cpuPer100: cpu * 100e6 / float64(size)}
}

// latency types single keys (echoed by the terminal) and times each echo.
func latency(t terminal) (p50, p99 float64, err error) {
	if err := t.send("stty -icanon; cat > /dev/null\r"); err != nil {
		return 0, 0, err
	}
	// Let the command start: a key it echoes proves it.
	if _, err := waitFor(t, "cat > /dev/null", 10*time.Second); err != nil {
		return 0, 0, err
	}
	ds := make([]float64, 0, *keys)
	for i := range *keys + 20 {
		start := time.Now()
		k := string(rune('a' + i%26))
		if err := t.send(k); err != nil {
			return 0, 0, err
		}
		if _, err := waitFor(t, k, 10*time.Second); err != nil {
			return 0, 0, err
		}
		if i >= 20 { // warm-up
			ds = append(ds, float64(time.Since(start).Microseconds()))
		}
	}
	t.send("\x03stty icanon\r")
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], nil
}

// interrupt floods the terminal with `yes`, presses Ctrl-C and times until
// a command typed after it answers: what the user waits for, with whatever
// output was in flight read through. It returns the median of 5, in ms.
func interrupt(t terminal) (float64, error) {
	// Start once the shell answers.
	if err := t.send("echo RE''ADY\r"); err != nil {
		return 0, err
	}
	if _, err := waitFor(t, "READY", 10*time.Second); err != nil {
		return 0, err
	}
	var ds []float64
	for range 5 {
		if err := t.send("yes\r"); err != nil {
			return 0, err
		}
		if _, err := waitFor(t, "y\r\ny\r\ny\r\ny", 10*time.Second); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := t.send("\x03"); err != nil {
			return 0, err
		}
		if err := t.send("echo ST''OPPED\r"); err != nil {
			return 0, err
		}
		if _, err := waitFor(t, "STOPPED", 30*time.Second); err != nil {
			return 0, fmt.Errorf("no prompt after Ctrl-C: %w", err)
		}
		ds = append(ds, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// agentClient logs in to the agent's terminal.
type agentClient struct {
	base string
	jar  *cookiejar.Jar
}

func (a *agentClient) login() error {
	a.jar, _ = cookiejar.New(nil)
	hc := &http.Client{Jar: a.jar}
	resp, err := hc.Get(a.base + "/")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`data-csrf="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		return errors.New("no CSRF token in the page")
	}
	req, _ := http.NewRequest("POST", a.base+"/login", strings.NewReader(url.Values{"user": {"root"}, "password": {password}, "csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.base) // as a browser does
	resp, err = hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("login: %s", resp.Status)
	}
	return nil
}

type agentSession struct {
	conn *websocket.Conn
	rx   uint64
}

func (a *agentClient) open() (*agentSession, error) {
	d := websocket.Dialer{Jar: a.jar, ReadBufferSize: 256 << 10}
	conn, _, err := d.Dial(strings.Replace(a.base, "http", "ws", 1)+"/ws", http.Header{"Origin": {a.base}})
	if err != nil {
		return nil, err
	}
	s := &agentSession{conn: conn}
	conn.WriteMessage(websocket.BinaryMessage, webssh.Hello{Version: webssh.ProtocolVersion, Cols: 120, Rows: 40}.Append(nil))
	return s, nil
}

func (s *agentSession) close() { s.conn.Close() }

func (s *agentSession) send(keys string) error {
	return s.conn.WriteMessage(websocket.BinaryMessage, webssh.Input{Data: []byte(keys)}.Append(nil))
}

func (s *agentSession) recv(timeout time.Duration) ([]byte, error) {
	s.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		m, err := webssh.Parse(data)
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case webssh.Output:
			s.rx = m.Offset + uint64(len(m.Data))
			if err := s.conn.WriteMessage(websocket.BinaryMessage, webssh.Ack{Offset: s.rx}.Append(nil)); err != nil {
				return nil, err
			}
			return m.Data, nil
		case webssh.Exit:
			return nil, fmt.Errorf("session ended: %s", m.Reason)
		}
	}
}

func (s *agentSession) run(cmd, want string) error {
	if err := s.send(cmd + "\r"); err != nil {
		return err
	}
	_, err := waitFor(s, want, 10*time.Second)
	return err
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

func runSIAB(tmp, file string, size int) result {
	if _, err := os.Stat(*siabBin); err != nil {
		return result{err: fmt.Errorf("%s missing (apt-get install shellinabox)", *siabBin)}
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	u, g := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	cmd := exec.Command(*siabBin, "-t", "--localhost-only", "-p", port, "--no-beep",
		"-s", "/:"+u+":"+g+":"+tmp+":/bin/sh")
	cmd.Stderr = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return result{err: err}
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
	}()
	base := "http://" + addr + "/"
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			return result{err: errors.New("shellinaboxd did not start")}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &siabSession{url: base, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, out: make(chan []byte, 1024), errc: make(chan error, 1), stop: make(chan struct{})}
	if err := s.start(); err != nil {
		return result{err: err}
	}
	defer close(s.stop)
	// The shell may not read keys sent before it starts: ask until it answers.
	for i := 0; ; i++ {
		if err := s.send("echo RE''ADY\r"); err != nil {
			return result{err: err}
		}
		if _, err := waitFor(s, "READY", 5*time.Second); err == nil {
			break
		} else if i == 3 {
			return result{err: fmt.Errorf("no shell: %w", err)}
		}
	}
	r := throughput(s, file, size, nil, "shellinaboxd")
	if r.err != nil {
		return r
	}
	r.p50, r.p99, r.err = latency(s)
	return r
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

func (s *siabSession) start() error {
	sid, data, err := s.post(url.Values{"width": {"120"}, "height": {"40"}, "rooturl": {s.url}})
	if err != nil {
		return err
	}
	if sid == "" {
		return errors.New("shellinabox gave no session")
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
	return nil
}

func (s *siabSession) send(keys string) error {
	_, _, err := s.post(url.Values{"width": {"120"}, "height": {"40"}, "session": {s.session}, "keys": {strings.ToUpper(fmt.Sprintf("%x", keys))}})
	return err
}

func (s *siabSession) recv(timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case b := <-s.out:
		return b, nil
	case err := <-s.errc:
		return nil, err
	case <-t.C:
		return nil, errors.New("timeout")
	}
}
