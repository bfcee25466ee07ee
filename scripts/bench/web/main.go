// Command web benchmarks the status web server (agent/web) in one run
// beside its peers, all serving the same bytes:
//
//   - agent/web, substituting the page variables as the agent does;
//   - python3 -m http.server, the old agent's lineage (it sends the files
//     raw: the old agent did the substitution in Python on top of it);
//   - a bare Go net/http handler writing the same bytes from memory, the
//     floor for any server built on net/http on this machine.
//
// wrk drives each with the same connections for the same time, for four
// targets: the shipped page template, a small old-style appliance page, a
// static 16 KiB file and GET /api/v1/status (python has no status API; the
// floor serves the agent's document as fetched once at the start). Every
// run goes round all servers and targets in turn, so that a busy spell of
// the machine hits them alike; the median run (by requests/s) of each is
// reported, with latency percentiles, the ratio to the floor and the
// agent's resident memory under the load, in one table.
//
//	go run ./scripts/bench/web [-d 5s] [-n 3] [-c 64] [-t 2] [-pin] [-short] [-tsv] [-only LIST] [-cpuprofile FILE] [-before BIN]
//
// -short is a quick run (-d 2s -n 1) for scripts/bench/all; -tsv prints
// only machine-readable lines, figure<TAB>value<TAB>floor<TAB>ratio (the
// floor is the net/http floor, or python for the "vs python" figures;
// latencies in ms, CPU per request in µs; floor and ratio are empty for the
// agent's RSS, which has none), and the table goes to stderr. -only runs
// some targets; -cpuprofile writes the agent's CPU profile over the run.
// -before BIN adds the agent/web of another build of this benchmark (go
// build -o BIN ./scripts/bench/web at an older commit) as one more server
// in the same runs, for before/after figures that share the machine's load.
// Run it from the repository root (it serves custom/www's page template).
// Within a run the servers take their turns in an order that rotates from
// run to run, so that none always follows the same one.
//
// By default the servers and wrk (-t threads) share every CPU, as on the
// machine the target figures are for. With -pin the servers run on CPU 0 and
// wrk (one thread) on CPU 1, so that the load generator cannot steal the
// server's CPU and show up as server latency (the server then has one CPU).
// Other work on the machine skews both; the load average and CPU pressure
// are printed before and after. Needs wrk and python3, and taskset for -pin
// (Debian: apt-get install wrk python3 util-linux). The servers run as child
// processes (this program re-executed) so that their memory is their own.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
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

	"osmanager/agent/state"
	"osmanager/agent/status"
	"osmanager/agent/web"
	"osmanager/scripts/bench/internal/pstat"
)

// classicPage is shaped like the appliance pages the old agent served: a
// small page with the variables and some jQuery, about 1 KiB.
const classicPage = `<html>
<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>$hostname</title>
<script type="text/javascript" src="/js/jquery.min.js"></script>
<script type="text/javascript">
$(document).ready(function() { $.ajax({url: "/status.txt", success: function(d) { $("#st").text(d); }}); });
</script></head>
<body>
<h1>Welcome to ${hostname}</h1>
<p>Application: $application $version2 (LuoYun OS manager $version1)</p>
<p>Page made at $curtime. Price: $$5.</p>
<p id="st"></p>
`

// staticSize is the static file's size: an image or a script of an
// appliance page.
const staticSize = 16 << 10

type target struct {
	name, path, ctype string
	python            bool // python serves it too
}

// targets are what every server is asked for, in this order.
var targets = []target{
	{"index", "/", "text/html", true},
	{"classic", "/classic.html", "text/html", true},
	{"static", "/logo.png", "image/png", true},
	{"status", "/api/v1/status", "application/json", false},
}

