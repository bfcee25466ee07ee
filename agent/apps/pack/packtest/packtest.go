// Package packtest builds application packages in tests (of pack, store,
// the runner and the API): tar or tar.gz archives from a list of entries,
// and a ready-made app whose exec is a shell script.
package packtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"osmanager/agent/apps/apperr"
)

// Entry is one archive entry. Type defaults to a regular file; Mode to
// 0644 for files (0755 for Exec), 0755 for dirs.
type Entry struct {
	Name string
	Body string
	Mode int64
	Type byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, …
	Link string // target of a symlink or hard link
	Size int64  // overrides len(Body) in the header when non-zero (lying headers)
}

// Tar returns the entries as a tar archive, gzip-compressed when gz.
func Tar(gz bool, entries ...Entry) []byte {
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Typeflag: e.Type, Linkname: e.Link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if e.Size != 0 {
			h.Size = e.Size
		}
		if err := w.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("packtest: header %q: %v", e.Name, err))
		}
		if h.Typeflag == tar.TypeReg && e.Body != "" {
			w.Write([]byte(e.Body))
		}
	}
	w.Flush()
	w.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// Manifest returns a manifest.json entry for id and version running
// bin/hello, with extra JSON members (`"user": "x"`) added verbatim.
func Manifest(id, version string, extra ...string) Entry {
	body := fmt.Sprintf(`{"id": %q, "version": %q, "exec": "bin/hello", "args": [], "env": {}, "restart": "on-failure"`, id, version)
	for _, e := range extra {
		body += ", " + e
	}
	return Entry{Name: "manifest.json", Body: body + "}\n"}
}

// Hello returns the entries of a working app: the manifest and
// bin/hello, a shell script printing "hello <version>".
func Hello(id, version string) []Entry {
	return []Entry{
		Manifest(id, version),
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\necho hello " + version + "\n"},
	}
}

func hello(extra ...Entry) []Entry { return append(Hello("hello", "1.0.0"), extra...) }

// Bad is a package that must be refused, with the code and a part of the
// message wanted.
type Bad struct {
	Name string
	Data []byte
	Code apperr.Code
	Want string
}

// The limits BadArchives expects (its bombs are sized for them).
const (
	BadMaxBytes = 1 << 20
	BadMaxFiles = 12
)

