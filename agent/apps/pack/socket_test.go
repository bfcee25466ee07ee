package pack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestManifestSocket(t *testing.T) {
	base := `"id": "hello", "version": "1.0.0", "exec": "bin/hello"`
	for _, tc := range []struct {
		name, json string
		want       Sockets
	}{
		{"none", `{` + base + `}`, nil},
		{"one object", `{` + base + `, "socket": {"listen": "127.0.0.1:8081"}}`, Sockets{{Listen: "127.0.0.1:8081"}}},
		{"unix", `{` + base + `, "socket": {"listen": "/run/hello.sock", "name": "api"}}`, Sockets{{Listen: "/run/hello.sock", Name: "api"}}},
		{"list", `{` + base + `, "socket": [{"listen": "[::1]:80"}, {"listen": "0.0.0.0:8443", "name": "tls"}, {"listen": "/run/hello/a.sock"}]}`,
			Sockets{{Listen: "[::1]:80"}, {Listen: "0.0.0.0:8443", Name: "tls"}, {Listen: "/run/hello/a.sock"}}},
		{"empty list", `{` + base + `, "socket": []}`, Sockets{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, m.Socket); d != "" {
				t.Errorf("sockets (-want +got):\n%s", d)
			}
		})
	}
}

func TestManifestSocketRefused(t *testing.T) {
	base := `"id": "hello", "version": "1.0.0", "exec": "bin/hello"`
	for _, tc := range []struct{ name, socket, want string }{
		{"not an object", `"127.0.0.1:80"`, `want an object`},
		{"list of strings", `["127.0.0.1:80"]`, `want an object`},
		{"no listen", `{}`, `"listen" is missing`},
		{"unknown key", `{"listen": "127.0.0.1:80", "mode": "0666"}`, `unknown key "socket.mode"`},
		{"wrong case key", `{"Listen": "127.0.0.1:80"}`, `unknown key "socket.Listen"`},
		{"listen twice", `{"listen": "127.0.0.1:80", "listen": "127.0.0.1:81"}`, `"socket.listen" given twice`},
		{"listen number", `{"listen": 80}`, `"socket.listen": want a string`},
		{"host name", `{"listen": "localhost:80"}`, `want an IP address`},
		{"no host", `{"listen": ":80"}`, `want an IP address`},
		{"zone", `{"listen": "[fe80::1%eth0]:80"}`, `no zones`},
		{"port 0", `{"listen": "127.0.0.1:0"}`, `want 1 to 65535`},
		{"port too big", `{"listen": "127.0.0.1:65536"}`, `want 1 to 65535`},
		{"port name", `{"listen": "127.0.0.1:http"}`, `want 1 to 65535`},
		{"port leading zero", `{"listen": "127.0.0.1:080"}`, `want 1 to 65535`},
		{"no port", `{"listen": "127.0.0.1"}`, `want IP:PORT`},
		{"unix outside run", `{"listen": "/etc/hello.sock"}`, `must be under /run/`},
		{"unix run itself", `{"listen": "/run/"}`, `not a clean path`},
		{"unix dotdot", `{"listen": "/run/../etc/x.sock"}`, `not a clean path`},
		{"unix relative", `{"listen": "run/x.sock"}`, `want IP:PORT`},
		{"unix too long", `{"listen": "/run/` + strings.Repeat("a", 100) + `"}`, `at most 100 bytes`},
		{"control byte", `{"listen": "/run/a\nb.sock"}`, `control character`},
		{"bad name", `{"listen": "127.0.0.1:80", "name": "a:b"}`, `name "a:b"`},
		{"twice", `[{"listen": "127.0.0.1:80"}, {"listen": "127.0.0.1:80"}]`, `given twice`},
		{"too many", `[` + strings.Repeat(`{"listen": "/run/a.sock"},`, MaxSockets) + `{"listen": "/run/b.sock"}]`, `more than 16`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(`{` + base + `, "socket": ` + tc.socket + `}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseManifest = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
