package installtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeAgent is an "osmanager run --ready-file F" that prints a summary line
// on stdout and a log line on stderr, makes F, and serves until SIGTERM
// (removing F), as the real one does.
const fakeAgent = `#!/bin/sh
[ "$1" = run ] && [ "$2" = --ready-file ] || exit 2
ready=$3
echo "ok      floppy          fake summary"
echo "level=INFO msg=\"fake agent log\" service=agent" >&2
[ -n "$FAKE_EXIT" ] && exit 1
trap 'rm -f "$ready"; kill $child 2>/dev/null; exit 0' TERM
touch "$ready"
sleep 1000 &
child=$!
wait $child
`

// sysv is the init script rendered for a scratch dir, with its state there.
type sysv struct {
	dir, script string
	env         []string
}

func newSysv(t *testing.T, ssd string, agent string) sysv {
	t.Helper()
	dir := t.TempDir()
	files(t, dir, map[string]string{"sbin/osmanager": "0755:" + agent, "console": "", "run/": ""})
	tpl, err := os.ReadFile(filepath.Join(repo(t), "init/sysvinit/osmanager"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "osmanager.init")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(string(tpl), "@SBINDIR@", dir+"/sbin")), 0o755); err != nil {
		t.Fatal(err)
	}
	s := sysv{dir: dir, script: script, env: []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OSM_RUNDIR=" + dir + "/run", "OSM_LOGFILE=" + dir + "/osmanager.log",
		"OSM_CONSOLE=" + dir + "/console", "OSM_START_STOP_DAEMON=" + ssd, "OSM_READY_TIMEOUT=20", "OSM_STOP_TIMEOUT=10",
	}}
	t.Cleanup(func() {
		// Whatever a failed test left running.
		if p, err := s.pid(); err == nil {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	return s
}

func (s sysv) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "run/osmanager.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (s sysv) do(t *testing.T, action string) result {
	t.Helper()
	cmd := exec.Command(s.script, action)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	r := result{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", s.script, action, err)
	}
	t.Logf("%s: exit %d: %s", action, r.code, r.out)
	return r
}

// gone waits, with a deadline, for pid to exit.
func gone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(20 * time.Millisecond) // polling another process's exit
	}
	return false
}

func TestSysvinitScript(t *testing.T) {
	ssd, _ := exec.LookPath("start-stop-daemon")
	if ssd == "" {
		for _, p := range []string{"/usr/sbin/start-stop-daemon", "/sbin/start-stop-daemon"} {
			if _, err := os.Stat(p); err == nil {
				ssd = p
			}
		}
	}
	for _, c := range []struct{ name, ssd string }{{"plain-shell", ""}, {"start-stop-daemon", ssd}} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "start-stop-daemon" && c.ssd == "" {
				t.Skip("no start-stop-daemon here (Debian's dpkg has it)")
			}
			t.Parallel()
			s := newSysv(t, c.ssd, fakeAgent)
			if r := s.do(t, "status"); r.code != 3 {
				t.Errorf("status before start: exit %d, want 3 (not running)", r.code)
			}
			r := s.do(t, "start")
			if r.code != 0 || !strings.Contains(r.out, "boot steps done") {
				t.Fatalf("start: exit %d %q, want 0 and the boot steps done", r.code, r.out)
			}
			// start returns only after the boot steps: the ready file is there.
			if _, err := os.Stat(filepath.Join(s.dir, "run/osmanager.ready")); err != nil {
				t.Errorf("start returned before the ready file: %v", err)
			}
			pid, err := s.pid()
			if err != nil {
				t.Fatalf("pidfile: %v", err)
			}
			if r := s.do(t, "status"); r.code != 0 || !strings.Contains(r.out, "running (pid "+strconv.Itoa(pid)+")") {
				t.Errorf("status: exit %d %q, want 0 and pid %d", r.code, r.out, pid)
			}
			if r := s.do(t, "start"); r.code != 0 || !strings.Contains(r.out, "already running") {
				t.Errorf("second start: exit %d %q, want 0, already running", r.code, r.out)
			}
			log, _ := os.ReadFile(filepath.Join(s.dir, "osmanager.log"))
			if !strings.Contains(string(log), `msg="fake agent log"`) || strings.Contains(string(log), "fake summary") {
				t.Errorf("log file %q: want the agent's stderr only", log)
			}
			console, _ := os.ReadFile(filepath.Join(s.dir, "console"))
			if string(console) != "ok      floppy          fake summary\n" {
				t.Errorf("console %q: want the boot summary", console)
			}
			if r := s.do(t, "stop"); r.code != 0 {
				t.Errorf("stop: exit %d", r.code)
			}
			if !gone(pid) {
				t.Errorf("pid %d still runs after stop", pid)
			}
			if r := s.do(t, "status"); r.code != 3 {
				t.Errorf("status after stop: exit %d, want 3", r.code)
			}
			if r := s.do(t, "stop"); r.code != 0 {
				t.Errorf("stop when stopped: exit %d, want 0", r.code)
			}
			// A pidfile naming a dead process: LSB's 1.
			if err := os.WriteFile(filepath.Join(s.dir, "run/osmanager.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := s.do(t, "status"); r.code != 1 {
				t.Errorf("status with a stale pidfile: exit %d, want 1", r.code)
			}
			// restart after the stale pidfile.
			if r := s.do(t, "restart"); r.code != 0 {
				t.Errorf("restart: exit %d", r.code)
			}
			pid2, _ := s.pid()
			if pid2 == pid || s.do(t, "status").code != 0 {
				t.Errorf("restart: pid %d (old %d) not running", pid2, pid)
			}
			s.do(t, "stop")
			if !gone(pid2) {
				t.Errorf("pid %d still runs after stop", pid2)
			}
		})
		t.Run(c.name+"/agent-fails", func(t *testing.T) {
			if c.name == "start-stop-daemon" && c.ssd == "" {
				t.Skip("no start-stop-daemon here")
			}
			t.Parallel()
			s := newSysv(t, c.ssd, fakeAgent)
			s.env = append(s.env, "FAKE_EXIT=1")
			r := s.do(t, "start")
			if r.code != 1 || !strings.Contains(r.out, "exited during the boot steps: see "+s.dir+"/osmanager.log") {
				t.Errorf("start of a failing agent: exit %d %q, want 1 naming the log", r.code, r.out)
			}
		})
	}
}

