package proc

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exit      Exit
		str       string
		shell     int
		signaled  bool
		succeeded bool
	}{
		{"zero", Exit{}, "exit 0", 0, false, true},
		{"code", Exit{Code: 3}, "exit 3", 3, false, false},
		{"kill", Exit{Code: -1, Signal: syscall.SIGKILL}, "signal KILL", 137, true, false},
		{"term", Exit{Code: -1, Signal: syscall.SIGTERM}, "signal TERM", 143, true, false},
		{"realtime", Exit{Code: -1, Signal: syscall.Signal(40)}, "signal 40", 168, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.exit.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.exit.ShellCode(); got != tc.shell {
				t.Errorf("ShellCode() = %d, want %d", got, tc.shell)
			}
			if got := tc.exit.Signaled(); got != tc.signaled {
				t.Errorf("Signaled() = %v, want %v", got, tc.signaled)
			}
			if got := tc.exit.Success(); got != tc.succeeded {
				t.Errorf("Success() = %v, want %v", got, tc.succeeded)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4242 0 0"
	for _, tc := range []struct {
		name string
		line string
		want Stat
		err  bool
	}{
		{name: "plain", line: "123 (sh) S 1 123 120" + tail, want: Stat{Pid: 123, State: 'S', PPid: 1, Pgrp: 123, Session: 120, Start: 4242}},
		{name: "odd comm", line: "7 (a) (b c) Z 2 3 4" + tail, want: Stat{Pid: 7, State: 'Z', PPid: 2, Pgrp: 3, Session: 4, Start: 4242}},
		{name: "no comm", line: "7 sh S 1 2 3" + tail, err: true},
		{name: "bad pid", line: "x (sh) S 1 2 3" + tail, err: true},
		{name: "short", line: "7 (sh) S 1 2 3 4", err: true},
		{name: "bad session", line: "7 (sh) S 1 2 x" + tail, err: true},
		{name: "bad state", line: "7 (sh) SS 1 2 3" + tail, err: true},
		{name: "empty", line: "", err: true},
		{name: "close before open", line: ")7 (", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.line))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseStat = %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("123 (sh) S 1 123 120 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4242 0 0"))
	f.Add([]byte("1 ()) R 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := ParseStat(b); err == nil && st.Pid < 0 && !strings.Contains(string(b), "-") {
			t.Fatalf("parsed %+v", st)
		}
	})
}

// fakeTable writes a process table of stat lines under a temp dir.
func fakeTable(t *testing.T, procs ...Stat) Table {
	t.Helper()
	dir := t.TempDir()
	for _, p := range procs {
		d := filepath.Join(dir, strconv.Itoa(p.Pid))
		os.Mkdir(d, 0o755)
		line := strconv.Itoa(p.Pid) + " (x y) " + string(p.State) + " " + strconv.Itoa(p.PPid) + " " + strconv.Itoa(p.Pgrp) + " " +
			strconv.Itoa(p.Session) + strings.Repeat(" 0", 15) + " " + strconv.FormatUint(p.Start, 10) + " 0 0\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "self"), 0o755)
	os.Mkdir(filepath.Join(dir, "999"), 0o755) // no stat: skipped
	return Table{Dir: dir}
}

func pidsOf(s []Stat) []int {
	var out []int
	for _, st := range s {
		out = append(out, st.Pid)
	}
	return out
}

func TestTableGroupAndSession(t *testing.T) {
	tab := fakeTable(t,
		Stat{Pid: 5, State: 'S', Pgrp: 10, Session: 10, Start: 200}, // joined group 10 later
		Stat{Pid: 10, State: 'S', Pgrp: 10, Session: 10, Start: 100},
		Stat{Pid: 11, State: 'Z', Pgrp: 10, Session: 10, Start: 150},
		Stat{Pid: 12, State: 'S', Pgrp: 12, Session: 10, Start: 160}, // a job of session 10
		Stat{Pid: 13, State: 'S', Pgrp: 10, Session: 10, Start: 50},  // older than the leader: not its
		Stat{Pid: 20, State: 'S', Pgrp: 20, Session: 20, Start: 300},
		Stat{Pid: 21, State: 'S', Pgrp: 20, Session: 20, Start: 310},
		Stat{Pid: 31, State: 'S', Pgrp: 30, Session: 30, Start: 410}, // its leader 30 is gone
	)
	for _, tc := range []struct {
		name string
		list func() []Stat
		want []int
	}{
		{"group, leader first", func() []Stat { return tab.Group(10, 100) }, []int{10, 5, 11}},
		{"session, leader first", func() []Stat { return tab.Session(10, 100) }, []int{10, 5, 11, 12}},
		{"start unknown", func() []Stat { return tab.Group(10, 0) }, []int{10, 5, 11, 13}},
		{"pid reused: group gone", func() []Stat { return tab.Group(20, 250) }, nil},
		{"pid reused: session gone", func() []Stat { return tab.Session(20, 250) }, nil},
		{"leader gone, members left", func() []Stat { return tab.Group(30, 400) }, []int{31}},
		{"no such group", func() []Stat { return tab.Group(40, 1) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pidsOf(tc.list()); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if st, err := tab.Stat(11); err != nil || !st.Zombie() {
		t.Errorf("Stat(11) = %+v, %v; want a zombie", st, err)
	}
	if _, err := tab.Stat(999); err == nil {
		t.Error("Stat of a pid without stat: no error")
	}
}

// gone reports whether pid has left the process table (or is a zombie
// waiting for a reaper that is not us).
func gone(pid int) bool {
	st, err := Table{}.Stat(pid)
	return err != nil || st.Zombie()
}

// waitGone polls until pid is gone or the deadline passes.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still runs after %v", pid, within)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: no event to wait on
	}
}

// startWithChild starts script (which must print a grandchild's pid on a
// line of its own) in mode and returns the process and that pid.
func startWithChild(t *testing.T, mode Mode, script string) (*Process, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cmd, Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL); p.Kill(); p.Wait() })
	return p, child
}

