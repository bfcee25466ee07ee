package instance

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/internal/testlog"
	"osmanager/agent/paths"
	"osmanager/agent/sysroot"
)

// fakeSSHD counts reloads.
type fakeSSHD struct {
	reloads int
	err     error
}

func (f *fakeSSHD) Reload(context.Context) (string, error) {
	f.reloads++
	return "reloaded fake sshd", f.err
}

// testPaths are the production files, owned by the test's own uid.
func testPaths() Files {
	p := paths.Default()
	return Files{
		Conf: p.Conf, InstanceID: p.InstanceID, MachineIDReset: p.MachineIDReset, KnownHosts: p.KnownHosts,
		WebSSHCert: p.WebSSHCert, WebSSHKey: p.WebSSHKey, WebSSHShells: p.WebSSHShells,
		SSHHostKeys: p.SSHHostKeys, MachineID: p.MachineID, DBusMachineID: p.DBusMachineID,
		SSHDPid: p.SSHDPid, AgentLog: p.AgentLog, RootUID: syscall.Getuid(), RootGID: syscall.Getgid(),
	}
}

// tree writes files (path → content; "->x" makes a symlink to x, a
// trailing slash a directory) under dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(data, "->"):
			err = os.Symlink(data[2:], p)
		default:
			err = os.WriteFile(p, []byte(data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot lists every file under dir with its mode and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		switch {
		case d.IsDir():
			out[rel+"/"] = fi.Mode().String()
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "->" + l
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fi.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type env struct {
	sysDir, lyDir string
	cfg           *Config
	sshd          *fakeSSHD
}

func newEnv(t *testing.T, sysFiles, lyFiles map[string]string) *env {
	t.Helper()
	e := &env{sysDir: t.TempDir(), lyDir: t.TempDir(), sshd: &fakeSSHD{}}
	tree(t, e.sysDir, sysFiles)
	tree(t, e.lyDir, lyFiles)
	sys, err := sysroot.New(e.sysDir)
	if err != nil {
		t.Fatal(err)
	}
	ly, err := sysroot.New(e.lyDir)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testlog.New(t)
	e.cfg = &Config{Sys: sys, LY: ly, Files: testPaths(), SSHD: e.sshd, RSABits: 2048, Comment: "root@web1", Log: log}
	return e
}

// checkHostKeys parses each key pair back and checks that the halves
// match, the modes, and that none is the image's old key.
func checkHostKeys(t *testing.T, dir string, old map[string]string) {
	t.Helper()
	want := map[string]string{"rsa": ssh.KeyAlgoRSA, "ecdsa": ssh.KeyAlgoECDSA256, "ed25519": ssh.KeyAlgoED25519}
	for typ, algo := range want {
		base := filepath.Join(dir, "etc/ssh/ssh_host_"+typ+"_key")
		privPEM, err := os.ReadFile(base)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		signer, err := ssh.ParsePrivateKey(privPEM)
		if err != nil {
			t.Errorf("parse %s private key: %v", typ, err)
			continue
		}
		pubLine, _ := os.ReadFile(base + ".pub")
		pub, comment, _, rest, err := ssh.ParseAuthorizedKey(pubLine)
		if err != nil || len(rest) != 0 {
			t.Errorf("parse %s public key %q: %v (rest %q)", typ, pubLine, err, rest)
			continue
		}
		if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
			t.Errorf("%s: the .pub does not match the private key", typ)
		}
		if pub.Type() != algo || comment != "root@web1" {
			t.Errorf("%s: type %s comment %q, want %s root@web1", typ, pub.Type(), comment, algo)
		}
		for name, mode := range map[string]fs.FileMode{base: 0o600, base + ".pub": 0o644} {
			if fi, _ := os.Stat(name); fi.Mode().Perm() != mode {
				t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), mode)
			}
			rel, _ := filepath.Rel(dir, name)
			if got, _ := os.ReadFile(name); old[rel] != "" && string(got) == old[rel] {
				t.Errorf("%s is still the image's", rel)
			}
		}
	}
}

const oldKeys = "etc/ssh/ssh_host_"

func imageFiles() map[string]string {
	return map[string]string{
		"etc/ssh/sshd_config":       "Port 22\n",
		oldKeys + "ed25519_key":     "old ed25519\n",
		oldKeys + "ed25519_key.pub": "ssh-ed25519 AAAA old\n",
		oldKeys + "rsa_key":         "old rsa\n",
		oldKeys + "rsa_key.pub":     "ssh-rsa AAAA old\n",
		oldKeys + "dsa_key":         "old dsa\n",
		oldKeys + "dsa_key.pub":     "ssh-dss AAAA old\n",
		"etc/machine-id":            "0123456789abcdef0123456789abcdef\n",
		"var/lib/dbus/machine-id":   "0123456789abcdef0123456789abcdef\n",
	}
}

