package installtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// image is a scratch image tree of one kind and what install.sh should
// make of it.
type image struct {
	name   string
	tree   func(t *testing.T, sh string) map[string]string
	init   string // detected
	why    string // in the "init X: why" line
	unit   string // the init file, as installed
	links  []string
	logrot bool
	force  string // --init, when not auto
}

var images = []image{
	{
		name: "debian-systemd", tree: debianSystemd, init: "systemd",
		why:   "sbin/init (a symlink to /lib/systemd/systemd) is systemd",
		unit:  "/etc/systemd/system/osmanager.service",
		links: []string{"/etc/systemd/system/multi-user.target.wants/osmanager.service"},
	},
	{
		name: "debian-sysvinit-core", tree: debianSysvinit, init: "sysvinit",
		why:    "sbin/init is sysvinit's init (it says INIT_VERSION=sysvinit)",
		unit:   "/etc/init.d/osmanager",
		links:  []string{"/etc/rc2.d/S05osmanager", "/etc/rc5.d/S05osmanager", "/etc/rc0.d/K95osmanager", "/etc/rc6.d/K95osmanager"},
		logrot: true,
	},
	{
		name: "upstart", tree: upstartTree, init: "upstart",
		why:  "sbin/init is upstart's init (it names upstart)",
		unit: "/etc/init/osmanager.conf",
	},
	{
		name: "rhel-merged-usr", tree: rhelTree, init: "systemd",
		why:   "sbin/init (a symlink to /usr/lib/systemd/systemd) is systemd",
		unit:  "/etc/systemd/system/osmanager.service",
		links: []string{"/etc/systemd/system/multi-user.target.wants/osmanager.service"},
	},
	{
		// RHEL 6: upstart 0.6 as /sbin/init, rc scripts under /etc/rc.d.
		name: "rhel6-upstart", tree: rhel6Tree, init: "upstart",
		why:    "sbin/init is upstart's init (it names upstart)",
		unit:   "/etc/init/osmanager.conf",
		logrot: true,
	},
	{
		// The sysvinit script on a RHEL tree: links in /etc/rc.d/rcN.d.
		name: "rhel-sysvinit", tree: rhelTree, init: "sysvinit", force: "sysvinit",
		why:   "--init",
		unit:  "/etc/init.d/osmanager",
		links: []string{"/etc/rc3.d/S05osmanager", "/etc/rc6.d/K95osmanager"},
	},
}

// initArgs is --init for a forced image.
func (im image) initArgs() []string {
	if im.force == "" {
		return nil
	}
	return []string{"--init", im.force}
}

// newImage makes the image's tree in a temp dir.
func newImage(t *testing.T, im image) string {
	t.Helper()
	root := t.TempDir()
	files(t, root, im.tree(t, hostSh(t)))
	return root
}

func TestDetectInit(t *testing.T) {
	out := fakeBuild(t, "amd64", "arm64", "386")
	for _, im := range images {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			root := newImage(t, im)
			got := mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, append([]string{"--root", root, "--dry-run"}, im.initArgs()...)...)
			want := "install.sh: init " + im.init + ": " + root + "/" + im.why
			if im.force != "" {
				want = "install.sh: init " + im.init + ": " + im.why
			}
			if !strings.Contains(got, want+"\n") {
				t.Errorf("install.sh --dry-run said\n%s\nwant a line %q", got, want)
			}
		})
	}
	t.Run("busybox", func(t *testing.T) {
		root := t.TempDir()
		files(t, root, map[string]string{"bin/sh": hostSh(t), "bin/busybox": "0755:\x7fELF busybox", "sbin/init": "->../bin/busybox"})
		got := mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root, "--dry-run")
		if !strings.Contains(got, "init sysvinit: "+root+"/sbin/init (a symlink to /bin/busybox) is busybox init") {
			t.Errorf("got\n%s\nwant busybox init named", got)
		}
	})
	t.Run("no-init", func(t *testing.T) {
		root := t.TempDir()
		files(t, root, map[string]string{"bin/sh": hostSh(t), "lib/systemd/system/": "", "etc/init.d/": ""})
		r := run(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
		if r.code != 1 || !strings.Contains(r.out, "cannot tell the init system: "+root+"/sbin/init is missing; pass --init") {
			t.Errorf("exit %d, output\n%s\nwant exit 1 naming the missing /sbin/init", r.code, r.out)
		}
		if r := run(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root, "--init", "sysvinit"); r.code != 0 || !strings.Contains(r.out, "init sysvinit: --init") {
			t.Errorf("--init sysvinit: exit %d\n%s", r.code, r.out)
		}
	})
}

