package osconfig

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/internal/testlog"
	"osmanager/agent/sysroot"
)

// sha512Hash is `mkpasswd -m sha-512 secret salt1234`.
const sha512Hash = "$6$salt1234$O4xf4r4QjGH5ir9YvTr3bnFM1mbIdF8v2.vIQ/dJnK8z5ehfXKa4O/oIq1Op4lNHmBnLPA5GgqJDbE0k3JV5E0"

const shadow = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nalice:$y$j9T$abc$def:19000:0:99999:7:::\n"

func setup(t *testing.T) (*Config, string, *testlog.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc", "root"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte(shadow), 0o640)
	r, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{
		Shadow: "/etc/shadow", ShadowLock: "/etc/.pwd.lock", SSHDir: "/root/.ssh", AuthKeys: "/root/.ssh/authorized_keys",
		RootUID: os.Getuid(), RootGID: os.Getgid(), Hostname: "/etc/hostname", Hosts: "/etc/hosts", Resolv: "/etc/resolv.conf",
	}
	log, buf := testlog.New(t)
	return &Config{Root: r, Files: f, Log: log}, dir, buf
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckHash(t *testing.T) {
	good := []string{sha512Hash, "$5$rounds=5000$salt$" + strings.Repeat("a", 43), "$1$salt$" + strings.Repeat("b", 22),
		"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", "$2b$10$" + strings.Repeat("c", 53),
		"*", "!", "!*", "!" + sha512Hash}
	for _, h := range good {
		if err := CheckHash(h); err != nil {
			t.Errorf("CheckHash(%.20q…) = %v, want nil", h, err)
		}
	}
	bad := map[string]string{"empty": "", "plain": "secret", "des": "abJnggxhB/yWI", "two fields": "$6$salt",
		"short sha512": "$6$salt$abc", "colon": "$6$a:b$c", "newline": "$6$salt$x\nroot::0", "space": "$6$sa lt$" + strings.Repeat("a", 86),
		"empty salt": "$6$$" + strings.Repeat("a", 86), "lock+plain": "!secret"}
	for name, h := range bad {
		t.Run(name, func(t *testing.T) {
			err := CheckHash(h)
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("err = %v, want ErrBadHash", err)
			}
			if h != "" && len(h) > 3 && strings.Contains(err.Error(), h) {
				t.Errorf("error repeats the value: %v", err)
			}
		})
	}
}

func TestSetRootHash(t *testing.T) {
	c, dir, logs := setup(t)
	changed, err := c.SetRootHash(sha512Hash)
	if err != nil || len(changed) != 1 {
		t.Fatalf("SetRootHash = %v, %v", changed, err)
	}
	want := strings.Replace(shadow, "root:*:", "root:"+sha512Hash+":", 1)
	if got := read(t, dir, "etc/shadow"); got != want {
		t.Errorf("shadow =\n%s\nwant\n%s", got, want)
	}
	if st, _ := os.Stat(filepath.Join(dir, "etc/shadow")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
	}
	if changed, err = c.SetRootHash(sha512Hash); err != nil || changed != nil {
		t.Errorf("second SetRootHash = %v, %v; want no change", changed, err)
	}
	if _, err := c.SetRootHash("hunter2"); !errors.Is(err, ErrBadHash) {
		t.Errorf("plain password: %v", err)
	}
	if got := read(t, dir, "etc/shadow"); got != want {
		t.Error("a refused hash changed the file")
	}
	if strings.Contains(logs.String(), sha512Hash) || strings.Contains(logs.String(), "hunter2") {
		t.Error("the log holds a password hash")
	}
}

