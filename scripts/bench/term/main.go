// Command term benchmarks the web terminal (agent/webssh) beside its
// peer shellinabox and two floors, all in one run on this machine, with
// the same number of runs for each side, interleaved, and medians:
//
//   - keystroke echo latency, p50 and p99: a key typed at an interactive
//     bash prompt (`bash -l`, readline echoing the key, not the kernel),
//     timed until its echo reaches the client; then a backspace, awaited
//     but not timed, so the line never grows;
//   - output throughput: `cat` of a base64 file to a client until a marker
//     printed after it, in MB/s, and server CPU seconds per 100 MB;
//   - the agent's live heap and stacks after start, before any request;
//   - memory per idle session: N sessions opened on a fresh agent whose
//     baseline (GC'd, memory returned to the OS) was taken with two
//     sessions already open, each session's output acknowledged; Go heap
//     and stacks, and RSS, deltas over N;
//   - Ctrl-C during a `yes` flood until a typed command answers;
//   - the file rendered by xterm.js in headless Chromium (our page).
//
// The floors, measured in the same rounds:
//   - pty+shell: this process on a bare pty master (blocking reads, no
//     poller) driving the same `bash -l`, with the same environment;
//   - websocket round trip: a bare gorilla echo server in its own process,
//     the same client;
//   - bare relay: the least a websocket terminal does (serveRelay), in its
//     own process: the same shell on a pty on the runtime poller, a frame
//     per read, the same client. The sum of the first two is the goal's
//     floor; this one is what a Go process in the middle costs on the
//     machine, for reference.
//
// The client hands output on (a channel) before it writes the Ack, as the
// page does (it acks what xterm.js processed), so the Ack is off the timed
// path. The agent and the echo server run in child processes (this program
// re-executed), so their CPU and memory are their own.
//
//	go run ./scripts/bench/term [-short] [-runs 3] [-mb 100] [-keys 1000] [-idle 100] [-no-browser] [-no-siab] [-compare BIN]
//
// -compare BIN adds the agent of another build of this program (other
// webssh code, e.g. main's) as one more side in the same rounds, and its
// memory figures: before and after in one run.
//
// Each round runs every side once; the order turns by one each round and
// reverses every other round (roundOrder).
//
// It prints one table, then machine-readable lines for scripts/bench/all:
// figure<TAB>value<TAB>floor<TAB>ratio (floor and ratio "-" when there is
// none; lower is better for µs, kB and s, higher for MB/s).
//
// OSM_BENCH_WINDOW=bytes sets the agent's output window; OSM_BENCH_PPROF=file
// writes a CPU profile of the agent side; OSM_BENCH_HEAPPROF=prefix a heap
// profile at each memory reading (prefix.0, prefix.1, …).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"osmanager/agent/sysroot"
	"osmanager/agent/webssh"
	"osmanager/scripts/bench/internal/pstat"
)

const (
	roleEnv  = "OSM_BENCH_TERM_ROLE" // set in a child: "agent DIR ADDR" or "wsecho ADDR"
	password = "bench-password"
	marker   = "END_OF_BENCH"
	typedEnd = "E''ND_OF_BENCH" // what is typed: the echo of it is not the marker
	shellBin = "/bin/bash"
)

var (
	short     = flag.Bool("short", false, "a quick run for scripts/bench/all: -mb 20 -keys 300 -idle 30 -no-browser")
	runs      = flag.Int("runs", 3, "rounds; each side runs once per round, interleaved")
	mb        = flag.Int("mb", 100, "size of the file cat prints, in MB")
	keys      = flag.Int("keys", 1000, "keystrokes for the echo latency, per side, over all rounds")
	idle      = flag.Int("idle", 100, "idle sessions for the memory figure")
	noBrowser = flag.Bool("no-browser", false, "skip the Chromium rendering run")
	noSIAB    = flag.Bool("no-siab", false, "skip shellinabox")
	siabBin   = flag.String("shellinaboxd", "/usr/bin/shellinaboxd", "shellinabox daemon")

	compare     = flag.String("compare", "", "another build of this benchmark (other agent code): its agent runs as one more side, interleaved")
	compareName = flag.String("compare-name", "agent before", "the -compare side's name")

	browserDebug = flag.Bool("browser-debug", false, "print the renderer in use and xterm.js's own parse time for 20 MB")
)

