package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/ssh"

	"osmanager/agent/clcd"
	"osmanager/agent/floppy"
	"osmanager/agent/state"
)

// Deadlines, generous for software emulation on 2 cores.
const (
	bootDeadline  = 5 * time.Minute  // qemu start to SSH accepting the key
	checkDeadline = 90 * time.Second // each check after that
	stopDeadline  = 90 * time.Second // poweroff to qemu's exit
)

// instance is what one floppy says.
type instance struct {
	Tag      int
	Key      string // the controller's KEY
	Host     string // domain.name
	IP       string
	Gateway  string
	NS       string // nameservers, space separated
	Hash     string // root's password hash
	Password string // its clear text, for the checks
	Signer   ssh.Signer
	MAC      string
}

func (in instance) short() string { h, _, _ := strings.Cut(in.Host, "."); return h }

// ini is the luoyun.ini the compute node writes for in, pointing at the
// controller on the host (10.0.2.2 is the host's loopback in qemu's user
// network).
func (in instance) ini(ctlPort int) []byte {
	type nic struct {
		MAC     string `json:"mac"`
		IP      string `json:"ip"`
		Netmask string `json:"netmask"`
		Gateway string `json:"gateway"`
	}
	j := struct {
		Domain struct {
			Name string `json:"name"`
			IP   string `json:"ip"`
		} `json:"domain"`
		Nameservers string `json:"nameservers"`
		Hash        string `json:"passwd_hash"`
		Key         string `json:"public_key"`
		Network     []nic  `json:"network"`
	}{Nameservers: in.NS, Hash: in.Hash, Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(in.Signer.PublicKey()))) + " e2e@host",
		Network: []nic{{in.MAC, in.IP, "255.255.255.0", in.Gateway}}}
	j.Domain.Name, j.Domain.IP = in.Host, in.IP
	b, _ := json.Marshal(j)
	return fmt.Appendf(nil, "CLC_IP=10.0.2.2\nCLC_PORT=%d\nCLC_MCAST_PORT=%d\nTAG=%d\nKEY=%s\nJSON=%s\n", ctlPort, ctlPort, in.Tag, in.Key, b)
}

func newInstance(t *testing.T, host, ip, ns string) instance {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var pw [9]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	h, err := shacrypt.NewSHA512()
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	return instance{Tag: 11, Key: "3f6c2a9e-41d7-4b8a-9c55-e2e0a11ce001", Host: host, IP: ip, Gateway: "10.0.2.2", NS: ns,
		Hash: d.Encode(), Password: password, Signer: signer, MAC: "52:54:00:e2:e0:11"}
}

// harness holds what the boots share.
type harness struct {
	t    *testing.T
	init string // systemd or sysvinit
	arch string // amd64 or arm64
	// slow multiplies the deadlines: 1, or 3 for arm64 under TCG.
	slow time.Duration
	// machineID and bootID are the last boot's, for the machine-id checks.
	machineID, bootID string
	work              string
	base              baseImage
	disk              string
	accel             string
	ctl               *clcd.Server
	hk                hostKeys
	steps             []stepTime
	fails             int // checks failed so far (errorf)
	// fileStats is statFiles after the first boot.
	fileStats string
	mu        sync.Mutex
	events    []clcd.Event
}

type stepTime struct {
	name string
	d    time.Duration
}

// step runs fn as a named, timed step and logs its time.
func (h *harness) step(name string, fn func()) {
	h.t.Helper()
	start := time.Now()
	ok, fails := false, h.fails
	defer func() {
		d := time.Since(start)
		h.steps = append(h.steps, stepTime{name, d})
		res := "ok"
		if !ok || h.fails != fails {
			res = "FAILED"
		}
		h.t.Logf("step %-46s %7.1fs %s", name, d.Seconds(), res)
	}()
	fn()
	ok = true
}

// errorf fails a check and goes on; the step it is in shows FAILED.
func (h *harness) errorf(format string, args ...any) {
	h.t.Helper()
	h.fails++
	h.t.Errorf(format, args...)
}

// eventually polls fn until it returns nil or d passes, then fails the
// test with what and fn's last error.
func (h *harness) eventually(what string, d time.Duration, fn func() error) {
	h.t.Helper()
	if err := h.poll(d, fn); err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// errGiveUp, wrapped in an error of a poll's fn, ends the poll at once.
var errGiveUp = errors.New("giving up")

// poll calls fn every half second until it returns nil, an error wrapping
// errGiveUp, or d passes; then it returns fn's last error.
func (h *harness) poll(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if errors.Is(err, errGiveUp) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", d, err)
		}
		<-tick.C
	}
}

