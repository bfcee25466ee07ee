package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoHeavyDeps keeps out of the agent's binary what once made up a
// third of it for little use: html/template and text/template (their
// method lookup by name keeps every exported method of every type: 2.6 MB),
// the Prometheus client library with protobuf and procfs (2.4 MB and most
// of the start-up work; /metrics is written by agent/web itself). Tests may
// use them; the binary may not.
func TestNoHeavyDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		for _, banned := range []string{"html/template", "text/template", "github.com/prometheus/", "google.golang.org/protobuf/"} {
			if dep == strings.TrimSuffix(banned, "/") || strings.HasPrefix(dep, banned) && strings.HasSuffix(banned, "/") {
				t.Errorf("the osmanager binary imports %s", dep)
			}
		}
	}
}
