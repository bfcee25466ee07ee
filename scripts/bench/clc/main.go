// Command clc benchmarks the controller link of a real `osmanager run`
// process against the in-tree controller (agent/clcd) running in this
// process on loopback, with a node-layout floppy (floppy.NodeImage)
// pointing at it and a system root made by scratch.Make:
//
//	(a) exec of `osmanager run` → REGISTER_REPLY sent, on a first boot
//	    (target ≤ 60 ms), beside /bin/true and `osmanager boot` on the same
//	    kind of floppy;
//	(b) controller restart after 1.5 s down (its JOIN at start-up) →
//	    REGISTER_REPLY sent again: the JOIN ends the agent's wait after a
//	    random 0–2 s (the fleet spread), beside the same restart without a
//	    JOIN, where only the agent's backoff brings it back;
//	(c) the idle cost of a registered agent per hour: bytes on the wire and
//	    CPU time, measured at 300× the production heartbeat and status
//	    rates and scaled, plus the runtime's own idle cost;
//	(d) the idle memory (RSS) of that agent, web and terminal listening,
//	    beside a bare Go net/http server's (the floor for a Go server).
//
// (b) runs for each -outages duration (default 1.5 s, 3 s, 10 s: the
// longer ones take the agent further up its backoff). A peer run that
// fails (a boot with a failed step) stops the benchmark: its time would not
// be a boot's. Besides the text, it prints one machine-readable line per
// figure: figure<TAB>value<TAB>floor<TAB>ratio (scripts/bench/all collects
// them); -short is a quick run.
//
//	go run ./scripts/bench/clc [-n 21] [-restart-runs 7] [-outages 1.5s,3s,10s] [-window 10s] [-full 2m] [-short]
//	go run ./scripts/bench/clc -fleet 100 (see fleet.go)
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/clc/wire"
	"osmanager/agent/clcd"
	"osmanager/agent/floppy"
	"osmanager/internal/scratch"
	"osmanager/scripts/bench/internal/pstat"
)

const tag = 1