// TestSysvinitRemoved: a removed, not purged package leaves the script and
// its links; at boot it does nothing, quietly, and status says why.
func TestSysvinitRemoved(t *testing.T) {
	s := newSysv(t, "", fakeAgent)
	if err := os.Remove(filepath.Join(s.dir, "sbin/osmanager")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		action, out string
		code        int
	}{
		{"start", "", 0},
		{"stop", "", 0},
		{"status", "osmanager is not installed (" + s.dir + "/sbin/osmanager is missing)\n", 3},
	} {
		if r := s.do(t, c.action); r.code != c.code || r.out != c.out {
			t.Errorf("%s: exit %d %q, want %d %q", c.action, r.code, r.out, c.code, c.out)
		}
	}
}

// TestInitFiles: each init file is a template with the binary's
// directory filled in; what the unit says about ordering and restarts.
func TestInitFiles(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(repo(t), p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unit := read("init/systemd/osmanager.service")
	for _, want := range []string{
		"Type=notify", "ExecStart=@SBINDIR@/osmanager run", "Restart=always", "Delegate=yes",
		"Before=network-pre.target ssh.service sshd.service systemd-user-sessions.service", "Wants=network-pre.target",
		"After=local-fs.target systemd-modules-load.service systemd-udev-trigger.service",
		"TimeoutStartSec=6min", "KillMode=process", "LockPersonality=yes", "RestrictRealtime=yes",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit has no line %q", want)
		}
	}
	for _, never := range []string{"NoNewPrivileges=yes", "ProtectSystem=", "/usr/local/sbin", "systemd-udev-settle", "RestrictNamespaces=yes"} {
		if strings.Contains(unit, "\n"+never) {
			t.Errorf("the unit has %q", never)
		}
	}
	sysvScript := read("init/sysvinit/osmanager")
	for _, want := range []string{"# Provides:          osmanager", "# Required-Start:    $local_fs", "# X-Start-Before:    networking network ssh sshd",
		"# Default-Start:     2 3 4 5", "# chkconfig: 2345 05 95", "DAEMON=@SBINDIR@/osmanager"} {
		if !strings.Contains(sysvScript, "\n"+want+"\n") {
			t.Errorf("the sysvinit script has no line %q", want)
		}
	}
	up := read("init/upstart/osmanager.conf")
	for _, want := range []string{"start on (local-filesystems or stopped rcS or starting networking or starting ssh)", "post-start script", "respawn"} {
		if !strings.Contains(up, want) {
			t.Errorf("the upstart job has no %q", want)
		}
	}
	if strings.Contains(unit+sysvScript+up, "/dev/null 2>&1") {
		t.Errorf("an init file sends the agent's output to /dev/null")
	}
	lr := read("init/logrotate/osmanager")
	if !strings.Contains(lr, "/var/log/osmanager.log {") || !strings.Contains(lr, "copytruncate") {
		t.Errorf("logrotate snippet:\n%s\nwant /var/log/osmanager.log with copytruncate", lr)
	}
}

// TestSystemdVerify runs systemd-analyze verify on the unit as install.sh
// renders it.
func TestSystemdVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze here")
	}
	dir := t.TempDir()
	files(t, dir, map[string]string{"sbin/osmanager": "0755:#!/bin/sh\n"})
	tpl, err := os.ReadFile(filepath.Join(repo(t), "init/systemd/osmanager.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.NewReplacer("@SBINDIR@", dir+"/sbin", "@DOCDIR@", "/usr/share/doc/osmanager").Replace(string(tpl))
	p := filepath.Join(dir, "osmanager.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
