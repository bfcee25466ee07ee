// Command boot benchmarks `osmanager boot` from exec to exit on a floppy
// image in the compute node's layout with every config item present
// (--no-network), first on a fresh system root and then unchanged, and the
// binary's start-up alone (`osmanager version`), beside floors timed in
// the same run: /bin/true (the exec floor), a Go hello world built with the
// same flags (the Go runtime's own start-up), the same hello importing
// every package the agent links (blank imports: their inits run, the
// linker drops their unused code; what any binary with the agent's
// dependencies pays before main) and a Python interpreter start (what the
// old agent and cloud-init pay before any work).
//
// The runs are interleaved: run i of every measurement is taken before run
// i+1 of any, in a rotating order, so that the machine's load falls on all
// of them alike. Medians of n runs each. Every run must succeed: a boot that
// fails stops the benchmark (its time would not be a boot's).
//
//	go run ./scripts/bench/boot [-n 30] [-short] [-dir DIR] [-before BIN]
//
// -before times another osmanager binary (an older build) the same way in
// the same interleaved runs, on instances of its own, for before/after
// figures that share the machine's load.
// -dir puts the scratch instances in DIR (default a temp dir: tmpfs on
// some machines; the first-boot figure is for ext4, so give a dir on one).
// -short takes 7 runs. Besides the table, it prints one machine-readable
// line per figure: figure<TAB>value<TAB>floor<TAB>ratio (scripts/bench/all
// collects them).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"osmanager/agent/sysroot"
	"osmanager/internal/scratch"
)

func main() {
	n := flag.Int("n", 30, "runs per measurement (median reported)")
	short := flag.Bool("short", false, "a quick run: 7 runs per measurement")
	dir := flag.String("dir", "", "make the scratch instances here (default: a temp dir)")
	before := flag.String("before", "", "also time this osmanager binary, interleaved (before/after)")
	flag.Parse()
	if *short {
		*n = 7
	}
	if err := run(*n, *dir, *before); err != nil {
		fmt.Fprintln(os.Stderr, "bench boot:", err)
		os.Exit(1)
	}
}

const hello = `package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
`

