// Command boot benchmarks `osmanager boot` from exec to exit on a floppy
// image in the compute node's layout with every config item present
// (--no-network), first on a fresh system root and then unchanged, beside
// peers timed in the same run: /bin/true (the exec floor) and a Python
// interpreter start (what the old agent and cloud-init pay before any work).
//
//	go run ./scripts/bench/boot [-n 30]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"osmanager/internal/scratch"
)

func main() {
	n := flag.Int("n", 30, "runs per measurement (median reported)")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench boot:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	tmp, err := os.MkdirTemp("", "osm-bench-boot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "osmanager")
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/osmanager").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	// One demo dir per first-boot run, made before any timing.
	dirs := make([]string, n)
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
	first, err := times(n, func(i int) *exec.Cmd { return exec.Command(bin, args(dirs[i])...) })
	if err != nil {
		return fmt.Errorf("first boot: %w", err)
	}
	again, err := times(n, func(i int) *exec.Cmd { return exec.Command(bin, args(dirs[0])...) })
	if err != nil {
		return fmt.Errorf("unchanged boot: %w", err)
	}
	floor, _ := times(n, func(int) *exec.Cmd { return exec.Command("/bin/true") })
	fmt.Printf("osmanager boot, %d runs each, medians (node-layout floppy, every item, --no-network):\n", n)
	fmt.Printf("  first boot      %8s   (target ≤ 30 ms)\n", first)
	fmt.Printf("  unchanged boot  %8s   (target ≤ 15 ms)\n", again)
	fmt.Printf("  /bin/true       %8s   exec floor\n", floor)
	if py, err := times(n, func(int) *exec.Cmd { return exec.Command("python3", "-c", "import json, os") }); err == nil {
		fmt.Printf("  python3 start   %8s   (the old agent's and cloud-init's interpreter, before any work)\n", py)
		fmt.Printf("ratios: python3 start / first boot = %.1f×, python3 start / unchanged boot = %.1f×\n",
			float64(py)/float64(first), float64(py)/float64(again))
	}
	return nil
}

// times runs n commands one after another and returns the median wall time
// from start to exit.
func times(n int, mk func(i int) *exec.Cmd) (time.Duration, error) {
	d := make([]time.Duration, n)
	for i := range d {
		cmd := mk(i)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	return d[n/2].Round(10 * time.Microsecond), nil
}
