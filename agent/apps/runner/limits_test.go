package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestApplyUnified writes the limits into a leaf's files (a plain
// directory here, with the files a v2 leaf with the controllers has).
func TestApplyUnified(t *testing.T) {
	for _, tc := range []struct {
		name  string
		l     Limits
		files []string
		want  map[string]string
		err   string
	}{
		{"all", Limits{Memory: 256 << 20, CPU: 0.5, Pids: 128}, []string{"memory.max", "cpu.max", "pids.max"},
			map[string]string{"memory.max": "268435456", "cpu.max": "50000 100000", "pids.max": "128"}, ""},
		{"two cores", Limits{CPU: 2}, []string{"cpu.max"}, map[string]string{"cpu.max": "200000 100000"}, ""},
		{"no memory controller", Limits{Memory: 1 << 30, Pids: 5}, []string{"pids.max"}, map[string]string{"pids.max": "5"}, "memory: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				os.WriteFile(filepath.Join(dir, f), nil, 0o644) // a real one reads "max"
			}
			err := applyUnified(cgroup(dir), tc.l)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("applyUnified: %v; want error %q", err, tc.err)
			}
			for f, want := range tc.want {
				if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != want {
					t.Errorf("%s = %q, want %q", f, b, want)
				}
			}
		})
	}
}

func TestCheckLimits(t *testing.T) {
	l := Limits{Memory: 64 << 20, Pids: 10}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("cpu pids\n"), 0o644)
	for _, tc := range []struct {
		name string
		cg   *Cgroups
		want string
	}{
		{"none", &Cgroups{Mode: CgroupNone, Reason: "no cgroup2 file system"}, "process groups only: no cgroups (no cgroup2 file system)"},
		{"nil", nil, "process groups only"},
		{"unified without memory", &Cgroups{Mode: CgroupUnified, Base: dir}, `the memory controller is not enabled for the runs' cgroups`},
		{"hybrid without v1", &Cgroups{Mode: CgroupHybrid, Base: dir, V1: t.TempDir()}, "hybrid cgroups without a writable v1 memory hierarchy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cg.CheckLimits(l)
			if err == nil || !errors.Is(err, ErrNoLimits) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckLimits = %v; want ErrNoLimits with %q", err, tc.want)
			}
			if err := tc.cg.CheckLimits(Limits{}); err != nil {
				t.Errorf("no limits: %v", err)
			}
		})
	}
	os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("cpu memory pids io\n"), 0o644)
	if err := (&Cgroups{Mode: CgroupUnified, Base: dir}).CheckLimits(l); err != nil {
		t.Errorf("unified with the controllers: %v", err)
	}
}

// TestLimitsWithoutCgroups: a run with limits on a host without cgroups
// does not start, unless its limits are soft.
func TestLimitsWithoutCgroups(t *testing.T) {
	e := newEnv(t, nil)
	sp := e.spec(1, "sleep")
	sp.Limits = Limits{Memory: 64 << 20}
	_, err := e.r.Start(context.Background(), sp)
	if !errors.Is(err, ErrCantStart) || !strings.Contains(err.Error(), "limits cannot be applied") {
		t.Fatalf("Start = %v; want cant start: limits cannot be applied", err)
	}
	sp = e.spec(2, "sleep")
	sp.Limits = Limits{Memory: 64 << 20, Soft: true}
	if st, err := e.r.Start(context.Background(), sp); err != nil || st.State != Running {
		t.Fatalf("soft limits: %+v, %v; want running", st, err)
	}
}

// TestLimitsHere applies limits on this host's cgroups: in unified mode
// to the v2 leaf; in hybrid mode (v1 controllers beside a v2 tree) to v1
// leaves the run is moved into, removed with the run.
func TestLimitsHere(t *testing.T) {
	cg := testCgroups(t)
	l := Limits{Memory: 64 << 20, CPU: 0.5, Pids: 32}
	if err := cg.CheckLimits(l); err != nil {
		t.Skipf("this host cannot apply limits: %v", err)
	}
	if cg.Mode == CgroupHybrid {
		t.Cleanup(func() {
			for _, ctl := range []string{"memory", "cpu", "pids"} {
				os.Remove(filepath.Join(cg.V1, ctl, cg.rel()))
			}
		})
	}
	e := newEnv(t, cg)
	sp := e.spec(1, "sleep")
	sp.Limits = l
	st, err := e.r.Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(cg.Base, "app-helper-1")
	want := map[string]string{"memory.max": "67108864", "cpu.max": "50000 100000", "pids.max": "32"}
	dirs := map[string]string{"memory.max": leaf, "cpu.max": leaf, "pids.max": leaf}
	if cg.Mode == CgroupHybrid {
		want = map[string]string{"memory.limit_in_bytes": "67108864", "cpu.cfs_quota_us": "50000", "pids.max": "32"}
		dirs = map[string]string{}
		for f := range want {
			ctl, _, _ := strings.Cut(f, ".")
			dirs[f] = filepath.Join(cg.V1, ctl, cg.rel(), "app-helper-1")
		}
	}
	for f, w := range want {
		b, err := os.ReadFile(filepath.Join(dirs[f], f))
		if got := strings.TrimSpace(string(b)); err != nil || got != w {
			t.Errorf("%s/%s = %q, %v; want %q", dirs[f], f, got, err, w)
		}
		procs, _ := os.ReadFile(filepath.Join(dirs[f], "cgroup.procs"))
		if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(st.Pids[0])) {
			t.Errorf("%s: leader %d not in cgroup.procs %q", dirs[f], st.Pids[0], procs)
		}
	}
	if _, err := e.r.Terminate(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if cg.Mode == CgroupHybrid {
		e.cancel()
		<-e.ran
		// The run's cgroups go with it (Remove) at the next start or when
		// the manager forgets it; here: Remove after Cleanup.
		in := &procInstance{rt: &Process{Cgroups: cg}, cg: cgroup(leaf)}
		in.Remove()
		for f, d := range dirs {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("v1 leaf of %s left: %v", f, err)
			}
		}
	}
}