func main() {
	n := flag.Int("n", 21, "runs per timing (median reported)")
	window := flag.Duration("window", 10*time.Second, "idle measurement window")
	full := flag.Duration("full", 0, "also measure idle at the production rates (30 s) over this long, e.g. 2m, keepalive included")
	var fo fleetOptions
	flag.IntVar(&fo.n, "fleet", 0, "instead: fleet mode, this many `osmanager run` processes against one `osmanager controller`, restarted (in a network namespace it makes; root)")
	flag.IntVar(&fo.restarts, "restarts", 3, "fleet mode: controller restarts")
	flag.DurationVar(&fo.down, "down", 3*time.Second, "fleet mode: how long the controller stays down at each restart")
	flag.DurationVar(&fo.settle, "settle", 65*time.Second, "fleet mode: how long the fleet stays registered before each restart")
	flag.StringVar(&fo.agentBin, "agent-bin", "", "fleet mode: the osmanager binary the agents run (default: built from this tree; the controller always is)")
	restartRuns := flag.Int("restart-runs", 7, "(b): runs per outage, with and without the JOIN")
	outageList := flag.String("outages", "1.5s,3s,10s", "(b): how long the controller stays down, comma-separated")
	short := flag.Bool("short", false, "a quick run: -n 5 -restart-runs 3 -window 3s")
	flag.Parse()
	if *short {
		*n, *restartRuns, *window = 5, 3, 3*time.Second
	}
	var outages []time.Duration
	for _, f := range strings.Split(*outageList, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "bench clc: -outages: %q is not a duration\n", f)
			os.Exit(2)
		}
		outages = append(outages, d)
	}
	if os.Getenv(fleetNetnsEnv) == "" {
		// Everything runs in a network namespace of its own, where the
		// controller's JOIN is real multicast on lo.
		if err := inNetns(); err != nil {
			fmt.Fprintln(os.Stderr, "bench clc:", err)
			os.Exit(1)
		}
		return
	}
	if fo.n > 0 {
		if err := runFleet(fo); err != nil {
			fmt.Fprintln(os.Stderr, "bench clc fleet:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *restartRuns, outages, *window, *full); err != nil {
		fmt.Fprintln(os.Stderr, "bench clc:", err)
		os.Exit(1)
	}
}

type bench struct {
	tmp, bin, key string
	mcastPort     int
	srv           *clcd.Server
	regs          chan time.Time // REGISTER_REPLY sent, for tag
	stopSrv       func()
}

func run(n, restartRuns int, outages []time.Duration, window, full time.Duration) error {
	tmp, err := os.MkdirTemp("", "osm-bench-clc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{tmp: tmp, bin: filepath.Join(tmp, "osmanager"), key: wire.NewKey(), regs: make(chan time.Time, 16)}
	// Built as scripts/build ships it (static: CGO_ENABLED=0), as the bare
	// server floor is; a cgo build maps libc and ld.so, 1.5 MiB of RSS the
	// shipped agent does not have.
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", b.bin, "./cmd/osmanager")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	if b.mcastPort, err = freeUDPPort(); err != nil {
		return err
	}
	// JOINs go to the group, multicast on lo in this namespace (the agent
	// takes no unicast JOIN).
	b.srv = &clcd.Server{
		Listen: "127.0.0.1:0", Instances: map[int32]string{tag: b.key}, JoinEvery: -1,
		JoinTo: netip.AddrPortFrom(netip.MustParseAddr("228.0.0.1"), uint16(b.mcastPort)),
		OnEvent: func(e clcd.Event) {
			if e.Name == clcd.EventRegistered && e.Tag == tag {
				select {
				case b.regs <- e.Time:
				default:
				}
			}
		},
	}
	if _, err := b.srv.ListenAndAddr(); err != nil {
		return err
	}
	b.startSrv()
	defer func() { b.stopSrv() }()

	fmt.Printf("osmanager controller link, loopback, in-tree controller; medians of %d runs\n", n)
	if err := b.registerTime(n); err != nil {
		return fmt.Errorf("(a): %w", err)
	}
	if err := b.restartTime(restartRuns, outages); err != nil {
		return fmt.Errorf("(b): %w", err)
	}
	if err := b.idleCost(window, full); err != nil {
		return fmt.Errorf("(c): %w", err)
	}
	return nil
}

func (b *bench) startSrv() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.srv.Run(ctx) }()
	b.stopSrv = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "controller:", err)
		}
	}
}

// instance makes a demo dir whose floppy points at addr, with the demo's
// full JSON payload, and a status script that says "running".
func (b *bench) instance(name string, ctrlPort int) (string, error) {
	return b.instanceOf(name, ctrlPort, tag, b.key)
}

// instanceOf is instance for any TAG and KEY.
func (b *bench) instanceOf(name string, ctrlPort, tag int, key string) (string, error) {
	dir := filepath.Join(b.tmp, name)
	img, err := scratch.Make(dir)
	if err != nil {
		return "", err
	}
	ini, err := floppy.ReadFile(img)
	if err != nil {
		return "", err
	}
	set := map[string]string{
		"CLC_IP": "127.0.0.1", "CLC_PORT": strconv.Itoa(ctrlPort), "CLC_MCAST_IP": "228.0.0.1",
		"CLC_MCAST_PORT": strconv.Itoa(b.mcastPort), "TAG": strconv.Itoa(tag), "KEY": key,
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(ini), "\n"), "\n") {
		k, _, _ := strings.Cut(line, "=")
		if _, ok := set[k]; !ok {
			out = append(out, line)
		}
	}
	for _, k := range []string{"CLC_IP", "CLC_PORT", "CLC_MCAST_IP", "CLC_MCAST_PORT", "TAG", "KEY"} {
		out = append(out, k+"="+set[k])
	}
	if err := os.WriteFile(img, floppy.NodeImage([]byte(strings.Join(out, "\n")+"\n")), 0o600); err != nil {
		return "", err
	}
	status := filepath.Join(dir, "LuoYun/custom/scripts/status")
	return dir, os.WriteFile(status, []byte("#!/bin/sh\nexit 0\n"), 0o755)
}