func TestSetRootHashOddFiles(t *testing.T) {
	cases := []struct{ name, in, want, err string }{
		{"no trailing newline", "a:x:1\nroot:!:1:::::", "a:x:1\nroot:" + sha512Hash + ":1:::::", ""},
		{"root last field only", "root:old\n", "root:" + sha512Hash + "\n", ""},
		{"no root", "daemon:*:1:::::\n", "daemon:*:1:::::\n", "no root entry"},
		{"rootx is not root", "rootx:*:1:::::\n", "rootx:*:1:::::\n", "no root entry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, dir, _ := setup(t)
			os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte(tc.in), 0o640)
			_, err := c.SetRootHash(sha512Hash)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if got := read(t, dir, "etc/shadow"); got != tc.want {
				t.Errorf("shadow = %q, want %q", got, tc.want)
			}
		})
	}
}

func newKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

func TestSetRootKeys(t *testing.T) {
	c, dir, _ := setup(t)
	mine, cloud1, cloud2 := newKey(t, "owner@laptop"), newKey(t, "cloud1"), newKey(t, "cloud2")
	os.MkdirAll(filepath.Join(dir, "root/.ssh"), 0o755)
	os.WriteFile(filepath.Join(dir, "root/.ssh/authorized_keys"), []byte(mine+"\n"), 0o644)

	changed, err := c.SetRootKeys(cloud1 + "\n\n# a comment\n" + `command="uptime",no-pty ` + cloud2 + "\nnot a key\nssh-rsa AAAA!!!! broken\n")
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("err = %v, want lines 5 and 6 refused", err)
	}
	if len(changed) != 2 {
		t.Errorf("changed = %v, want the dir mode and the file", changed)
	}
	got := read(t, dir, "root/.ssh/authorized_keys")
	want := mine + "\n" + keysBegin + "\n" + cloud1 + "\n" + `command="uptime",no-pty ` + cloud2 + "\n" + keysEnd + "\n"
	if got != want {
		t.Errorf("authorized_keys =\n%s\nwant\n%s", got, want)
	}
	for name, mode := range map[string]os.FileMode{"root/.ssh": 0o700, "root/.ssh/authorized_keys": 0o600} {
		if st, _ := os.Stat(filepath.Join(dir, name)); st.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	// Same keys: nothing written. One key dropped: the block shrinks, mine stays.
	if changed, err = c.SetRootKeys(cloud1 + "\n" + `command="uptime",no-pty ` + cloud2); err != nil || changed != nil {
		t.Errorf("same keys: %v, %v", changed, err)
	}
	if _, err = c.SetRootKeys(cloud2); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir, "root/.ssh/authorized_keys"); got != mine+"\n"+keysBegin+"\n"+cloud2+"\n"+keysEnd+"\n" {
		t.Errorf("after dropping a key:\n%s", got)
	}
	// Only bad lines: the working keys stay.
	before := read(t, dir, "root/.ssh/authorized_keys")
	if _, err = c.SetRootKeys("garbage"); err == nil {
		t.Error("all-bad keys accepted")
	}
	if read(t, dir, "root/.ssh/authorized_keys") != before {
		t.Error("all-bad keys changed the file")
	}
}

