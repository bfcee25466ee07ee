package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealCommand: `osmanager seal` with the production file names under
// a scratch system root and LuoYun dir.
func TestSealCommand(t *testing.T) {
	sysDir, lyDir := t.TempDir(), t.TempDir()
	for dir, name := range map[string]string{sysDir: "etc/machine-id", lyDir: "conf/luoyun.conf"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("abc\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{"dry run", []string{"--dry-run"}, "would remove " + lyDir + "/conf/luoyun.conf\nwould empty " + sysDir + "/etc/machine-id\n", ""},
		{"seal", nil, "removed " + lyDir + "/conf/luoyun.conf\nemptied " + sysDir + "/etc/machine-id\n", ""},
		{"sealed already", nil, "nothing to remove: the image is sealed\n", ""},
		{"extra args", []string{"now"}, "", "unexpected arguments"},
		{"bad root", []string{"--root", "relative"}, "", "relative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--root", lyDir, "--sysroot", sysDir}, tt.args...)
			err := SealCommand(args, &out, &errb)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}
