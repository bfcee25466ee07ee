package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osmanager/agent/floppy"
)

func TestRun(t *testing.T) {
	const ini = "CLC_IP=10.0.0.1\r\nTAG=7\r\n"
	tests := []struct {
		name    string
		args    []string // "{in}" and "{out}" stand for temp paths
		stdin   string
		wantErr string
	}{
		{"node", []string{"-layout", "node", "-o", "{out}", "{in}"}, "", ""},
		{"node from stdin", []string{"-o", "{out}", "-"}, ini, ""},
		{"fat12", []string{"-layout", "fat12", "-o", "{out}", "{in}"}, "", ""},
		{"fat16 upper case name", []string{"-layout", "fat16", "-name", "LUOYUN.INI", "-o", "{out}", "{in}"}, "", ""},
		{"unknown layout", []string{"-layout", "fat32", "-o", "{out}", "{in}"}, "", "-layout fat32"},
		{"node with another name", []string{"-name", "x.ini", "-o", "{out}", "{in}"}, "", "holds only luoyun.ini"},
		{"no output", []string{"{in}"}, "", "need -o"},
		{"missing input", []string{"-o", "{out}", "{missing}"}, "", "read input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.ini"), filepath.Join(dir, "out.img")
			if err := os.WriteFile(in, []byte(ini), 0o600); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.NewReplacer("{in}", in, "{out}", out, "{missing}", filepath.Join(dir, "missing")).Replace(a)
			}
			var stderr bytes.Buffer
			err := run(args, strings.NewReader(tt.stdin), &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run = %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v (stderr %q)", err, stderr.String())
			}
			got, err := floppy.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != ini {
				t.Errorf("image holds %q, want %q", got, ini)
			}
		})
	}
}