func main() {
	if v := os.Getenv(roleEnv); v != "" {
		if err := child(v); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if *short {
		*mb, *keys, *idle, *noBrowser = 20, 300, 30, true
	}
	*runs = max(*runs, 1)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench term:", err)
		os.Exit(1)
	}
}

func child(arg string) error {
	f := strings.Fields(arg)
	switch {
	case len(f) == 3 && f[0] == "agent":
		return serveAgent(f[1], f[2])
	case len(f) == 2 && f[0] == "wsecho":
		return serveEcho(f[1])
	case len(f) == 3 && f[0] == "relay":
		return serveRelay(f[1], f[2])
	}
	return fmt.Errorf("bad %s %q", roleEnv, arg)
}

// serveAgent is a child: a webssh server in login mode on a scratch
// system root. SIGUSR1 prints the Go memory in use after a GC that also
// returns freed memory to the OS, so RSS is settled too.
func serveAgent(dir, addr string) error {
	if os.Getenv("OSM_BENCH_HEAPPROF") != "" {
		runtime.MemProfileRate = 1
	}
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
	heapN := 0
	for {
		select {
		case err := <-done:
			return err
		case <-usr:
			runtime.GC()
			debug.FreeOSMemory()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if p := os.Getenv("OSM_BENCH_HEAPPROF"); p != "" {
				if f, err := os.Create(fmt.Sprintf("%s.%d", p, heapN)); err == nil {
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
				heapN++
			}
			fmt.Printf("MEM %d %d %d\n", m.HeapInuse, m.StackInuse, runtime.NumGoroutine())
		}
	}
}

// agentProc is the agent child process.
type agentProc struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
	base  string
}

// startAgent starts an agent child; only the first, measured one
// (profile) writes OSM_BENCH_PPROF's CPU profile.
func startAgent(tmp, bin string, profile bool) (*agentProc, error) {
	addr := freeAddr()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), roleEnv+"=agent "+tmp+" "+addr)
	if !profile {
		cmd.Env = append(cmd.Env, "OSM_BENCH_PPROF=")
	}
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &agentProc{cmd: cmd, lines: bufio.NewScanner(out), base: "http://" + addr}
	if !p.lines.Scan() || p.lines.Text() != "READY" {
		p.stop()
		return nil, errors.New("bench agent did not start")
	}
	return p, nil
}

func (p *agentProc) stop() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() }

// mem returns the agent's Go heap and stacks in use and its RSS, settled.
func (p *agentProc) mem() (heapStack, rss int64) {
	p.cmd.Process.Signal(syscall.SIGUSR1)
	for p.lines.Scan() {
		if f := strings.Fields(p.lines.Text()); len(f) == 4 && f[0] == "MEM" {
			h, _ := strconv.ParseInt(f[1], 10, 64)
			s, _ := strconv.ParseInt(f[2], 10, 64)
			return h + s, rss1(p.cmd.Process.Pid)
		}
	}
	return 0, 0
}

