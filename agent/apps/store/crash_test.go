package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/sysroot"
)

// TestMain lets the test binary act as the agent: with OSM_STORE_HELPER
// set it runs one store operation (crashHelper) or a disk-full install in
// its own mount namespace (diskFullHelper).
func TestMain(m *testing.M) {
	switch os.Getenv("OSM_STORE_HELPER") {
	case "crash":
		crashHelper()
		return
	case "diskfull":
		diskFullHelper()
		return
	}
	os.Exit(m.Run())
}

// crashHelper installs OSM_STORE_PKG into the store at OSM_STORE_DIR
// (mode "upgrade": Install; "force": Prepare with force, then Commit, as
// the manager replaces a running app), numbering every store step and
// sysroot write stage on stdout; at stage OSM_STORE_AT it says PAUSED and
// waits for SIGKILL.
func crashHelper() {
	at, _ := strconv.Atoi(os.Getenv("OSM_STORE_AT"))
	n := 0
	stage := func(what string) {
		n++
		fmt.Printf("stage %d %s\n", n, what)
		if n == at {
			fmt.Println("PAUSED")
			select {}
		}
	}
	r, err := sysroot.New(os.Getenv("OSM_STORE_DIR"))
	if err != nil {
		fmt.Println("DONE", err)
		return
	}
	r.Hook = func(s sysroot.Stage, name string) { stage(string(s) + " " + name) }
	s, err := Open(r, testPaths(), Options{
		Users: users, Log: slog.New(slog.DiscardHandler),
		Hook: func(st Step, id string) error { stage(string(st)); return nil },
	})
	if err != nil {
		fmt.Println("DONE", err)
		return
	}
	src := pack.Source{Path: os.Getenv("OSM_STORE_PKG")}
	if os.Getenv("OSM_STORE_MODE") == "force" {
		var p *Pending
		p, err = s.Prepare(context.Background(), src, InstallOptions{Force: true})
		if err == nil {
			_, err = p.Commit()
		}
	} else {
		_, err = s.Install(context.Background(), src, InstallOptions{})
	}
	fmt.Println("DONE", err)
}

func runCrashHelper(t *testing.T, dir, pkg, mode string, at int) (stages int, finished bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OSM_STORE_HELPER=crash", "OSM_STORE_DIR="+dir, "OSM_STORE_PKG="+pkg,
		"OSM_STORE_MODE="+mode, "OSM_STORE_AT="+strconv.Itoa(at))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
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
			if line != "DONE <nil>" {
				t.Errorf("helper: %s", line)
			}
		}
	}
	io.Copy(io.Discard, out)
	cmd.Wait()
	return stages, finished
}