func main() {
	serve := flag.String("serve", "", "internal: serve this LuoYun dir with agent/web and print the address")
	floor := flag.String("floor", "", "internal: serve this dir's files from memory with bare net/http and print the address")
	dur := flag.Duration("d", 5*time.Second, "wrk duration per run")
	conns := flag.Int("c", 64, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads when not pinned")
	runs := flag.Int("n", 3, "runs per measurement; the median run (by requests/s) is reported")
	pin := flag.Bool("pin", false, "servers on CPU 0, wrk -t1 on CPU 1")
	short := flag.Bool("short", false, "a quick run: -d 2s -n 1")
	tsv := flag.Bool("tsv", false, "print figure<TAB>value<TAB>floor<TAB>ratio lines only; the table goes to stderr")
	only := flag.String("only", "", "comma-separated targets to run (index, classic, static, status); default all")
	profile := flag.String("cpuprofile", "", "write the agent's CPU profile over the whole run to this file")
	before := flag.String("before", "", "also serve with this build of the benchmark's agent/web (an older commit's), in the same runs")
	flag.Parse()
	if *short {
		*dur, *runs = 2*time.Second, 1
	}
	var err error
	switch {
	case *serve != "":
		err = serveAgent(*serve, *profile)
	case *floor != "":
		err = serveFloor(*floor)
	default:
		table, lines := io.Writer(os.Stdout), io.Discard
		if *tsv {
			table, lines = os.Stderr, os.Stdout
		}
		if *only != "" {
			want := strings.Split(*only, ",")
			targets = slices.DeleteFunc(targets, func(t target) bool { return !slices.Contains(want, t.name) })
			if len(targets) == 0 {
				err = fmt.Errorf("-only %s: no such target", *only)
				break
			}
		}
		err = run(table, lines, *dur, *conns, *threads, max(*runs, 1), *pin, *profile, *before)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench web:", err)
		os.Exit(1)
	}
}

// serveAgent is a child: agent/web over dir on a loopback port until SIGTERM.
func serveAgent(dir, profile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st := &state.Store{}
	for _, n := range []string{"floppy", "conf", "instance", "sshkeys", "hostname", "nameservers", "password", "network", "script"} {
		st.SetStep(state.Step{Name: n, Status: state.StepOK, Started: time.Now(), Duration: time.Millisecond})
	}
	src, err := status.New(status.Config{
		VersionFile: filepath.Join(dir, "build/VERSION"), Hostname: "bench.osmanager.test", State: st, AgentVersion: "bench",
	})
	if err != nil {
		return err
	}
	srv, err := web.New(web.Config{
		Addr: "127.0.0.1:0", WWW: filepath.Join(dir, "custom/www"), Status: src,
		Cookie: "bench-cookie", State: st,
		Log:      slog.New(slog.DiscardHandler),
		OnListen: func(a net.Addr) { fmt.Println(a.String()) },
	})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// serveFloor is a child: every target's bytes from dir (status.json for
// the status API) from memory, with nothing but net/http around them.
func serveFloor(dir string) error {
	type page struct {
		ctype, length []string
		body          []byte
	}
	pages := map[string]page{}
	for _, t := range targets {
		name := t.path[1:]
		switch t.name {
		case "index":
			name = "index.html"
		case "status":
			name = "status.json"
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		pages[t.path] = page{[]string{t.ctype}, []string{strconv.Itoa(len(b))}, b}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		// With its length, as the agent sends it: without, net/http would
		// send a body over 2 KiB chunked, which is slower.
		w.Header()["Content-Type"] = p.ctype
		w.Header()["Content-Length"] = p.length
		w.Write(p.body)
	}))
}

type result struct {
	rps                 float64
	cpuPerReq           float64 // the server's CPU time (user + system) per request, µs
	p50, p90, p99       string
	errors              string
	rssPeakKB, rssEndKB int
}

type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	rss  bool // sample its memory
}

