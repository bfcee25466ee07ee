package installtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The packages are built once for the tests that read them.
var (
	pkgOnce sync.Once
	pkgDir  string
	pkgErr  string
	pkgSkip bool
)

// packages runs scripts/build --packages for the three archs into a temp dir
// and returns DIR/packages.
func packages(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("no go to build the packages")
		}
	}
	pkgOnce.Do(func() {
		defer func() {
			if strings.Contains(pkgErr, "scripts/build: cannot build nfpm") {
				pkgSkip = true
			}
		}()
		out, err := os.MkdirTemp("", "osm-packages-")
		if err != nil {
			pkgErr = err.Error()
			return
		}
		cmd := exec.Command(filepath.Join(repo(t), "scripts/build"), "--packages", "--out", out)
		b, err := cmd.CombinedOutput()
		if err != nil {
			pkgErr = "scripts/build --packages: " + err.Error() + "\n" + string(b)
			return
		}
		pkgDir = filepath.Join(out, "packages")
	})
	if pkgSkip {
		t.Skipf("nfpm is not to be had here (no module proxy?): %s", pkgErr)
	}
	if pkgErr != "" {
		t.Fatal(pkgErr)
	}
	return pkgDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pkgDir != "" {
		os.RemoveAll(filepath.Dir(pkgDir))
	}
	os.Exit(code)
}

func version(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo(t), "build/VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	v, ok := strings.CutPrefix(first, "osmanager ")
	if !ok {
		t.Fatalf("build/VERSION line 1 %q", first)
	}
	return v
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, b)
	}
	return string(b)
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here (build/PACKAGES lists its package)", tool)
		}
	}
}

