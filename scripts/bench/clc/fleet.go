package main

// Fleet mode (-fleet N): N `osmanager run` processes, each its own TAG and
// KEY, against one `osmanager controller` process that is stopped and
// started again -restarts times, -down apart. It runs in a network
// namespace it makes (lo up, 224.0.0.0/4 routed to lo), so the
// controller's JOIN is real multicast to 228.0.0.1 and nothing leaves the
// namespace. Measured per restart:
//
//   - the time from the controller's start (exec) to the last agent's
//     REGISTER_REPLY, from the controller's own event log;
//   - the peak of connection attempts in any 100 ms, from the stop to the
//     last registration: the namespace's TCP ActiveOpens (a SYN sent,
//     refused or not), sampled every 10 ms;
//
// and once at the end, with the agents' heartbeat at 5 s: the peak of
// ECHO_REQUESTs the controller sees in any 100 ms over 30 s (phase lock).
//
//	go run ./scripts/bench/clc -fleet 100 [-restarts 3] [-down 3s] [-settle 65s] [-agent-bin PATH]

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"osmanager/agent/clc/wire"
)

const fleetNetnsEnv = "OSM_BENCH_FLEET_NETNS"

type fleetOptions struct {
	n, restarts int
	down        time.Duration
	agentBin    string
	// settle is how long the fleet stays registered before each restart:
	// by default longer than the link's 60 s after which a session counts
	// as stable, as in life.
	settle time.Duration
}

func runFleet(o fleetOptions) error {
	tmp, err := os.MkdirTemp("", "osm-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctlBin := filepath.Join(tmp, "osmanager")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", ctlBin, "./cmd/osmanager").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	agentBin := o.agentBin
	if agentBin == "" {
		agentBin = ctlBin
	}
	const port = 1369 // TCP and UDP: the namespace is ours
	b := &bench{tmp: tmp, bin: agentBin, mcastPort: port}
	keys := map[int]string{}
	var dirs []string
	for tag := 1; tag <= o.n; tag++ {
		keys[tag] = wire.NewKey()
		d, err := b.instanceOf(fmt.Sprint("f", tag), port, tag, keys[tag])
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
	}
	ctlArgs := []string{"controller", "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-join-group", "228.0.0.1",
		"-join-port", strconv.Itoa(port)}
	for tag := 1; tag <= o.n; tag++ {
		ctlArgs = append(ctlArgs, "-instance", fmt.Sprintf("%d:%s", tag, keys[tag]))
	}
	ev := &fleetEvents{registered: map[int32]time.Time{}}
	ctl, err := ev.start(ctlBin, ctlArgs)
	if err != nil {
		return err
	}
	defer func() { ctl.stop() }()

	var agents []*agentProc
	defer func() {
		for _, p := range agents {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range agents {
			p.cmd.Wait()
		}
	}()
	for _, d := range dirs {
		p, _, err := b.startAgent(d, "--heartbeat", "5s")
		if err != nil {
			return err
		}
		agents = append(agents, p)
	}
	if err := ev.waitAll(o.n, time.Time{}, time.Minute); err != nil {
		return err
	}
	fmt.Printf("fleet of %d `osmanager run` (%s) against `osmanager controller`, multicast JOIN on lo in a network namespace; controller down %s per restart, fleet registered %s before each\n",
		o.n, agentBin, o.down, o.settle)
	sampler := newOpensSampler()
	defer sampler.stop()
	var alls []time.Duration
	for r := range o.restarts {
		time.Sleep(o.settle)
		stopAt := time.Now()
		ctl.stop()
		time.Sleep(o.down)
		start := time.Now()
		if ctl, err = ev.start(ctlBin, ctlArgs); err != nil {
			return err
		}
		if err := ev.waitAll(o.n, start, time.Minute); err != nil {
			return err
		}
		first, last := ev.span(start)
		time.Sleep(50 * time.Millisecond) // a last sample past the last registration
		peak, total := sampler.peak(stopAt, last.Add(20*time.Millisecond), 100*time.Millisecond)
		peakAfter, _ := sampler.peak(start, last.Add(20*time.Millisecond), 100*time.Millisecond)
		all := last.Sub(start)
		alls = append(alls, all)
		fmt.Printf("restart %d: all %d re-registered %s after the controller's start (first %s); peak %d connection attempts per 100 ms (%d after the start), %d attempts from stop to last registration\n",
			r+1, o.n, all.Round(time.Millisecond), first.Sub(start).Round(time.Millisecond), peak, peakAfter, total)
	}
	fmt.Printf("median time until all re-registered: %s\n", median(alls))
	// Phase lock: heartbeats over 30 s, well after the last restart.
	time.Sleep(5 * time.Second)
	from := time.Now()
	time.Sleep(30 * time.Second)
	fmt.Printf("heartbeats (every 5 s) over 30 s after the last restart: peak %d ECHOs per 100 ms, %d in all\n", ev.echoPeak(from, time.Now(), 100*time.Millisecond), ev.echoCount(from, time.Now()))
	return nil
}

// inNetns re-runs this binary, same flags, in a new network namespace
// (lo up, 224.0.0.0/4 routed to lo).
func inNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root, to make a network namespace")
	}
	ns := fmt.Sprintf("osm-bench-fleet-%d", os.Getpid())
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v\n%s", args, err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	defer ip("netns", "del", ns)
	if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo"); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), fleetNetnsEnv+"="+ns)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// fleetEvents reads the controller's JSON event lines.