func TestInstall(t *testing.T) {
	out := fakeBuild(t, "amd64")
	for _, im := range images {
		for _, prefix := range []string{"/usr", "/usr/local"} {
			t.Run(im.name+prefix, func(t *testing.T) {
				t.Parallel()
				root := newImage(t, im)
				env := []string{"OSM_BUILD_OUT=" + out}
				before := snapshot(t, root)

				mustRun(t, "install.sh", env, append([]string{"--root", root, "--prefix", prefix, "--dry-run"}, im.initArgs()...)...)
				if d := diffTrees(before, snapshot(t, root), true); d != "" {
					t.Fatalf("--dry-run changed the tree (-before +after):\n%s", d)
				}

				got := mustRun(t, "install.sh", env, append([]string{"--root", root, "--prefix", prefix}, im.initArgs()...)...)
				if !strings.Contains(got, "not started: --root is not /") {
					t.Errorf("install.sh into a tree said\n%s\nwant it not started", got)
				}
				first := snapshot(t, root)
				unit, err := os.ReadFile(filepath.Join(root, resolved(t, root, im.unit)))
				if err != nil {
					t.Fatalf("init file: %v", err)
				}
				if strings.Contains(string(unit), "@") || !strings.Contains(string(unit), prefix+"/sbin/osmanager") {
					t.Errorf("%s does not run %s/sbin/osmanager (or has a placeholder left):\n%s", im.unit, prefix, unit)
				}
				for _, f := range []string{prefix + "/sbin/osmanager", prefix + "/bin/osmctl", prefix + "/share/doc/osmanager/README.md",
					prefix + "/share/doc/osmanager/www-templates/nocookie/index.html", "/LuoYun/custom/scripts/config", "/LuoYun/build/VERSION",
					"/LuoYun/.install-manifest"} {
					if _, ok := first[resolved(t, root, f)]; !ok {
						t.Errorf("%s not installed", f)
					}
				}
				for _, l := range im.links {
					if e := first[resolved(t, root, l)]; e.Kind != "link" {
						t.Errorf("%s: %+v, want a link", l, e)
					}
				}
				if e := first["/LuoYun/conf"]; e.Kind != "dir" || e.Mode.Perm() != 0o700 {
					t.Errorf("/LuoYun/conf: %+v, want a 0700 dir", e)
				}
				if _, ok := first["/LuoYun/custom/www"]; ok {
					t.Errorf("the page templates were installed as live pages")
				}
				_, lr := first["/etc/logrotate.d/osmanager"]
				if lr != im.logrot {
					t.Errorf("logrotate snippet installed: %v, want %v", lr, im.logrot)
				}
				for p := range first {
					if strings.Contains(p, "www-templates/www") {
						t.Errorf("nested templates: %s", p)
					}
				}

				// Twice: the same tree, byte for byte, no file rewritten.
				got = mustRun(t, "install.sh", env, append([]string{"--root", root, "--prefix", prefix}, im.initArgs()...)...)
				if !strings.Contains(got, ": 0 changes") {
					t.Errorf("second run said\n%s\nwant 0 changes", got)
				}
				if d := diffTrees(first, snapshot(t, root), true); d != "" {
					t.Errorf("second run changed the tree (-first +second):\n%s", d)
				}

				// uninstall --dry-run changes nothing either.
				mustRun(t, "uninstall.sh", nil, "--root", root, "--purge", "--dry-run")
				if d := diffTrees(first, snapshot(t, root), true); d != "" {
					t.Errorf("uninstall.sh --dry-run changed the tree (-before +after):\n%s", d)
				}

				// uninstall: the tree before, plus the state kept in /LuoYun.
				mustRun(t, "uninstall.sh", nil, "--root", root)
				after := snapshot(t, root)
				for _, p := range paths(after) {
					if _, ok := before[p]; ok || p == "/LuoYun" || strings.HasPrefix(p, "/LuoYun/") {
						continue
					}
					t.Errorf("uninstall.sh left %s", p)
				}
				for _, p := range []string{"/LuoYun/conf", "/LuoYun/custom/scripts/config", "/LuoYun/build/VERSION"} {
					if _, ok := after[p]; !ok {
						t.Errorf("uninstall.sh removed the state %s", p)
					}
				}
				mustRun(t, "uninstall.sh", nil, "--root", root, "--purge")
				if d := diffTrees(before, snapshot(t, root), true); d != "" {
					t.Errorf("uninstall.sh --purge did not restore the tree (-before +after):\n%s", d)
				}
			})
		}
	}
}