func TestIdentity(t *testing.T) {
	a := Identity(7, true, "secret-key")
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"same TAG and KEY", Identity(7, true, "secret-key"), true},
		{"other TAG", Identity(8, true, "secret-key"), false},
		{"other KEY", Identity(7, true, "other-key"), false},
		{"no TAG", Identity(0, false, "secret-key"), false},
		{"TAG 0", Identity(0, true, "secret-key"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == a) != tt.same {
				t.Errorf("Identity = %s, base %s: same = %v, want %v", tt.got, a, tt.got == a, tt.same)
			}
			if !strings.HasPrefix(tt.got, "sha256:") || len(tt.got) != len("sha256:")+64 || strings.Contains(tt.got, "secret") {
				t.Errorf("Identity = %q: want sha256:<64 hex>, no KEY bytes", tt.got)
			}
		})
	}
	if Identity(0, true, "") == Identity(0, false, "") || Identity(0, false, "") != "" {
		t.Error("Identity of nothing should be empty, of TAG 0 not")
	}
}

func TestApply(t *testing.T) {
	id := Identity(7, true, "k1")
	tests := []struct {
		name        string
		sys, ly     map[string]string
		wantNew     bool
		wantKeys    bool
		wantReloads int
		want        map[string]string // files after (path in sys or "LY:" path), "" absent
	}{
		{
			name: "first boot of an image: no record", sys: imageFiles(),
			ly:      map[string]string{"conf/webssh-known-hosts": "pin\n"},
			wantNew: true, wantKeys: true, wantReloads: 1,
			want: map[string]string{
				// machine-id is left alone without NewMachineID (not the
				// running system, or no systemd): no reset marked.
				"etc/machine-id":          "-rw-r--r-- 0123456789abcdef0123456789abcdef\n",
				"var/lib/dbus/machine-id": "-rw-r--r-- 0123456789abcdef0123456789abcdef\n",
				oldKeys + "dsa_key":       "", oldKeys + "dsa_key.pub": "",
				"LY:conf/webssh-known-hosts": "", "LY:conf/machine-id-reset": "", "LY:conf/instance-id": "-rw------- " + id + "\n",
			},
		},
		{
			name: "a stale pin and a new TAG", sys: imageFiles(),
			ly:      map[string]string{"conf/webssh-known-hosts": "pin\n", "conf/instance-id": Identity(6, true, "k1") + "\n"},
			wantNew: true, wantKeys: true, wantReloads: 1,
			want: map[string]string{"LY:conf/webssh-known-hosts": "", "LY:conf/instance-id": "-rw------- " + id + "\n"},
		},
		{
			name: "same instance: nothing", sys: imageFiles(),
			ly:   map[string]string{"conf/webssh-known-hosts": "pin\n", "conf/instance-id": id + "\n"},
			want: map[string]string{"LY:conf/webssh-known-hosts": "-rw-r--r-- pin\n", oldKeys + "rsa_key": "-rw-r--r-- old rsa\n"},
		},
		{
			name: "no sshd in the image", sys: map[string]string{"etc/machine-id": "", "var/lib/dbus/machine-id": "->/etc/machine-id"},
			wantNew: true,
			want: map[string]string{
				"etc/ssh/": "", "etc/machine-id": "-rw-r--r-- ", "var/lib/dbus/machine-id": "->/etc/machine-id",
				"LY:conf/instance-id": "-rw------- " + id + "\n",
			},
		},
		{
			name: "sshd without keys yet", sys: map[string]string{"etc/ssh/": ""},
			wantNew: true, wantKeys: true, wantReloads: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.sys, tt.ly)
			before := snapshot(t, e.sysDir)
			r, err := e.cfg.Apply(context.Background(), id)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if r.New != tt.wantNew || e.sshd.reloads != tt.wantReloads {
				t.Errorf("new %v, reloads %d; want %v, %d", r.New, e.sshd.reloads, tt.wantNew, tt.wantReloads)
			}
			if tt.wantKeys {
				checkHostKeys(t, e.sysDir, before)
			} else if !tt.wantNew {
				if w := e.cfg.Sys.Writes() + e.cfg.LY.Writes(); w != 0 || len(r.Changed) != 0 {
					t.Errorf("same instance: %d writes, changed %q; want none", w, r.Changed)
				}
			}
			sys, ly := snapshot(t, e.sysDir), snapshot(t, e.lyDir)
			for name, want := range tt.want {
				snap := sys
				if n, ok := strings.CutPrefix(name, "LY:"); ok {
					snap, name = ly, n
				}
				if got := snap[name]; got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if strings.Contains(snapshot(t, e.lyDir)["conf/instance-id"], "k1") {
				t.Error("the record holds the KEY")
			}

			// The second boot on the same instance writes nothing.
			e.cfg.Sys, _ = sysroot.New(e.sysDir)
			e.cfg.LY, _ = sysroot.New(e.lyDir)
			e.sshd.reloads = 0
			r, err = e.cfg.Apply(context.Background(), id)
			if err != nil || r.New || len(r.Changed) != 0 || r.Note != "same instance" {
				t.Errorf("second Apply = %+v, %v; want the same instance", r, err)
			}
			if w := e.cfg.Sys.Writes() + e.cfg.LY.Writes(); w != 0 || e.sshd.reloads != 0 {
				t.Errorf("second Apply: %d writes, %d reloads; want none", w, e.sshd.reloads)
			}
			if !maps(sys, snapshot(t, e.sysDir)) || !maps(ly, snapshot(t, e.lyDir)) {
				t.Error("second Apply changed the tree")
			}
		})
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestApplyFailureRecordsNothing(t *testing.T) {
	id := Identity(7, true, "k1")
	tests := []struct {
		name  string
		sys   map[string]string
		sshd  error
		check func(t *testing.T, e *env)
	}{
		{name: "sshd reload fails", sys: imageFiles(), sshd: errors.New("boom")},
		{name: "a host key path is a directory", sys: map[string]string{"etc/ssh/ssh_host_ecdsa_key/": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.sys, nil)
			e.sshd.err = tt.sshd
			if _, err := e.cfg.Apply(context.Background(), id); err == nil {
				t.Fatal("Apply: no error")
			}
			if _, err := os.Stat(filepath.Join(e.lyDir, "conf/instance-id")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("identity recorded after a failure: %v", err)
			}
			// The next boot tries again, and succeeds once the cause is gone.
			e.sshd.err = nil
			os.Remove(filepath.Join(e.sysDir, "etc/ssh/ssh_host_ecdsa_key"))
			r, err := e.cfg.Apply(context.Background(), id)
			if err != nil || !r.New {
				t.Errorf("retry = %+v, %v; want a new instance, done", r, err)
			}
		})
	}
}