// BadArchives lists refused archives: every bad input of a package the
// extractor must catch. Extract and install them with BadMaxBytes and
// BadMaxFiles as limits.
func BadArchives() []Bad {
	good := Tar(false, hello()...)
	gz := Tar(true, hello()...)
	many := hello()
	for i := range 20 {
		many = append(many, Entry{Name: "f" + strings.Repeat("x", i)})
	}
	manyDirs := hello()
	for i := range 20 {
		manyDirs = append(manyDirs, Entry{Name: strings.Repeat("d/", i+1), Type: tar.TypeDir})
	}
	bomb := Tar(true, hello(Entry{Name: "zeros", Body: strings.Repeat("\x00", 2<<20)})...)
	corruptGz := append([]byte{}, gz...)
	corruptGz[len(corruptGz)/2] ^= 0xff
	return []Bad{
		{"empty", nil, apperr.BadRequest, "empty"},
		{"not a tar", []byte("hello, this is not an archive at all, just some text that goes on for a while ............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), apperr.BadRequest, "not a tar"},
		{"zero blocks only", make([]byte, 1024), apperr.BadRequest, "no entries"},
		{"truncated tar", good[:700], apperr.BadRequest, "truncated"},
		{"truncated gzip", gz[:len(gz)/2], apperr.BadRequest, "truncated"},
		{"corrupt gzip", corruptGz, apperr.BadRequest, ""},
		{"gzip magic then junk", []byte{0x1f, 0x8b, 1, 2, 3}, apperr.BadRequest, "gzip"},
		{"bomb size", bomb, apperr.TooLarge, "over"},
		{"bomb file count", Tar(true, many...), apperr.TooLarge, "entries"},
		{"bomb dir count", Tar(false, manyDirs...), apperr.TooLarge, "entries"},
		{"lying size header", Tar(false, hello(Entry{Name: "big", Body: "x", Size: 1 << 40})...), apperr.TooLarge, "over"},
		{"dotdot", Tar(false, hello(Entry{Name: "../evil", Body: "x"})...), apperr.BadRequest, `".."`},
		{"dotdot inside", Tar(false, hello(Entry{Name: "a/../../evil", Body: "x"})...), apperr.BadRequest, `".."`},
		{"absolute", Tar(false, hello(Entry{Name: "/etc/evil", Body: "x"})...), apperr.BadRequest, "absolute"},
		{"name component too long", Tar(false, hello(Entry{Name: strings.Repeat("n", 300), Body: "x"})...), apperr.BadRequest, "archive"},
		{"name too long", Tar(false, hello(Entry{Name: strings.Repeat("d/", 600) + "x", Body: "x"})...), apperr.BadRequest, "over 1024"},
		{"control byte", Tar(false, hello(Entry{Name: "a\x1bb", Body: "x"})...), apperr.BadRequest, "control"},
		{"newline name", Tar(false, hello(Entry{Name: "a\nb", Body: "x"})...), apperr.BadRequest, "control"},
		{"bad utf8", Tar(false, hello(Entry{Name: "a\xffb", Body: "x"})...), apperr.BadRequest, "UTF-8"},
		{"symlink out", Tar(false, hello(Entry{Name: "out", Type: tar.TypeSymlink, Link: "../secret"})...), apperr.BadRequest, "out of the package"},
		{"symlink out deep", Tar(false, hello(Entry{Name: "a/b/out", Type: tar.TypeSymlink, Link: "../../../x"})...), apperr.BadRequest, "out of the package"},
		{"symlink absolute", Tar(false, hello(Entry{Name: "out", Type: tar.TypeSymlink, Link: "/etc/shadow"})...), apperr.BadRequest, "absolute"},
		{"symlink chain out", Tar(false, hello(Entry{Name: "d", Type: tar.TypeSymlink, Link: "."}, Entry{Name: "e", Type: tar.TypeSymlink, Link: "d/.."})...), apperr.BadRequest, "out of the package"},
		{"symlink dangling", Tar(false, hello(Entry{Name: "l", Type: tar.TypeSymlink, Link: "nothing"})...), apperr.BadRequest, "does not exist"},
		{"symlink loop", Tar(false, hello(Entry{Name: "l1", Type: tar.TypeSymlink, Link: "l2"}, Entry{Name: "l2", Type: tar.TypeSymlink, Link: "l1"})...), apperr.BadRequest, "levels"},
		{"write through symlink", Tar(false, hello(Entry{Name: "dir", Type: tar.TypeSymlink, Link: "bin"}, Entry{Name: "dir/x", Body: "x"})...), apperr.BadRequest, "symlink"},
		{"hard link out", Tar(false, hello(Entry{Name: "h", Type: tar.TypeLink, Link: "../secret"})...), apperr.BadRequest, "hard link"},
		{"hard link absolute", Tar(false, hello(Entry{Name: "h", Type: tar.TypeLink, Link: "/etc/passwd"})...), apperr.BadRequest, "hard link"},
		{"hard link forward", Tar(false, append([]Entry{{Name: "h", Type: tar.TypeLink, Link: "bin/hello"}}, hello()...)...), apperr.BadRequest, "hard link"},
		{"hard link to dir", Tar(false, hello(Entry{Name: "h", Type: tar.TypeLink, Link: "bin"})...), apperr.BadRequest, "hard link"},
		{"char device", Tar(false, hello(Entry{Name: "null", Type: tar.TypeChar})...), apperr.BadRequest, "device"},
		{"block device", Tar(false, hello(Entry{Name: "sda", Type: tar.TypeBlock})...), apperr.BadRequest, "device"},
		{"fifo", Tar(false, hello(Entry{Name: "p", Type: tar.TypeFifo})...), apperr.BadRequest, "FIFO"},
		{"setuid", Tar(false, hello(Entry{Name: "su", Body: "x", Mode: 0o4755})...), apperr.BadRequest, "setuid"},
		{"setgid dir", Tar(false, hello(Entry{Name: "sg/", Type: tar.TypeDir, Mode: 0o2755})...), apperr.BadRequest, "setgid"},
		{"sticky", Tar(false, hello(Entry{Name: "st/", Type: tar.TypeDir, Mode: 0o1777})...), apperr.BadRequest, "sticky"},
		{"duplicate", Tar(false, hello(Entry{Name: "bin/hello", Body: "again", Mode: 0o755})...), apperr.BadRequest, "twice"},
		{"duplicate cleaned", Tar(false, hello(Entry{Name: "./bin//hello", Body: "again", Mode: 0o755})...), apperr.BadRequest, "twice"},
		{"file where dir needed", Tar(false, hello(Entry{Name: "bin/hello/x", Body: "x"})...), apperr.BadRequest, "archive"},
		{"no manifest", Tar(false, Entry{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, "no manifest.json"},
		{"manifest not at top", Tar(false, Entry{Name: "sub/manifest.json", Body: Manifest("a", "1").Body}, Entry{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, "no manifest.json"},
		{"manifest is a dir", Tar(false, Entry{Name: "manifest.json/", Type: tar.TypeDir}), apperr.BadRequest, "no manifest.json"},
		{"manifest symlink", Tar(false, Entry{Name: "m", Body: Manifest("a", "1").Body}, Entry{Name: "manifest.json", Type: tar.TypeSymlink, Link: "m"}), apperr.BadRequest, "no manifest.json"},
		{"manifest invalid", Tar(false, Entry{Name: "manifest.json", Body: "{"}), apperr.BadRequest, "manifest"},
		{"manifest bad id", Tar(false, Manifest("Bad_ID", "1"), Entry{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, `"id"`},
		{"manifest unknown key", Tar(false, Manifest("a", "1", `"restrat": "no"`), Entry{Name: "bin/hello", Mode: 0o755, Body: "x"}), apperr.BadRequest, `unknown key "restrat"`},
		{"exec missing", Tar(false, Manifest("a", "1")), apperr.BadRequest, "does not exist"},
		{"exec not executable", Tar(false, Manifest("a", "1"), Entry{Name: "bin/hello", Mode: 0o644, Body: "x"}), apperr.BadRequest, "not executable"},
		{"exec a dir", Tar(false, Manifest("a", "1"), Entry{Name: "bin/hello/", Type: tar.TypeDir}), apperr.BadRequest, "not a regular file"},
		{"exec outside", Tar(false, Entry{Name: "manifest.json", Body: `{"id": "a", "version": "1", "exec": "../sh"}`}), apperr.BadRequest, `".."`},
		{"exec absolute", Tar(false, Entry{Name: "manifest.json", Body: `{"id": "a", "version": "1", "exec": "/bin/sh"}`}), apperr.BadRequest, `absolute`},
		{"exec via symlink out", Tar(false, Manifest("a", "1"), Entry{Name: "bin/", Type: tar.TypeDir}, Entry{Name: "bin/hello", Type: tar.TypeSymlink, Link: "../../bin/sh"}), apperr.BadRequest, "out of the package"},
		{"workdir missing", Tar(false, append(hello()[1:], Manifest("a", "1", `"workdir": "var"`))...), apperr.BadRequest, `"workdir"`},
	}
}

// OCI bundles.

// BundleConfig returns an OCI runtime config.json running args as root
// in the bundle's rootfs, with new pid, mount, ipc and uts namespaces,
// and the annotations given as name, value pairs.
func BundleConfig(args []string, annotations ...string) string {
	a := map[string]string{}
	for i := 0; i+1 < len(annotations); i += 2 {
		a[annotations[i]] = annotations[i+1]
	}
	cfg := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false, "user": map[string]int{"uid": 0, "gid": 0}, "args": args,
			"env": []string{"PATH=/bin"}, "cwd": "/", "noNewPrivileges": true,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "bundle",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "mode=755", "size=65536k"}},
		},
		"linux": map[string]any{
			"namespaces": []map[string]string{{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}},
		},
	}
	if len(a) > 0 {
		cfg["annotations"] = a
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Bundle returns the entries of an OCI bundle package: <name>/,
// <name>/config.json with cfg, <name>/rootfs/ and the rootfs entries
// (their names relative to rootfs).
func Bundle(name, cfg string, rootfs ...Entry) []Entry {
	out := []Entry{
		{Name: name + "/", Type: tar.TypeDir},
		{Name: name + "/config.json", Body: cfg},
		{Name: name + "/rootfs/", Type: tar.TypeDir},
	}
	for _, e := range rootfs {
		e.Name = name + "/rootfs/" + e.Name
		out = append(out, e)
	}
	return out
}

// BadBundles lists refused OCI bundles, as BadArchives.
func BadBundles() []Bad {
	good := BundleConfig([]string{"/bin/sleep", "1000"})
	sh := Entry{Name: "bin/sh", Body: "x", Mode: 0o755}
	with := func(f func(map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(good), &m); err != nil {
			panic(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	root := func(p string) string { return with(func(m map[string]any) { m["root"] = map[string]any{"path": p} }) }
	proc := func(k string, v any) string {
		return with(func(m map[string]any) { m["process"].(map[string]any)[k] = v })
	}
	noRootfs := []Entry{{Name: "app/", Type: tar.TypeDir}, {Name: "app/config.json", Body: good}}
	return []Bad{
		{"bundle missing rootfs", Tar(false, noRootfs...), apperr.BadRequest, `"root.path" "rootfs": app/rootfs does not exist`},
		{"bundle rootfs a file", Tar(false, append(noRootfs, Entry{Name: "app/rootfs", Body: "x"})...), apperr.BadRequest, "not a directory"},
		{"bundle broken config.json", Tar(false, Bundle("app", `{"ociVersion": "1.0.2", "process": {`, sh)...), apperr.BadRequest, "config.json: not valid JSON"},
		{"bundle config.json wrong type", Tar(false, Bundle("app", `{"ociVersion": "1.0.2", "process": {"args": "sleep"}}`, sh)...), apperr.BadRequest, `"process.args"`},
		{"bundle config.json trailing data", Tar(false, Bundle("app", good+"{}", sh)...), apperr.BadRequest, "data after"},
		{"bundle config.json empty", Tar(false, Bundle("app", "", sh)...), apperr.BadRequest, "not valid JSON"},
		{"bundle no ociVersion", Tar(false, Bundle("app", with(func(m map[string]any) { delete(m, "ociVersion") }), sh)...), apperr.BadRequest, `"ociVersion" is missing`},
		{"bundle no process", Tar(false, Bundle("app", with(func(m map[string]any) { delete(m, "process") }), sh)...), apperr.BadRequest, `"process" is missing`},
		{"bundle empty args", Tar(false, Bundle("app", proc("args", []string{}), sh)...), apperr.BadRequest, `"process.args" is empty`},
		{"bundle terminal", Tar(false, Bundle("app", proc("terminal", true), sh)...), apperr.BadRequest, `"process.terminal"`},
		{"bundle relative cwd", Tar(false, Bundle("app", proc("cwd", "tmp"), sh)...), apperr.BadRequest, `"process.cwd"`},
		{"bundle no root", Tar(false, Bundle("app", with(func(m map[string]any) { delete(m, "root") }), sh)...), apperr.BadRequest, `"root.path" is missing`},
		{"bundle root path outside", Tar(false, Bundle("app", root("../rootfs"), sh)...), apperr.BadRequest, `"root.path" "../rootfs": not inside the bundle`},
		{"bundle root path absolute", Tar(false, Bundle("app", root("/"), sh)...), apperr.BadRequest, `"root.path" "/": absolute`},
		{"bundle root path the bundle", Tar(false, Bundle("app", root("."), sh)...), apperr.BadRequest, "names the bundle itself"},
		{"bundle root path symlink out", Tar(false, append(Bundle("app", root("r"), sh), Entry{Name: "app/r", Type: tar.TypeSymlink, Link: "../.."})...), apperr.BadRequest, "out of the package"},
		{"bundle bad name", Tar(false, Bundle("App", good, sh)...), apperr.BadRequest, "not a valid app id"},
		{"bundle bad version", Tar(false, Bundle("app", BundleConfig([]string{"/bin/sh"}, "org.opencontainers.image.version", "1/2"), sh)...), apperr.BadRequest, "org.opencontainers.image.version"},
		{"bundle bad restart", Tar(false, Bundle("app", BundleConfig([]string{"/bin/sh"}, "org.osmanager.restart", "sometimes"), sh)...), apperr.BadRequest, `"restart" "sometimes"`},
		{"bundle bad stop timeout", Tar(false, Bundle("app", BundleConfig([]string{"/bin/sh"}, "org.osmanager.stop_timeout", "soon"), sh)...), apperr.BadRequest, "org.osmanager.stop_timeout"},
		{"bundle config.json symlink", Tar(false, Entry{Name: "app/c", Body: good}, Entry{Name: "app/config.json", Type: tar.TypeSymlink, Link: "c"}, Entry{Name: "app/rootfs/", Type: tar.TypeDir}), apperr.BadRequest, "not a regular file"},
		{"bundle device node in rootfs", Tar(false, Bundle("app", good, sh, Entry{Name: "dev/null", Type: tar.TypeChar})...), apperr.BadRequest, "device"},
		{"bundle setuid in rootfs", Tar(false, Bundle("app", good, Entry{Name: "bin/su", Body: "x", Mode: 0o4755})...), apperr.BadRequest, "setuid"},
		{"bundle absolute symlink outside rootfs", Tar(false, append(Bundle("app", good, sh), Entry{Name: "app/etc", Type: tar.TypeSymlink, Link: "/etc"})...), apperr.BadRequest, "absolute"},
		{"bundle write through rootfs symlink", Tar(false, Bundle("app", good, Entry{Name: "lib", Type: tar.TypeSymlink, Link: "/usr/lib"}, Entry{Name: "lib/x", Body: "x"})...), apperr.BadRequest, "symlink"},
		{"bundle beside another dir", Tar(false, append(Bundle("app", good, sh), Entry{Name: "other/", Type: tar.TypeDir})...), apperr.BadRequest, "no manifest.json"},
		{"rootfs links in a package", Tar(false, hello(Entry{Name: "x/rootfs/sh", Type: tar.TypeSymlink, Link: "/bin/sh"})...), apperr.BadRequest, "absolute target"},
		{"rootfs sticky in a package", Tar(false, hello(Entry{Name: "x/rootfs/tmp/", Type: tar.TypeDir, Mode: 0o1777})...), apperr.BadRequest, "sticky"},
	}
}

// BusyboxRootfs returns a rootfs of Debian's busybox-static for bundles
// in tests: bin/busybox, bin/sleep -> busybox, bin/sh -> /bin/busybox
// (absolute, as rootfs links are) and a sticky tmp/. It skips t without
// a static /bin/busybox.
func BusyboxRootfs(t testing.TB) []Entry {
	t.Helper()
	const p = "/bin/busybox"
	f, err := elf.Open(p)
	if err != nil {
		t.Skipf("no %s (apt-get install busybox-static): %v", p, err)
	}
	static := true
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_INTERP {
			static = false
		}
	}
	f.Close()
	if !static {
		t.Skipf("%s is dynamically linked; the bundle needs busybox-static", p)
	}
	bb, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Body: string(bb), Mode: 0o755},
		{Name: "bin/sleep", Type: tar.TypeSymlink, Link: "busybox"},
		{Name: "bin/sh", Type: tar.TypeSymlink, Link: "/bin/busybox"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	}
}

// WaitComm waits up to 10 s for process pid to run a program named comm
// (its /proc/<pid>/comm) and fails t if it does not. An OCI runtime says a
// container is running once its init is started, and the init (still the
// runtime's code, named after it) execs the bundle's program a moment
// later: a test that reads comm at once races with that exec.
func WaitComm(t testing.TB, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		got := strings.TrimSpace(string(b))
		if err == nil && got == comm {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Errorf("process %d runs %q (%v), want %q", pid, got, err, comm)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