// TestCrashDuringInstall kills the agent with SIGKILL at every stage of
// an upgrade and of a forced replace of the same version. After the next
// Open the app is installed with its old version or its new one (then
// with the old one as previous), each runnable, with no staging dir and
// no tree the state does not name.
func TestCrashDuringInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	for _, mode := range []string{"upgrade", "force"} {
		t.Run(mode, func(t *testing.T) {
			base := t.TempDir()
			s := open(t, base, Options{})
			if _, err := s.Install(context.Background(), body(helloTar("1.0.0")), InstallOptions{}); err != nil {
				t.Fatal(err)
			}
			newEntries := packtest.Hello("hello", "2.0.0")
			newOut := "hello 2.0.0"
			if mode == "force" {
				newEntries = append(packtest.Hello("hello", "1.0.0")[:2], E{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\necho hello forced\n"})
				newOut = "hello forced"
			}
			pkg := filepath.Join(t.TempDir(), "new.tar.gz")
			os.WriteFile(pkg, packtest.Tar(true, newEntries...), 0o644)

			total, finished := runCrashHelper(t, copyDir(t, base), pkg, mode, -1)
			if !finished || total < 8 {
				t.Fatalf("helper passed %d stages (finished %v)", total, finished)
			}
			sawNew := false
			for at := 1; at <= total; at++ {
				t.Run(fmt.Sprintf("kill at stage %d", at), func(t *testing.T) {
					dir := copyDir(t, base)
					if n, fin := runCrashHelper(t, dir, pkg, mode, at); n != at || fin {
						t.Fatalf("helper passed %d stages, finished %v; want a kill at %d", n, fin, at)
					}
					s := open(t, dir, Options{})
					a, err := s.Get("hello")
					if err != nil {
						t.Fatalf("app gone after a crash: %v", err)
					}
					switch got := run(t, a.Current); {
					case got == "hello 1.0.0":
						if a.Previous != nil {
							t.Errorf("old version current with a previous %+v", a.Previous)
						}
					case got == newOut:
						sawNew = true
						if a.Previous == nil || run(t, *a.Previous) != "hello 1.0.0" {
							t.Errorf("new version current without the old one as previous: %+v", a.Previous)
						}
					default:
						t.Errorf("current exec says %q", got)
					}
					trees, _ := os.ReadDir(filepath.Join(dir, "apps/hello"))
					want := 1
					if a.Previous != nil {
						want = 2
					}
					if len(trees) != want {
						t.Errorf("apps/hello holds %d trees, want %d", len(trees), want)
					}
					if left, _ := os.ReadDir(filepath.Join(dir, "apps/.staging")); len(left) != 0 {
						t.Errorf("staging dir holds %v after Open", left)
					}
					if a, err := s.Install(context.Background(), pack.Source{Path: pkg}, InstallOptions{Force: true}); err != nil || run(t, a.Current) != newOut {
						t.Errorf("install after the crash: %v", err)
					}
				})
			}
			if !sawNew {
				t.Error("no kill stage left the new version: the commit stage was never reached")
			}
		})
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// diskFullHelper runs in a private mount namespace: it mounts a 256 KiB
// tmpfs on OSM_STORE_DIR, installs 1.0.0, then the package
// OSM_STORE_PKG (over a MiB unpacked), and prints the code and whether
// the store is as before.
func diskFullHelper() {
	dir := os.Getenv("OSM_STORE_DIR")
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		fmt.Println("SKIP", err)
		return
	}
	r, _ := sysroot.New(dir)
	s, err := Open(r, testPaths(), Options{Users: users})
	if err != nil {
		fmt.Println("FAIL", err)
		return
	}
	ctx := context.Background()
	if _, err := s.Install(ctx, pack.Source{Body: strings.NewReader(string(helloTar("1.0.0")))}, InstallOptions{}); err != nil {
		fmt.Println("FAIL", err)
		return
	}
	before := snapshot(nil, dir)
	_, err = s.Install(ctx, pack.Source{Path: os.Getenv("OSM_STORE_PKG")}, InstallOptions{})
	after := snapshot(nil, dir)
	a, _ := s.Get("hello")
	out, _ := exec.Command(filepath.Join(a.Current.Dir, "bin/hello")).Output()
	fmt.Printf("CODE %s\nSAME %v\nRUNS %q\nERR %v\n", apperr.CodeOf(err), before == after, strings.TrimSpace(string(out)), err)
}

// TestDiskFull installs into a full file system (a small tmpfs in a
// private mount namespace; root only): no_space, nothing left behind, the
// old version runnable. One package fills the disk while downloading,
// the other (small archive, large content) while unpacking.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7919 + i>>8)
	}
	for name, archive := range map[string][]byte{
		"full while downloading": packtest.Tar(false, append(packtest.Hello("hello", "2.0.0"), E{Name: "blob", Body: string(big)})...),
		"full while unpacking":   packtest.Tar(true, append(packtest.Hello("hello", "2.0.0"), E{Name: "zeros", Body: strings.Repeat("\x00", 1<<20)})...),
	} {
		t.Run(name, func(t *testing.T) {
			pkg := filepath.Join(t.TempDir(), "big.tar")
			os.WriteFile(pkg, archive, 0o644)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "OSM_STORE_HELPER=diskfull", "OSM_STORE_DIR="+t.TempDir(), "OSM_STORE_PKG="+pkg)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Skipf("no mount namespace: %v %s", err, out)
			}
			got := string(out)
			if strings.HasPrefix(got, "SKIP") {
				t.Skip(got)
			}
			for _, want := range []string{"CODE no_space\n", "SAME true\n", `RUNS "hello 1.0.0"`} {
				if !strings.Contains(got, want) {
					t.Errorf("helper said\n%s\nwant %q", got, want)
				}
			}
		})
	}
}
