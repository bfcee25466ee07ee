package installtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// repo is the source tree (install.sh, init/, build/).
func repo(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// entry is what a tree holds at one path: type, mode, content hash or link
// target, and the modification time of files (a rewrite with the same bytes
// shows too).
type entry struct {
	Kind   string
	Mode   fs.FileMode
	Data   string
	Mtime  int64
	Target string
}

// snapshot walks root into a map of path → entry.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{Mode: info.Mode()}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			e.Kind = "link"
			e.Target, err = os.Readlink(p)
		case d.IsDir():
			e.Kind = "dir"
		default:
			e.Kind = "file"
			e.Mtime = info.ModTime().UnixNano()
			var b []byte
			b, err = os.ReadFile(p)
			e.Data = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		m["/"+filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return m
}

// paths lists a snapshot's paths, sorted.
func paths(m map[string]entry) []string {
	var p []string
	for k := range m {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

// diffTrees is cmp.Diff of two snapshots, ignoring file mtimes when
// !mtimes.
func diffTrees(a, b map[string]entry, mtimes bool) string {
	if !mtimes {
		strip := func(m map[string]entry) map[string]entry {
			n := map[string]entry{}
			for k, v := range m {
				v.Mtime = 0
				n[k] = v
			}
			return n
		}
		a, b = strip(a), strip(b)
	}
	return cmp.Diff(a, b)
}

// files makes files (path → content; "->target" makes a symlink, a
// trailing / a directory, "0755:" before the content an executable).
func files(t *testing.T, root string, f map[string]string) {
	t.Helper()
	for _, p := range sortedKeys(f) {
		c := f[p]
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := fs.FileMode(0o644)
		if rest, ok := strings.CutPrefix(c, "0755:"); ok {
			mode, c = 0o755, rest
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

// hostSh is the host's /bin/sh ELF: an image's /bin/sh tells install.sh
// its architecture.
func hostSh(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Skipf("/bin/sh is not an ELF file")
	}
	return string(b)
}

// The image trees. Each has the traps the old install.sh fell into: every
// tree has lib/systemd/system and etc/init.d, whatever it boots.
func debianSystemd(t *testing.T, sh string) map[string]string {
	return map[string]string{
		"bin/sh":                 sh,
		"lib/systemd/systemd":    "0755:\x7fELF fake systemd",
		"sbin/init":              "->/lib/systemd/systemd",
		"lib/systemd/system/":    "",
		"etc/init.d/":            "",
		"etc/logrotate.d/":       "",
		"etc/systemd/system/":    "",
		"etc/rc2.d/":             "",
		"usr/share/doc/":         "",
		"var/log/":               "",
		"LuoYun/custom/scripts/": "",
	}
}

func debianSysvinit(t *testing.T, sh string) map[string]string {
	m := map[string]string{
		"bin/sh":              sh,
		"sbin/init":           "0755:\x7fELF fake init\x00INIT_VERSION=sysvinit-3.06\x00",
		"lib/systemd/system/": "",
		"etc/init.d/":         "",
		"etc/logrotate.d/":    "",
		"var/log/":            "",
	}
	for _, rl := range "0123456S" {
		m["etc/rc"+string(rl)+".d/"] = ""
	}
	return m
}

func upstartTree(t *testing.T, sh string) map[string]string {
	return map[string]string{
		"bin/sh":              sh,
		"sbin/init":           "0755:\x7fELF fake init\x00/com/ubuntu/Upstart\x00upstart %s\x00",
		"sbin/initctl":        "0755:\x7fELF fake initctl",
		"etc/init/tty1.conf":  "start on runlevel [23]\n",
		"etc/init.d/":         "",
		"lib/systemd/system/": "",
		"var/log/":            "",
	}
}

// rhelTree is merged /usr with relative links, /sbin/init a relative link
// to ../lib/systemd/systemd, /etc/init.d and /etc/rcN.d links into /etc/rc.d.
func rhelTree(t *testing.T, sh string) map[string]string {
	m := map[string]string{
		"usr/bin/sh":              sh,
		"bin":                     "->usr/bin",
		"sbin":                    "->usr/sbin",
		"lib":                     "->usr/lib",
		"usr/lib/systemd/systemd": "0755:\x7fELF fake systemd",
		"usr/sbin/init":           "->../lib/systemd/systemd",
		"usr/lib/systemd/system/": "",
		"etc/rc.d/init.d/":        "",
		"etc/init.d":              "->rc.d/init.d",
		"etc/sysconfig/":          "",
		"etc/systemd/system/":     "",
	}
	for _, rl := range "0123456" {
		m["etc/rc.d/rc"+string(rl)+".d/"] = ""
		m["etc/rc"+string(rl)+".d"] = "->rc.d/rc" + string(rl) + ".d"
	}
	return m
}

// fakeBuild makes OSM_BUILD_OUT with shell-script "binaries" for the archs
// (install.sh copies them; it never runs them).
func fakeBuild(t *testing.T, archs ...string) string {
	t.Helper()
	out := t.TempDir()
	for _, a := range archs {
		files(t, out, map[string]string{
			"linux-" + a + "/osmanager": "0755:#!/bin/sh\necho osmanager fake-" + a + "\n",
			"linux-" + a + "/osmctl":    "0755:#!/bin/sh\necho osmctl fake-" + a + "\n",
		})
	}
	return out
}

// result is a finished run of a script.
type result struct {
	out  string // stdout and stderr together
	code int
}

// run runs a script of the repo (install.sh, uninstall.sh) as a process,
// with no Go (GO=none and a PATH without it, as in a chroot) unless env
// says otherwise.
func run(t *testing.T, script string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(repo(t), script), args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GO=none", "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	r := result{out: string(out)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", script, err)
		}
		r.code = ee.ExitCode()
	}
	t.Logf("%s %s: exit %d\n%s", script, strings.Join(args, " "), r.code, r.out)
	return r
}

// mustRun is run that wants exit 0.
func mustRun(t *testing.T, script string, env []string, args ...string) string {
	t.Helper()
	r := run(t, script, env, args...)
	if r.code != 0 {
		t.Fatalf("%s %v: exit %d, want 0:\n%s", script, args, r.code, r.out)
	}
	return r.out
}

// rhel6Tree is RHEL 6: upstart 0.6 as /sbin/init, /etc/init with its rcS
// job, the rc scripts in /etc/rc.d with the /etc/init.d and /etc/rcN.d links.
func rhel6Tree(t *testing.T, sh string) map[string]string {
	m := map[string]string{
		"bin/sh":                    sh,
		"sbin/init":                 "0755:\x7fELF fake init\x00upstart 0.6.5\x00",
		"sbin/initctl":              "0755:\x7fELF fake initctl",
		"etc/init/rcS.conf":         "start on startup\n",
		"etc/rc.d/init.d/functions": "# RHEL's init functions\n",
		"etc/init.d":                "->rc.d/init.d",
		"etc/logrotate.d/":          "",
	}
	for _, rl := range "0123456" {
		m["etc/rc.d/rc"+string(rl)+".d/"] = ""
		m["etc/rc"+string(rl)+".d"] = "->rc.d/rc" + string(rl) + ".d"
	}
	return m
}