// resolved is p with the tree's directory links followed (rhel: /etc/init.d
// is /etc/rc.d/init.d).
func resolved(t *testing.T, root, p string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Join(root, filepath.Dir(p)))
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(root, filepath.Join(dir, filepath.Base(p)))
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("%s resolves out of the tree", p)
	}
	return "/" + rel
}

func TestAppliancesOwnFilesKept(t *testing.T) {
	out := fakeBuild(t, "amd64")
	root := newImage(t, images[0])
	own := map[string]string{
		"LuoYun/custom/scripts/config": "0755:#!/bin/sh\n# the appliance's own\n",
		"LuoYun/build/VERSION":         "osmanager 0.0.9\nwordpress: 6.1\n",
		"LuoYun/custom/www/index.html": "<p>own page</p>\n",
	}
	files(t, root, own)
	before := snapshot(t, root)
	env := []string{"OSM_BUILD_OUT=" + out}
	mustRun(t, "install.sh", env, "--root", root)
	mustRun(t, "install.sh", env, "--root", root)
	// An edited seed is kept by --purge as well.
	if err := os.WriteFile(filepath.Join(root, "LuoYun/custom/scripts/status"), []byte("#!/bin/sh\necho edited\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := mustRun(t, "uninstall.sh", nil, "--root", root, "--purge")
	if !strings.Contains(got, "keeping /LuoYun/custom/scripts/status: changed since install.sh put it there") {
		t.Errorf("uninstall --purge said\n%s\nwant the edited seed kept", got)
	}
	after := snapshot(t, root)
	for p := range own {
		if d := diffTrees(map[string]entry{p: before["/"+p]}, map[string]entry{p: after["/"+p]}, true); d != "" {
			t.Errorf("the appliance's %s changed:\n%s", p, d)
		}
	}
	if _, ok := after["/LuoYun/conf"]; ok {
		t.Errorf("--purge kept /LuoYun/conf")
	}
	if _, ok := after["/LuoYun/custom/scripts/status"]; !ok {
		t.Errorf("--purge removed an edited seed")
	}
}

func TestOldLuoYunLayout(t *testing.T) {
	out := fakeBuild(t, "amd64")
	for _, im := range []image{images[1], images[2], images[0]} {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			root := newImage(t, im)
			// The Python OS manager: rc links to /LuoYun/osmanager.sh (its
			// install.sh) or /LuoYun/bin/*/start (setup.sh), its RPM's
			// upstart jobs in /etc/init/luoyun/, an init script, a unit.
			old := map[string]string{
				"LuoYun/osmanager.sh":                                       "0755:#!/bin/bash\n",
				"LuoYun/custom/scripts/config":                              "0755:#!/bin/sh\n# old appliance\n",
				"LuoYun/custom/www/index.html":                              "old page\n",
				"LuoYun/build/VERSION":                                      "LuoYun OSM 0.5\nmyapp: 1.0\n",
				"etc/rc3.d/S99luoyun-osmanager":                             "->/LuoYun/osmanager.sh",
				"etc/rc3.d/S01luoyun-osconfig":                              "->/LuoYun/bin/pyosc/start",
				"etc/init/luoyun/osm.conf":                                  "start on stopped luoyun/osconfig\n",
				"etc/init.d/luoyun":                                         "0755:#!/bin/sh\n",
				"etc/systemd/system/luoyun.service":                         "[Service]\nExecStart=/LuoYun/osmanager.sh\n",
				"etc/systemd/system/multi-user.target.wants/luoyun.service": "->/etc/systemd/system/luoyun.service",
			}
			files(t, root, old)
			before := snapshot(t, root)
			got := mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
			for _, o := range []string{"/etc/rc3.d/S99luoyun-osmanager", "/etc/rc3.d/S01luoyun-osconfig", "/etc/init/luoyun", "/etc/init.d/luoyun",
				"/etc/systemd/system/luoyun.service", "/etc/systemd/system/multi-user.target.wants/luoyun.service"} {
				if !strings.Contains(got, "old LuoYun job "+o+": disabled, moved to /LuoYun/old-init"+o+"\n") {
					t.Errorf("install.sh did not say it disabled %s:\n%s", o, got)
				}
				if _, err := os.Lstat(filepath.Join(root, o)); err == nil {
					t.Errorf("%s still there", o)
				}
				if _, err := os.Lstat(filepath.Join(root, "LuoYun/old-init", o)); err != nil {
					t.Errorf("%s not kept under /LuoYun/old-init: %v", o, err)
				}
			}
			first := snapshot(t, root)
			for _, p := range []string{"/LuoYun/custom/scripts/config", "/LuoYun/custom/www/index.html", "/LuoYun/build/VERSION", "/LuoYun/osmanager.sh"} {
				if first[p] != before[p] {
					t.Errorf("%s changed: %+v, want %+v", p, first[p], before[p])
				}
			}
			mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
			if d := diffTrees(first, snapshot(t, root), true); d != "" {
				t.Errorf("second run changed the tree:\n%s", d)
			}
			// uninstall --purge: the old jobs back, the tree as it was.
			mustRun(t, "uninstall.sh", nil, "--root", root, "--purge")
			if d := diffTrees(before, snapshot(t, root), false); d != "" {
				t.Errorf("uninstall --purge did not restore the old layout (-before +after):\n%s", d)
			}
		})
	}
}

