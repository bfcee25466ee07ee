package appliance

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// recipeVersion changes whenever the way an image is made changes in a way
// the recipe text below does not show.
const recipeVersion = "1"

// recipe is what a cached base image is made from: mmdebstrap's suite,
// packages and customize hooks, and the machine's apt sources. Its hash
// names the cache entry, so any change to it builds a new image.
type recipe struct {
	Name     string   // systemd, sysvinit, cloud-init, arm64
	Arch     string   // mmdebstrap --arch; "" is the host's (amd64)
	Suite    string   // bookworm
	Packages []string // --include
	Hooks    []string // --customize-hook shell commands; "$1" is the tree
	// Essential are --essential-hook commands: run after the essential
	// packages, before the others (the kernel, initramfs-tools) go in.
	Essential []string
}

// commonHooks make the tree bootable with -kernel/-initrd root=/dev/vda,
// as an appliance builder's recipe would.
var commonHooks = []string{
	`echo appliance > "$1/etc/hostname"`,
	`printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1/etc/hosts"`,
	`printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$1/etc/fstab"`,
	// The floppy sets root's password for the console and the web terminal
	// (which logs in through the local sshd): Debian's default
	// prohibit-password would refuse both over SSH.
	`printf 'PermitRootLogin yes\n' > "$1/etc/ssh/sshd_config.d/luoyun.conf"`,
}

var basePackages = []string{"linux-image-amd64", "openssh-server", "iproute2", "kmod", "procps", "udev"}

// arm64Packages are basePackages with Debian's arm64 kernel.
var arm64Packages = []string{"linux-image-arm64", "openssh-server", "iproute2", "kmod", "procps", "udev"}

func sysvinitRecipe() recipe {
	// e2fsprogs: sysvinit's checkroot runs fsck.ext4 for the fstab's
	// pass 1 and stops the boot when it is missing (systemd skips it).
	return recipe{Name: "sysvinit", Suite: "bookworm", Packages: append([]string{"sysvinit-core", "e2fsprogs"}, basePackages...), Hooks: commonHooks}
}

// arm64Recipe is the systemd image for arm64, built by a foreign-arch
// mmdebstrap (its maintainer scripts run under qemu-user through
// binfmt_misc).
//
// Its initramfs holds only the modules to mount the root disk: with
// initramfs-tools' default MODULES=most, mkinitramfs runs modprobe for
// thousands of modules, each under emulation, and the image took over 20
// minutes to build here; with MODULES=list and a hook adding the virtio
// and ext4 modules it is the same initramfs-tools boot in a fraction of
// that.
func arm64Recipe() recipe {
	return recipe{Name: "arm64", Arch: "arm64", Suite: "bookworm", Packages: append([]string{"systemd-sysv"}, arm64Packages...), Hooks: commonHooks,
		Essential: []string{
			`mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"`,
			`printf 'MODULES=list\n' > "$1/etc/initramfs-tools/conf.d/e2e-modules.conf"`,
			`printf '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\nmanual_add_modules virtio_pci virtio_blk ext4\n' > "$1/etc/initramfs-tools/hooks/e2e-modules"`,
			`chmod 0755 "$1/etc/initramfs-tools/hooks/e2e-modules"`,
		}}
}

func systemdRecipe() recipe {
	return recipe{Name: "systemd", Suite: "bookworm", Packages: append([]string{"systemd-sysv"}, basePackages...), Hooks: commonHooks}
}

// aptSources returns the machine's enabled apt source files: the image is
// built from the same mirrors (and snapshot) as the machine's packages.
func aptSources() ([]string, error) {
	var out []string
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil && hasSourceLine(string(b)) {
		out = append(out, "/etc/apt/sources.list")
	}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	if len(out) == 0 {
		return nil, errors.New("no apt sources in /etc/apt/sources.list{,.d}")
	}
	slices.Sort(out)
	return out, nil
}