func (h *harness) eventsSince(n int) []clcd.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events[n:])
}

func (h *harness) eventCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

func TestAppliance(t *testing.T) {
	if os.Getenv("OSM_E2E_APPLIANCE") != "1" {
		t.Skip("set OSM_E2E_APPLIANCE=1 (scripts/e2e-appliance) to boot the appliance")
	}
	for _, tool := range []string{"mmdebstrap", "qemu-system-x86_64", "mkfs.ext4", "tar", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (mmdebstrap --mode=root, image ownership)")
	}
	cache := os.Getenv("OSM_E2E_CACHE")
	if cache == "" {
		cache = "/var/cache/osmanager-e2e"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Skipf("cache dir %s: %v", cache, err)
	}
	mode := os.Getenv("OSM_E2E_INSTALL")
	if mode == "" {
		mode = "deb" // as an appliance builder installs it
	}
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	accel := os.Getenv("OSM_E2E_ACCEL")
	if accel == "" {
		accel = "tcg"
		if kvmWorks() {
			accel = "kvm"
		}
	}
	images := os.Getenv("OSM_E2E_IMAGES")
	if images == "" {
		images = "systemd"
	}
	archs := []string{"amd64"}
	if slices.Contains(strings.Split(images, ","), "arm64") {
		archs = append(archs, "arm64")
	}
	t.Logf("images %s, accel %s, install %s, cache %s", images, accel, mode, cache)
	work := t.TempDir()
	if os.Getenv("OSM_E2E_KEEP") != "" {
		work, _ = os.MkdirTemp("", "osm-e2e-")
		t.Logf("work dir kept: %s", work)
	}
	start := time.Now()
	bins, err := buildAgent(repo, mode == "deb", archs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("step %-46s %7.1fs ok", "build agent (linux/"+strings.Join(archs, ", linux/")+")", time.Since(start).Seconds())
	recipes := map[string]func() recipe{"systemd": systemdRecipe, "sysvinit": sysvinitRecipe, "arm64": arm64Recipe}
	for _, name := range strings.Split(images, ",") {
		r, ok := recipes[name]
		if !ok {
			t.Fatalf("OSM_E2E_IMAGES: unknown image %q (want systemd, sysvinit, arm64)", name)
		}
		t.Run(name, func(t *testing.T) {
			h := &harness{t: t, work: filepath.Join(work, name), accel: accel, init: name, arch: "amd64", slow: 1}
			if name == "arm64" {
				if why := arm64Missing(); why != "" {
					t.Skip("arm64: skip: " + why)
				}
				// systemd on arm64 under software emulation: no KVM for
				// a foreign guest.
				h.init, h.arch, h.accel, h.slow = "systemd", "arm64", "tcg", 3
			}
			if err := os.MkdirAll(h.work, 0o755); err != nil {
				t.Fatal(err)
			}
			h.run(cache, mode, r(), agentFiles{Repo: repo, Binary: bins[h.arch], Init: h.init, Arch: h.arch})
		})
	}
}

// arm64Missing says what the arm64 image needs and this machine lacks:
// qemu-system-aarch64 to boot it, and qemu-user with binfmt_misc for
// mmdebstrap --arch arm64 and dpkg -i in its chroot ("" when nothing).
func arm64Missing() string {
	if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
		return "qemu-system-aarch64 missing (apt-get install qemu-system-arm)"
	}
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if err != nil || !strings.HasPrefix(string(b), "enabled") {
		return "no binfmt_misc entry for aarch64 binaries (apt-get install qemu-user-static binfmt-support; mount binfmt_misc; update-binfmts --enable qemu-aarch64)"
	}
	return ""
}