func TestNoGo(t *testing.T) {
	t.Run("binaries-missing", func(t *testing.T) {
		out := t.TempDir()
		root := newImage(t, images[0])
		before := snapshot(t, root)
		r := run(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
		want := "no " + out + "/linux-amd64/osmanager and osmctl, and no Go here to build them: run 'scripts/build --arch amd64' on a machine with Go"
		if r.code != 1 || !strings.Contains(r.out, want) {
			t.Errorf("exit %d:\n%s\nwant exit 1 and %q", r.code, r.out, want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("install.sh left %v in the build dir", ents)
		}
		if d := diffTrees(before, snapshot(t, root), true); d != "" {
			t.Errorf("a failed install changed the tree:\n%s", d)
		}
	})
	// Without --root's /bin/sh to read, the arch is uname -m's, mapped.
	for _, c := range []struct{ uname, arch string }{{"x86_64", "amd64"}, {"aarch64", "arm64"}, {"i686", "386"}, {"i386", "386"}} {
		t.Run("uname-"+c.uname, func(t *testing.T) {
			out := fakeBuild(t, c.arch)
			root := t.TempDir()
			files(t, root, map[string]string{"lib/systemd/systemd": "x", "sbin/init": "->/lib/systemd/systemd"})
			bin := t.TempDir()
			files(t, bin, map[string]string{"uname": "0755:#!/bin/sh\necho " + c.uname + "\n"})
			mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out, "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}, "--root", root)
			b, err := os.ReadFile(filepath.Join(root, "usr/local/sbin/osmanager"))
			if err != nil || !strings.Contains(string(b), "fake-"+c.arch) {
				t.Errorf("installed osmanager %q (%v), want the %s build", b, err, c.arch)
			}
		})
	}
	t.Run("arch-from-image", func(t *testing.T) {
		out := fakeBuild(t, "arm64")
		root := t.TempDir()
		// An arm64 image's /bin/sh: ELF header with e_machine 0xb7.
		elf := "\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 8) + "\x02\x00\xb7\x00" + strings.Repeat("\x00", 40)
		files(t, root, map[string]string{"bin/sh": elf, "lib/systemd/systemd": "x", "sbin/init": "->/lib/systemd/systemd"})
		got := mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
		if !strings.Contains(got, "arch arm64: from "+root+"/bin/sh") {
			t.Errorf("got\n%s\nwant arm64 from the image's /bin/sh", got)
		}
	})
}

// TestReinstallOtherInit: a second install for another init system or
// prefix takes the first one's files away.
func TestReinstallOtherInit(t *testing.T) {
	out := fakeBuild(t, "amd64")
	root := newImage(t, images[0])
	before := snapshot(t, root)
	env := []string{"OSM_BUILD_OUT=" + out}
	mustRun(t, "install.sh", env, "--root", root, "--init", "sysvinit")
	mustRun(t, "install.sh", env, "--root", root, "--prefix", "/usr")
	after := snapshot(t, root)
	for _, p := range []string{"/etc/init.d/osmanager", "/etc/rc2.d/S05osmanager", "/usr/local/sbin/osmanager"} {
		if _, ok := after[p]; ok {
			t.Errorf("%s of the first install is still there", p)
		}
	}
	if _, ok := after["/usr/sbin/osmanager"]; !ok {
		t.Errorf("/usr/sbin/osmanager missing")
	}
	mustRun(t, "uninstall.sh", nil, "--root", root, "--purge")
	if d := diffTrees(before, snapshot(t, root), true); d != "" {
		t.Errorf("uninstall --purge did not restore the tree (-before +after):\n%s", d)
	}
}

func TestDestdirAlias(t *testing.T) {
	out := fakeBuild(t, "amd64")
	root := newImage(t, images[0])
	mustRun(t, "install.sh", []string{"OSM_BUILD_OUT=" + out, "DESTDIR=" + root})
	if _, err := os.Stat(filepath.Join(root, "usr/local/sbin/osmanager")); err != nil {
		t.Errorf("DESTDIR install: %v", err)
	}
	mustRun(t, "uninstall.sh", []string{"DESTDIR=" + root}, "--purge")
	if _, err := os.Stat(filepath.Join(root, "usr/local/sbin/osmanager")); err == nil {
		t.Errorf("DESTDIR uninstall left the binary")
	}
}

// TestInstallRebuilds: with Go there, install.sh builds first, so a stale
// binary in build/out is never what gets installed.
func TestInstallRebuilds(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("no go here")
		}
		goCmd = "/usr/local/go/bin/go"
	}
	out := t.TempDir()
	// A stale build: another program where osmanager should be.
	stale, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true")
	}
	files(t, out, map[string]string{"linux-amd64/osmanager": "0755:" + string(stale), "linux-amd64/osmctl": "0755:" + string(stale)})
	root := newImage(t, images[0])
	env := []string{"OSM_BUILD_OUT=" + out, "GO=" + goCmd, "GOCACHE=" + goEnv(t, goCmd, "GOCACHE"), "GOMODCACHE=" + goEnv(t, goCmd, "GOMODCACHE")}
	mustRun(t, "install.sh", env, "--root", root, "--arch", "amd64")
	got, err := exec.Command(filepath.Join(root, "usr/local/sbin/osmanager"), "version").Output()
	if want := "osmanager " + version(t) + "\n"; err != nil || string(got) != want {
		t.Errorf("installed osmanager version: %q (%v), want %q", got, err, want)
	}
}