func TestSetRootKeysSymlinks(t *testing.T) {
	key := newKey(t, "k")
	t.Run("ssh dir", func(t *testing.T) {
		c, dir, _ := setup(t)
		target := t.TempDir()
		os.Symlink(target, filepath.Join(dir, "root/.ssh"))
		if _, err := c.SetRootKeys(key); !errors.Is(err, sysroot.ErrSymlink) {
			t.Errorf("err = %v, want ErrSymlink", err)
		}
		if ents, _ := os.ReadDir(target); len(ents) != 0 {
			t.Errorf("wrote through the symlink: %v", ents)
		}
	})
	t.Run("authorized_keys", func(t *testing.T) {
		c, dir, _ := setup(t)
		os.MkdirAll(filepath.Join(dir, "root/.ssh"), 0o700)
		victim := filepath.Join(t.TempDir(), "victim")
		os.WriteFile(victim, []byte("x"), 0o644)
		os.Symlink(victim, filepath.Join(dir, "root/.ssh/authorized_keys"))
		if _, err := c.SetRootKeys(key); !errors.Is(err, sysroot.ErrSymlink) {
			t.Errorf("err = %v, want ErrSymlink", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "x" {
			t.Error("symlink target changed")
		}
	})
}

type fakeKernel struct{ name string }

func (k *fakeKernel) Hostname() (string, error)  { return k.name, nil }
func (k *fakeKernel) SetHostname(n string) error { k.name = n; return nil }

func TestSetHostname(t *testing.T) {
	c, dir, _ := setup(t)
	os.WriteFile(filepath.Join(dir, "etc/hosts"), []byte("127.0.0.1\tlocalhost\n10.9.9.9\tother\n"), 0o644)
	k := &fakeKernel{name: "debian"}
	changed, err := c.SetHostname("App1.Example.com", "10.0.0.12", k)
	if err != nil || len(changed) != 3 {
		t.Fatalf("SetHostname = %v, %v", changed, err)
	}
	if got := read(t, dir, "etc/hostname"); got != "app1\n" {
		t.Errorf("hostname file %q", got)
	}
	if got, want := read(t, dir, "etc/hosts"), "127.0.0.1\tlocalhost\n10.9.9.9\tother\n10.0.0.12\tapp1.example.com app1 # osmanager\n"; got != want {
		t.Errorf("hosts = %q, want %q", got, want)
	}
	if k.name != "app1" {
		t.Errorf("kernel host name %q", k.name)
	}
	if changed, err = c.SetHostname("app1.example.com", "10.0.0.12", k); err != nil || changed != nil {
		t.Errorf("second SetHostname = %v, %v", changed, err)
	}
	if _, err = c.SetHostname("app2", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir, "etc/hosts"); !strings.HasSuffix(got, "\tother\n127.0.1.1\tapp2 # osmanager\n") || strings.Count(got, "osmanager") != 1 {
		t.Errorf("hosts after rename = %q", got)
	}
	for _, bad := range []string{"", "-x", "a..b", "bad_name", strings.Repeat("a", 64), "x y", "a.b;rm"} {
		if _, err := c.SetHostname(bad, "", k); err == nil {
			t.Errorf("SetHostname(%q) accepted", bad)
		}
	}
	if _, err = c.SetHostname("app3", "not-an-ip", nil); err == nil || read(t, dir, "etc/hostname") != "app3\n" {
		t.Errorf("bad domain.ip: err %v; the name must still be set", err)
	}
}

func TestNameservers(t *testing.T) {
	got, err := SplitNameservers("8.8.8.8 8.8.4.4", "8.8.8.8,1.1.1.1 bogus 2001:db8::1")
	if want := "8.8.8.8 8.8.4.4 1.1.1.1 2001:db8::1"; strings.Join(got, " ") != want || err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("SplitNameservers = %v, %v", got, err)
	}
	c, dir, _ := setup(t)
	os.WriteFile(filepath.Join(dir, "etc/resolv.conf"), []byte("search corp.example\nnameserver 192.168.0.1\noptions edns0\n"), 0o644)
	changed, _, err := c.SetNameservers([]string{"8.8.8.8", "8.8.4.4"})
	if err != nil || len(changed) != 1 {
		t.Fatalf("SetNameservers = %v, %v", changed, err)
	}
	want := resolvHeader + "\nsearch corp.example\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
	if got := read(t, dir, "etc/resolv.conf"); got != want {
		t.Errorf("resolv.conf =\n%s\nwant\n%s", got, want)
	}
	if changed, _, err = c.SetNameservers([]string{"8.8.8.8", "8.8.4.4"}); err != nil || changed != nil {
		t.Errorf("second call: %v, %v", changed, err)
	}
	// A symlink owned by another resolver is left alone.
	os.Remove(filepath.Join(dir, "etc/resolv.conf"))
	os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(dir, "etc/resolv.conf"))
	changed, note, err := c.SetNameservers([]string{"1.1.1.1"})
	if err != nil || changed != nil || !strings.Contains(note, "stub-resolv.conf") {
		t.Errorf("symlinked resolv.conf: %v, %q, %v", changed, note, err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "etc/resolv.conf")); l != "../run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("symlink changed to %q", l)
	}
}