// side is one thing measured: the agent, a peer or a floor.
type side struct {
	name  string
	open  func() (terminal, error) // nil: no throughput or echo through a terminal
	pids  func() []int
	names []string // process names whose CPU counts
	echo  func(n int) ([]float64, error)

	lat       []float64 // echo samples, µs, all rounds
	mbps, cpu []float64 // per round
	err       error
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
	fmt.Printf("file: %.1f MB of base64 lines; %d rounds, %d keys per side; %s; %d CPUs\n", float64(size)/1e6, *runs, *keys, shellBin+" -l", runtime.NumCPU())

	ag, err := startAgent(tmp, os.Args[0], true)
	if err != nil {
		return err
	}
	defer ag.stop()
	startHeap, _ := ag.mem() // live heap after start, before any request
	agent := &agentClient{base: ag.base}
	if err := agent.login(); err != nil {
		return err
	}
	var cmpAg *agentProc
	var cmpHeap int64
	if *compare != "" {
		if cmpAg, err = startAgent(tmp, *compare, false); err != nil {
			return fmt.Errorf("%s: %w", *compareName, err)
		}
		defer cmpAg.stop()
		cmpHeap, _ = cmpAg.mem()
	}
	echoAddr, stopEcho, err := startEcho()
	if err != nil {
		return err
	}
	defer stopEcho()
	relayAddr, stopRelay, err := startRelay(tmp)
	if err != nil {
		return err
	}
	defer stopRelay()
	relayJar, _ := cookiejar.New(nil)
	relayClient := &agentClient{base: "http://" + relayAddr, jar: relayJar}

	ours := &side{name: "agent", open: func() (terminal, error) { return agent.open() }, pids: func() []int { return []int{ag.cmd.Process.Pid} }}
	pty := &side{name: "pty+shell floor", open: func() (terminal, error) { return openPty(tmp) }, pids: func() []int { return nil }}
	ws := &side{name: "websocket floor", echo: func(n int) ([]float64, error) { return wsEcho(echoAddr, n) }}
	relay := &side{name: "relay floor", open: func() (terminal, error) { return relayClient.open() }, pids: func() []int { return nil }}
	sides := []*side{ours}
	var cmpClient *agentClient
	if cmpAg != nil {
		c := &agentClient{base: cmpAg.base}
		cmpClient = c
		if err := c.login(); err != nil {
			return fmt.Errorf("%s: %w", *compareName, err)
		}
		sides = append(sides, &side{name: *compareName, open: func() (terminal, error) { return c.open() }, pids: func() []int { return []int{cmpAg.cmd.Process.Pid} }})
	}
	var siab *siabServer
	if !*noSIAB {
		siab, err = startSIAB(tmp)
		if err != nil {
			fmt.Println("shellinabox:", err)
		} else {
			defer siab.stop()
			sides = append(sides, &side{name: "shellinabox", open: func() (terminal, error) { return siab.open() }, pids: func() []int { return nil }, names: []string{"shellinaboxd"}})
		}
	}
	sides = append(sides, pty, ws, relay)

	per := max(*keys / *runs, 1)
	for r := range *runs {
		for _, s := range roundOrder(sides, r) {
			if s.err != nil {
				continue
			}
			s.err = s.round(file, size, per, r)
			if s.err != nil && s == ours {
				return fmt.Errorf("agent: %w", s.err)
			}
		}
	}

	isess, err := agent.open() // a fresh shell
	if err != nil {
		return err
	}
	ctrlC, err := interrupt(isess)
	if err != nil {
		return fmt.Errorf("agent Ctrl-C: %w", err)
	}
	isess.close()
	ag.stop()

	var cmpCtrlC float64
	if cmpAg != nil {
		cs, err := cmpClient.open()
		if err != nil {
			return fmt.Errorf("%s: %w", *compareName, err)
		}
		if cmpCtrlC, err = interrupt(cs); err != nil {
			return fmt.Errorf("%s Ctrl-C: %w", *compareName, err)
		}
		cs.close()
		cmpAg.stop()
	}
	mem, err := idleMemory(tmp, os.Args[0], file, size)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	var cmpMem memResult
	if *compare != "" {
		if cmpMem, err = idleMemory(tmp, *compare, file, size); err != nil {
			return fmt.Errorf("%s memory: %w", *compareName, err)
		}
	}

	var browser float64
	var browserErr error
	if !*noBrowser {
		ag2, err := startAgent(tmp, os.Args[0], false)
		if err != nil {
			return err
		}
		browser, browserErr = renderInBrowser(ag2.base, file, size)
		ag2.stop()
	}

	// The table.
	var tsv []string
	fig := func(name string, v, floor float64, higherBetter bool) {
		f, r := "-", "-"
		if floor > 0 {
			f = strconv.FormatFloat(floor, 'f', 1, 64)
			if higherBetter {
				r = fmt.Sprintf("%.2f", floor/v)
			} else {
				r = fmt.Sprintf("%.2f", v/floor)
			}
		}
		tsv = append(tsv, fmt.Sprintf("%s\t%.1f\t%s\t%s", name, v, f, r))
	}
	fmt.Printf("\n%-34s %14s %14s %14s\n", "measurement", "value", "floor", "×floor")
	row := func(name string, v, floor float64, unit string, higherBetter bool, key string) {
		fs, rs := "", ""
		if floor > 0 {
			fs = fmt.Sprintf("%.1f %s", floor, unit)
			if higherBetter {
				rs = fmt.Sprintf("%.2f", floor/v)
			} else {
				rs = fmt.Sprintf("%.2f", v/floor)
			}
		}
		fmt.Printf("%-34s %14s %14s %14s\n", name, fmt.Sprintf("%.1f %s", v, unit), fs, rs)
		if key != "" {
			fig(key, v, floor, higherBetter)
		}
	}
	pF50, pF99 := pct(pty.lat, 50), pct(pty.lat, 99)
	wF50, wF99 := pct(ws.lat, 50), pct(ws.lat, 99)
	floor50, floor99 := pF50+wF50, pF99+wF99
	fmt.Printf("%-34s %14s\n", "echo, floors: pty+shell p50/p99", fmt.Sprintf("%.0f/%.0f µs", pF50, pF99))
	fmt.Printf("%-34s %14s\n", "echo, floors: websocket p50/p99", fmt.Sprintf("%.0f/%.0f µs", wF50, wF99))
	fig("term.floor.pty_echo_p50_us", pF50, 0, false)
	fig("term.floor.ws_echo_p50_us", wF50, 0, false)
	if relay.err != nil {
		fmt.Printf("relay floor: %v\n", relay.err)
	}
	rF50, rF99 := pct(relay.lat, 50), pct(relay.lat, 99)
	fmt.Printf("%-34s %14s\n", "echo, floor: bare relay p50/p99", fmt.Sprintf("%.0f/%.0f µs", rF50, rF99))
	fig("term.floor.relay_echo_p50_us", rF50, 0, false)
	fig("term.floor.relay_echo_p99_us", rF99, 0, false)
	ptyMB := median(pty.mbps)
	fmt.Printf("%-34s %14s\n", "throughput, floor: bare pty reader", fmt.Sprintf("%.1f MB/s", ptyMB))
	fig("term.floor.pty_mbps", ptyMB, 0, true)
	fmt.Printf("%-34s %14s\n", "throughput, floor: bare relay", fmt.Sprintf("%.1f MB/s", median(relay.mbps)))
	fig("term.floor.relay_mbps", median(relay.mbps), 0, true)
	for _, s := range sides {
		if s == pty || s == ws || s == relay {
			continue
		}
		key := "term." + strings.ReplaceAll(s.name, " ", "_")
		if s.err != nil {
			fmt.Printf("%s: %v\n", s.name, s.err)
			continue
		}
		row(s.name+": echo p50", pct(s.lat, 50), floor50, "µs", false, key+".echo_p50_us")
		row(s.name+": echo p99", pct(s.lat, 99), floor99, "µs", false, key+".echo_p99_us")
		row(s.name+": throughput (median)", median(s.mbps), ptyMB, "MB/s", true, key+".mbps")
		row(s.name+": CPU per 100 MB", median(s.cpu), 0, "s", false, key+".cpu_s_per_100mb")
	}
	row("agent: live heap+stacks after start", float64(startHeap)/1024, 0, "kB", false, "term.agent.start_heap_kb")
	cmpKey := "term." + strings.ReplaceAll(*compareName, " ", "_")
	if *compare != "" {
		row(*compareName+": live heap+stacks after start", float64(cmpHeap)/1024, 0, "kB", false, cmpKey+".start_heap_kb")
		row(*compareName+": heap+stacks per idle session", cmpMem.heap/1024, 0, "kB", false, cmpKey+".session_heap_kb")
		row(*compareName+": RSS per idle session", cmpMem.rss/1024, 0, "kB", false, cmpKey+".session_rss_kb")
	}
	row("agent: Ctrl-C in `yes` → prompt", ctrlC, 0, "ms", false, "term.agent.ctrl_c_ms")
	if *compare != "" {
		row(*compareName+": Ctrl-C in `yes` → prompt", cmpCtrlC, 0, "ms", false, cmpKey+".ctrl_c_ms")
	}
	row(fmt.Sprintf("agent: heap+stacks per idle session (%d)", *idle), mem.heap/1024, 0, "kB", false, "term.agent.session_heap_kb")
	row("agent: RSS per idle session", mem.rss/1024, 0, "kB", false, "term.agent.session_rss_kb")
	fmt.Printf("%-34s %14s\n", "agent: RSS base / idle / burst", fmt.Sprintf("%.1f/%.1f/%.1f MB", mem.r0/1e6, mem.r1/1e6, mem.rb/1e6))
	if mem.back >= 0 {
		row("agent: back to idle RSS (+10%) after", mem.back, 0, "s", false, "")
	} else {
		fmt.Printf("%-34s %14s\n", "agent: back to idle RSS (+10%) after", "not in 30 s")
	}
	if !*noBrowser {
		if browserErr != nil {
			fmt.Println("browser:", browserErr)
		} else {
			row("Chromium xterm.js rendering", browser, 0, "MB/s", true, "term.agent.browser_mbps")
		}
	}
	fmt.Println("\n# figure\tvalue\tfloor\tratio")
	for _, l := range tsv {
		fmt.Println(l)
	}
	return nil
}