func (b *bench) args(cmd, dir string, extra ...string) []string {
	a := []string{cmd, "--no-network", "--log-level", "error", "--floppy", filepath.Join(dir, "floppy.img"),
		"--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}
	if cmd == "run" {
		a = append(a, "--listen-web", "127.0.0.1:0", "--listen-webssh", "127.0.0.1:0")
	}
	return append(a, extra...)
}

// agentProc is a running `osmanager run`.
type agentProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func (b *bench) startAgent(dir string, extra ...string) (*agentProc, time.Time, error) {
	p := &agentProc{cmd: exec.Command(b.bin, b.args("run", dir, extra...)...)}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &p.stderr
	start := time.Now()
	return p, start, p.cmd.Start()
}

func (p *agentProc) stop() (*os.ProcessState, error) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.cmd.Wait()
	return p.cmd.ProcessState, err
}

func (b *bench) drainRegs() {
	for {
		select {
		case <-b.regs:
		default:
			return
		}
	}
}

func (b *bench) registered(p *agentProc, within time.Duration) (time.Time, error) {
	select {
	case t := <-b.regs:
		return t, nil
	case <-time.After(within):
		return time.Time{}, fmt.Errorf("agent did not register within %s; its stderr:\n%s", within, p.stderr.String())
	}
}

// (a) exec → REGISTER_REPLY sent.
func (b *bench) registerTime(n int) error {
	port := int(b.srv.Addr().Port())
	dirs := make([]string, n)
	for i := range dirs {
		var err error
		if dirs[i], err = b.instance(fmt.Sprint("a", i), port); err != nil {
			return err
		}
	}
	var reg []time.Duration
	for i := range n {
		b.drainRegs()
		p, start, err := b.startAgent(dirs[i])
		if err != nil {
			return err
		}
		t, err := b.registered(p, 10*time.Second)
		p.stop()
		if err != nil {
			return err
		}
		reg = append(reg, t.Sub(start))
	}
	// Peers: the exec floor, and the boot steps alone on the same kind of
	// floppy (fresh dirs: a first boot, as above).
	boot, err := times(n, func(i int) (*exec.Cmd, error) {
		d, err := b.instance(fmt.Sprint("boot", i), port)
		return exec.Command(b.bin, b.args("boot", d)...), err
	})
	if err != nil {
		return err
	}
	floor, err := times(n, func(int) (*exec.Cmd, error) { return exec.Command("/bin/true"), nil })
	if err != nil {
		return err
	}
	fmt.Printf("(a) exec `osmanager run` → REGISTER_REPLY sent (first boot, every config item, --no-network)\n")
	fmt.Printf("    run → registered   %9s   (target ≤ 60 ms; min %s, max %s)\n", median(reg), slices.Min(reg).Round(10*time.Microsecond), slices.Max(reg).Round(10*time.Microsecond))
	fmt.Printf("    osmanager boot     %9s   peer: the boot steps alone, exec to exit\n", boot)
	fmt.Printf("    /bin/true          %9s   peer: exec floor\n", floor)
	fmt.Printf("clc: exec → registered (first boot)\t%s\tosmanager boot %s\t%.2f×\n", median(reg), boot, float64(median(reg))/float64(boot))
	return nil
}