// TestKillGroupLeavesNone: killing a child's group ends the grandchild it
// forked too, and the leader's exit is the signal.
func TestKillGroupLeavesNone(t *testing.T) {
	p, child := startWithChild(t, OwnGroup, "sleep 1000 & echo $!; wait")
	if p.StartTime == 0 {
		t.Error("no start time read")
	}
	if got := p.Members(); len(got) < 2 || got[0] != p.Pid || !slices.Contains(got, child) {
		t.Errorf("Members() = %v, want the leader %d first and the grandchild %d", got, p.Pid, child)
	}
	if st, _ := (Table{}).Stat(p.Pid); st.Pgrp != p.Pid || st.Session == p.Pid {
		t.Errorf("leader's stat %+v: want its own group in the agent's session", st)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	exit, err := p.Wait()
	if err != nil || exit != (Exit{Code: -1, Signal: syscall.SIGKILL}) || exit.String() != "signal KILL" {
		t.Errorf("Wait = %v (%+v), %v; want signal KILL", exit, exit, err)
	}
	waitGone(t, child, 10*time.Second)
	if again, _ := p.Wait(); again != exit {
		t.Errorf("second Wait = %v, want %v", again, exit)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Wait")
	}
}

// TestSignalAfterLeaderExited: a leader that forks a daemon and exits is
// reaped; the daemon is still its group's, and Kill ends it through the
// /proc scan.
func TestSignalAfterLeaderExited(t *testing.T) {
	p, child := startWithChild(t, OwnGroup, "sleep 1000 >/dev/null 2>&1 & echo $!")
	exit, err := p.Wait()
	if err != nil || !exit.Success() || exit.String() != "exit 0" {
		t.Fatalf("Wait = %v, %v; want exit 0", exit, err)
	}
	if got := p.Members(); !slices.Equal(got, []int{child}) {
		t.Errorf("Members() after the leader's exit = %v, want [%d]", got, child)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child, 10*time.Second)
}

func TestExitCodeOrSignal(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
		exit               Exit
	}{
		{"exit 0", "exit 0", "exit 0", Exit{}},
		{"exit 3", "exit 3", "exit 3", Exit{Code: 3}},
		{"exit 255", "exit 255", "exit 255", Exit{Code: 255}},
		{"term", "kill -TERM $$", "signal TERM", Exit{Code: -1, Signal: syscall.SIGTERM}},
		{"kill", "kill -KILL $$", "signal KILL", Exit{Code: -1, Signal: syscall.SIGKILL}},
		{"exit 137 is not a signal", "exit 137", "exit 137", Exit{Code: 137}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(exec.Command("/bin/sh", "-c", tc.script), Options{Mode: OwnGroup})
			if err != nil {
				t.Fatal(err)
			}
			exit, err := p.Wait()
			if err != nil || exit != tc.exit || exit.String() != tc.want {
				t.Errorf("Wait = %v (%+v), %v; want %s", exit, exit, err, tc.want)
			}
		})
	}
}

