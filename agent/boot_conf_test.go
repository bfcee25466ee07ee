package agent

import (
	"bytes"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osmanager/agent/floppy"
	"osmanager/agent/state"
)

// Secrets for the leak test: no four bytes in a row of either can occur in
// a log line, a summary or the status document by chance.
const (
	leakKey  = "Qz7~Wv9k-Jp3m~Rt8y"
	leakHash = "$6$Xq9Zw$Vb7Kp2Lm4Nj8Hg5Fd3"
)

// secretPieces returns the pieces of secret (four bytes in a row, and the
// whole) that text holds.
func secretPieces(text string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for i := 0; i+4 <= len(s); i++ {
			if strings.Contains(text, s[i:i+4]) {
				found = append(found, s[i:i+4])
			}
		}
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

// TestConfErrorsCarryNoSecret boots with floppies whose luoyun.ini makes
// the conf step fail or refuse an item while KEY or root's password hash
// sits in the failing line, and checks that neither reaches the log, the
// boot summary or the unauthenticated /api/v1/status, on a first boot
// and on one with a last good luoyun.conf.
func TestConfErrorsCarryNoSecret(t *testing.T) {
	k, h := leakKey, leakHash
	for _, tc := range []struct {
		name, body string
		want       string // in the conf step's error
	}{
		{"KEY line without '='", "TAG=7\nKEY " + k + "\nJSON={}\n", "line 2: not KEY=VALUE"},
		{"JSON broken over two lines", "TAG=7\nKEY=" + k + "\nJSON={\"passwd_hash\":\n\"" + h + "\"}\n", "line 4: not KEY=VALUE"},
		{"KEY=\"\"\" over two lines", "TAG=7\nKEY=\"\"\"" + k + "\n" + k + "\"\"\"\nJSON={}\n", "line 3: not KEY=VALUE"},
		{"invalid JSON with the hash inside", "TAG=7\nKEY=" + k + "\nJSON={\"passwd_hash\": \"" + h + "\" 1}\n", "line 3, JSON: syntax error"},
		{"NUL in the KEY line", "TAG=7\nKEY=" + k + "\x00\nJSON={}\n", "line 2, KEY: NUL byte"},
		{"bad UTF-8 in the KEY line", "TAG=7\nKEY=" + k + "\xff\nJSON={}\n", "line 2, KEY: not UTF-8"},
		{"KEY shorter than 5 bytes", "TAG=7\nKEY=" + k[:4] + "\nJSON={\"passwd_hash\": {\"" + h + "\": 1}}\n", "KEY: shorter than 5 bytes"},
	} {
		for _, first := range []bool{true, false} {
			name := tc.name + "/after a good boot"
			if first {
				name = tc.name + "/first boot"
			}
			t.Run(name, func(t *testing.T) {
				dir := demoDir(t)
				if first {
					os.Remove(filepath.Join(dir, "LuoYun/conf/luoyun.conf"))
				} else {
					o, _ := testOptions(t, dir)
					if _, err := bootOnce(t, o); err != nil {
						t.Fatalf("good boot: %v", err)
					}
				}
				putFloppy(t, dir, floppy.NodeImage([]byte(tc.body)))
				o, logs := testOptions(t, dir)
				a, _ := bootOnce(t, o)
				s := steps(a)["conf"]
				if s.Status != state.StepFailed || !strings.Contains(s.Error, tc.want) {
					t.Errorf("conf step = %+v, want failed with %q", s, tc.want)
				}
				srv, err := a.newWeb()
				if err != nil {
					t.Fatal(err)
				}
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/status", nil))
				status, _ := io.ReadAll(rec.Result().Body)
				if rec.Code != 200 || !bytes.Contains(status, []byte(`"conf"`)) {
					t.Fatalf("GET /api/v1/status: %d %s", rec.Code, status)
				}
				for what, text := range map[string]string{
					"log":          logs.String(),
					"summary":      o.Out.(*bytes.Buffer).String(),
					"status":       string(status),
					"step's error": s.Error,
				} {
					if got := secretPieces(text, leakKey, leakHash); len(got) > 0 {
						t.Errorf("the %s holds secret bytes %q:\n%.2000s", what, got, text)
					}
				}
			})
		}
	}
}