func TestPackageFiles(t *testing.T) {
	v := version(t)
	for _, c := range []struct{ goarch, debArch, rpmArch string }{
		{"amd64", "amd64", "x86_64"}, {"arm64", "arm64", "aarch64"}, {"386", "i386", "i386"},
	} {
		t.Run("deb-"+c.goarch, func(t *testing.T) {
			need(t, "dpkg-deb")
			deb := filepath.Join(packages(t), "osmanager_"+v+"-1_"+c.debArch+".deb")
			if got := strings.TrimSpace(output(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture")); got != "Package: osmanager\nVersion: "+v+"-1\nArchitecture: "+c.debArch {
				t.Errorf("control fields:\n%s", got)
			}
			list := output(t, "sh", "-c", "dpkg-deb --fsys-tarfile "+deb+" | tar -tf - | grep -v '/$' | sed 's|^\\./|/|' | sort")
			got := strings.Fields(list)
			want := []string{
				"/etc/init.d/osmanager", "/etc/logrotate.d/osmanager", "/lib/systemd/system/osmanager.service",
				"/usr/bin/osmctl", "/usr/sbin/osmanager",
				"/usr/share/doc/osmanager/CHANGELOG", "/usr/share/doc/osmanager/README.md",
				"/usr/share/doc/osmanager/www-templates/nocookie/index.html", "/usr/share/doc/osmanager/www-templates/withcookie/index.html",
				"/usr/share/osmanager/VERSION", "/usr/share/osmanager/custom/README.md",
				"/usr/share/osmanager/custom/scripts/config", "/usr/share/osmanager/custom/scripts/status",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if conff := output(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+deb+" | tar -xOf - ./conffiles"); conff != "/etc/init.d/osmanager\n/etc/logrotate.d/osmanager\n" {
				t.Errorf("conffiles %q", conff)
			}
		})
		t.Run("rpm-"+c.goarch, func(t *testing.T) {
			need(t, "rpm")
			rpm := filepath.Join(packages(t), "osmanager-"+v+"-1."+c.rpmArch+".rpm")
			if got := output(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpm); got != "osmanager "+v+" "+c.rpmArch {
				t.Errorf("rpm -qp: %q", got)
			}
			got := strings.Fields(output(t, "rpm", "-qlp", rpm))
			want := []string{
				"/usr/bin/osmctl", "/usr/lib/systemd/system/osmanager.service", "/usr/sbin/osmanager",
				"/usr/share/doc/osmanager/CHANGELOG", "/usr/share/doc/osmanager/README.md",
				"/usr/share/doc/osmanager/www-templates", "/usr/share/doc/osmanager/www-templates/nocookie",
				"/usr/share/doc/osmanager/www-templates/nocookie/index.html", "/usr/share/doc/osmanager/www-templates/withcookie",
				"/usr/share/doc/osmanager/www-templates/withcookie/index.html",
				"/usr/share/osmanager/VERSION", "/usr/share/osmanager/custom/README.md",
				"/usr/share/osmanager/custom/scripts/config", "/usr/share/osmanager/custom/scripts/status",
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rpm -qlp:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			scripts := output(t, "rpm", "-qp", "--scripts", rpm)
			for _, want := range []string{
				"postinstall scriptlet", "systemctl --no-reload enable osmanager.service", "osm_seed",
				"preuninstall scriptlet", "systemctl --no-reload disable osmanager.service",
				"postuninstall scriptlet", "systemctl try-restart osmanager.service",
			} {
				if !strings.Contains(scripts, want) {
					t.Errorf("rpm -qp --scripts has no %q", want)
				}
			}
			for _, never := range []string{"rm -rf /LuoYun", "rm -rf \"/LuoYun"} {
				if strings.Contains(scripts, never) {
					t.Errorf("the rpm's scripts remove /LuoYun (%q)", never)
				}
			}
		})
	}
}

// chrootTree is a minimal busybox system, with fake init tools that note
// their calls in /var/log/calls: the package's maintainer scripts run in it
// as in an image being built (dpkg and rpm chroot into --root for them).
func chrootTree(t *testing.T, tools ...string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to chroot (dpkg --root, rpm --root run the maintainer scripts in a chroot)")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox (busybox-static in build/PACKAGES) for the chroot's shell")
	}
	if out, err := exec.Command("sh", "-c", "ldd "+bb+" 2>&1").CombinedOutput(); err == nil && !strings.Contains(string(out), "not a dynamic") && !strings.Contains(string(out), "statically") {
		t.Skipf("busybox is not static: %s", out)
	}
	root := t.TempDir()
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	// /etc and /usr/sbin hold files of other packages, as in an image (dpkg
	// removes an empty directory that a purged package listed).
	m := map[string]string{"bin/busybox": "0755:" + string(b), "tmp/": "", "etc/hostname": "image\n", "var/log/": "", "usr/bin/": "",
		"usr/sbin/other":               "0755:#!/bin/sh\n",
		"LuoYun/custom/scripts/config": "0755:#!/bin/sh\n# the appliance's own\n"}
	for _, tool := range tools {
		m["usr/bin/"+tool] = "0755:#!/bin/sh\necho \"" + tool + " $*\" >> /var/log/calls\n"
	}
	files(t, root, m)
	if out, err := exec.Command("chroot", root, "/bin/busybox", "--install", "-s", "/bin").CombinedOutput(); err != nil {
		t.Skipf("chroot into a busybox tree: %v %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mknod", "-m", "666", filepath.Join(root, "dev/null"), "c", "1", "3").CombinedOutput(); err != nil {
		t.Skipf("mknod /dev/null: %v %s", err, out)
	}
	return root
}

func calls(t *testing.T, root string) string {
	b, _ := os.ReadFile(filepath.Join(root, "var/log/calls"))
	return string(b)
}

func exists(root, p string) bool {
	_, err := os.Lstat(filepath.Join(root, p))
	return err == nil
}

func TestDebInstallRemovePurge(t *testing.T) {
	need(t, "dpkg")
	root := chrootTree(t, "deb-systemd-helper", "update-rc.d")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		files(t, root, map[string]string{d + "/": ""})
	}
	files(t, root, map[string]string{"var/lib/dpkg/status": "", "var/lib/dpkg/available": ""})
	outside := func() map[string]entry {
		m := map[string]entry{}
		for p, e := range snapshot(t, root) {
			if !strings.HasPrefix(p, "/var/lib/dpkg") && !strings.HasPrefix(p, "/LuoYun") && p != "/var/log/calls" {
				e.Mtime = 0
				m[p] = e
			}
		}
		return m
	}
	before := outside()
	v := version(t)
	deb := filepath.Join(packages(t), "osmanager_"+v+"-1_amd64.deb")
	dpkg := func(args ...string) string {
		return output(t, "dpkg", append([]string{"--root=" + root}, args...)...)
	}

	got := dpkg("-i", deb)
	if !strings.Contains(got, "osmanager: enabled (deb-systemd-helper, update-rc.d), not started (this root is not the booted system") {
		t.Errorf("dpkg -i said\n%s\nwant not started in a chroot", got)
	}
	for _, f := range []string{"/usr/sbin/osmanager", "/usr/bin/osmctl", "/lib/systemd/system/osmanager.service", "/etc/init.d/osmanager",
		"/etc/logrotate.d/osmanager", "/usr/share/doc/osmanager/www-templates/nocookie/index.html",
		"/LuoYun/custom/scripts/status", "/LuoYun/custom/README.md", "/LuoYun/build/VERSION"} {
		if !exists(root, f) {
			t.Errorf("%s not installed", f)
		}
	}
	if v2 := strings.TrimSpace(output(t, filepath.Join(root, "usr/sbin/osmanager"), "version")); v2 != "osmanager "+v {
		t.Errorf("osmanager version = %q, want osmanager %s", v2, v)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/osmanager.service"))
	initd, _ := os.ReadFile(filepath.Join(root, "etc/init.d/osmanager"))
	if !strings.Contains(string(unit), "\nExecStart=/usr/sbin/osmanager run\n") || !strings.Contains(string(initd), "\nDAEMON=/usr/sbin/osmanager\n") {
		t.Errorf("init files do not run /usr/sbin/osmanager")
	}
	if fi, err := os.Stat(filepath.Join(root, "LuoYun/conf")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("/LuoYun/conf: %v %v, want a 0700 dir", fi, err)
	}
	own, _ := os.ReadFile(filepath.Join(root, "LuoYun/custom/scripts/config"))
	if string(own) != "#!/bin/sh\n# the appliance's own\n" {
		t.Errorf("the appliance's config script was overwritten: %q", own)
	}
	if c := calls(t, root); c != "deb-systemd-helper enable osmanager.service\nupdate-rc.d osmanager defaults\n" {
		t.Errorf("postinst ran\n%s", c)
	}
	luoyun := snapshot(t, filepath.Join(root, "LuoYun"))

	// Again (a reinstall, as configure with the old version): nothing seeded twice.
	dpkg("-i", deb)

	dpkg("-r", "osmanager")
	for _, f := range []string{"/usr/sbin/osmanager", "/usr/bin/osmctl", "/lib/systemd/system/osmanager.service", "/usr/share/doc/osmanager"} {
		if exists(root, f) {
			t.Errorf("dpkg -r left %s", f)
		}
	}
	if !exists(root, "/etc/init.d/osmanager") {
		t.Errorf("dpkg -r removed the conffile /etc/init.d/osmanager (purge does)")
	}
	if c := calls(t, root); !strings.HasSuffix(c, "deb-systemd-helper disable osmanager.service\n") {
		t.Errorf("postrm remove ran\n%s", c)
	}

	dpkg("--purge", "osmanager")
	for _, f := range []string{"/etc/init.d/osmanager", "/etc/logrotate.d/osmanager"} {
		if exists(root, f) {
			t.Errorf("dpkg --purge left %s", f)
		}
	}
	if c := calls(t, root); !strings.HasSuffix(c, "deb-systemd-helper purge osmanager.service\ndeb-systemd-helper unmask osmanager.service\nupdate-rc.d osmanager remove\n") {
		t.Errorf("postrm purge ran\n%s", c)
	}
	if d := diffTrees(luoyun, snapshot(t, filepath.Join(root, "LuoYun")), true); d != "" {
		t.Errorf("removal changed /LuoYun (-installed +purged):\n%s", d)
	}
	if d := diffTrees(before, outside(), false); d != "" {
		t.Errorf("after --purge the tree outside /LuoYun differs (-before +after):\n%s", d)
	}
}

// TestDebNoTools: without init-system-helpers the postinst says it did not
// enable anything, rather than that it did.
func TestDebNoTools(t *testing.T) {
	need(t, "dpkg")
	root := chrootTree(t)
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		files(t, root, map[string]string{d + "/": ""})
	}
	files(t, root, map[string]string{"var/lib/dpkg/status": "", "var/lib/dpkg/available": ""})
	deb := filepath.Join(packages(t), "osmanager_"+version(t)+"-1_amd64.deb")
	got := output(t, "dpkg", "--root="+root, "-i", deb)
	if !strings.Contains(got, "osmanager: not enabled: no deb-systemd-helper, systemctl or update-rc.d here") || strings.Contains(got, "enabled (") {
		t.Errorf("dpkg -i without the tools said\n%s", got)
	}
	output(t, "dpkg", "--root="+root, "--purge", "osmanager")
}

func TestRpmInstallErase(t *testing.T) {
	need(t, "rpm")
	root := chrootTree(t, "systemctl")
	output(t, "rpm", "--root", root, "--initdb")
	v := version(t)
	rpm := filepath.Join(packages(t), "osmanager-"+v+"-1.x86_64.rpm")
	got := output(t, "rpm", "--root", root, "-i", "--nodeps", rpm)
	if !strings.Contains(got, "osmanager: enabled (systemctl), not started") {
		t.Errorf("rpm -i said\n%s", got)
	}
	for _, f := range []string{"/usr/sbin/osmanager", "/usr/lib/systemd/system/osmanager.service", "/LuoYun/custom/scripts/status", "/LuoYun/conf"} {
		if !exists(root, f) {
			t.Errorf("%s not installed", f)
		}
	}
	if c := calls(t, root); c != "systemctl --no-reload enable osmanager.service\n" {
		t.Errorf("%%post ran\n%s", c)
	}
	output(t, "rpm", "--root", root, "-e", "osmanager")
	if exists(root, "/usr/sbin/osmanager") || exists(root, "/usr/lib/systemd/system/osmanager.service") {
		t.Errorf("rpm -e left the files")
	}
	if c := calls(t, root); !strings.HasSuffix(c, "systemctl --no-reload disable osmanager.service\n") {
		t.Errorf("%%preun ran\n%s", c)
	}
	for _, f := range []string{"/LuoYun/custom/scripts/config", "/LuoYun/custom/scripts/status", "/LuoYun/conf"} {
		if !exists(root, f) {
			t.Errorf("rpm -e removed %s", f)
		}
	}
}

// fakeUpdateRCd is a Debian update-rc.d stand-in for the chroot: it notes
// its calls and makes or removes the links as the real one does.
const fakeUpdateRCd = `#!/bin/sh
echo "update-rc.d $*" >> /var/log/calls
case "$*" in
"osmanager defaults")
	for r in 2 3 4 5; do ln -s ../init.d/osmanager /etc/rc$r.d/S01osmanager; done
	for r in 0 1 6; do ln -s ../init.d/osmanager /etc/rc$r.d/K01osmanager; done ;;
"-f osmanager remove") rm -f /etc/rc?.d/[SK]??osmanager ;;
*) exit 1 ;;
esac
`

// TestInstallInChroot runs install.sh and uninstall.sh inside a busybox
// chroot with no Go, as an image builder does (chroot /mnt/image
// /src/install.sh): busybox's tools are enough, the arch comes from uname,
// and without --no-start it does not try to start anything and exits 0.
// With the image's update-rc.d, that makes the rc links, once.
func TestInstallInChroot(t *testing.T) {
	for _, c := range []struct {
		name  string
		tools map[string]string
		link  string
		calls string
	}{
		{name: "by-hand", link: "/etc/rc2.d/S05osmanager"},
		{name: "update-rc.d", tools: map[string]string{"usr/sbin/update-rc.d": "0755:" + fakeUpdateRCd}, link: "/etc/rc2.d/S01osmanager",
			calls: "update-rc.d osmanager defaults\nupdate-rc.d -f osmanager remove\n"},
	} {
		t.Run(c.name, func(t *testing.T) { installInChroot(t, c.tools, c.link, c.calls) })
	}
}

func installInChroot(t *testing.T, tools map[string]string, link, wantCalls string) {
	root := chrootTree(t)
	files(t, root, map[string]string{"sbin/init": "->/bin/busybox", "etc/init.d/": "", "etc/logrotate.d/": ""})
	for _, rl := range "0123456" {
		files(t, root, map[string]string{"etc/rc" + string(rl) + ".d/": ""})
	}
	files(t, root, tools)
	src := filepath.Join(root, "src")
	for _, p := range []string{"install.sh", "uninstall.sh", "README.md", "build/VERSION", "build/CHANGELOG",
		"init/systemd/osmanager.service", "init/sysvinit/osmanager", "init/upstart/osmanager.conf", "init/logrotate/osmanager",
		"custom/README.md", "custom/scripts/config", "custom/scripts/status", "custom/www/nocookie/index.html", "custom/www/withcookie/index.html"} {
		b, err := os.ReadFile(filepath.Join(repo(t), p))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(repo(t), p))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "386"}[runtime.GOARCH]
	files(t, src, map[string]string{
		"build/out/linux-" + arch + "/osmanager": "0755:#!/bin/sh\necho osmanager fake\n",
		"build/out/linux-" + arch + "/osmctl":    "0755:#!/bin/sh\necho osmctl fake\n",
	})
	in := func(args ...string) string {
		cmd := exec.Command("chroot", append([]string{root, "/bin/sh"}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		t.Logf("chroot %v: %v\n%s", args, err, out)
		if err != nil {
			t.Fatalf("chroot %v: %v", args, err)
		}
		return string(out)
	}
	withoutCalls := func() map[string]entry {
		m := snapshot(t, root)
		delete(m, "/var/log/calls")
		return m
	}
	before := withoutCalls()
	got := in("/src/install.sh")
	for _, want := range []string{"init sysvinit: /sbin/init (a symlink to /bin/busybox) is busybox init", "not started: this is a chroot"} {
		if !strings.Contains(got, want) {
			t.Errorf("install.sh in the chroot said\n%s\nwant %q", got, want)
		}
	}
	for _, f := range []string{"/usr/local/sbin/osmanager", "/etc/init.d/osmanager", link, "/etc/logrotate.d/osmanager", "/LuoYun/custom/scripts/config"} {
		if !exists(root, f) {
			t.Errorf("%s not installed", f)
		}
	}
	first := withoutCalls()
	if got := in("/src/install.sh"); !strings.Contains(got, ": 0 changes") {
		t.Errorf("second run in the chroot:\n%s", got)
	}
	if d := diffTrees(first, withoutCalls(), true); d != "" {
		t.Errorf("second run changed the tree:\n%s", d)
	}
	in("/src/uninstall.sh", "--purge")
	if d := diffTrees(before, withoutCalls(), false); d != "" {
		t.Errorf("uninstall --purge in the chroot did not restore the tree (-before +after):\n%s", d)
	}
	if got := calls(t, root); got != wantCalls {
		t.Errorf("update-rc.d calls:\n%s\nwant:\n%s", got, wantCalls)
	}
}

// TestDebOnThisDebian installs the .deb with dpkg -i in a chroot of this
// machine's own root under a throwaway overlay (a private mount namespace:
// the real root is never written): the real dpkg, deb-systemd-helper and
// update-rc.d of a Debian system run the maintainer scripts, as in an
// image being built.
func TestDebOnThisDebian(t *testing.T) {
	need(t, "dpkg", "unshare", "chroot")
	if os.Getuid() != 0 {
		t.Skip("needs root for a mount namespace and an overlay")
	}
	for _, p := range []string{"/usr/bin/deb-systemd-helper", "/usr/sbin/update-rc.d", "/etc/debian_version"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("not a Debian system with init-system-helpers: %v", err)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("no mount namespace here: %v %s", err, out)
	}
	deb := filepath.Join(packages(t), "osmanager_"+version(t)+"-1_"+map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]+".deb")
	dir := t.TempDir()
	script := `set -e
m=$1/merged
mkdir -p $1/upper $1/work $m
mount -t overlay overlay -o lowerdir=/,upperdir=$1/upper,workdir=$1/work $m || { echo "no overlay: $?"; exit 77; }
cp "$2" $m/tmp/osm.deb
chroot $m dpkg -i /tmp/osm.deb
echo "== installed"
chroot $m sh -c 'readlink /etc/systemd/system/multi-user.target.wants/osmanager.service; ls /etc/rc2.d | grep osmanager; stat -c "%a %n" /LuoYun/conf; ls /LuoYun/custom/scripts; /usr/sbin/osmanager version; dpkg-query -W -f "\${Status}\n" osmanager'
chroot $m dpkg --purge osmanager
echo "== purged"
chroot $m sh -c 'for f in /etc/systemd/system/multi-user.target.wants/osmanager.service /etc/rc2.d/S01osmanager /usr/sbin/osmanager /etc/init.d/osmanager /lib/systemd/system/osmanager.service; do [ -e $f ] || [ -L $f ] && echo "left $f"; done; ls /LuoYun/custom/scripts; stat -c "%a %n" /LuoYun/conf; dpkg-query -W -f "\${Status}\n" osmanager 2>&1 || true'
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir, deb)
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("%s", out)
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 77 {
		t.Skip("no overlay file system here")
	}
	if err != nil {
		t.Fatalf("dpkg in the overlay: %v", err)
	}
	installed, rest, _ := strings.Cut(out, "== installed\n")
	inst, after, _ := strings.Cut(rest, "== purged\n")
	for _, want := range []string{"osmanager: enabled (deb-systemd-helper, update-rc.d), not started (this root is not the booted system"} {
		if !strings.Contains(installed, want) {
			t.Errorf("dpkg -i said\n%s\nwant %q", installed, want)
		}
	}
	wantInst := "/lib/systemd/system/osmanager.service\nS01osmanager\n700 /LuoYun/conf\nconfig\nstatus\nosmanager " + version(t) + "\ninstall ok installed\n"
	if !strings.HasPrefix(inst, wantInst) {
		t.Errorf("after dpkg -i:\n%s\nwant:\n%s", inst, wantInst)
	}
	if strings.Contains(after, "left ") || !strings.Contains(after, "config\nstatus\n700 /LuoYun/conf\n") {
		t.Errorf("after dpkg --purge:\n%s\nwant nothing left but /LuoYun", after)
	}
}