func TestWaitContextKillsGroup(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & echo $!; wait")
	out, _ := cmd.StdoutPipe()
	p, err := Start(cmd, Options{Mode: OwnGroup})
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	child, _ := strconv.Atoi(strings.TrimSpace(line))
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	exit, err := p.WaitContext(ctx)
	if err != nil || exit.Signal != syscall.SIGKILL {
		t.Errorf("WaitContext = %v, %v; want signal KILL", exit, err)
	}
	waitGone(t, child, 10*time.Second)
}

// TestOwnSession: a session leader's members are listed from /proc, a
// setsid daemon it starts is not among them.
func TestOwnSession(t *testing.T) {
	p, child := startWithChild(t, OwnSession, "sleep 1000 & echo $!; exec sleep 1001")
	st, err := Table{}.Stat(p.Pid)
	if err != nil || st.Session != p.Pid || st.Pgrp != p.Pid {
		t.Fatalf("leader's stat %+v, %v: want its own session", st, err)
	}
	if got := p.SessionMembers(); len(got) != 2 || got[0] != p.Pid || got[1] != child {
		t.Errorf("SessionMembers() = %v, want [%d %d]", got, p.Pid, child)
	}
	p.Kill()
	if exit, _ := p.Wait(); exit.Signal != syscall.SIGKILL {
		t.Errorf("exit %v, want signal KILL", exit)
	}
	waitGone(t, child, 10*time.Second)
}

// TestCredential: a child started with a credential runs as that user
// with those groups.
func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	cmd := exec.Command("/bin/sh", "-c", "id -u; id -g; id -G")
	var out strings.Builder
	cmd.Stdout = &out
	p, err := Start(cmd, Options{Mode: OwnGroup, Credential: &syscall.Credential{Uid: 65534, Gid: 65533, Groups: []uint32{65533, 4242}}})
	if err != nil {
		t.Fatal(err)
	}
	if exit, err := p.Wait(); err != nil || !exit.Success() {
		t.Fatalf("Wait = %v, %v", exit, err)
	}
	if got, want := out.String(), "65534\n65533\n65533 4242\n"; got != want {
		t.Errorf("id said %q, want %q", got, want)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(exec.Command("/bin/true"), Options{}); err == nil {
		t.Error("Start without a mode: no error")
	}
	if _, err := Start(exec.Command("/nonexistent/x"), Options{Mode: OwnGroup}); err == nil {
		t.Error("Start of a missing binary: no error")
	}
}

func TestBootID(t *testing.T) {
	if id := (Table{}).BootID(); len(id) != 36 {
		t.Errorf("BootID() = %q, want a uuid", id)
	}
	if id := (Table{Dir: t.TempDir()}).BootID(); id != "" {
		t.Errorf("BootID() of an empty table = %q, want none", id)
	}
}

// TestSignalWhileReaping: signals sent while the leader exits and is
// reaped race with nothing (run with -race), and Wait may be called from
// two goroutines at once.
func TestSignalWhileReaping(t *testing.T) {
	p, err := Start(exec.Command("/bin/sh", "-c", "exit 7"), Options{Mode: OwnGroup})
	if err != nil {
		t.Fatal(err)
	}
	signalled := make(chan struct{})
	go func() {
		defer close(signalled)
		for {
			select {
			case <-p.Done():
				p.Signal(0)
				return
			default:
				p.Signal(0)
			}
		}
	}()
	other := make(chan Exit, 1)
	go func() { e, _ := p.Wait(); other <- e }()
	exit, err := p.Wait()
	<-signalled
	if err != nil || exit != (Exit{Code: 7}) {
		t.Errorf("Wait = %v, %v; want exit 7", exit, err)
	}
	if e := <-other; e != exit {
		t.Errorf("the other Wait = %v, want %v", e, exit)
	}
}

// TestStartIntoCgroup: Options.Cgroup clones the child into that cgroup
// v2 directory, so /proc/PID/cgroup names it from the first instruction.
func TestStartIntoCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a cgroup")
	}
	var dir string
	for _, m := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st syscall.Statfs_t
		if syscall.Statfs(m, &st) == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
			dir = filepath.Join(m, "osm-proc-test-"+strconv.Itoa(os.Getpid()))
			break
		}
	}
	if dir == "" {
		t.Skip("no cgroup v2 tree")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	defer os.Remove(dir)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cmd := exec.Command("/bin/cat", "/proc/self/cgroup")
	var out strings.Builder
	cmd.Stdout = &out
	p, err := Start(cmd, Options{Mode: OwnGroup, Cgroup: d})
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if want := "0::/" + filepath.Base(dir) + "\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("child's /proc/self/cgroup = %q, want it to end with %q", out.String(), want)
	}
}