// round runs one round of s: echo latency for n keys, then throughput.
func (s *side) round(file string, size, n, r int) error {
	if s.echo != nil {
		d, err := s.echo(n)
		s.lat = append(s.lat, d...)
		return err
	}
	t, err := s.open()
	if err != nil {
		return err
	}
	defer t.close()
	if err := prompt(t); err != nil {
		return err
	}
	d, err := latency(t, n)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	s.lat = append(s.lat, d...)
	res := throughput(t, file, size, s.pids(), s.names...)
	if res.err != nil {
		return fmt.Errorf("throughput: %w", res.err)
	}
	s.mbps = append(s.mbps, res.mbps)
	s.cpu = append(s.cpu, res.cpuPer100)
	return nil
}

// roundOrder is the order of the sides in round r: rotated by r, and
// reversed in odd rounds, so no side always runs first, nor always right
// after the same other side (the agent before the -compare one).
func roundOrder(sides []*side, r int) []*side {
	o := make([]*side, len(sides))
	for i := range sides {
		o[i] = sides[(i+r)%len(sides)]
	}
	if r%2 == 1 {
		slices.Reverse(o)
	}
	return o
}

type memResult struct{ heap, rss, r0, r1, rb, back float64 }

// idleMemory measures a fresh agent: a baseline with two sessions open
// (pools, code paths and the login warmed), then *idle more sessions, each
// having printed a line and acknowledged it; deltas over *idle. Then a
// burst on one session, and how long until RSS is back near idle.
func idleMemory(tmp, bin, file string, size int) (memResult, error) {
	ag, err := startAgent(tmp, bin, false)
	if err != nil {
		return memResult{}, err
	}
	defer ag.stop()
	agent := &agentClient{base: ag.base}
	if err := agent.login(); err != nil {
		return memResult{}, err
	}
	var conns []*agentSession
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	open := func(n int) error {
		for range n {
			c, err := agent.open()
			if err != nil {
				return err
			}
			conns = append(conns, c)
			if err := prompt(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := open(2); err != nil {
		return memResult{}, err
	}
	settle := func() (int64, int64) {
		// Let the sessions' last acks arrive, the shells go quiet and
		// the agent's sessions idle (past the 1 s it keeps a typing
		// session's readers on threads of their own).
		time.Sleep(1500 * time.Millisecond)
		ag.mem()
		return ag.mem()
	}
	h0, r0 := settle()
	if err := open(*idle); err != nil {
		return memResult{}, err
	}
	h1, r1 := settle()
	m := memResult{heap: float64(h1-h0) / float64(*idle), rss: float64(r1-r0) / float64(*idle), r0: float64(r0), r1: float64(r1), back: -1}
	if m.heap < 0 || m.rss < 0 {
		return m, fmt.Errorf("negative memory per session (heap %.0f, RSS %.0f bytes): the baseline was not settled", m.heap, m.rss)
	}
	burst := throughput(conns[0], file, size, nil)
	if burst.err != nil {
		return m, burst.err
	}
	m.rb = float64(rss1(ag.cmd.Process.Pid))
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		if rss1(ag.cmd.Process.Pid) <= r1+r1/10 {
			m.back = time.Since(start).Seconds()
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return m, nil
}

func pct(ds []float64, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func median(v []float64) float64 { return pct(v, 50) }

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
		"sys/etc/passwd":         "root:x:0:0:root:" + home + ":" + shellBin + "\n",
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

// cpuTime sums the CPU time (pstat.CPU) of the pids and of every
// process whose name is in names.
func cpuTime(pids []int, names ...string) time.Duration {
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
	var total time.Duration
	for pid := range set {
		if d, err := pstat.CPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// rss1 is a process's RSS in bytes; 0 if unreadable.
func rss1(pid int) int64 {
	m, _ := pstat.ReadMem(pid)
	return int64(m.RSS)
}
