// Command all runs every benchmark of the project, each with the peers
// and floors it measures in the same run, and prints one table of ratios:
//
//	figure | agent | floor / peer (same run) | ratio
//
// The benchmarks: scripts/bench/boot (/bin/true, a Go hello, python3),
// scripts/bench/clc (osmanager boot, /bin/true, a bare Go net/http server),
// scripts/bench/web (python3's http.server, a bare Go net/http server),
// scripts/bench/webburst, scripts/bench/term (shellinabox, a bare pty
// reader), scripts/bench/apps (50 apps on the real agent, against the
// issue's goals), and the Go benchmarks that time the agent's own hot paths.
//
//	go run ./scripts/bench/all [-short] [-only boot,clc,...] [-logs DIR] [-md FILE]
//
// The contract with each benchmark: it takes -short for a quick run, and
// prints, among its text, one line per figure with exactly four
// tab-separated fields, figure<TAB>value<TAB>floor<TAB>ratio (value and
// floor with their units, the floor's name first). Those lines make the
// table; the rest of the output goes to DIR/<bench>.log. A benchmark that
// fails, or prints no such line, gets a row saying so, and the command
// exits 1 at the end; the others still run.
//
// Needs what the benchmarks need: wrk and python3 (web), shellinaboxd and
// chromium (term), taskset; root for clc's network namespace. The machine's
// name, CPUs, kernel and load average before and after are printed with
// the table, since every figure depends on them.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// bench is one benchmark command.
type bench struct {
	name  string
	args  []string // after go run ./scripts/bench/<name>
	short []string // with -short
	needs []string // programs it cannot run without
}

var benches = []bench{
	{name: "boot", short: []string{"-short"}},
	{name: "clc", short: []string{"-short"}},
	{name: "web", args: []string{"-tsv"}, short: []string{"-short"}, needs: []string{"wrk", "python3"}},
	{name: "webburst", short: []string{"-short"}},
	{name: "term", short: []string{"-short"}, needs: []string{"shellinaboxd"}},
	{name: "apps", short: []string{"-short"}},
}

// goBench is a Go benchmark and how long to run it.
type goBench struct {
	pkg, run        string
	benchtime       string
	shortBenchtime  string
	figure, comment string
}

var goBenches = []goBench{
	{pkg: "./agent/web/", run: "^BenchmarkSubstitutedPage$", benchtime: "2s", shortBenchtime: "200ms",
		figure: "go: substituted page, in process", comment: "per request, no network"},
	{pkg: "./agent/floppy/", run: "^BenchmarkReadNodeImage$", benchtime: "2s", shortBenchtime: "200ms",
		figure: "go: read a node-layout floppy image", comment: "per read"},
	{pkg: "./agent/apps/runner/", run: "^BenchmarkStartTerminate$", benchtime: "5x", shortBenchtime: "1x",
		figure: "go: app run start/terminate", comment: "medians of 20 per iteration"},
}

// row is one line of the table.
type row struct{ figure, value, floor, ratio string }

func main() {
	short := flag.Bool("short", false, "quick runs of every benchmark")
	only := flag.String("only", "", "comma-separated: run only these (boot, clc, web, webburst, term, go)")
	logs := flag.String("logs", "", "write each benchmark's output here (default: a new temp dir)")
	md := flag.String("md", "", "also write the table, as Markdown, to this file")
	flag.Parse()
	if err := run(*short, *only, *logs, *md); err != nil {
		fmt.Fprintln(os.Stderr, "bench all:", err)
		os.Exit(1)
	}
}

