package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantErr    string // "" for success
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"version"}, "", "osmctl dev", ""},
		{"--version", []string{"--version"}, "", "osmctl dev", ""},
		{"help", []string{"help"}, "", "commands:\n  version", ""},
		{"--help", []string{"--help"}, "", "commands:\n  version", ""},
		{"-h", []string{"-h"}, "", "usage: osmctl", ""},
		{"no command", nil, "usage", "", "usage: osmctl"},
		{"unknown", []string{"bogus"}, `unknown command "bogus"`, "", "usage: osmctl"},
		{"version with args", []string{"version", "x"}, "unexpected arguments", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(c.args, &out, &errb)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			if !strings.Contains(out.String(), c.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), c.wantStdout)
			}
			if !strings.Contains(errb.String(), c.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), c.wantStderr)
			}
		})
	}
}

// TestLinksNoService: osmctl prints the version without linking the agent.
func TestLinksNoService(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "osmanager/") && dep != "osmanager/internal/version" && dep != "osmanager/cmd/osmctl" {
			t.Errorf("osmctl depends on %s", dep)
		}
	}
}