// (b) controller restart → re-registered.
func (b *bench) restartTime(runs int, outages []time.Duration) error {
	dir, err := b.instance("b", int(b.srv.Addr().Port()))
	if err != nil {
		return err
	}
	// A fresh agent each run: one that saw several restarts within a
	// minute backs off further and is held to 6 attempts a minute, on
	// purpose; that is not what this measures.
	measure := func(runs int, down time.Duration) ([]time.Duration, error) {
		var ds []time.Duration
		for range runs {
			b.drainRegs()
			p, _, err := b.startAgent(dir)
			if err != nil {
				return nil, err
			}
			if _, err := b.registered(p, 10*time.Second); err != nil {
				p.stop()
				return nil, err
			}
			b.stopSrv()
			// Let the agent see the close, back off (0.5–1 s) and find the
			// controller down: only then does it listen for a JOIN. Longer
			// outages take it further up its backoff.
			time.Sleep(down)
			b.drainRegs()
			start := time.Now()
			b.startSrv() // binds, then sends its start-up JOIN
			t, err := b.registered(p, 40*time.Second)
			p.stop()
			if err != nil {
				return nil, err
			}
			ds = append(ds, t.Sub(start))
		}
		return ds, nil
	}
	fmt.Printf("(b) controller restart → REGISTER_REPLY sent again\n")
	for _, down := range outages {
		withJoin, err := measure(runs, down)
		if err != nil {
			return err
		}
		join := b.srv.JoinTo
		b.srv.JoinTo = netip.AddrPort{}
		noJoin, err := measure(min(runs, 7), down)
		b.srv.JoinTo = join
		if err != nil {
			return err
		}
		fmt.Printf("    down %-5s with its JOIN  %9s   (a random 0–2 s by design; max %s), %d runs\n", down, median(withJoin), slices.Max(withJoin).Round(10*time.Microsecond), len(withJoin))
		fmt.Printf("    down %-5s without a JOIN %9s   peer: the agent's backoff alone (1 s, 2 s, 4 s, … 50%% jitter; max %s), %d runs\n", down, median(noJoin), slices.Max(noJoin).Round(10*time.Microsecond), len(noJoin))
		fmt.Printf("clc: re-registered after a %s outage, with JOIN\t%s\twithout JOIN %s\t%.2f×\n", down, median(withJoin).Round(time.Millisecond), median(noJoin).Round(time.Millisecond), float64(median(withJoin))/float64(median(noJoin)))
	}
	return nil
}

// sample is what one idle measurement reads.
type sample struct {
	cpu     time.Duration // agent threads (schedstat) + reaped children (ticks)
	payload uint64        // TCP payload bytes, both directions
	segs    uint64        // TCP segments, both directions
	rss     pstat.Mem     // at the end of the window
	rssUsed pstat.Mem     // then after one request of each page
}

