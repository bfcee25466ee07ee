package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestDev(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "dev"},
		{"go run (no vcs)", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"go build in a clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: setting("vcs.revision", "0e0adf3c1d2e3f405060708090a0b0c0d0e0f001", "vcs.modified", "false")}, "dev+0e0adf3c1d2e"},
		{"go build in a modified checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: setting("vcs.revision", "0e0adf3c1d2e3f405060708090a0b0c0d0e0f001", "vcs.modified", "true")}, "dev+0e0adf3c1d2e-dirty"},
		{"short revision", &debug.BuildInfo{Settings: setting("vcs.revision", "abc")}, "dev+abc"},
		{"go install at a version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "1.2.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := dev(c.bi); got != c.want {
				t.Errorf("dev() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestUnstampedTestBinary(t *testing.T) {
	if got := String(); !strings.HasPrefix(got, "dev") {
		t.Errorf("String() in a test binary = %q, want a dev version", got)
	}
}

// TestStamp links osmctl with the -X flag scripts/build uses and runs it.
func TestStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "osmctl")
	build := exec.Command("go", "build", "-ldflags", "-X osmanager/internal/version.stamped=9.8.7", "-o", bin, "../../cmd/osmctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if got, want := string(out), "osmctl 9.8.7\n"; err != nil || got != want {
		t.Errorf("osmctl version = %q, %v; want %q", got, err, want)
	}
}

// TestBuildFilesAgree: scripts/build stamps line 1 of build/VERSION
// ("osmanager X"); the CHANGELOG's first entry must be that version.
func TestBuildFilesAgree(t *testing.T) {
	v, err := os.ReadFile("../../build/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(v), "\n")
	ver, ok := strings.CutPrefix(first, "osmanager ")
	if !ok || ver == "" || strings.ContainsAny(ver, " \t") {
		t.Fatalf("build/VERSION line 1 = %q, want \"osmanager <version>\"", first)
	}
	cl, err := os.ReadFile("../../build/CHANGELOG")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(cl), "osmanager "+ver) {
		t.Errorf("build/CHANGELOG does not start with build/VERSION's version %s", ver)
	}
}