func run(table, lines io.Writer, dur time.Duration, conns, threads, runs int, pin bool, profile, before string) error {
	tools := []string{"wrk", "python3"}
	if pin {
		tools = append(tools, "taskset")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install wrk python3 util-linux): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "osm-bench-web-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	shipped, err := os.ReadFile("custom/www/nocookie/index.html")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	classic := classicPage + strings.Repeat(" ", max(0, 1000-len(classicPage))) + "\n</body></html>\n"
	static := make([]byte, staticSize) // incompressible, as an image is
	rand.NewChaCha8([32]byte{}).Read(static)
	files := map[string]string{
		"build/VERSION":                    "osmanager 0.1.0\nwordpress: 3.5.1\n",
		"custom/www/nocookie/index.html":   string(shipped),
		"custom/www/nocookie/classic.html": classic,
		"custom/www/nocookie/logo.png":     string(static),
		"custom/www/withcookie/index.html": string(shipped),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	pages := filepath.Join(dir, "custom/www/nocookie")

	self, err := os.Executable()
	if err != nil {
		return err
	}
	onCPU0 := func(name string, args ...string) *exec.Cmd {
		if pin {
			return exec.Command("taskset", append([]string{"-c", "0", name}, args...)...)
		}
		return exec.Command(name, args...)
	}
	var servers []*server
	statusSize := 0
	defer func() {
		for _, s := range servers {
			s.cmd.Process.Signal(syscall.SIGTERM)
			s.cmd.Wait()
		}
	}()
	all := []*server{
		{name: "agent/web", cmd: onCPU0(self, "-serve", dir, "-cpuprofile", profile), rss: true},
		{name: "python http.server", cmd: onCPU0("python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", pages, "0")},
		{name: "net/http floor", cmd: onCPU0(self, "-floor", pages)},
	}
	if before != "" {
		all = append(all, &server{name: "agent/web before", cmd: onCPU0(before, "-serve", dir)})
	}
	for _, s := range all {
		if s.name == "net/http floor" {
			// The floor serves the agent's status document, as it is now.
			doc, err := get("http://" + servers[0].addr + "/api/v1/status")
			if err != nil {
				return fmt.Errorf("agent status: %w", err)
			}
			if err := os.WriteFile(filepath.Join(pages, "status.json"), doc, 0o644); err != nil {
				return err
			}
			statusSize = len(doc)
		}
		addr, err := start(s.cmd, s.name == "python http.server")
		if err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		s.addr = addr
		servers = append(servers, s)
		if err := waitHTTP("http://" + addr + "/"); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	const agent, python, floor = 0, 1, 2

	pyVer, _ := exec.Command("python3", "--version").Output()
	mode := fmt.Sprintf("wrk -t%d -c%d, servers and wrk sharing all CPUs", threads, conns)
	if pin {
		threads = 1
		mode = fmt.Sprintf("servers on CPU 0, wrk -t1 -c%d on CPU 1", conns)
	}
	fmt.Fprintf(table, "%s; %s per run, median of %d; %d CPUs; %s\n", mode, dur, runs, runtime.NumCPU(), strings.TrimSpace(string(pyVer)))
	fmt.Fprintf(table, "index %d B, classic %d B, static %d B, status document %d B\n", len(shipped), len(classic), staticSize, statusSize)
	fmt.Fprintf(table, "machine before: %s\n", machineLoad())
	res := make([][][]result, len(targets)) // by target, server, run
	for i := range res {
		res[i] = make([][]result, len(servers))
	}
	for run := range runs {
		for ti, t := range targets {
			for k := range servers {
				si := (k + run) % len(servers)
				s := servers[si]
				if si == python && !t.python {
					continue
				}
				pid := 0
				if s.rss {
					pid = s.cmd.Process.Pid
				}
				cpu0 := cpuTime(s.cmd.Process.Pid)
				r, err := bench("http://"+s.addr+t.path, dur, conns, threads, pin, pid)
				if err != nil {
					return fmt.Errorf("wrk %s %s: %w", s.name, t.path, err)
				}
				// Requests wrk counted; the server's CPU includes what it did
				// for requests in flight at the end, a few of 64 in thousands.
				if n := r.rps * dur.Seconds(); n > 0 {
					r.cpuPerReq = float64(cpuTime(s.cmd.Process.Pid)-cpu0) / float64(time.Microsecond) / n
				}
				res[ti][si] = append(res[ti][si], r)
			}
		}
	}
	fmt.Fprintf(table, "\n%-8s %-20s %11s %9s %9s %9s %9s %12s  %s\n", "target", "server", "requests/s", "p50", "p90", "p99", "/floor", "CPU µs/req", "errors")
	for ti, t := range targets {
		med := make([]result, len(servers))
		for si := range servers {
			if len(res[ti][si]) > 0 {
				med[si] = median(res[ti][si])
			}
		}
		for si, s := range servers {
			if len(res[ti][si]) == 0 {
				continue
			}
			m := med[si]
			fmt.Fprintf(table, "%-8s %-20s %11.0f %9s %9s %9s %9.2f %12.1f  %s\n", t.name, s.name, m.rps, m.p50, m.p90, m.p99,
				m.rps/max(med[floor].rps, 1), m.cpuPerReq, m.errors)
		}
		a, p, f := med[agent], med[python], med[floor]
		fmt.Fprintf(lines, "web %s req/s\t%.0f\t%.0f\t%.3f\n", t.name, a.rps, f.rps, a.rps/max(f.rps, 1))
		a99, f99 := ms(a.p99), ms(f.p99)
		fmt.Fprintf(lines, "web %s p50 ms\t%.3f\t%.3f\t%.3f\n", t.name, ms(a.p50), ms(f.p50), ms(a.p50)/max(ms(f.p50), 1e-9))
		fmt.Fprintf(lines, "web %s p99 ms\t%.3f\t%.3f\t%.3f\n", t.name, a99, f99, a99/max(f99, 1e-9))
		if t.python {
			fmt.Fprintf(lines, "web %s req/s vs python\t%.0f\t%.0f\t%.3f\n", t.name, a.rps, p.rps, a.rps/max(p.rps, 1))
		}
		fmt.Fprintf(lines, "web %s cpu us/req\t%.1f\t%.1f\t%.3f\n", t.name, a.cpuPerReq, f.cpuPerReq, a.cpuPerReq/max(f.cpuPerReq, 1e-9))
		fmt.Fprintf(lines, "web %s agent rss MiB\t%.1f\t\t\n", t.name, float64(a.rssPeakKB)/1024)
	}
	fmt.Fprintf(table, "\nagent RSS at the end of the last run %.1f MiB, peak %.1f MiB\n",
		float64(res[len(targets)-1][agent][runs-1].rssEndKB)/1024, float64(res[len(targets)-1][agent][runs-1].rssPeakKB)/1024)
	fmt.Fprintf(table, "machine after: %s\n", machineLoad())
	return nil
}

// ms reads a wrk latency ("812.00us", "1.23ms", "1.01s") as milliseconds;
// 0 if it is none.
func ms(s string) float64 {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"us", 1e-3}, {"ms", 1}, {"m", 60e3}, {"s", 1e3}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0
			}
			return f * u.scale
		}
	}
	return 0
}

