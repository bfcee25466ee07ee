package appliance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/clcd"
)

// cloudInitRecipe is the systemd image with Debian's cloud-init instead of
// osmanager: ifupdown for its ENI network renderer (as Debian's cloud
// images), and the NoCloud datasource only, as an appliance for a NoCloud
// cloud would set it.
func cloudInitRecipe() recipe {
	r := systemdRecipe()
	r.Name = "cloud-init"
	r.Packages = append(r.Packages, "cloud-init", "ifupdown")
	r.Hooks = append(r.Hooks, `printf 'datasource_list: [ NoCloud, None ]\n' > "$1/etc/cloud/cloud.cfg.d/90-e2e.cfg"`)
	return r
}

// measure is one boot's figures.
type measure struct {
	sshKey     float64 // qemu start to sshd accepting the key, s (host clock)
	total      float64 // systemd-analyze: kernel + userspace, s
	agent      float64 // the agent's units, start to active, s
	agentChain float64 // of that, on multi-user.target's critical chain, s
	rss        float64 // the agent's resident memory after boot, MiB
	used       float64 // the guest's used memory after boot (MemTotal-MemAvailable), MiB
}

// TestBenchCloudInit boots the same image and qemu settings with osmanager
// (the node's floppy) and with cloud-init (a NoCloud seed on a CIDATA
// volume carrying the same password hash, key, host name, name servers
// and static network), each on a fresh disk (an instance's first boot),
// and reports the figures and their ratios. On only with OSM_E2E_BENCH=1.
func TestBenchCloudInit(t *testing.T) {
	if os.Getenv("OSM_E2E_BENCH") != "1" {
		t.Skip("set OSM_E2E_BENCH=1 to compare with cloud-init")
	}
	for _, tool := range []string{"mmdebstrap", "qemu-system-x86_64", "mkfs.ext4", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cache := os.Getenv("OSM_E2E_CACHE")
	if cache == "" {
		cache = "/var/cache/osmanager-e2e"
	}
	rounds := 2
	if n, err := strconv.Atoi(os.Getenv("OSM_E2E_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	repo, _ := filepath.Abs("../../..")
	accel := os.Getenv("OSM_E2E_ACCEL")
	if accel == "" {
		accel = "tcg" // the figures compare like with like; nested KVM here refuses the guest
	}
	h := &harness{t: t, work: t.TempDir(), accel: accel, init: "systemd", arch: "amd64", slow: 1}
	bins, err := buildAgent(repo, false, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	files := agentFiles{Repo: repo, Binary: bins["amd64"], Init: "systemd", Arch: "amd64"}
	var osmBase, ciBase baseImage
	h.step("base image systemd", func() { osmBase = buildBase(t, cache, systemdRecipe()) })
	h.step("base image cloud-init", func() { ciBase = buildBase(t, cache, cloudInitRecipe()) })

	ctl := &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{}, JoinEvery: -1}
	in := newInstance(t, "vm1.e2e.test", "10.0.2.15", "10.0.2.3")
	ctl.Instances[int32(in.Tag)] = in.Key
	addr, err := ctl.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	fd := h.floppy("bench", in.ini(int(addr.Port())))
	seed := filepath.Join(h.work, "seed.img")
	if err := makeSeed(seed, h.work, in); err != nil {
		t.Fatal(err)
	}

	var osm, ci []measure
	for i := range rounds {
		for _, sys := range []string{"osmanager", "cloud-init"} {
			name := fmt.Sprintf("%s round %d", sys, i+1)
			var m measure
			h.step(name, func() {
				cfg := vmConfig{Name: strings.ReplaceAll(name, " ", "-"), Work: h.work, MAC: in.MAC, GuestIP: in.IP, Accel: accel}
				if sys == "osmanager" {
					cfg.Base, cfg.Floppy = osmBase, fd
					cfg.Disk, err = makeDisk(osmBase, h.work, "binary", files)
				} else {
					cfg.Base, cfg.Extra = ciBase, seed
					cfg.Disk, err = makeDisk(ciBase, h.work, "none", files)
				}
				if err != nil {
					t.Fatal(err)
				}
				m = h.measureBoot(name, cfg, in, sys)
			})
			t.Logf("%s: ssh key %.1fs, boot %.1fs, agent %.2fs (on the critical chain %.2fs), agent RSS %.1f MiB, guest used %.0f MiB",
				name, m.sshKey, m.total, m.agent, m.agentChain, m.rss, m.used)
			if sys == "osmanager" {
				osm = append(osm, m)
			} else {
				ci = append(ci, m)
			}
		}
	}
	a, b := mean(osm), mean(ci)
	t.Logf("mean of %d first boots each (TCG, 2 vCPU, 1 GiB):", rounds)
	t.Logf("  %-32s %10s %10s %8s", "", "osmanager", "cloud-init", "ratio")
	row := func(what string, x, y float64, unit string) {
		r := "-" // cloud-init leaves no process: no ratio of RSS
		if x > 0 && y > 0 {
			r = fmt.Sprintf("%.1f×", y/x)
		}
		t.Logf("  %-32s %9.2f%s %9.2f%s %8s", what, x, unit, y, unit, r)
	}
	row("qemu start to SSH key accepted", a.sshKey, b.sshKey, "s")
	row("boot (systemd-analyze total)", a.total, b.total, "s")
	row("agent's units, start to active", a.agent, b.agent, "s")
	row("of that on the critical chain", a.agentChain, b.agentChain, "s")
	row("agent RSS after boot", a.rss, b.rss, "M")
	row("guest used memory after boot", a.used, b.used, "M")
}

func mean(ms []measure) measure {
	var s measure
	for _, m := range ms {
		s.sshKey += m.sshKey
		s.total += m.total
		s.agent += m.agent
		s.agentChain += m.agentChain
		s.rss += m.rss
		s.used += m.used
	}
	n := float64(len(ms))
	return measure{s.sshKey / n, s.total / n, s.agent / n, s.agentChain / n, s.rss / n, s.used / n}
}

// makeSeed writes a NoCloud seed (a vfat volume labelled CIDATA) saying
// what in's floppy says.
func makeSeed(img, work string, in instance) error {
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(in.Signer.PublicKey()))) + " e2e@host"
	var ns []string
	for _, n := range strings.Fields(in.NS) {
		ns = append(ns, "nameserver "+n)
	}
	files := map[string]string{
		"meta-data": fmt.Sprintf("instance-id: e2e-bench-1\nlocal-hostname: %s\n", in.short()),
		"user-data": fmt.Sprintf(`#cloud-config
hostname: %s
fqdn: %s
manage_etc_hosts: true
disable_root: false
ssh_pwauth: true
users:
  - name: root
    lock_passwd: false
    hashed_passwd: %q
    ssh_authorized_keys:
      - %q
write_files:
  - path: /etc/resolv.conf
    content: %q
`, in.short(), in.Host, in.Hash, key, strings.Join(ns, "\n")+"\n"),
		"network-config": fmt.Sprintf(`version: 1
config:
  - type: physical
    name: ens3
    mac_address: %q
    subnets:
      - type: static
        address: %s/24
        gateway: %s
        dns_nameservers: [%s]
`, in.MAC, in.IP, in.Gateway, strings.Join(strings.Fields(in.NS), ", ")),
	}
	dir := filepath.Join(work, "seed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"-i", img}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
		args = append(args, p)
	}
	os.Remove(img)
	if out, err := exec.Command("mkfs.vfat", "-n", "CIDATA", "-C", img, "2048").CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.vfat: %v\n%s", err, out)
	}
	if out, err := exec.Command("mcopy", append(args, "::")...).CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy: %v\n%s", err, out)
	}
	return nil
}

