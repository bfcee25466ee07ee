package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoService: osmctl links the API's client and wire types, not
// the server, the app manager or any other service.
func TestLinksNoService(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"osmanager/cmd/osmctl":         true,
		"osmanager/internal/osmctl":    true,
		"osmanager/internal/version":   true,
		"osmanager/agent/api/client":   true,
		"osmanager/agent/api/apitypes": true,
		"osmanager/agent/apps/apperr":  true,
	}
	seen := map[string]bool{}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "osmanager/") {
			seen[dep] = true
			if !allowed[dep] {
				t.Errorf("osmctl depends on %s", dep)
			}
		}
	}
	if !seen["osmanager/agent/api/client"] {
		t.Errorf("osmctl does not link the API client: %v", seen)
	}
}
