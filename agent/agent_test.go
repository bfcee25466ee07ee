package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"osmanager/agent/floppy"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/state"
)

// systemFiles are the files a boot may write, relative to the demo dir.
var systemFiles = []string{
	"sysroot/etc/shadow", "sysroot/etc/hostname", "sysroot/etc/hosts", "sysroot/etc/resolv.conf",
	"sysroot/root/.ssh/authorized_keys", "LuoYun/conf/luoyun.conf",
}

func demoDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := MakeDemo(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testOptions(t *testing.T, dir string) (Options, *testlog.Buffer) {
	log, buf := testlog.New(t)
	p := defaultTestPaths()
	return Options{
		Floppy: filepath.Join(dir, "floppy.img"), Root: filepath.Join(dir, "LuoYun"), Sysroot: filepath.Join(dir, "sysroot"),
		Network: SwitchOff, Log: log, Out: &bytes.Buffer{}, Paths: &p,
		ListenWeb: "127.0.0.1:0", ListenWebSSH: "127.0.0.1:0",
	}, buf
}

func bootOnce(t *testing.T, o Options) (*Agent, error) {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a, a.Boot(context.Background())
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range systemFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			m[f] = string(b)
		} else {
			m[f] = "<" + err.Error() + ">"
		}
	}
	return m
}

func steps(a *Agent) map[string]state.Step {
	m := map[string]state.Step{}
	for _, s := range a.State().Steps() {
		m[s.Name] = s
	}
	return m
}

// nodeIni returns a luoyun.ini with the given JSON value.
func nodeIni(json string) []byte {
	return []byte("CLC_IP=127.0.0.1\nTAG=7\nKEY=0f0e0d0c-1111-2222-3333-444455556666\nJSON=" + json + "\n")
}

func putFloppy(t *testing.T, dir string, img []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "floppy.img"), img, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBootThenNoChange(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	a, err := bootOnce(t, o)
	if err != nil {
		t.Fatalf("first boot: %v\n%s", err, o.Out)
	}
	if n := a.sys.Writes() + a.ly.Writes(); n < 7 {
		t.Errorf("first boot wrote %d files and dirs, want at least 7", n)
	}
	for name, want := range map[string]string{
		"sysroot/etc/hostname": "demo\n",
		"sysroot/etc/hosts":    "127.0.0.1\tlocalhost\n127.0.0.1\tdemo.osmanager.test demo # osmanager\n",
	} {
		if got := snapshot(t, dir)[name]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if s := snapshot(t, dir)["sysroot/etc/shadow"]; !strings.HasPrefix(s, "root:"+demoHash+":") {
		t.Errorf("shadow = %q", s)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "LuoYun/conf/luoyun.conf"))
	img, _ := os.ReadFile(filepath.Join(dir, "floppy.img"))
	if ini, _ := floppy.ReadFile(filepath.Join(dir, "floppy.img")); !bytes.Equal(conf, ini) || len(img) != 1<<20 {
		t.Error("luoyun.conf is not a byte copy of the floppy's luoyun.ini")
	}
	if st, _ := os.Stat(filepath.Join(dir, "LuoYun/conf/luoyun.conf")); st.Mode().Perm() != 0o600 {
		t.Errorf("luoyun.conf mode %v, want 0600", st.Mode().Perm())
	}

	inodes := map[string]uint64{}
	for _, f := range systemFiles {
		st, _ := os.Stat(filepath.Join(dir, f))
		inodes[f] = st.Sys().(*sysStat).Ino
	}
	o2, _ := testOptions(t, dir)
	a, err = bootOnce(t, o2)
	if err != nil {
		t.Fatalf("second boot: %v", err)
	}
	if n := a.sys.Writes() + a.ly.Writes(); n != 0 {
		t.Errorf("second boot wrote %d times, want 0\n%s", n, o2.Out)
	}
	for _, f := range systemFiles {
		st, _ := os.Stat(filepath.Join(dir, f))
		if st.Sys().(*sysStat).Ino != inodes[f] {
			t.Errorf("%s was replaced on the second boot", f)
		}
	}
	for _, s := range a.State().Steps() {
		if len(s.Changed) != 0 {
			t.Errorf("step %s changed %v on the second boot", s.Name, s.Changed)
		}
	}
	if out := o2.Out.(*bytes.Buffer).String(); strings.Count(out, "\n") != 9 || !strings.Contains(out, "ok      password") {
		t.Errorf("summary is not one line per step:\n%s", out)
	}
}

// fakeLinks is a netconf.Netlink with one NIC and no changes allowed to fail.
type fakeLinks struct{ mac string }