func goEnv(t *testing.T, goCmd, name string) string {
	t.Helper()
	b, err := exec.Command(goCmd, "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// TestInstallFailsHalfWay: a run that stops part way (here a file where a
// directory must go) still leaves the manifest of what it installed, and
// uninstall.sh takes that away.
func TestInstallFailsHalfWay(t *testing.T) {
	out := fakeBuild(t, "amd64")
	root := newImage(t, images[1]) // no /LuoYun yet
	files(t, root, map[string]string{"usr/local/share/doc": "a file in the way\n"})
	before := snapshot(t, root)
	r := run(t, "install.sh", []string{"OSM_BUILD_OUT=" + out}, "--root", root)
	if r.code == 0 || !strings.Contains(r.out, "install.sh: failed; what it installed is listed in /LuoYun/.install-manifest (uninstall.sh removes it)") {
		t.Fatalf("exit %d:\n%s\nwant a failure naming the manifest", r.code, r.out)
	}
	if !exists(root, "/usr/local/sbin/osmanager") {
		t.Fatalf("the failure came before anything was installed: the test does not test")
	}
	mustRun(t, "uninstall.sh", nil, "--root", root, "--purge")
	if d := diffTrees(before, snapshot(t, root), true); d != "" {
		t.Errorf("uninstall.sh after a failed install (-before +after):\n%s", d)
	}
}