type fleetEvents struct {
	mu         sync.Mutex
	changed    chan struct{}
	registered map[int32]time.Time // last registration per tag
	echoes     []time.Time
}

type ctlProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *ctlProc) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.done
}

func (e *fleetEvents) start(bin string, args []string) (*ctlProc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &ctlProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line struct {
				Time  string `json:"time"`
				Event string `json:"event"`
				Tag   *int32 `json:"tag"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, line.Time)
			if err != nil {
				continue
			}
			e.mu.Lock()
			switch {
			case line.Event == "registered" && line.Tag != nil:
				e.registered[*line.Tag] = t
			case line.Event == "echo":
				e.echoes = append(e.echoes, t)
			}
			if e.changed != nil {
				close(e.changed)
				e.changed = nil
			}
			e.mu.Unlock()
		}
		cmd.Wait()
	}()
	return c, nil
}

// waitAll waits until n tags have registered after since.
func (e *fleetEvents) waitAll(n int, since time.Time, within time.Duration) error {
	deadline := time.After(within)
	for {
		e.mu.Lock()
		got := 0
		for _, t := range e.registered {
			if t.After(since) {
				got++
			}
		}
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		ch := e.changed
		e.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("only %d of %d agents registered within %s", got, n, within)
		}
	}
}

func (e *fleetEvents) span(since time.Time) (first, last time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.registered {
		if !t.After(since) {
			continue
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last
}

func (e *fleetEvents) echoCount(from, to time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range e.echoes {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// echoPeak is the most echoes in any window of length w within [from, to).
func (e *fleetEvents) echoPeak(from, to time.Time, w time.Duration) int {
	e.mu.Lock()
	var ts []time.Time
	for _, t := range e.echoes {
		if !t.Before(from) && t.Before(to) {
			ts = append(ts, t)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	peak, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// opensSampler samples the namespace's TCP ActiveOpens every 10 ms.
type opensSampler struct {
	mu      sync.Mutex
	samples []opensSample
	quit    chan struct{}
	done    chan struct{}
}

type opensSample struct {
	at time.Time
	n  int64
}

func newOpensSampler() *opensSampler {
	s := &opensSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if n, err := activeOpens(); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, opensSample{time.Now(), n})
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *opensSampler) stop() {
	close(s.quit)
	<-s.done
}

// peak is the most connection attempts within any window of length w in
// [from, to], and the attempts in all over it.
func (s *opensSampler) peak(from, to time.Time, w time.Duration) (peak, total int64) {
	s.mu.Lock()
	var ss []opensSample
	for i, x := range s.samples {
		// From the last sample before from, which is the baseline.
		if !x.at.After(to) && (!x.at.Before(from) || i+1 < len(s.samples) && !s.samples[i+1].at.Before(from)) {
			ss = append(ss, x)
		}
	}
	s.mu.Unlock()
	if len(ss) == 0 {
		return 0, 0
	}
	j := 0
	for i := range ss {
		for ss[i].at.Sub(ss[j].at) > w {
			j++
		}
		peak = max(peak, ss[i].n-ss[j].n)
	}
	return peak, ss[len(ss)-1].n - ss[0].n
}

// activeOpens reads Tcp ActiveOpens from /proc/net/snmp: connect()s that
// sent a SYN, whether refused or not.
func activeOpens() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "ActiveOpens" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("no Tcp ActiveOpens in /proc/net/snmp")
}
