// Package scratch lays out a scratch instance: a tiny system root, a
// LuoYun dir and a floppy image as the cloud's compute node writes it, for
// the demo, the tests and the benchmarks. It touches nothing outside the
// dir it is given.
package scratch

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/clc/wire"
	"osmanager/agent/floppy"
	"osmanager/internal/version"
)

// PasswordHash is crypt(3) SHA-512 of the password "demo", the root
// password the scratch floppy sets.
const PasswordHash = "$6$osmdemo0$qcTkflA.L.240CVr36ZC0AEEF3VQC9uRIBw/bVKPpz6xzhocUGI7g3hiEARO1Vs3auIDdCkLlf82S.Gb1U6Qa0"

// Make lays out a scratch instance under dir: sysroot/ (a tiny /etc and /root),
// LuoYun/ (VERSION and a config script) and floppy.img. It returns the
// floppy image's path.
func Make(dir string) (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	authKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " owner@demo"
	files := []struct {
		name string
		mode os.FileMode
		body string
	}{
		{"sysroot/etc/shadow", 0o640, "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"},
		{"sysroot/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"},
		{"sysroot/etc/hostname", 0o644, "localhost\n"},
		{"sysroot/etc/hosts", 0o644, "127.0.0.1\tlocalhost\n"},
		{"sysroot/etc/resolv.conf", 0o644, "nameserver 127.0.0.53\n"},
		{"LuoYun/build/VERSION", 0o644, "osmanager-demo " + version.String() + "\ndemo-app: 1.0\n"},
		{"LuoYun/custom/scripts/config", 0o755, "#!/bin/sh\n# The appliance's own boot-time configuration runs here.\necho \"demo config script: conf at $LUOYUN_CONF\"\n"},
		{"LuoYun/custom/scripts/status", 0o755, "#!/bin/sh\n# The application's health: exit 0 = serving.\nexit 0\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "sysroot/root"), 0o700); err != nil {
		return "", err
	}
	ini := fmt.Sprintf("CLC_IP=127.0.0.1\nCLC_PORT=1369\nCLC_MCAST_IP=228.0.0.1\nCLC_MCAST_PORT=1369\nTAG=1\nKEY=%s\n"+
		`JSON={"cookie": "demo-cookie", "webssh": {"status": "enable", "port": 8001}, "nameservers": "8.8.8.8 8.8.4.4", `+
		`"domain": {"name": "demo.osmanager.test", "ip": "127.0.0.1"}, "passwd_hash": "%s", "public_key": "%s", `+
		`"network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.12", "netmask": "255.255.255.0", "gateway": "10.0.0.1"}]}`+"\n",
		wire.NewKey(), PasswordHash, authKey)
	img := filepath.Join(dir, "floppy.img")
	return img, os.WriteFile(img, floppy.NodeImage([]byte(ini)), 0o600)
}