func (f fakeLinks) LinkList() ([]netlink.Link, error) {
	hw, _ := net.ParseMAC(f.mac)
	return []netlink.Link{&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0", HardwareAddr: hw, EncapType: "ether"}}}, nil
}
func (fakeLinks) LinkSetUp(netlink.Link) error                         { return nil }
func (fakeLinks) AddrList(netlink.Link, int) ([]netlink.Addr, error)   { return nil, nil }
func (fakeLinks) AddrAdd(netlink.Link, *netlink.Addr) error            { return nil }
func (fakeLinks) AddrDel(netlink.Link, *netlink.Addr) error            { return nil }
func (fakeLinks) RouteList(netlink.Link, int) ([]netlink.Route, error) { return nil, nil }
func (fakeLinks) RouteReplace(*netlink.Route) error                    { return nil }

func TestBadInput(t *testing.T) {
	random := make([]byte, 1<<20)
	rand.Read(random)
	fat := func(kind, name string, body []byte) func(t *testing.T, dir string, o *Options) {
		return func(t *testing.T, dir string, o *Options) {
			img, err := floppy.FATImage(kind, name, body)
			if err != nil {
				t.Fatal(err)
			}
			putFloppy(t, dir, img)
		}
	}
	node := func(body []byte) func(t *testing.T, dir string, o *Options) {
		return func(t *testing.T, dir string, o *Options) { putFloppy(t, dir, floppy.NodeImage(body)) }
	}
	goodJSON := `{"domain": {"name": "changed.example"}, "passwd_hash": "!", "public_key": "%s"}`
	cases := []struct {
		name     string
		mutate   func(t *testing.T, dir string, o *Options)
		failed   []string // steps that must fail
		keepConf bool     // luoyun.conf must stay the last good one
		keepSys  bool     // every system file must stay as it was
	}{
		{"no floppy", func(t *testing.T, dir string, o *Options) { os.Remove(o.Floppy) }, []string{"floppy"}, true, true},
		{"no medium (zero length)", func(t *testing.T, dir string, o *Options) { putFloppy(t, dir, nil) }, []string{"floppy"}, true, true},
		{"random bytes", func(t *testing.T, dir string, o *Options) { putFloppy(t, dir, random) }, []string{"floppy"}, true, true},
		{"truncated image", func(t *testing.T, dir string, o *Options) {
			putFloppy(t, dir, floppy.NodeImage(nodeIni("{}"))[:4096])
		}, []string{"floppy"}, true, true},
		{"bad boot sector", func(t *testing.T, dir string, o *Options) {
			img := floppy.NodeImage(nodeIni("{}"))
			clear(img[11:62])
			putFloppy(t, dir, img)
		}, []string{"floppy"}, true, true},
		{"no luoyun.ini", fat("fat12", "readme.txt", nodeIni("{}")), []string{"floppy"}, true, true},
		{"luoyun.ini over 64 KiB", fat("fat16", "luoyun.ini", bytes.Repeat([]byte("X=1\n"), 17<<10)), []string{"floppy"}, true, true},
		{"ini without JSON", node([]byte("TAG=1\nKEY=k\n")), []string{"conf"}, true, true},
		{"broken JSON", node(nodeIni(`{"domain": {"name": "x"`)), []string{"conf"}, true, true},
		{"wrong types", node(nodeIni(`{"passwd_hash": 5, "public_key": ["x"], "domain": {"name": "typed.example"}}`)), []string{"conf"}, false, false},
		{"bad hash", node(nodeIni(`{"passwd_hash": "hunter2"}`)), []string{"password"}, false, true},
		{"bad key lines", node(nodeIni(`{"public_key": "ssh-rsa notbase64 x\ngarbage"}`)), []string{"sshkeys"}, false, true},
		{"bad host name", node(nodeIni(`{"domain": {"name": "bad_name!"}}`)), []string{"hostname"}, false, true},
		{"bad name server", node(nodeIni(`{"nameservers": "8.8.8.8.8"}`)), []string{"nameservers"}, false, true},
		{"key path is a symlink", func(t *testing.T, dir string, o *Options) {
			ssh := filepath.Join(dir, "sysroot/root/.ssh")
			os.RemoveAll(ssh)
			os.Symlink(t.TempDir(), ssh)
			key := strings.TrimSpace(strings.Split(snapshotKey(t, dir), "\n")[0])
			putFloppy(t, dir, floppy.NodeImage(nodeIni(strings.Replace(goodJSON, "%s", key, 1))))
		}, []string{"sshkeys"}, false, false},
		{"unknown MAC", func(t *testing.T, dir string, o *Options) {
			o.Network, o.Netlink = SwitchOn, fakeLinks{mac: "52:54:00:00:00:99"}
			putFloppy(t, dir, floppy.NodeImage(nodeIni(`{"network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.2", "netmask": "24"}]}`)))
		}, []string{"network"}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := demoDir(t)
			o, _ := testOptions(t, dir)
			if _, err := bootOnce(t, o); err != nil {
				t.Fatalf("good boot: %v", err)
			}
			before := snapshot(t, dir)
			o, logs := testOptions(t, dir)
			c.mutate(t, dir, &o)
			a, err := bootOnce(t, o)
			if !errors.Is(err, ErrBootFailed) {
				t.Fatalf("boot = %v, want ErrBootFailed", err)
			}
			got := steps(a)
			for _, name := range c.failed {
				s := got[name]
				if s.Status != state.StepFailed || s.Error == "" || strings.Contains(s.Error, "\n") {
					t.Errorf("step %s = %+v, want failed with a one-line error", name, s)
				}
			}
			for name, s := range got {
				if s.Status == state.StepFailed && !contains(c.failed, name) {
					t.Errorf("step %s failed too: %s", name, s.Error)
				}
			}
			after := snapshot(t, dir)
			if c.keepConf && after["LuoYun/conf/luoyun.conf"] != before["LuoYun/conf/luoyun.conf"] {
				t.Error("the last good luoyun.conf was replaced")
			}
			if c.keepSys {
				for f := range before {
					if f != "LuoYun/conf/luoyun.conf" && after[f] != before[f] {
						t.Errorf("%s changed:\n%q\n→\n%q", f, before[f], after[f])
					}
				}
			}
			if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "panic") {
				t.Errorf("log holds a secret or a panic:\n%s", logs)
			}
		})
	}
}

