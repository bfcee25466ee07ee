package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestOwnCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"unified", "0::/system.slice/osmanager.service\n", "/system.slice/osmanager.service", true},
		{"hybrid", "9:name=systemd:/\n4:memory:/x\n0::/\n", "/", true},
		{"agent leaf", "0::/system.slice/osmanager.service/agent\n", "/system.slice/osmanager.service/agent", true},
		{"v1 only", "9:name=systemd:/\n4:memory:/x\n", "", false},
		{"relative", "0::x\n", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := OwnCgroup([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Errorf("OwnCgroup = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestEventValue(t *testing.T) {
	b := []byte("populated 1\nfrozen 0\n")
	if !eventValue(b, "populated") || eventValue(b, "frozen") || eventValue(b, "missing") {
		t.Errorf("eventValue of %q wrong", b)
	}
}

func FuzzOwnCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/a.service\n"))
	f.Add([]byte("1:cpu:/\n0::/\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := OwnCgroup(b); ok && (!strings.HasPrefix(p, "/") || strings.Contains(p, "\n") || slices.Contains(strings.Split(p, "/"), "..")) {
			t.Errorf("OwnCgroup(%q) = %q", b, p)
		}
		eventValue(b, "frozen")
	})
}

func TestSetupCgroupsNone(t *testing.T) {
	cg := SetupCgroups(CgroupConfig{FS: t.TempDir()})
	if cg.Mode != CgroupNone || cg.On() || cg.Reason == "" {
		t.Errorf("SetupCgroups on a plain dir = %+v, want mode none with a reason", cg)
	}
}

func TestSetupCgroupsHybridHere(t *testing.T) {
	cg := testCgroups(t)
	if isCgroup2("/sys/fs/cgroup") {
		if cg.Mode != CgroupUnified {
			t.Errorf("mode %s, want unified", cg.Mode)
		}
	} else if cg.Mode != CgroupHybrid {
		t.Errorf("mode %s on a host with /sys/fs/cgroup/unified, want hybrid", cg.Mode)
	}
}

// TestSetupCgroupsDelegated: given a cgroup of its own that it may write
// (systemd's Delegate=yes), the agent moves itself into the leaf "agent"
// and puts the runs beside it; a second start finds itself there.
func TestSetupCgroupsDelegated(t *testing.T) {
	cg := testCgroups(t) // skips without root or a v2 tree
	mount := filepath.Dir(cg.Base)
	back, _ := os.ReadFile("/proc/self/cgroup")
	orig, _ := OwnCgroup(back)
	unit := filepath.Join(cg.Base, "osmanager.service")
	rel := strings.TrimPrefix(unit, mount)
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(mount, orig, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		os.Remove(filepath.Join(unit, AgentLeaf))
		os.Remove(unit)
	})
	if err := os.Mkdir(unit, 0o755); err != nil {
		t.Fatal(err)
	}
	fs := filepath.Dir(mount)
	if mount == "/sys/fs/cgroup" {
		fs = mount
	}
	for _, self := range []string{"0::" + rel + "\n", "0::" + rel + "/agent\n"} {
		got := SetupCgroups(CgroupConfig{FS: fs, Self: []byte(self)})
		if got.Base != unit || !got.On() {
			t.Fatalf("SetupCgroups(%q) = %+v, want base %s", self, got, unit)
		}
		now, _ := os.ReadFile("/proc/self/cgroup")
		if own, _ := OwnCgroup(now); own != rel+"/agent" {
			t.Errorf("agent in %s, want %s/agent", own, rel)
		}
	}
}
