package webssh

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/proc"
)

// startLeader starts a session leader with a background member, as a
// shell with a job would be, and returns the leader and member pids.
func startLeader(t *testing.T) (leader *exec.Cmd, member int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & echo $!; exec sleep 1001")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	member, _ = strconv.Atoi(strings.TrimSpace(line))
	t.Cleanup(func() {
		unix.Kill(member, unix.SIGKILL)
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, member
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(string(b[i+1:]), " Z") && !strings.HasPrefix(string(b[i+1:]), " X")
}

// TestEndOrphans: a start ends the shells the shells file names, and only
// those: not a reused pid (another start time), not another boot's.
func TestEndOrphans(t *testing.T) {
	ours, ourMember := startLeader(t)
	reused, reusedMember := startLeader(t)
	otherBoot, otherBootMember := startLeader(t)
	start := func(pid int) uint64 {
		st, err := proc.Table{}.Stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		return st.Start
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "ly/conf"), 0o700)
	write := func(f shellsFile) {
		if err := os.WriteFile(filepath.Join(root, "ly", DefaultFiles().Shells), f.append(nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Two files' worth in one: the other boot's record would be ignored
	// anyway, so it is written for a second start below.
	write(shellsFile{boot: bootID(), shells: []shellRecord{
		{ours.Process.Pid, start(ours.Process.Pid)},
		{reused.Process.Pid, start(reused.Process.Pid) + 1},
	}})
	waited := make(chan error, 1)
	go func() { waited <- ours.Wait() }()

	e := newEnvAt(t, root)
	e.client() // Serve answers only after it has ended the orphans
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the recorded shell still runs")
	}
	waitFor(t, "the shell's job to end", 10*time.Second, func() bool { return !alive(ourMember) })
	if !alive(reused.Process.Pid) || !alive(reusedMember) {
		t.Error("a reused pid's session was ended")
	}
	if !strings.Contains(e.log.String(), "ended a terminal shell left by an earlier run") {
		t.Error("no log line for the ended shell")
	}
	data, _ := os.ReadFile(filepath.Join(root, "ly", DefaultFiles().Shells))
	if f, err := parseShells(data); err != nil || len(f.shells) != 0 {
		t.Errorf("shells file after the start: %q, %v; want no shells", data, err)
	}

	write(shellsFile{boot: "0123-other-boot", shells: []shellRecord{{otherBoot.Process.Pid, start(otherBoot.Process.Pid)}}})
	e2 := newEnvAt(t, root)
	e2.client()
	if !alive(otherBoot.Process.Pid) || !alive(otherBootMember) {
		t.Error("a record of another boot ended a process")
	}
}

// TestShellsFileFollowsShells: a login shell is in the shells file while
// it runs, and leaves it when it ends.
func TestShellsFileFollowsShells(t *testing.T) {
	e := newEnv(t)
	w := e.mustLogin("root").open()
	w.typeIn("echo PID=$$\n")
	m := w.expectRE(`PID=(\d+)`, 10*time.Second)
	file := filepath.Join(e.srv.cfg.Conf.Dir(), DefaultFiles().Shells)
	read := func() shellsFile {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseShells(data)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := read()
	if f.boot != bootID() || len(f.shells) != 1 || strconv.Itoa(f.shells[0].pid) != m[1] {
		t.Errorf("shells file %+v, want this boot and pid %s", f, m[1])
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("shells file mode: %v %v", st, err)
	}
	w.typeIn("exit\n")
	w.waitExit(10 * time.Second)
	waitFor(t, "the session to go", 5*time.Second, func() bool { return e.st.Terminal().Active == 0 })
	if f := read(); len(f.shells) != 0 {
		t.Errorf("after exit: %+v, want no shells", f)
	}
}

// TestOrphansAfterSIGKILL: the agent (a child process running a server)
// dies by SIGKILL while a shell's job ignores SIGHUP; the next start ends
// the job.
func TestOrphansAfterSIGKILL(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAgent$")
	cmd.Env = append(os.Environ(), "OSM_WEBSSH_HELPER_ROOT="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the helper agent did not start")
	}
	e := &testEnv{t: t, url: "http://" + addr, host: addr}
	w := e.mustLogin("root").open()
	w.typeIn("trap '' HUP; sleep 1000 & echo JOB=$!\n")
	m := w.expectRE(`JOB=(\d+)\r`, 10*time.Second)
	job, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { unix.Kill(job, unix.SIGKILL) })

	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	if !alive(job) {
		t.Fatal("the job died with the agent: nothing to test")
	}
	e2 := newEnvAt(t, root)
	e2.client()
	waitFor(t, "the orphaned job to end", 10*time.Second, func() bool { return !alive(job) })
}

// TestHelperAgent is the agent TestOrphansAfterSIGKILL kills: a server
// on its root until killed.
func TestHelperAgent(t *testing.T) {
	root := os.Getenv("OSM_WEBSSH_HELPER_ROOT")
	if root == "" {
		t.Skip("runs as TestOrphansAfterSIGKILL's child")
	}
	e := newEnvAt(t, root)
	fmt.Printf("LISTEN %s\n", e.host)
	<-e.done // until SIGKILL
}

// expectRE pumps until the output matches re and returns the submatches.
func (w *wsConn) expectRE(re string, timeout time.Duration) []string {
	w.t.Helper()
	r := regexp.MustCompile(re)
	var m []string
	if err := w.pump(timeout, func() bool { m = r.FindStringSubmatch(w.out.String()); return m != nil }); err != nil {
		w.t.Fatalf("waiting for %s: %v", re, err)
	}
	return m
}

// FuzzParseShells: whatever a shells file holds, parsing neither panics
// nor accepts what it would not write back the same.
func FuzzParseShells(f *testing.F) {
	f.Add([]byte("boot 3c1f0a7e-1b2c-4d5e-8f90-a1b2c3d4e5f6\nshell 1234 5678\n"))
	f.Add([]byte("shell 1 2\n"))
	f.Add([]byte("boot x\nshell -1 2\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parseShells(data)
		if err != nil {
			return
		}
		again, err := parseShells(sf.append(nil))
		if err != nil {
			t.Fatalf("own output refused: %v", err)
		}
		if again.boot != sf.boot || fmt.Sprint(again.shells) != fmt.Sprint(sf.shells) {
			t.Fatalf("round trip: %+v, want %+v", again, sf)
		}
	})
}