// run builds the image of r and boots it four (or five) times.
func (h *harness) run(cache, mode string, r recipe, files agentFiles) {
	t := h.t
	total := time.Now()
	defer func() {
		t.Logf("%s: total %.1fs", r.Name, time.Since(total).Seconds())
	}()
	h.step("base image (mmdebstrap, cached)", func() { h.base = buildBase(t, cache, r) })
	h.step("disk image with the agent ("+mode+")", func() {
		var err error
		if h.disk, err = makeDisk(h.base, h.work, mode, files); err != nil {
			t.Fatal(err)
		}
	})

	// The controller on the host: bound here first, so its port goes into
	// the floppy with no race.
	h.ctl = &clcd.Server{Listen: "127.0.0.1:0", Instances: map[int32]string{}, JoinEvery: -1, OnEvent: func(e clcd.Event) {
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}}
	a := newInstance(t, "vm1.e2e.test", "10.0.2.15", "10.0.2.3")
	h.ctl.Instances[int32(a.Tag)] = a.Key
	addr, err := h.ctl.ListenAndAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- h.ctl.Run(ctx) }()
	defer func() { cancel(); <-ctlDone }()
	port := int(addr.Port())

	fdA := h.floppy("a", a.ini(port))
	h.boot("boot 1 (floppy A)", fdA, a, bootFirst)
	h.boot("boot 2 (same floppy A)", fdA, a, bootSame)
	b := newInstance(t, "vm2.e2e.test", "10.0.2.16", "10.0.2.3 10.0.2.4")
	fdB := h.floppy("b", b.ini(port))
	h.boot("boot 3 (changed floppy B)", fdB, b, bootChanged, a)
	h.boot("boot 4 (no floppy)", "", b, bootNoFloppy)
	switch {
	case os.Getenv("OSM_E2E_LATE_NIC") != "1":
	case h.arch == "arm64":
		// A hot-plugged NIC on virt needs a PCIe root port to plug into.
		t.Logf("boot 5 (NIC plugged after the agent started): amd64 systemd image only")
	case h.init != "systemd":
		// The plug waits for systemd's "Started osmanager.service" on the
		// console; the sysvinit image prints no such line yet.
		t.Logf("boot 5 (NIC plugged after the agent started): systemd image only")
	default:
		h.boot("boot 5 (NIC plugged after the agent started)", fdB, b, bootLateNIC)
	}

	h.summary()
}

// summary logs the host keys seen and the steps' total time.
func (h *harness) summary() {
	t := h.t
	h.hk.mu.Lock()
	seen := slices.Compact(slices.Sorted(slices.Values(h.hk.seen)))
	h.hk.mu.Unlock()
	t.Logf("SSH host keys seen over the boots: %v", seen)
	var sum float64
	for _, s := range h.steps {
		sum += s.d.Seconds()
	}
	t.Logf("%d steps, %.1fs", len(h.steps), sum)
}