func hasSourceLine(s string) bool {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// hash is the recipe's cache key: its text, the harness's recipe version
// and the contents of the apt sources.
func (r recipe) hash(sources []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "v%s\n%s\n%s\n%q\n%q\n", recipeVersion, r.Name, r.Suite, r.Packages, r.Hooks)
	if r.Arch != "" { // absent for the host's arch: its cached images keep their names
		fmt.Fprintf(h, "arch %s\n%q\n", r.Arch, r.Essential)
	}
	for _, s := range sources {
		b, err := os.ReadFile(s)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", s, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// baseImage is a cached base image: the root tree as a tar, and the
// kernel and initramfs Debian installed into it.
type baseImage struct {
	Dir, Tar, Kernel, Initrd string
}

// buildBase returns the cached image of r, building it first when the
// cache has none for r's current hash. A build goes to a temporary dir
// renamed into place when complete, so an interrupted build leaves no
// half image behind; older entries of the same recipe name are removed.
func buildBase(t *testing.T, cache string, r recipe) baseImage {
	t.Helper()
	sources, err := aptSources()
	if err != nil {
		t.Fatalf("image %s: %v", r.Name, err)
	}
	sum, err := r.hash(sources)
	if err != nil {
		t.Fatalf("image %s: hash recipe: %v", r.Name, err)
	}
	dir := filepath.Join(cache, r.Name+"-"+sum)
	img := baseImage{Dir: dir, Tar: filepath.Join(dir, "rootfs.tar"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	if _, err := os.Stat(filepath.Join(dir, "recipe")); err == nil {
		t.Logf("image %s: cached %s", r.Name, dir)
		return img
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatalf("image %s: %v", r.Name, err)
	}
	args := []string{"--variant=apt", "--mode=root", "--include=" + strings.Join(r.Packages, ",")}
	if r.Arch != "" {
		args = append(args, "--arch="+r.Arch)
	}
	for _, h := range r.Essential {
		args = append(args, "--essential-hook="+h)
	}
	for _, h := range r.Hooks {
		args = append(args, "--customize-hook="+h)
	}
	// The kernel and initramfs, for qemu's -kernel/-initrd (no bootloader).
	args = append(args,
		`--customize-hook=cp "$1"/boot/vmlinuz-* `+tmp+`/vmlinuz && cp "$1"/boot/initrd.img-* `+tmp+`/initrd.img`,
		r.Suite, filepath.Join(tmp, "rootfs.tar"))
	args = append(args, sources...)
	t.Logf("image %s: building %s (mmdebstrap, a few minutes)", r.Name, dir)
	cmd := exec.Command("mmdebstrap", args...)
	logPath := filepath.Join(tmp, "mmdebstrap.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("image %s: %v", r.Name, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Run()
	logf.Close()
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("image %s: mmdebstrap: %v\n%s", r.Name, err, tail(string(b), 40))
	}
	text := fmt.Sprintf("recipe %s v%s\narch %s\nsuite %s\npackages %s\nsources %s\n", r.Name, recipeVersion, cmp.Or(r.Arch, "host"), r.Suite, strings.Join(r.Packages, " "), strings.Join(sources, " "))
	for _, h := range r.Essential {
		text += "essential-hook " + h + "\n"
	}
	for _, h := range r.Hooks {
		text += "hook " + h + "\n"
	}
	if err := os.WriteFile(filepath.Join(tmp, "recipe"), []byte(text), 0o644); err != nil {
		t.Fatalf("image %s: %v", r.Name, err)
	}
	old, _ := filepath.Glob(filepath.Join(cache, r.Name+"-*"))
	for _, o := range old {
		if o != tmp {
			os.RemoveAll(o)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatalf("image %s: %v", r.Name, err)
	}
	return img
}

// agentFiles are what the install step puts into the image.
type agentFiles struct {
	Repo   string // the repository root (init/, custom/, build/VERSION)
	Binary string // the osmanager binary for Arch
	Init   string // systemd or sysvinit
	Arch   string // amd64 or arm64: the .deb's
}

// installAgent installs the agent into the image tree root the way an
// appliance builder does, by mode:
//
//	binary  the binary where the init file expects it, the repo's
//	        init/systemd/osmanager.service enabled by its WantedBy link (or
//	        init/sysvinit/osmanager linked by update-rc.d in a chroot),
//	        /LuoYun/{conf,build/VERSION,custom/scripts}
//	deb     dpkg -i of build/out/packages/osmanager_*_<arch>.deb in a chroot
//
// On arm64 it also points the agent at the floppy's virtio disk (see
// arm64Floppy). It is the one place that knows how the agent gets into an
// image.
func installAgent(root, mode string, f agentFiles) error {
	var err error
	switch mode {
	case "binary":
		err = installBinary(root, f)
	case "deb":
		err = installDeb(root, f)
	default:
		return fmt.Errorf("OSM_E2E_INSTALL=%q: want binary or deb", mode)
	}
	if err != nil || f.Arch != "arm64" {
		return err
	}
	return arm64Floppy(root)
}

// arm64FloppyDev is where the arm64 guest sees the floppy image: the
// aarch64 virt machine has no floppy controller, so the cloud attaches it
// as the second virtio disk (the root disk is the first, /dev/vda).
const arm64FloppyDev = "/dev/vdb"

// arm64Floppy gives the agent --floppy arm64FloppyDev with a systemd
// drop-in, as an arm64 appliance builder does (README: the floppy on
// machines without a floppy controller).
func arm64Floppy(root string) error {
	dir := filepath.Join(root, "etc/systemd/system/osmanager.service.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	unit := "# The floppy image is the second virtio disk on arm64 (no floppy controller).\n[Service]\nExecStart=\nExecStart=/usr/sbin/osmanager run --floppy " + arm64FloppyDev + "\n"
	return os.WriteFile(filepath.Join(dir, "floppy.conf"), []byte(unit), 0o644)
}

func installBinary(root string, f agentFiles) error {
	initFile, initTo, initMode := filepath.Join(f.Repo, "init/systemd/osmanager.service"), "etc/systemd/system/osmanager.service", os.FileMode(0o644)
	if f.Init == "sysvinit" {
		initFile, initTo, initMode = filepath.Join(f.Repo, "init/sysvinit/osmanager"), "etc/init.d/osmanager", 0o755
	}
	unit, err := os.ReadFile(initFile)
	if err != nil {
		return err
	}
	unit = bytes.ReplaceAll(unit, []byte("@SBINDIR@"), []byte("/usr/sbin")) // as install.sh --prefix /usr does
	bin, err := execPath(unit, initFile)
	if err != nil {
		return err
	}
	copies := []struct {
		from, to string
		mode     os.FileMode
	}{
		{f.Binary, bin, 0o755},
		{filepath.Join(f.Repo, "custom/scripts/config"), "LuoYun/custom/scripts/config", 0o755},
		{filepath.Join(f.Repo, "custom/scripts/status"), "LuoYun/custom/scripts/status", 0o755},
	}
	for _, c := range copies {
		b, err := os.ReadFile(c.from)
		if err != nil {
			return err
		}
		to := filepath.Join(root, c.to)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(to, b, c.mode); err != nil {
			return err
		}
	}
	to := filepath.Join(root, initTo)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(to, unit, initMode); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "LuoYun/conf"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "LuoYun/build"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "LuoYun/build/VERSION"), []byte(applianceVersion), 0o644); err != nil {
		return err
	}
	if f.Init == "sysvinit" {
		if out, err := exec.Command("chroot", root, "update-rc.d", "osmanager", "defaults").CombinedOutput(); err != nil {
			return fmt.Errorf("update-rc.d osmanager defaults: %v\n%s", err, out)
		}
		return nil
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	return os.Symlink("../osmanager.service", filepath.Join(wants, "osmanager.service"))
}

// execPath is the binary the unit starts (its ExecStart's first word, or
// the sysvinit script's DAEMON), so the binary lands where the init file
// of this tree expects it.
func execPath(b []byte, unit string) (string, error) {
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		v, ok := strings.CutPrefix(l, "ExecStart=")
		if !ok {
			v, ok = strings.CutPrefix(l, "DAEMON=") // the sysvinit script
		}
		if ok {
			if f := strings.Fields(v); len(f) > 0 && filepath.IsAbs(f[0]) {
				return strings.TrimPrefix(f[0], "/"), nil
			}
		}
	}
	return "", fmt.Errorf("%s: no ExecStart with an absolute path", unit)
}

func installDeb(root string, f agentFiles) error {
	arch := cmp.Or(f.Arch, "amd64")
	debs, _ := filepath.Glob(filepath.Join(f.Repo, "build/out/packages/osmanager_*_"+arch+".deb"))
	if len(debs) != 1 {
		return fmt.Errorf("OSM_E2E_INSTALL=deb: want one build/out/packages/osmanager_*_%s.deb, found %d (run scripts/build --packages)", arch, len(debs))
	}
	b, err := os.ReadFile(debs[0])
	if err != nil {
		return err
	}
	in := filepath.Join(root, "tmp/osmanager.deb")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return err
	}
	defer os.Remove(in)
	if out, err := exec.Command("chroot", root, "dpkg", "-i", "/tmp/osmanager.deb").CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -i %s: %v\n%s", filepath.Base(debs[0]), err, out)
	}
	return os.WriteFile(filepath.Join(root, "LuoYun/build/VERSION"), []byte(applianceVersion), 0o644)
}

// applianceVersion is the appliance's build/VERSION; the web page shows it.
const applianceVersion = "osmanager-e2e 1\nAPPLICATION: e2e-appliance 7\n"

// makeDisk writes a fresh raw ext4 disk image from the base tar with the
// agent installed, without loop mounts (mkfs.ext4 -d).
func makeDisk(base baseImage, work, mode string, f agentFiles) (string, error) {
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	if out, err := exec.Command("tar", "-C", root, "-xpf", base.Tar, "--numeric-owner", "--xattrs", "--xattrs-include=*").CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpack %s: %v\n%s", base.Tar, err, out)
	}
	if mode != "none" { // none: the image as it is (the cloud-init comparison)
		if err := installAgent(root, mode, f); err != nil {
			return "", fmt.Errorf("install agent (%s): %w", mode, err)
		}
	}
	disk := filepath.Join(work, "disk.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "appliance", "-d", root, disk, "3G").CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkfs.ext4 -d: %v\n%s", err, out)
	}
	return disk, nil
}

// buildAgent builds the binaries of archs with scripts/build, the one
// build entry, and with packages also the .debs (scripts/build --packages);
// it returns each arch's binary.
func buildAgent(repo string, packages bool, archs ...string) (map[string]string, error) {
	var args []string
	bins := map[string]string{}
	for _, a := range archs {
		args = append(args, "--arch", a)
		bins[a] = filepath.Join(repo, "build/out/linux-"+a+"/osmanager")
	}
	if packages {
		args = append(args, "--packages")
	}
	cmd := exec.Command(filepath.Join(repo, "scripts/build"), args...)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("scripts/build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return bins, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