func run(short bool, only, logs, md string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if logs == "" {
		if logs, err = os.MkdirTemp("", "osm-bench-all-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	want := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name)
	}
	started := time.Now()
	loadBefore := loadAvg()
	var rows []row
	failed := 0
	for _, b := range benches {
		if !want(b.name) {
			continue
		}
		if missing := missingPrograms(b.needs); len(missing) > 0 {
			rows = append(rows, row{b.name + ": not run", "—", "needs " + strings.Join(missing, ", "), "—"})
			failed++
			continue
		}
		args := append([]string{"run", "./scripts/bench/" + b.name}, b.args...)
		if short {
			args = append(args, b.short...)
		}
		fmt.Fprintf(os.Stderr, "bench all: go %s\n", strings.Join(args, " "))
		out, err := runLogged(root, filepath.Join(logs, b.name+".log"), "go", args...)
		got := parseRows(out)
		rows = append(rows, got...)
		switch {
		case err != nil:
			rows = append(rows, row{b.name + ": FAILED", "—", fmt.Sprintf("%v (see %s)", err, filepath.Join(logs, b.name+".log")), "—"})
			failed++
		case len(got) == 0:
			rows = append(rows, row{b.name + ": no figures", "—", "it printed no figure<TAB>value<TAB>floor<TAB>ratio line", "—"})
			failed++
		}
	}
	if want("go") {
		for _, g := range goBenches {
			bt := g.benchtime
			if short {
				bt = g.shortBenchtime
			}
			args := []string{"test", "-run", "^$", "-bench", g.run, "-benchtime", bt, "-count", "1", "-benchmem", g.pkg}
			fmt.Fprintf(os.Stderr, "bench all: go %s\n", strings.Join(args, " "))
			log := filepath.Join(logs, "go-"+filepath.Base(strings.TrimSuffix(g.pkg, "/"))+".log")
			out, err := runLogged(root, log, "go", args...)
			got := parseGoBench(out, g)
			rows = append(rows, got...)
			if err != nil || len(got) == 0 {
				rows = append(rows, row{g.figure + ": FAILED", "—", fmt.Sprintf("%v (see %s)", err, log), "—"})
				failed++
			}
		}
	}
	table := render(rows, started, loadBefore, loadAvg(), short)
	fmt.Print(table)
	fmt.Fprintf(os.Stderr, "bench all: logs in %s\n", logs)
	if md != "" {
		if err := os.WriteFile(md, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d benchmark(s) failed or gave no figures", failed)
	}
	return nil
}

// moduleRoot is the directory of the go.mod, where the benchmarks run.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the osmanager module")
	}
	return filepath.Dir(mod), nil
}

func missingPrograms(names []string) []string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}

// runLogged runs a command in dir with its stdout and stderr written to
// the log (stderr also to ours, for progress) and returns its stdout.
func runLogged(dir, log, name string, args ...string) ([]byte, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var stdout bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = io.MultiWriter(&stdout, f)
	cmd.Stderr = io.MultiWriter(os.Stderr, f)
	err = cmd.Run()
	return stdout.Bytes(), err
}

// parseRows picks the figure<TAB>value<TAB>floor<TAB>ratio lines.
func parseRows(out []byte) []row {
	var rows []row
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || strings.TrimSpace(f[0]) == "" || strings.HasPrefix(f[0], "#") { // "#": a header line
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		rows = append(rows, row{f[0], f[1], f[2], f[3]})
	}
	return rows
}

// goBenchLine is a result line of go test -bench.
var goBenchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// parseGoBench turns go test -bench lines into rows: the benchmark's
// name, its ns/op (and any custom metrics), B/op and allocs/op.
func parseGoBench(out []byte, g goBench) []row {
	var rows []row
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := goBenchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		var vals []string
		for i := 0; i+1 < len(fields); i += 2 {
			vals = append(vals, fields[i]+" "+fields[i+1])
		}
		rows = append(rows, row{g.figure + " (" + m[1] + ")", strings.Join(vals, ", "), g.comment, "—"})
	}
	return rows
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machine describes the machine: CPU model and count, kernel.
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s, Linux %s, %s", runtime.NumCPU(), model, kernel, runtime.Version())
}

// render writes the table as Markdown, with the run's date and machine.
func render(rows []row, started time.Time, loadBefore, loadAfter string, short bool) string {
	var b strings.Builder
	mode := "full runs"
	if short {
		mode = "-short runs"
	}
	fmt.Fprintf(&b, "\nscripts/bench/all, %s, %s (%s); machine: %s; load average before %s, after %s\n\n",
		started.UTC().Format("2006-01-02 15:04 UTC"), mode, time.Since(started).Round(time.Second), machine(), loadBefore, loadAfter)
	b.WriteString("| figure | agent | floor / peer (same run) | ratio |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", esc(r.figure), esc(r.value), esc(r.floor), esc(r.ratio))
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