// floppy writes the node's floppy image for ini.
func (h *harness) floppy(name string, ini []byte) string {
	p := filepath.Join(h.work, "floppy-"+name+".img")
	if err := os.WriteFile(p, floppy.NodeImage(ini), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

type bootKind int

const (
	bootFirst    bootKind = iota // a fresh image: everything applied
	bootSame                     // the same floppy again: nothing rewritten
	bootChanged                  // a changed floppy: the change applied
	bootNoFloppy                 // none: the last good config, a clear error, no hang
	bootLateNIC                  // the NIC appears after the agent's network step
)

// boot boots the disk with fd (none when ""), checks it as kind says, and
// powers it off. prev is the instance of the floppy before (bootChanged).
func (h *harness) boot(name, fd string, in instance, kind bootKind, prev ...instance) {
	t := h.t
	t.Helper()
	t.Logf("== %s", name)
	evStart := h.eventCount()
	var v *vm
	h.step(name+": qemu start", func() {
		cfg := vmConfig{Name: strings.Fields(name)[0] + strings.Fields(name)[1], Work: h.work, Base: h.base, Disk: h.disk, Floppy: fd, MAC: in.MAC, GuestIP: in.IP, Accel: h.accel, Arch: h.arch, LateNIC: kind == bootLateNIC}
		var err error
		v, err = startVM(cfg)
		if err != nil && h.accel == "kvm" {
			// /dev/kvm opens, but nested KVM may still refuse the guest
			// (e.g. "failed to set MSR"): software emulation then.
			t.Logf("%s: KVM refused (%v); using TCG from now on", name, err)
			h.accel, cfg.Accel = "tcg", "tcg"
			v, err = startVM(cfg)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	})
	stopped := false
	defer func() {
		if !stopped {
			t.Logf("%s: console (last 60 lines):\n%s", name, tail(v.console(), 60))
			v.kill()
		}
	}()
	if kind == bootLateNIC {
		h.step(name+": osmanager ready, then the NIC plugged", func() {
			started := regexp.MustCompile(`Started .*osmanager\.service`)
			h.eventually(name+": console says osmanager.service started", h.slow*bootDeadline, func() error {
				if started.MatchString(ansi.ReplaceAllString(v.console(), "")) {
					return nil
				}
				return errors.New("not yet")
			})
			if err := v.plugNIC(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			t.Logf("%s: NIC %s plugged %.1fs after qemu started", name, in.MAC, time.Since(v.Started).Seconds())
		})
	}
	var c *ssh.Client
	h.step(name+": SSH accepts the floppy's key", func() {
		what, d := name+": SSH to root@"+in.IP+" with the floppy's key", h.slow*bootDeadline
		if kind == bootLateNIC {
			// The agent waits for the floppy's NICs (30 s by default) and
			// configures one that comes later when it appears.
			what, d = name+": SSH after the NIC was plugged (the agent must configure a NIC that appears after its network step)", 2*time.Minute
		}
		h.eventually(what, d, func() error {
			select {
			case <-v.done:
				return fmt.Errorf("%w: qemu exited: %v", errGiveUp, v.err)
			default:
			}
			var err error
			c, err = dialSSH(v.SSH, ssh.PublicKeys(in.Signer), &h.hk)
			return err
		})
		t.Logf("%s: SSH accepted the key %.1fs after qemu started", name, time.Since(v.Started).Seconds())
	})
	defer c.Close()
	sh := func(cmd string) string {
		t.Helper()
		out, err := run(c, cmd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.TrimSpace(out)
	}
	if h.init == "sysvinit" {
		h.step(name+": sysvinit ran osmanager", func() {
			if got := sh("cat /proc/1/comm"); got != "init" {
				t.Fatalf("%s: pid 1 is %q, want sysvinit's init", name, got)
			}
			// LSB: status exits 0 when the daemon runs.
			if got := sh("/etc/init.d/osmanager status; echo \"exit $?\""); !strings.HasSuffix(got, "exit 0") || !strings.Contains(got, "running") {
				t.Fatalf("%s: /etc/init.d/osmanager status: got %q, want it running and exit 0", name, got)
			}
			// The ready file's time against the boot time: when the boot
			// steps were done.
			ready := sh("btime=$(awk '/^btime/ {print $2}' /proc/stat); echo $(( $(stat -c %Y /run/osmanager.ready) - btime ))")
			t.Logf("%s: osmanager ready (/run/osmanager.ready) about %ss after boot", name, ready)
			t.Logf("%s: ssh started after osmanager: %s", name, sh("ls /etc/rc2.d | grep -E 'osmanager|ssh' | tr '\\n' ' '"))
		})
	} else {
		h.systemdChecks(name, c, sh)
	}
	var journal string
	h.step(name+": boot summary in the log", func() {
		logCmd := "journalctl -b -u osmanager.service -o cat --no-pager"
		read := func() string { return sh(logCmd) }
		if h.init == "sysvinit" {
			// The init script sends the summary (stdout) to the console
			// and the log (stderr) to /var/log/osmanager.log.
			logCmd = "the serial console"
			read = v.console
			if got := sh("grep -c 'service=' /var/log/osmanager.log || true"); got == "0" || got == "" {
				h.errorf("%s: /var/log/osmanager.log holds no log line of the agent", name)
			}
		}
		d := h.slow * checkDeadline
		if h.init == "sysvinit" {
			d = 5 * time.Second // ssh starts after the agent's boot steps: the log is there
		}
		err := h.poll(d, func() error {
			journal = read()
			if !regexp.MustCompile(`(?m)^(ok|failed|skipped)\s+floppy`).MatchString(journal) {
				return fmt.Errorf("no floppy step summary in the output of %q:\n%s", logCmd, tail(journal, 20))
			}
			return nil
		})
		if err != nil {
			h.errorf("%s: the agent's boot summary is nowhere to be read: %v", name, err)
			return
		}
		t.Logf("%s: boot summary:\n%s", name, summaryLines(journal))
	})
	h.step(name+": system as the floppy says", func() {
		checks := []struct{ what, cmd, want string }{
			{"kernel host name", "hostname", in.short()},
			{"/etc/hostname", "cat /etc/hostname", in.short()},
			{"address on the NIC found by MAC", "ip -4 -o addr show", "inet " + in.IP + "/24"},
			{"default route", "ip route show default", "default via " + in.Gateway},
			{"hosts line", "cat /etc/hosts", in.IP + "\t" + in.Host},
		}
		for _, n := range strings.Fields(in.NS) {
			checks = append(checks, struct{ what, cmd, want string }{"resolv.conf", "cat /etc/resolv.conf", "nameserver " + n})
		}
		for _, c := range checks {
			if got := sh(c.cmd); !strings.Contains(got, c.want) {
				h.errorf("%s: %s: %q gives %q, want it to contain %q", name, c.what, c.cmd, got, c.want)
			}
		}
		if got := sh("grep -c '^[^#]' /root/.ssh/authorized_keys"); got != "1" {
			h.errorf("%s: authorized_keys has %s lines, want 1 (the floppy's key only, besides the marker comments)", name, got)
		}
	})
	if h.init == "systemd" {
		h.step(name+": machine-id and the journal", func() { h.machineIDChecks(name, kind, sh) })
	}
	h.step(name+": root password over SSH", func() {
		var err error
		for _, auth := range passwordAuth(in.Password) {
			var pc *ssh.Client
			if pc, err = dialSSH(v.SSH, auth, &h.hk); err == nil {
				pc.Close()
				return
			}
		}
		h.errorf("%s: SSH as root with the floppy's password: %v", name, err)
	})
	if kind == bootChanged {
		h.step(name+": the old key is refused", func() {
			if pc, err := dialSSH(v.SSH, ssh.PublicKeys(prev[0].Signer), &h.hk); err == nil {
				pc.Close()
				h.errorf("%s: the previous floppy's key still logs in", name)
			}
		})
	}
	var st statusDoc
	h.step(name+": web page and /api/v1/status", func() {
		h.eventually(name+": /api/v1/status shows the link registered", h.slow*checkDeadline, func() error {
			s, err := status(context.Background(), v.Web)
			if err != nil {
				return err
			}
			st = statusDoc(s)
			if s.Controller.Status != state.LinkRegistered {
				return fmt.Errorf("controller link %q (last error %q)", s.Controller.Status, s.Controller.LastError)
			}
			return nil
		})
		var times []string
		for _, x := range st.Boot.Steps {
			times = append(times, fmt.Sprintf("%s %.2fs", x.Name, x.Duration.Seconds()))
		}
		t.Logf("%s: boot steps (status API): %s; agent started %s", name, strings.Join(times, ", "), st.Agent.Started.Format(time.TimeOnly))
		if st.Hostname != in.Host && st.Hostname != in.short() {
			h.errorf("%s: status hostname %q, want %q", name, st.Hostname, in.Host)
		}
		wantOK := kind != bootNoFloppy
		if st.Boot.OK != wantOK && kind != bootLateNIC {
			h.errorf("%s: status boot.ok %v, want %v; steps %s", name, st.Boot.OK, wantOK, st.steps())
		}
		if !st.hasAddr(in.IP + "/24") {
			h.errorf("%s: status addresses %v, want %s/24", name, st.Addresses, in.IP)
		}
		page, err := get(context.Background(), v.Web, "/")
		if err != nil {
			t.Fatalf("%s: web page: %v", name, err)
		}
		for _, want := range []string{in.short(), "e2e-appliance"} {
			if !strings.Contains(string(page), want) {
				h.errorf("%s: web page lacks %q", name, want)
			}
		}
		if strings.Contains(string(page), "$hostname") {
			h.errorf("%s: web page has $hostname unsubstituted", name)
		}
	})
	h.step(name+": controller saw register 1021 and report 2000", func() {
		h.eventually(name+": controller events from tag "+strconv.Itoa(in.Tag), h.slow*checkDeadline, func() error {
			var reg, rep bool
			for _, e := range h.eventsSince(evStart) {
				if e.Tag != int32(in.Tag) {
					continue
				}
				if e.Name == clcd.EventRegistered && e.Value == 1021 && e.IP == in.IP {
					reg = true
				}
				if e.Name == clcd.EventReport && e.Value == 2000 {
					rep = true
				}
			}
			if !reg || !rep {
				return fmt.Errorf("registered 1021 from %s: %v, report 2000: %v", in.IP, reg, rep)
			}
			return nil
		})
	})
	h.step(name+": web terminal login runs a command", func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.slow*checkDeadline)
		defer cancel()
		out, err := terminalRun(ctx, v.Term, in.Password, "echo E2E-$((6*7))-$(hostname)", "E2E-42-"+in.short())
		if err != nil {
			h.errorf("%s: web terminal: %v\noutput: %q", name, err, tail(out, 10))
		}
	})
	switch kind {
	case bootFirst:
		h.fileStats = sh(statFiles)
	case bootSame:
		h.step(name+": nothing rewritten", func() {
			// The network step sets kernel state, which a reboot clears: it
			// applies again, and writes no file.
			for _, s := range st.Boot.Steps {
				if s.Name == "network" {
					for _, c := range s.Changed {
						if strings.Contains(c, "/etc") || strings.HasPrefix(c, "/") {
							h.errorf("%s: network step wrote a file: %q", name, c)
						}
					}
					continue
				}
				if len(s.Changed) > 0 {
					h.errorf("%s: step %s changed %v, want nothing", name, s.Name, s.Changed)
				}
			}
			for _, l := range strings.Split(summaryLines(journal), "\n") {
				if strings.Contains(l, "changed ") && !strings.Contains(l, " network ") {
					h.errorf("%s: boot summary has a change: %q", name, strings.TrimSpace(l))
				}
			}
			if got := sh(statFiles); got != h.fileStats {
				h.errorf("%s: files rewritten (inode, mtime):\ngot:\n%s\nwant (boot 1):\n%s", name, got, h.fileStats)
			}
		})
	case bootChanged:
		h.step(name+": the change applied", func() {
			changed := map[string]bool{}
			for _, s := range st.Boot.Steps {
				if len(s.Changed) > 0 {
					changed[s.Name] = true
				}
			}
			if len(changed) == 0 {
				h.errorf("%s: no step changed anything; steps %s", name, st.steps())
			}
		})
	case bootNoFloppy:
		h.step(name+": clear error, last good config", func() {
			var fl, cf *state.Step
			for i, x := range st.Boot.Steps {
				switch x.Name {
				case "floppy":
					fl = &st.Boot.Steps[i]
				case "conf":
					cf = &st.Boot.Steps[i]
				}
			}
			if fl == nil || fl.Status != state.StepFailed || fl.Error == "" {
				h.errorf("%s: want a failed floppy step saying why; steps %s", name, st.steps())
			}
			if cf == nil || cf.Status != state.StepOK || !strings.Contains(cf.Note, "last good luoyun.conf") {
				h.errorf("%s: want the conf step to use the last good luoyun.conf; steps %s", name, st.steps())
			}
			if journal != "" && !regexp.MustCompile(`(?m)^failed\s+floppy`).MatchString(journal) {
				h.errorf("%s: no failed floppy step in the boot summary:\n%s", name, summaryLines(journal))
			}
		})
	}
	h.step(name+": poweroff", func() {
		run(c, "poweroff") // systemd and sysvinit alike; the connection may drop before the answer
		if !v.wait(h.slow * stopDeadline) {
			h.errorf("%s: qemu still running %v after poweroff", name, h.slow*stopDeadline)
			v.kill()
		}
	})
	stopped = true
}

// ansi matches the colour escapes of systemd's console status lines.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// statFiles lists the inode and mtime of every file the boot steps write.
const statFiles = "stat -c '%n %i %Y' /etc/shadow /etc/hostname /etc/hosts /etc/resolv.conf /root/.ssh/authorized_keys /LuoYun/conf/luoyun.conf"

// systemdChecks: systemd ran osmanager, it is active, and when it was ready.
func (h *harness) systemdChecks(name string, c *ssh.Client, sh func(string) string) {
	t := h.t
	t.Helper()
	h.step(name+": systemd ran osmanager", func() {
		out, _ := run(c, fmt.Sprintf("timeout %d systemctl is-system-running --wait", int(h.slow*120)))
		if st := strings.TrimSpace(out); st != "running" {
			failed, _ := run(c, "systemctl --failed --no-legend --plain")
			t.Logf("%s: system %q; failed units: %s", name, st, strings.TrimSpace(failed))
		}
		if got := sh("systemctl is-active osmanager.service || true"); got != "active" {
			t.Fatalf("%s: systemctl is-active osmanager: got %q, want active\n%s", name, got, sh("journalctl -b -u osmanager --no-pager | tail -30"))
		}
		props := sh("systemctl show osmanager.service -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic -p NRestarts")
		p := map[string]string{}
		for l := range strings.Lines(props) {
			k, val, _ := strings.Cut(strings.TrimSpace(l), "=")
			p[k] = val
		}
		startUS, _ := strconv.ParseFloat(p["ExecMainStartTimestampMonotonic"], 64)
		readyUS, _ := strconv.ParseFloat(p["ActiveEnterTimestampMonotonic"], 64)
		if readyUS == 0 {
			t.Fatalf("%s: osmanager never became ready (ActiveEnterTimestampMonotonic 0)", name)
		}
		if p["NRestarts"] != "0" {
			h.errorf("%s: osmanager restarted %s times, want 0", name, p["NRestarts"])
		}
		t.Logf("%s: osmanager started %.2fs, ready %.2fs after the kernel (boot steps %.2fs)", name, startUS/1e6, readyUS/1e6, (readyUS-startUS)/1e6)
		t.Logf("%s: %s", name, sh("systemd-analyze"))
		chain := sh("systemd-analyze critical-chain osmanager.service --no-pager")
		if !strings.Contains(chain, "osmanager.service") {
			h.errorf("%s: systemd-analyze critical-chain osmanager.service: no osmanager.service in\n%s", name, chain)
		}
		t.Logf("%s: critical chain:\n%s", name, chain)
	})
}

// summaryLines picks the boot summary (one line per step) out of the
// agent's journal.
func summaryLines(journal string) string {
	re := regexp.MustCompile(`^(ok|failed|skipped)\s+\S+\s+\S+\s`)
	var out []string
	for l := range strings.Lines(journal) {
		if re.MatchString(l) {
			out = append(out, "  "+strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// machineIDChecks follow systemd's machine ID over the boots: the first
// boot (a new instance) marks a reset, carried out at its shutdown, so
// boot 2 has a new ID; the later boots are the same instance (the changed
// floppy keeps TAG and KEY) and keep it; and the journal of the first boot
// is still there and readable with journalctl -m (it is filed under the
// old ID).
func (h *harness) machineIDChecks(name string, kind bootKind, sh func(string) string) {
	t := h.t
	t.Helper()
	id, bootID := sh("cat /etc/machine-id"), sh("cat /proc/sys/kernel/random/boot_id")
	pending := sh("test -f /LuoYun/conf/machine-id-reset && echo pending || echo none")
	prev, prevBoot := h.machineID, h.bootID
	h.machineID, h.bootID = id, bootID
	t.Logf("%s: machine-id %s, boot %s, reset %s", name, id, bootID, pending)
	if len(id) != 32 {
		h.errorf("%s: /etc/machine-id %q: want the 32 hex digits systemd writes", name, id)
	}
	if kind == bootFirst {
		// A new instance: the reset is due at this boot's shutdown.
		if pending != "pending" {
			h.errorf("%s: no machine-id reset pending on a new instance", name)
		}
		return
	}
	if pending != "none" {
		h.errorf("%s: a machine-id reset pending on the same instance (or still pending after a clean shutdown)", name)
	}
	if kind != bootSame {
		if id != prev {
			h.errorf("%s: machine-id %s, want the previous boot's %s (the same instance: nothing reset)", name, id, prev)
		}
		return
	}
	// Boot 2: the first boot was a new instance, reset at its shutdown.
	if id == prev {
		h.errorf("%s: machine-id %s is the first boot's: the reset at its shutdown did not happen", name, id)
	}
	// The previous boot's journal: under the old ID, shown with -m.
	b := strings.ReplaceAll(prevBoot, "-", "")
	dirs := sh("ls /var/log/journal")
	if !strings.Contains(dirs, prev) {
		h.errorf("%s: no journal dir of the previous machine ID %s in /var/log/journal: %q", name, prev, dirs)
	}
	old := sh("journalctl -m _BOOT_ID=" + b + " -u osmanager.service -o cat --no-pager")
	if !regexp.MustCompile(`(?m)^(ok|failed|skipped)\s+floppy`).MatchString(old) {
		h.errorf("%s: journalctl -m: the previous boot's osmanager log has no boot summary:\n%s", name, tail(old, 10))
	}
	if !strings.Contains(old, "machine-id reset") {
		h.errorf("%s: journalctl -m: the previous boot's osmanager log does not show the machine-id reset at shutdown:\n%s", name, tail(old, 10))
	}
	t.Logf("%s: previous boot's journal (journalctl -m): %d lines of osmanager; last: %s", name, strings.Count(old, "\n")+1, strings.TrimSpace(tail(old, 1)))
}