func run(n int, base, before string) error {
	tmp, err := os.MkdirTemp(base, "osm-bench-boot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "osmanager")
	flags := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w"}
	build := exec.Command("go", append(flags, "-o", bin, "./cmd/osmanager")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	helloDir := filepath.Join(tmp, "hello")
	helloBin := filepath.Join(helloDir, "hello")
	if err := os.MkdirAll(helloDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(helloDir, "main.go"), []byte(hello), 0o644); err != nil {
		return err
	}
	build = exec.Command("go", append(flags, "-o", helloBin, "main.go")...)
	build.Dir, build.Env = helloDir, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build hello: %v\n%s", err, out)
	}
	depsBin := filepath.Join(tmp, "hello-deps")
	if err := buildDepsHello(tmp, depsBin, flags); err != nil {
		return err
	}
	// One instance dir per first-boot run, made before any timing; the
	// unchanged boots use one more, booted once here.
	dirs := make([]string, 2*n+2) // [n+1:] for -before
	for i := range dirs {
		dirs[i] = filepath.Join(tmp, fmt.Sprint("d", i))
		if _, err := scratch.Make(dirs[i]); err != nil {
			return err
		}
	}
	args := func(dir string) []string {
		return []string{"boot", "--no-network", "--log-level", "error", "--floppy", filepath.Join(dir, "floppy.img"),
			"--root", filepath.Join(dir, "LuoYun"), "--sysroot", filepath.Join(dir, "sysroot")}
	}
	again, againBefore := dirs[n], dirs[2*n+1]
	if out, err := exec.Command(bin, args(again)...).CombinedOutput(); err != nil {
		return fmt.Errorf("first boot of the unchanged instance: %v\n%s", err, out)
	}
	if before != "" {
		if out, err := exec.Command(before, args(againBefore)...).CombinedOutput(); err != nil {
			return fmt.Errorf("-before: first boot of the unchanged instance: %v\n%s", err, out)
		}
	}
	// Settle the page cache: the builds and the instances just made left
	// megabytes dirty, which a VM booting from its image does not have,
	// and a boot's commit picks its syncs by how much is dirty (syncfs
	// under 512 KiB). Every side gets the same settled start.
	syscall.Sync()
	dirtyBefore := dirtyKB()
	_, pyErr := exec.LookPath("python3")
	ms := []*measure{
		{name: "/bin/true", cmd: func(int) *exec.Cmd { return exec.Command("/bin/true") }},
		{name: "Go hello", cmd: func(int) *exec.Cmd { return exec.Command(helloBin) }},
		{name: "hello, agent's imports", cmd: func(int) *exec.Cmd { return exec.Command(depsBin) }},
		{name: "osmanager version", cmd: func(int) *exec.Cmd { return exec.Command(bin, "version") }},
		{name: "unchanged boot", cmd: func(int) *exec.Cmd { return exec.Command(bin, args(again)...) }},
		{name: "first boot", cmd: func(i int) *exec.Cmd { return exec.Command(bin, args(dirs[i])...) }},
	}
	if before != "" {
		ms = append(ms,
			&measure{name: "version (before)", cmd: func(int) *exec.Cmd { return exec.Command(before, "version") }},
			&measure{name: "unchanged boot (before)", cmd: func(int) *exec.Cmd { return exec.Command(before, args(againBefore)...) }},
			&measure{name: "first boot (before)", cmd: func(i int) *exec.Cmd { return exec.Command(before, args(dirs[n+1+i])...) }})
	}
	if pyErr == nil {
		ms = append(ms, &measure{name: "python3 start", cmd: func(int) *exec.Cmd { return exec.Command("python3", "-c", "import json, os") }})
	}
	for i := range n {
		for j := range ms {
			m := ms[(i+j)%len(ms)] // rotate who goes first
			if err := m.once(i); err != nil {
				return err
			}
		}
	}
	med := map[string]time.Duration{}
	for _, m := range ms {
		med[m.name] = m.median()
	}
	fmt.Printf("osmanager boot, %d runs each, interleaved, medians (node-layout floppy, every item, --no-network; instances in %s; dirty page cache %s before, %s after):\n", n, filepath.Dir(tmp), dirtyBefore, dirtyKB())
	fmt.Printf("  first boot         %8s   (target ≤ 9 ms on ext4)\n", med["first boot"])
	fmt.Printf("  unchanged boot     %8s   (target ≤ 4 ms)\n", med["unchanged boot"])
	fmt.Printf("  osmanager version  %8s   the binary's start-up alone (target ≤ 2 ms)\n", med["osmanager version"])
	fmt.Printf("  hello, its imports %8s   floor: a Go hello importing every package the agent links (their inits)\n", med["hello, agent's imports"])
	fmt.Printf("  Go hello           %8s   floor: the Go runtime's start-up\n", med["Go hello"])
	fmt.Printf("  /bin/true          %8s   floor: exec\n", med["/bin/true"])
	if before != "" {
		fmt.Printf("  before (%s): first boot %s, unchanged boot %s, version %s\n", before, med["first boot (before)"], med["unchanged boot (before)"], med["version (before)"])
	}
	if py, ok := med["python3 start"]; ok {
		fmt.Printf("  python3 start      %8s   peer: the old agent's and cloud-init's interpreter, before any work\n", py)
	}
	row := func(figure string, v time.Duration, floorName string, floor time.Duration) {
		fmt.Printf("%s\t%s\t%s %s\t%.2f×\n", figure, v, floorName, floor, float64(v)/float64(floor))
	}
	row("boot: start-up (osmanager version)", med["osmanager version"], "Go hello", med["Go hello"])
	row("boot: start-up vs a hello with the agent's imports", med["osmanager version"], "hello+imports", med["hello, agent's imports"])
	row("boot: unchanged boot", med["unchanged boot"], "Go hello", med["Go hello"])
	row("boot: first boot", med["first boot"], "Go hello", med["Go hello"])
	if py, ok := med["python3 start"]; ok {
		fmt.Printf("%s\t%s\t%s %s\t%.1f× faster\n", "boot: unchanged boot vs python3 start", med["unchanged boot"], "python3", py, float64(py)/float64(med["unchanged boot"]))
	}
	return nil
}

// measure is one command's runs.
type measure struct {
	name string
	cmd  func(i int) *exec.Cmd
	d    []time.Duration
}

// once runs the command for run i; a failure is an error.
func (m *measure) once(i int) error {
	cmd := m.cmd(i)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("%s, run %d: %v: %v\n%s", m.name, i, cmd.Args, err, out)
	}
	m.d = append(m.d, d)
	return nil
}

func (m *measure) median() time.Duration {
	s := slices.Clone(m.d)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

// dirtyKB is what a boot's commit decides by: Dirty plus Writeback in
// /proc/meminfo, as sysroot reads it ("60 kB"), or "?".
func dirtyKB() string {
	n, err := sysroot.MeminfoDirty("/proc/meminfo")()
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%d kB", n>>10)
}

// buildDepsHello builds, as bin, a hello world with a blank import of
// every importable package the agent links (go list -deps; not internal or
// vendored ones, nor the agent's own). It is built inside the module,
// through a build overlay, so that the module's dependencies resolve; no
// file is written into the repository.
func buildDepsHello(tmp, bin string, flags []string) error {
	list := exec.Command("go", "list", "-deps", "./cmd/osmanager")
	list.Env = append(os.Environ(), "CGO_ENABLED=0") // as the agent is built: no runtime/cgo
	out, err := list.Output()
	if err != nil {
		return fmt.Errorf("go list -deps: %w", err)
	}
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n\t\"os\"\n")
	for _, p := range strings.Fields(string(out)) {
		internal := p == "internal" || strings.HasPrefix(p, "internal/") || strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal")
		if internal || strings.HasPrefix(p, "vendor/") || p == "osmanager" || strings.HasPrefix(p, "osmanager/") || p == "unsafe" || p == "C" || p == "os" {
			continue
		}
		fmt.Fprintf(&src, "\t_ %q\n", p)
	}
	src.WriteString(")\n\n" + hello[strings.Index(hello, "func main"):])
	dir := filepath.Join(tmp, "hello-deps.src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mainGo := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mainGo, []byte(src.String()), 0o644); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	pkg := filepath.Join(wd, "internal", "benchhello-overlay")
	ov, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkg, "main.go"): mainGo}})
	if err != nil {
		return err
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, ov, 0o644); err != nil {
		return err
	}
	build := exec.Command("go", append(append(flags, "-overlay", overlay, "-o", bin), "./internal/benchhello-overlay")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the hello with the agent's imports: %v\n%s", err, out)
	}
	return nil
}