func TestApplyRefusesBadInput(t *testing.T) {
	e := newEnv(t, map[string]string{"etc/ssh/": ""}, nil)
	for _, id := range []string{"", "sha256:x\nroot"} {
		if _, err := e.cfg.Apply(context.Background(), id); err == nil {
			t.Errorf("Apply(%q): no error", id)
		}
	}
	e.cfg.Comment = "root@x\nevil"
	if _, err := e.cfg.Apply(context.Background(), Identity(1, true, "k")); err == nil {
		t.Error("a comment with a line break: no error")
	}
	if names, _ := os.ReadDir(filepath.Join(e.sysDir, "etc/ssh")); len(names) != 0 {
		t.Errorf("wrote %v after refusing", names)
	}
}

func TestSeal(t *testing.T) {
	sysFiles := imageFiles()
	sysFiles["var/log/osmanager.log"] = "log\n"
	sysFiles["var/log/osmanager.log.1"] = "log\n"
	sysFiles["var/log/osmanager.log.2.gz"] = "gz"
	sysFiles["var/log/syslog"] = "keep\n"
	lyFiles := map[string]string{
		"conf/luoyun.conf":        "TAG=1\nKEY=builder\n",
		"conf/instance-id":        Identity(1, true, "builder") + "\n",
		"conf/machine-id-reset":   "sha256:00\n",
		"conf/webssh-known-hosts": "pin\n",
		"conf/webssh-cert.pem":    "cert\n",
		"conf/webssh-key.pem":     "key\n",
		"conf/webssh-shells":      "1\n",
		"custom/scripts/config":   "#!/bin/sh\n",
		"custom/www/index.html":   "page\n",
		"build/VERSION":           "1.0\n",
	}
	e := newEnv(t, sysFiles, lyFiles)
	p := testPaths()
	sysBefore, lyBefore := snapshot(t, e.sysDir), snapshot(t, e.lyDir)

	lines, err := Seal(e.cfg.Sys, e.cfg.LY, p, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !maps(sysBefore, snapshot(t, e.sysDir)) || !maps(lyBefore, snapshot(t, e.lyDir)) {
		t.Error("the dry run changed the tree")
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "would ") {
			t.Errorf("dry-run line %q", l)
		}
	}

	got, err := Seal(e.cfg.Sys, e.cfg.LY, p, false)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	want := []string{
		"removed " + e.lyDir + "/conf/luoyun.conf",
		"removed " + e.lyDir + "/conf/instance-id",
		"removed " + e.lyDir + "/conf/machine-id-reset",
		"removed " + e.lyDir + "/conf/webssh-known-hosts",
		"removed " + e.lyDir + "/conf/webssh-cert.pem",
		"removed " + e.lyDir + "/conf/webssh-key.pem",
		"removed " + e.lyDir + "/conf/webssh-shells",
		"removed " + e.sysDir + "/var/log/osmanager.log",
		"removed " + e.sysDir + "/var/log/osmanager.log.1",
		"removed " + e.sysDir + "/var/log/osmanager.log.2.gz",
		"removed " + e.sysDir + "/var/lib/dbus/machine-id",
		"emptied " + e.sysDir + "/etc/machine-id",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Seal said\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dry := make([]string, len(lines))
	for i, l := range lines {
		dry[i] = strings.Replace(strings.Replace(l, "would remove", "removed", 1), "would empty", "emptied", 1)
	}
	if !slices.Equal(dry, want) {
		t.Errorf("the dry run listed\n%s\nwant the same as Seal did", strings.Join(lines, "\n"))
	}

	// What is left: the appliance's own files, the host keys, other logs.
	ly := snapshot(t, e.lyDir)
	for _, keep := range []string{"custom/scripts/config", "custom/www/index.html", "build/VERSION"} {
		if ly[keep] != lyBefore[keep] {
			t.Errorf("%s changed", keep)
		}
	}
	sys := snapshot(t, e.sysDir)
	for name, want := range map[string]string{
		"var/log/syslog": sysBefore["var/log/syslog"], oldKeys + "rsa_key": sysBefore[oldKeys+"rsa_key"],
		"etc/machine-id": "-rw-r--r-- ", "var/log/osmanager.log": "", "var/lib/dbus/machine-id": "",
	} {
		if sys[name] != want {
			t.Errorf("%s = %q, want %q", name, sys[name], want)
		}
	}

	// Sealed again: nothing to do, nothing written.
	e.cfg.Sys, _ = sysroot.New(e.sysDir)
	e.cfg.LY, _ = sysroot.New(e.lyDir)
	again, err := Seal(e.cfg.Sys, e.cfg.LY, p, false)
	if err != nil || len(again) != 0 || e.cfg.Sys.Writes()+e.cfg.LY.Writes() != 0 {
		t.Errorf("second Seal = %q, %v, %d writes; want nothing", again, err, e.cfg.Sys.Writes()+e.cfg.LY.Writes())
	}
	if !maps(sys, snapshot(t, e.sysDir)) || !maps(ly, snapshot(t, e.lyDir)) {
		t.Error("the second Seal changed the tree")
	}
}

// BenchmarkNewHostKey measures making each host key at its production size.
func BenchmarkNewHostKey(b *testing.B) {
	for _, typ := range HostKeyTypes {
		b.Run(typ, func(b *testing.B) {
			for range b.N {
				if _, _, err := newHostKey(typ, DefaultRSABits, "root@x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestApplyRecordAfterKeysDurable: in a boot's batch of directory syncs,
// the new host keys' directory (and the LuoYun dir the stale pin left) is
// synced before the instance record is renamed into place, so a power cut
// never leaves a record vouching for keys that are not on disk.
func TestApplyRecordAfterKeysDurable(t *testing.T) {
	e := newEnv(t, imageFiles(), map[string]string{"conf/webssh-known-hosts": "pin\n"})
	type event struct {
		stage sysroot.Stage
		name  string
	}
	var events []event
	hook := func(s sysroot.Stage, name string) { events = append(events, event{s, name}) }
	e.cfg.Sys.Hook, e.cfg.LY.Hook = hook, hook
	e.cfg.Sys.Batch()
	e.cfg.LY.Batch()
	if _, err := e.cfg.Apply(context.Background(), Identity(7, true, "k1")); err != nil {
		t.Fatal(err)
	}
	// In a batch the record's write is staged: it lands at the batch's end.
	if err := errors.Join(e.cfg.Sys.EndBatch(), e.cfg.LY.EndBatch()); err != nil {
		t.Fatal(err)
	}
	record := slices.Index(events, event{sysroot.StageRenamed, testPaths().InstanceID})
	if record < 0 {
		t.Fatalf("no rename of the record: %v", events)
	}
	for _, name := range []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key.pub", testPaths().KnownHosts} {
		if i := slices.Index(events, event{sysroot.StageDirSynced, name}); i < 0 || i > record {
			t.Errorf("%s: its directory synced at event %d, the record renamed at %d: want before", name, i, record)
		}
	}
}
