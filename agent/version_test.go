package agent

import (
	"os"
	"strings"
	"testing"
)

func TestVersionMatchesBuildFiles(t *testing.T) {
	v, err := os.ReadFile("../build/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(string(v), "\n", 2)[0]; first != "osmanager "+Version {
		t.Errorf("build/VERSION line 1 = %q, want %q", first, "osmanager "+Version)
	}
	cl, _ := os.ReadFile("../build/CHANGELOG")
	if !strings.HasPrefix(string(cl), "osmanager "+Version) {
		t.Errorf("build/CHANGELOG does not start with this version %s", Version)
	}
}
