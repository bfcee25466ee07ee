// Command apps measures what running applications cost the agent, from
// outside, on the real binary: `osmanager demo` (the agent with its
// services, the app manager in), then 50 apps installed and started
// through the local API, each a shell loop with restart policy always.
//
// Per round (a fresh agent each): its RSS before the first app and after
// each 10 apps, then its CPU over an idle period with the 50 apps
// running. The figure of the issue is the growth per 10 apps; we print
// two: the marginal one (from 10 to 50 apps, so the one-time cost of the
// first install, the unpacker and the runner's machinery, is left out)
// and the total one (from no apps to 50, divided by 5), medians over the
// rounds. Goals: growth under 1 MiB per 10 apps, CPU under 1 % of one
// core.
//
//	go run ./scripts/bench/apps [-rounds 3] [-apps 50] [-idle 60s] [-short]
//
// The last three lines are for scripts/bench/all: figure<TAB>value<TAB>
// goal<TAB>ratio (value/goal; under 1 is within the goal).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"osmanager/scripts/bench/internal/pstat"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds, a fresh agent each")
	napps := flag.Int("apps", 50, "apps per round (a multiple of 10)")
	idle := flag.Duration("idle", 60*time.Second, "idle period with every app running, for the CPU figure")
	short := flag.Bool("short", false, "a short run: 2 rounds, 10 s idle")
	bin := flag.String("bin", "", "osmanager binary (default: built from this tree)")
	flag.Parse()
	if *short {
		*rounds, *idle = 2, 10*time.Second
	}
	if *napps < 20 || *napps%10 != 0 {
		log.Fatal("-apps: a multiple of 10, at least 20")
	}
	tmp, err := os.MkdirTemp("", "bench-apps-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if *bin == "" {
		*bin = filepath.Join(tmp, "osmanager")
		b := exec.Command("go", "build", "-o", *bin, "./cmd/osmanager")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			log.Fatalf("go build: %v", err)
		}
	}
	var marginal, total, cpu []float64
	for r := range *rounds {
		res, err := round(*bin, filepath.Join(tmp, fmt.Sprintf("round%d", r)), *napps, *idle)
		if err != nil {
			log.Fatalf("round %d: %v", r+1, err)
		}
		steps := make([]string, len(res.rss))
		for i, v := range res.rss {
			steps[i] = fmt.Sprintf("%d:%d", i*10, v)
		}
		m := float64(res.rss[len(res.rss)-1]-res.rss[1]) / float64(len(res.rss)-2) / 1024
		t := float64(res.rss[len(res.rss)-1]-res.rss[0]) / float64(len(res.rss)-1) / 1024
		fmt.Printf("round %d: RSS kB by apps %s; per 10 apps %.2f MiB marginal, %.2f MiB total; CPU %.3f %% of one core over %s (%d restarts)\n",
			r+1, strings.Join(steps, " "), m, t, res.cpu, *idle, res.restarts)
		marginal, total, cpu = append(marginal, m), append(total, t), append(cpu, res.cpu)
	}
	fmt.Printf("\n%-44s %10s %8s %7s\n", "figure (median of rounds)", "value", "goal", "ratio")
	row := func(name string, v, goal float64, unit string) {
		fmt.Printf("%-44s %7.3f %s %5.1f %s %6.2f\n", name, v, unit, goal, unit, v/goal)
	}
	mm, mt, mc := median(marginal), median(total), median(cpu)
	row("RSS growth per 10 apps, 10→50 (MiB)", mm, 1, "  ")
	row("RSS growth per 10 apps, 0→50 (MiB)", mt, 1, "  ")
	row(fmt.Sprintf("CPU with %d apps idle (%% of one core)", *napps), mc, 1, "  ")
	fmt.Printf("apps: RSS per 10 apps, 10→%d\t%.2f MiB\tgoal 1 MiB\t%.2f\n", *napps, mm, mm)
	fmt.Printf("apps: RSS per 10 apps, 0→%d\t%.2f MiB\tgoal 1 MiB\t%.2f\n", *napps, mt, mt)
	fmt.Printf("apps: CPU with %d idle apps\t%.3f %%\tgoal 1 %% of a core\t%.3f\n", *napps, mc, mc)
}

type result struct {
	rss      []int64 // kB, at 0, 10, 20, … apps
	cpu      float64 // percent of one core over the idle period
	restarts int
}

func round(bin, dir string, napps int, idle time.Duration) (res result, err error) {
	cmd := exec.Command(bin, "demo", "--dir", dir, "--duration", "1h")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
	}()
	sock := filepath.Join(dir, "sysroot", "run", "osmanager.sock")
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	// Ready: the demo's own sample app (hello) runs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := call(c, "GET", "/v1/runs", "", nil); err == nil && bytes.Contains(b, []byte(`"running"`)) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the demo agent's API did not come up at %s", sock)
		}
		time.Sleep(100 * time.Millisecond)
	}
	settle := func() (int64, error) {
		time.Sleep(2 * time.Second)
		m, err := pstat.ReadMem(pid)
		return int64(m.RSS >> 10), err
	}
	ids := make([]string, 0, napps)
	defer func() {
		for _, id := range ids { // uninstall stops every run: nothing outlives the round
			call(c, "DELETE", "/v1/apps/"+id+"?purge=1", "", nil)
		}
	}()
	v, err := settle()
	if err != nil {
		return res, err
	}
	res.rss = append(res.rss, v)
	for i := range napps {
		id := fmt.Sprintf("loop%02d", i)
		if _, err := call(c, "POST", "/v1/apps", "application/gzip", pkg(id)); err != nil {
			return res, fmt.Errorf("install %s: %w", id, err)
		}
		ids = append(ids, id)
		if _, err := call(c, "POST", "/v1/apps/"+id+"/start", "", nil); err != nil {
			return res, fmt.Errorf("start %s: %w", id, err)
		}
		if (i+1)%10 == 0 {
			v, err := settle()
			if err != nil {
				return res, err
			}
			res.rss = append(res.rss, v)
		}
	}
	c0, err := pstat.CPU(pid)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	time.Sleep(idle)
	c1, err := pstat.CPU(pid)
	if err != nil {
		return res, err
	}
	res.cpu = 100 * float64(c1-c0) / float64(time.Since(t0))
	b, err := call(c, "GET", "/v1/runs", "", nil)
	if err == nil {
		res.restarts = bytes.Count(b, []byte(`"restarts":1`)) // none expected: the loops do not exit
	}
	return res, nil
}

// call does one API request and returns the body; a status other than
// 2xx is an error carrying the body.
func call(c *http.Client, method, path, ctype string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, "http://osmanager"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// pkg is an app package: a shell loop that never exits, restart always.
func pkg(id string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, body string, typ byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: typ, ModTime: time.Unix(0, 0)})
		io.WriteString(tw, body)
	}
	add("manifest.json", 0o644, fmt.Sprintf(`{"id": %q, "version": "1.0.0", "exec": "bin/loop", "restart": "always"}`, id), tar.TypeReg)
	add("bin/", 0o755, "", tar.TypeDir)
	add("bin/loop", 0o755, "#!/bin/sh\nwhile :; do sleep 5; done\n", tar.TypeReg)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
