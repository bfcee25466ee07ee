// Command webburst measures the status web server's memory under a burst
// of cold-cache requests: it serves one big text page with variables from a
// temp dir, sends n requests for it at once and prints the process's
// resident memory before and at its peak. Besides the text it prints one
// machine-readable line, figure<TAB>value<TAB>floor<TAB>ratio, the floor
// being the RSS before the burst (scripts/bench/all collects it).
//
//	go run ./scripts/bench/webburst [-size BYTES] [-n 30] [-short]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"osmanager/agent/state"
	"osmanager/agent/status"
	"osmanager/agent/web"
)

func rss(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.TrimSpace(strings.TrimPrefix(l, field))
		}
	}
	return "?"
}

// kB reads "1234 kB".
func kB(s string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(s, " kB"))
	return n
}

func main() {
	size := flag.Int("size", 7<<20, "page size in bytes")
	n := flag.Int("n", 30, "concurrent requests")
	flag.Bool("short", false, "accepted for scripts/bench/all: the run is short already")
	flag.Parse()
	dir, err := os.MkdirTemp("", "webburst")
	if err != nil {
		fmt.Fprintln(os.Stderr, "webburst:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "www/nocookie"), 0o755)
	unit := "line $hostname $version1 " + strings.Repeat("x", 100) + "\n"
	os.WriteFile(filepath.Join(dir, "www/nocookie/big.txt"), []byte(strings.Repeat(unit, *size/len(unit))), 0o644)
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("osmanager 0.1.0\napp: 1\n"), 0o644)
	listening := make(chan net.Addr, 1)
	st := &state.Store{}
	src, err := status.New(status.Config{VersionFile: filepath.Join(dir, "VERSION"), State: st, Hostname: "app1.example.com"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "webburst:", err)
		os.Exit(1)
	}
	srv, err := web.New(web.Config{Addr: "127.0.0.1:0", WWW: filepath.Join(dir, "www"), Status: src,
		State: st, OnListen: func(a net.Addr) { listening <- a }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "webburst:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Run(ctx)
	addr := (<-listening).String()
	runtime.GC()
	before := rss("VmRSS:")
	fmt.Printf("page %d KiB; RSS before %s\n", *size>>10, before)
	var wg sync.WaitGroup
	for range *n {
		wg.Go(func() {
			r, err := http.Get("http://" + addr + "/big.txt")
			if err != nil {
				fmt.Fprintln(os.Stderr, "webburst:", err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		})
	}
	wg.Wait()
	peak := rss("VmHWM:")
	fmt.Printf("%d concurrent cold requests: peak RSS %s, RSS after %s\n", *n, peak, rss("VmRSS:"))
	ratio := "?"
	if b, p := kB(before), kB(peak); b > 0 && p > 0 {
		ratio = fmt.Sprintf("%.2f×", float64(p)/float64(b))
	}
	fmt.Printf("webburst: peak RSS, %d cold requests for a %d KiB page\t%s\tRSS before %s\t%s\n", *n, *size>>10, peak, before, ratio)
	cancel()
}