// snapshotKey returns the demo's SSH key from its luoyun.conf.
func snapshotKey(t *testing.T, dir string) string {
	a, _ := os.ReadFile(filepath.Join(dir, "LuoYun/conf/luoyun.conf"))
	i := strings.Index(string(a), "ssh-ed25519 ")
	return string(a[i : strings.Index(string(a[i:]), "\"")+i])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestWrongTypesStillApplyTheRest(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	putFloppy(t, dir, floppy.NodeImage(nodeIni(`{"passwd_hash": 5, "domain": {"name": "typed.example"}}`)))
	if _, err := bootOnce(t, o); err == nil {
		t.Fatal("boot with a wrong type succeeded")
	}
	if got := snapshot(t, dir)["sysroot/etc/hostname"]; got != "typed\n" {
		t.Errorf("hostname = %q; a bad item stopped a good one", got)
	}
}

func TestLastGoodConfUsedWhenFloppyGone(t *testing.T) {
	dir := demoDir(t)
	o, _ := testOptions(t, dir)
	if _, err := bootOnce(t, o); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "sysroot/etc/hostname"), []byte("drifted\n"), 0o644)
	os.Remove(o.Floppy)
	o, _ = testOptions(t, dir)
	a, err := bootOnce(t, o)
	if !errors.Is(err, ErrBootFailed) {
		t.Fatalf("boot = %v", err)
	}
	if s := steps(a)["conf"]; s.Status != state.StepOK || !strings.Contains(s.Note, "last good") {
		t.Errorf("conf step = %+v", s)
	}
	if got := snapshot(t, dir)["sysroot/etc/hostname"]; got != "demo\n" {
		t.Errorf("hostname = %q: the last good config was not applied", got)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	dir := demoDir(t)
	o, logs := testOptions(t, dir)
	if _, err := bootOnce(t, o); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "LuoYun/conf/luoyun.conf"))
	var key string
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, "KEY="); ok {
			key = v
		}
	}
	out := logs.String() + o.Out.(*bytes.Buffer).String()
	for what, secret := range map[string]string{"KEY": key, "passwd_hash": demoHash, "hash salt": "osmdemo0", "cookie": "demo-cookie"} {
		if secret == "" {
			t.Fatalf("no %s in the demo config", what)
		}
		if strings.Contains(out, secret) {
			t.Errorf("%s appears in the log or summary", what)
		}
	}
}

func TestNewRefusesBadRoots(t *testing.T) {
	log, _ := testlog.New(t)
	if _, err := New(Options{Sysroot: "/nonexistent/sysroot", Root: t.TempDir(), Log: log}); err == nil {
		t.Error("New accepted a missing sysroot")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := New(Options{Sysroot: t.TempDir(), Root: f, Log: log}); err == nil {
		t.Error("New accepted a file as the LuoYun dir")
	}
}
