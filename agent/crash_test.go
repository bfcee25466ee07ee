package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/floppy"
	"osmanager/agent/sysroot"
)

// TestMain lets the test binary act as the agent for the crash test: with
// OSM_CRASH_DIR set it boots that dir and, at write stage number
// OSM_CRASH_AT, says so on stdout and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("OSM_CRASH_DIR"); dir != "" {
		crashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func crashHelper(dir string) {
	at, _ := strconv.Atoi(os.Getenv("OSM_CRASH_AT"))
	n := 0
	p := defaultTestPaths()
	if proc := os.Getenv("OSM_CRASH_PROC"); proc != "" {
		p.Proc = proc // its meminfo picks the commit's syncs
	}
	o := Options{
		Floppy: filepath.Join(dir, "floppy.img"), Root: filepath.Join(dir, "LuoYun"), Sysroot: filepath.Join(dir, "sysroot"),
		Network: SwitchOff, Paths: &p,
		WriteHook: func(s sysroot.Stage, name string) {
			n++
			fmt.Printf("stage %d %s %s\n", n, s, name)
			if n == at {
				fmt.Println("PAUSED")
				select {} // wait for SIGKILL
			}
		},
	}
	a, err := New(o)
	if err == nil {
		err = a.Boot(context.Background())
	}
	fmt.Println("DONE", err)
}

// crashFixture makes a dir booted with config A and holding config B's
// floppy, and returns it with the file contents for A and for B.
func crashFixture(t *testing.T) (base string, old, new map[string]string) {
	t.Helper()
	base = demoDir(t)
	o, _ := testOptions(t, base)
	if _, err := bootOnce(t, o); err != nil {
		t.Fatal(err)
	}
	old = snapshot(t, base)
	key := snapshotKey(t, base)
	putFloppy(t, base, floppy.NodeImage(nodeIni(`{"domain": {"name": "second.example", "ip": "10.1.1.1"}, "nameservers": "1.1.1.1", `+
		`"passwd_hash": "!", "public_key": "`+key+` second"}`)))
	ref := copyDir(t, base)
	o, _ = testOptions(t, ref)
	if _, err := bootOnce(t, o); err != nil {
		t.Fatal(err)
	}
	new = snapshot(t, ref)
	for f := range old {
		if old[f] == new[f] {
			t.Fatalf("fixture: %s is the same in both configs", f)
		}
	}
	return base, old, new
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// runHelper starts the crash helper on dir and kills it with SIGKILL when
// it pauses at stage `at` (or, with at 0, after delay). It reports how many
// stages the helper passed.
func runHelper(t *testing.T, dir, proc string, at int, delay time.Duration) (stages int, finished bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OSM_CRASH_DIR="+dir, "OSM_CRASH_PROC="+proc, "OSM_CRASH_AT="+strconv.Itoa(at))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if at == 0 {
		timer := time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "stage "):
			stages++
		case line == "PAUSED":
			cmd.Process.Signal(syscall.SIGKILL)
		case strings.HasPrefix(line, "DONE"):
			finished = true
		}
	}
	io.Copy(io.Discard, out)
	cmd.Wait()
	return stages, finished
}

// checkOldOrNew fails unless every system file holds its old or new bytes.
func checkOldOrNew(t *testing.T, dir string, old, new map[string]string) {
	t.Helper()
	for f, got := range snapshot(t, dir) {
		if got != old[f] && got != new[f] {
			t.Errorf("%s is neither old nor new: %q", f, got)
		}
	}
}

func TestCrashLeavesOldOrNew(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	base, old, new := crashFixture(t)
	// The boot's commit syncs with syncfs when little data is dirty and
	// file by file otherwise (sysroot.Flush): both are killed at every stage.
	for _, mode := range []struct{ name, dirty string }{{"syncfs", "0"}, {"file by file", "999999999"}} {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte("Dirty: "+mode.dirty+" kB\nWriteback: 0 kB\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(mode.name, func(t *testing.T) {
			total, finished := runHelper(t, copyDir(t, base), proc, -1, 0)
			if !finished || total < 3*len(systemFiles) {
				t.Fatalf("helper passed %d stages (finished %v), want 3 per file", total, finished)
			}
			for at := 1; at <= total; at++ {
				t.Run(fmt.Sprintf("kill at stage %d", at), func(t *testing.T) {
					dir := copyDir(t, base)
					if n, fin := runHelper(t, dir, proc, at, 0); n != at || fin {
						t.Fatalf("helper passed %d stages, finished %v; want a kill at %d", n, fin, at)
					}
					checkOldOrNew(t, dir, old, new)
					// The next boot finishes the job and leaves no temp files.
					o, _ := testOptions(t, dir)
					if _, err := bootOnce(t, o); err != nil {
						t.Fatalf("boot after the crash: %v", err)
					}
					for f, got := range snapshot(t, dir) {
						if got != new[f] {
							t.Errorf("after recovery %s = %q, want the new content", f, got)
						}
					}
					filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
						if err == nil && strings.Contains(info.Name(), ".osm-") {
							t.Errorf("temp file left behind: %s", p)
						}
						return nil
					})
				})
			}
			// And at moments nobody chose.
			for i := range 10 {
				dir := copyDir(t, base)
				runHelper(t, dir, proc, 0, time.Duration(rand.IntN(15000))*time.Microsecond)
				t.Run(fmt.Sprintf("random kill %d", i), func(t *testing.T) { checkOldOrNew(t, dir, old, new) })
			}
		})
	}
}