// get fetches url's body.
func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// start runs a server and returns its address: the first line of its
// output, or for Python's http.server the port in its banner.
func start(cmd *exec.Cmd, python bool) (string, error) {
	cmd.Stderr = os.Stderr
	if python {
		cmd.Stderr = io.Discard // a line per request, and tracebacks when wrk hangs up
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if python {
		cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	go io.Copy(io.Discard, br) // keep the pipe drained; ends when the child exits
	line = strings.TrimSpace(line)
	if python { // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
		m := regexp.MustCompile(`port (\d+)`).FindStringSubmatch(line)
		if m == nil {
			return "", fmt.Errorf("no port in %q", line)
		}
		return "127.0.0.1:" + m[1], nil
	}
	return line, nil
}

var (
	reRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rePct    = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+(\S+)`)
	reErrors = regexp.MustCompile(`Socket errors:.*|Non-2xx or 3xx responses: \d+`)
	reVmRSS  = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)
	reVmHWM  = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)
)

// bench runs wrk once; with pid it also reads that process's memory at the
// end of the run.
func bench(url string, dur time.Duration, conns, threads int, pin bool, pid int) (result, error) {
	var r result
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + dur.String(), "--latency", "--timeout", "5s", url}
	cmd := exec.Command("wrk", args...)
	if pin {
		cmd = exec.Command("taskset", append([]string{"-c", "1", "wrk"}, args...)...)
	}
	out, err := cmd.Output()
	if err != nil {
		return r, fmt.Errorf("%v: %s", err, out)
	}
	s := string(out)
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range rePct.FindAllStringSubmatch(s, -1) {
		switch m[1] {
		case "50":
			r.p50 = m[2]
		case "90":
			r.p90 = m[2]
		case "99":
			r.p99 = m[2]
		}
	}
	r.errors = strings.Join(reErrors.FindAllString(s, -1), "; ")
	if r.errors == "" {
		r.errors = "none"
	}
	if pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			if m := reVmRSS.FindSubmatch(b); m != nil {
				r.rssEndKB, _ = strconv.Atoi(string(m[1]))
			}
			if m := reVmHWM.FindSubmatch(b); m != nil {
				r.rssPeakKB, _ = strconv.Atoi(string(m[1]))
			}
		}
	}
	return r, nil
}

// cpuTime is a process's CPU time so far (pstat.CPU); 0 if unreadable.
func cpuTime(pid int) time.Duration {
	d, _ := pstat.CPU(pid)
	return d
}

// median returns the run with the median requests/s.
func median(rs []result) result {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	return rs[len(rs)/2]
}

// machineLoad tells how busy the machine is: other work skews the figures.
func machineLoad() string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	s := "load average " + strings.Join(f[:min(3, len(f))], " ")
	if p, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := strings.Cut(string(p), "\n")
		s += "; CPU pressure " + line
	}
	return s
}

// waitHTTP polls url until it answers 200, for up to 10 s.
func waitHTTP(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
