package appliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Guest ports forwarded to host loopback.
const (
	guestSSH  = 22
	guestWeb  = 8080
	guestTerm = 8001
)

// vmConfig is one boot of the appliance.
type vmConfig struct {
	Name    string // for the console log: boot1, …
	Work    string // dir for the console log
	Base    baseImage
	Disk    string
	Floppy  string // image file; "" boots without a floppy disk
	MAC     string
	GuestIP string // the address the forwards point to
	Accel   string // kvm or tcg
	Arch    string // amd64 (""), or arm64: qemu-system-aarch64 -M virt, always TCG here
	Extra   string // a second virtio disk (the cloud-init seed); "" for none
	// LateNIC starts the guest without its NIC; vm.plugNIC hot-plugs it.
	LateNIC bool
}

// vm is a running qemu.
type vm struct {
	Console        string // serial console log
	SSH, Web, Term int    // host ports on 127.0.0.1
	Started        time.Time
	QMP            string // qemu's QMP socket
	mac            string
	cmd            *exec.Cmd
	done           chan struct{}
	err            error // once done is closed
	stderr         *syncBuffer
}

// kvmWorks reports whether /dev/kvm can be opened and answers
// KVM_GET_API_VERSION.
func kvmWorks() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), 0xAE00) // KVM_GET_API_VERSION
	return err == nil && v == 12
}

// freePorts returns n distinct free loopback ports. qemu binds them a
// moment later; startVM retries with new ports if one was taken meanwhile.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startVM boots c under qemu. It returns once qemu has set up its
// forwards and started the guest (the console shows the kernel), or an
// error saying why not.
func startVM(c vmConfig) (*vm, error) {
	for attempt := 0; ; attempt++ {
		v, err := startOnce(c)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "forwarding") {
			return v, err
		}
	}
}

func startOnce(c vmConfig) (*vm, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	v := &vm{Console: filepath.Join(c.Work, c.Name+".console"), SSH: ports[0], Web: ports[1], Term: ports[2], done: make(chan struct{}), stderr: &syncBuffer{}}
	os.Remove(v.Console)
	v.QMP, v.mac = filepath.Join(c.Work, c.Name+".qmp"), c.MAC
	os.Remove(v.QMP)
	fwd := ""
	for _, f := range [][2]int{{v.SSH, guestSSH}, {v.Web, guestWeb}, {v.Term, guestTerm}} {
		fwd += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-%s:%d", f[0], c.GuestIP, f[1])
	}
	nic := []string{"-nic", fmt.Sprintf("user,model=e1000,mac=%s", c.MAC) + fwd}
	if c.LateNIC {
		nic = []string{"-netdev", "user,id=n0" + fwd}
	}
	cpu := "max"
	if c.Accel == "kvm" {
		cpu = "host"
	}
	machine, console, qemu := "pc,accel="+c.Accel, "ttyS0", "qemu-system-x86_64"
	if c.Arch == "arm64" {
		// The virt machine: PCIe virtio disks and NIC (Debian's arm64
		// kernel has no e1000), the PL011 UART as the console, no firmware
		// (qemu loads Debian's kernel and initramfs itself).
		// pauth-impdef: pointer authentication (which Debian's arm64
		// kernel and userland use) with a cheap hash instead of the
		// architected QARMA, by far the costliest part of emulating
		// -cpu max.
		machine, console, qemu, cpu = "virt,accel=tcg", "ttyAMA0", "qemu-system-aarch64", "max,pauth-impdef=on"
		nic[1] = strings.Replace(nic[1], "model=e1000", "model=virtio-net-pci", 1)
	}
	args := []string{
		"-M", machine, "-cpu", cpu, "-smp", "2", "-m", "1024",
		"-display", "none", "-monitor", "none", "-serial", "file:" + v.Console, "-no-reboot",
		"-kernel", c.Base.Kernel, "-initrd", c.Base.Initrd,
		"-append", "root=/dev/vda rw console=" + console + " panic=-1",
		"-drive", "file=" + c.Disk + ",if=virtio,format=raw",
		"-qmp", "unix:" + v.QMP + ",server=on,wait=off",
	}
	args = append(args, nic...)
	if c.Extra != "" {
		args = append(args, "-drive", "file="+c.Extra+",if=virtio,format=raw")
	}
	switch {
	case c.Floppy == "":
	case c.Arch == "arm64":
		// No floppy controller on virt: the image is the second virtio
		// disk, /dev/vdb (arm64FloppyDev), read-only as a floppy the
		// guest must not write.
		args = append(args, "-drive", "file="+c.Floppy+",if=virtio,format=raw,readonly=on")
	default:
		args = append(args, "-drive", "file="+c.Floppy+",if=floppy,format=raw")
	}
	v.cmd = exec.Command(qemu, args...)
	v.cmd.Stderr = v.stderr
	v.Started = time.Now()
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		v.err = v.cmd.Wait()
		close(v.done)
	}()
	// qemu sets up the forwards before it runs the guest, and the guest's
	// kernel writes to the serial console within seconds.
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-v.done:
			return nil, fmt.Errorf("qemu exited at start: %v: %s", v.err, strings.TrimSpace(v.stderr.String()))
		case <-deadline:
			v.kill()
			return nil, errors.New("qemu: no console output within 60 s")
		case <-tick.C:
			if st, err := os.Stat(v.Console); err == nil && st.Size() > 0 {
				return v, nil
			}
		}
	}
}

// plugNIC hot-plugs the e1000 NIC with the configured MAC on the
// netdev of a LateNIC boot, through QMP.
func (v *vm) plugNIC() error {
	c, err := net.DialTimeout("unix", v.QMP, 10*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(c)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{
		`{"execute":"qmp_capabilities"}`,
		fmt.Sprintf(`{"execute":"device_add","arguments":{"driver":"e1000","netdev":"n0","mac":%q,"id":"nic0"}}`, v.mac),
	} {
		if _, err := io.WriteString(c, cmd+"\n"); err != nil {
			return fmt.Errorf("qmp: %w", err)
		}
		for {
			var r struct {
				Return any              `json:"return"`
				Error  *json.RawMessage `json:"error"`
				Event  string           `json:"event"`
			}
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if r.Event != "" {
				continue
			}
			if r.Error != nil {
				return fmt.Errorf("qmp %s: %s", cmd, *r.Error)
			}
			break
		}
	}
	return nil
}

// wait waits up to d for qemu to exit.
func (v *vm) wait(d time.Duration) bool {
	select {
	case <-v.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (v *vm) kill() {
	v.cmd.Process.Kill()
	<-v.done
}

// console returns the serial console so far, without CRs.
func (v *vm) console() string {
	b, _ := os.ReadFile(v.Console)
	return strings.ReplaceAll(string(b), "\r", "")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