// (c) idle cost per hour.
func (b *bench) idleCost(window, full time.Duration) error {
	// A proxy in front of the controller: its socket toward the agent
	// counts segments and payload (TCP_INFO), and keeps the controller's
	// keepalive settings.
	px, err := newProxy(b.srv.Addr())
	if err != nil {
		return err
	}
	defer px.close()
	const speedup = 300          // 30 s → 100 ms
	var webAddr, termAddr string // of the last agent measured
	measure := func(name, period string, window time.Duration) (sample, error) {
		dir, err := b.instance(name, px.port())
		if err != nil {
			return sample{}, err
		}
		b.drainRegs()
		if webAddr, err = freeTCPAddr(); err != nil {
			return sample{}, err
		}
		if termAddr, err = freeTCPAddr(); err != nil {
			return sample{}, err
		}
		p, _, err := b.startAgent(dir, "--heartbeat", period, "--status-period", period, "--listen-web", webAddr, "--listen-webssh", termAddr)
		if err != nil {
			return sample{}, err
		}
		defer p.stop()
		if _, err := b.registered(p, 10*time.Second); err != nil {
			return sample{}, err
		}
		time.Sleep(time.Second) // settle: boot garbage collected, first report sent
		s0, err := px.read(p.cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		time.Sleep(window)
		s1, err := px.read(p.cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		mem, err := pstat.ReadMem(p.cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		// Then one request of each page, a second to settle, and again.
		for _, u := range []string{"http://" + webAddr + "/", "http://" + webAddr + "/api/v1/status", "http://" + webAddr + "/metrics", "http://" + termAddr + "/"} {
			if err := get(u); err != nil {
				return sample{}, err
			}
		}
		time.Sleep(time.Second)
		used, err := pstat.ReadMem(p.cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		return sample{cpu: s1.cpu - s0.cpu, payload: s1.payload - s0.payload, segs: s1.segs - s0.segs, rss: mem, rssUsed: used}, nil
	}
	busy, err := measure("c-busy", "100ms", window)
	if err != nil {
		return err
	}
	base, err := measure("c-base", "1h", window)
	if err != nil {
		return err
	}
	perHour := float64(time.Hour) / float64(window)
	scale := perHour / speedup
	cpuH := time.Duration(float64(busy.cpu-base.cpu)*scale + float64(base.cpu)*perHour)
	payH := float64(busy.payload-base.payload) * scale
	segH := float64(busy.segs-base.segs) * scale
	// Keepalive: idle 10 s, interval 10 s on both ends; in each 30 s gap
	// between heartbeats both ends' timers fire at 10 s and at 20 s, each
	// a probe and its ACK, no payload: 8 segments per gap. Counted, not
	// measured here (the speeded-up run never idles 10 s); -full measures
	// it.
	const keepaliveSegs = 8 * 120.0
	const hdr = 52 // IPv4 20 + TCP 20 + timestamps 12, as on loopback
	fmt.Printf("(c) idle cost of a registered agent, per hour (measured over %s at 300× the rates: heartbeat and status every 100 ms; scaled)\n", window)
	fmt.Printf("    wire, heartbeat    %6.0f segments, %6.0f bytes payload, %6.1f KB with TCP/IP headers\n", segH, payH, (payH+segH*hdr)/1000)
	fmt.Printf("    wire, keepalive    %6.0f segments (counted: both ends probe at 10 s and 20 s of each 30 s gap), %6.1f KB\n", keepaliveSegs, keepaliveSegs*hdr/1000)
	fmt.Printf("    CPU                %9s per hour (%.4f%% of one core): heartbeat + status script %s, runtime idle %s\n",
		cpuH.Round(time.Millisecond), 100*float64(cpuH)/float64(time.Hour),
		time.Duration(float64(busy.cpu-base.cpu)*scale).Round(time.Millisecond), time.Duration(float64(base.cpu)*perHour).Round(time.Millisecond))
	fmt.Printf("    (measured raw: %s CPU, %d bytes, %d segments in %s at 100 ms; runtime alone %s CPU in %s)\n",
		busy.cpu.Round(time.Microsecond), busy.payload, busy.segs, window, base.cpu.Round(time.Microsecond), window)
	floor, err := b.bareServerRSS()
	if err != nil {
		return err
	}
	fmt.Printf("(d) idle memory of a registered agent, web and terminal listening (at the end of the runtime-only window)\n")
	fmt.Printf("    agent              RSS %s (file-backed, the binary's pages: %s; anonymous %s)   (target ≤ 10 MiB)\n", mib(base.rss.RSS), mib(base.rss.File), mib(base.rss.Anon))
	fmt.Printf("    agent, used        RSS %s (file %s; anon %s)   after one request of each: /, /api/v1/status, /metrics, the terminal's page\n", mib(base.rssUsed.RSS), mib(base.rssUsed.File), mib(base.rssUsed.Anon))
	fmt.Printf("    bare Go server     RSS %s (file %s; anon %s)   floor: net/http serving one page, after one request\n", mib(floor.RSS), mib(floor.File), mib(floor.Anon))
	fmt.Printf("idle RSS: web + terminal + link registered\t%s\tbare Go net/http server %s\t%.2f×\n", mib(base.rss.RSS), mib(floor.RSS), float64(base.rss.RSS)/float64(floor.RSS))
	fmt.Printf("idle RSS: the same after one request of each page\t%s\tbare Go net/http server %s\t%.2f×\n", mib(base.rssUsed.RSS), mib(floor.RSS), float64(base.rssUsed.RSS)/float64(floor.RSS))
	if full <= 0 {
		return nil
	}
	real, err := measure("c-full", "30s", full)
	if err != nil {
		return err
	}
	k := float64(time.Hour) / float64(full)
	fmt.Printf("    at production rates over %s, scaled ×%.0f: %.0f segments, %.0f bytes payload, %.1f KB with headers, %s CPU per hour\n",
		full, k, float64(real.segs)*k, float64(real.payload)*k, (float64(real.payload)+float64(real.segs)*hdr)*k/1000,
		time.Duration(float64(real.cpu)*k).Round(time.Millisecond))
	return nil
}

// proxy forwards one agent connection at a time to the controller.
type proxy struct {
	ln   *net.TCPListener
	mu   sync.Mutex
	conn *net.TCPConn // toward the agent
	wg   sync.WaitGroup
}

func newProxy(to netip.AddrPort) (*proxy, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 10 * time.Second, Count: 3}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln.(*net.TCPListener)}
	p.wg.Go(func() {
		for {
			c, err := p.ln.AcceptTCP()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to.String())
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conn = c
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	return p, nil
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// read samples the agent's CPU time and the connection's counters.
func (p *proxy) read(pid int) (sample, error) {
	var s sample
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		return s, errors.New("no agent connection through the proxy")
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return s, err
	}
	var info *unix.TCPInfo
	var ierr error
	raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		return s, ierr
	}
	s.payload = info.Bytes_acked + info.Bytes_received
	s.segs = uint64(info.Segs_out) + uint64(info.Segs_in)
	s.cpu, err = cpuTime(pid)
	return s, err
}

// cpuTime is the process's on-CPU time: every thread's schedstat
// (nanoseconds), plus its reaped children's (the status script runs),
// which /proc only has in clock ticks.
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no schedstat for %d: %v", pid, err)
	}
	var total time.Duration
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		total += time.Duration(ns)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	// After the command name: state is field 3, cutime 16, cstime 17.
	cu, _ := strconv.ParseInt(f[16-3], 10, 64)
	cs, _ := strconv.ParseInt(f[17-3], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return total + time.Duration(cu+cs)*tick, nil
}

func times(n int, mk func(i int) (*exec.Cmd, error)) (time.Duration, error) {
	var d []time.Duration
	for i := range n {
		cmd, err := mk(i)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		elapsed := time.Since(start)
		if err != nil { // a boot with a failed step is not the boot being timed
			return 0, fmt.Errorf("peer run %d of %d failed: %v: %v\n%s", i+1, n, cmd.Args, err, out)
		}
		d = append(d, elapsed)
	}
	return median(d), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// bareServer is the floor for the agent's idle memory: a Go net/http
// server and nothing else.
const bareServer = `package main

import (
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	page := []byte("<html><body>hello</body></html>\n")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page) }))
}
`

// bareServerRSS builds and starts the bare server, sends it one request,
// lets it idle for a second and reads its RSS.
func (b *bench) bareServerRSS() (pstat.Mem, error) {
	dir := filepath.Join(b.tmp, "bare")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pstat.Mem{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(bareServer), 0o644); err != nil {
		return pstat.Mem{}, err
	}
	bin := filepath.Join(dir, "bare")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "main.go")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		return pstat.Mem{}, fmt.Errorf("build the bare server: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return pstat.Mem{}, err
	}
	if err := cmd.Start(); err != nil {
		return pstat.Mem{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var addr string
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		return pstat.Mem{}, fmt.Errorf("bare server: no address: %v", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return pstat.Mem{}, err
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()
	time.Sleep(time.Second)
	return pstat.ReadMem(cmd.Process.Pid)
}

func freeTCPAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// get fetches u and reads the body; any answer is fine (the terminal's
// page may want a login), no answer is an error.
func get(u string) error {
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(u)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, r.Body)
	return r.Body.Close()
}