// measureBoot boots cfg, waits for SSH with in's key and the end of the
// boot, takes the figures and powers off.
func (h *harness) measureBoot(name string, cfg vmConfig, in instance, sys string) measure {
	t := h.t
	var m measure
	v, err := startVM(cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer func() {
		if !v.wait(0) {
			v.kill()
		}
	}()
	var c *ssh.Client
	h.eventually(name+": SSH with the key", bootDeadline, func() error {
		select {
		case <-v.done:
			return fmt.Errorf("%w: qemu exited: %v", errGiveUp, v.err)
		default:
		}
		c, err = dialSSH(v.SSH, ssh.PublicKeys(in.Signer), &h.hk)
		return err
	})
	m.sshKey = time.Since(v.Started).Seconds()
	defer c.Close()
	sh := func(cmd string) string {
		out, err := run(c, cmd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.TrimSpace(out)
	}
	sh("timeout 300 systemctl is-system-running --wait || true")
	// The checks that matter for a fair comparison: both did the job.
	for _, chk := range []struct{ cmd, want string }{
		{"hostname", in.short()},
		{"ip -4 -o addr show", "inet " + in.IP + "/24"},
		{"cat /etc/resolv.conf", "nameserver " + strings.Fields(in.NS)[0]},
	} {
		if got := sh(chk.cmd); !strings.Contains(got, chk.want) {
			t.Errorf("%s: %q gives %q, want %q", name, chk.cmd, got, chk.want)
		}
	}
	if pc, err := dialSSH(v.SSH, passwordAuth(in.Password)[0], &h.hk); err != nil {
		t.Errorf("%s: root password over SSH: %v", name, err)
	} else {
		pc.Close()
	}
	an := sh("systemd-analyze")
	if mm := regexp.MustCompile(`= (?:(\d+)min )?([\d.]+)s`).FindStringSubmatch(an); mm != nil {
		mins, _ := strconv.ParseFloat(mm[1], 64)
		secs, _ := strconv.ParseFloat(mm[2], 64)
		m.total = mins*60 + secs
	}
	units := []string{"osmanager.service"}
	if sys == "cloud-init" {
		units = []string{"cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service"}
	}
	chain := sh("systemd-analyze critical-chain multi-user.target --no-pager")
	t.Logf("%s: %s\ncritical chain:\n%s", name, an, chain)
	for _, u := range units {
		props := sh("systemctl show " + u + " -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic")
		p := map[string]float64{}
		for l := range strings.Lines(props) {
			k, val, _ := strings.Cut(strings.TrimSpace(l), "=")
			p[k], _ = strconv.ParseFloat(val, 64)
		}
		d := (p["ActiveEnterTimestampMonotonic"] - p["InactiveExitTimestampMonotonic"]) / 1e6
		if d < 0 {
			d = 0
		}
		m.agent += d
		if strings.Contains(chain, u) {
			m.agentChain += d
		}
	}
	if sys == "osmanager" {
		kb, _ := strconv.ParseFloat(sh("ps -o rss= -C osmanager | head -1"), 64)
		m.rss = kb / 1024
	} else {
		// cloud-init leaves no process; anything of it still running counts.
		kb, _ := strconv.ParseFloat(sh("ps -eo rss=,args= | awk '/cloud-init/ && !/awk/ {s+=$1} END {print s+0}'"), 64)
		m.rss = kb / 1024
	}
	memKB := func(field string) float64 {
		f, _ := strconv.ParseFloat(sh("awk '/^"+field+":/ {print $2}' /proc/meminfo"), 64)
		return f
	}
	m.used = (memKB("MemTotal") - memKB("MemAvailable")) / 1024
	run(c, "poweroff")
	if !v.wait(stopDeadline) {
		v.kill()
	}
	return m
}
