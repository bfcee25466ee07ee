package runner

import (
	"errors"
	"os"
	"slices"
	"testing"
)

// fakeRuntime records what reached it.
type fakeRuntime struct {
	name    string
	started []string
	adopted []uint64
	swept   []string
}

func (f *fakeRuntime) Name() string     { return f.name }
func (f *fakeRuntime) Mode() CgroupMode { return CgroupHybrid }
func (f *fakeRuntime) Start(l Launch) (Instance, error) {
	f.started = append(f.started, l.Spec.ID)
	return nil, nil
}
func (f *fakeRuntime) Adopt(rec Record) (Instance, error) {
	f.adopted = append(f.adopted, rec.RunID)
	return nil, nil
}
func (f *fakeRuntime) Sweep([]Record) []string { return f.swept }

func TestMux(t *testing.T) {
	p := &fakeRuntime{name: "process", swept: []string{"app-a-1"}}
	o := &fakeRuntime{name: "crun", swept: []string{"osm-b-2"}}
	m := &Mux{Process: p, OCI: o}
	m.Start(Launch{Spec: Spec{ID: "prog", Exec: "/bin/x"}})
	m.Start(Launch{Spec: Spec{ID: "box", Bundle: "/apps/box/1/box"}})
	if !slices.Equal(p.started, []string{"prog"}) || !slices.Equal(o.started, []string{"box"}) {
		t.Errorf("process started %q, OCI %q; want prog and box", p.started, o.started)
	}
	for _, tc := range []struct {
		name    string
		rec     Record
		process bool
		oci     bool
		gone    bool
	}{
		{"process record", Record{Runtime: "process", RunID: 1}, true, false, false},
		{"record before runtimes were named", Record{RunID: 2}, true, false, false},
		{"crun record", Record{Runtime: "crun", RunID: 3}, false, true, false},
		{"runtime this agent has not", Record{Runtime: "runc", RunID: 4}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Adopt(tc.rec)
			if got := slices.Contains(p.adopted, tc.rec.RunID); got != tc.process {
				t.Errorf("process adopted it: %v, want %v", got, tc.process)
			}
			if got := slices.Contains(o.adopted, tc.rec.RunID); got != tc.oci {
				t.Errorf("OCI adopted it: %v, want %v", got, tc.oci)
			}
			if got := errors.Is(err, ErrGone); got != tc.gone {
				t.Errorf("Adopt = %v, want gone %v", err, tc.gone)
			}
		})
	}
	if got := m.Sweep(nil); !slices.Equal(got, []string{"osm-b-2", "app-a-1"}) {
		t.Errorf("Sweep = %q, want the OCI runtime's then the process runtime's", got)
	}
	bare := &Mux{Process: p}
	if _, err := bare.Start(Launch{Spec: Spec{ID: "box", Bundle: "/b"}}); !errors.Is(err, ErrCantStart) {
		t.Errorf("a bundle without an OCI runtime: %v, want ErrCantStart", err)
	}
}

func TestSpecCheckBundle(t *testing.T) {
	base := Spec{ID: "box", RunID: 1, Log: "/logs/box/1.log"}
	for _, tc := range []struct {
		name   string
		exec   string
		bundle string
		listen bool
		ok     bool
	}{
		{"bundle", "", "/apps/box/1/box", false, true},
		{"exec", "/bin/x", "", false, true},
		{"both", "/bin/x", "/apps/box/1/box", false, false},
		{"relative bundle", "", "apps/box", false, false},
		{"unclean bundle", "", "/apps/../box", false, false},
		{"neither", "", "", false, false},
		{"bundle with sockets", "", "/apps/box/1/box", true, false},
		{"exec with sockets", "/bin/x", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := base
			sp.Exec, sp.Bundle = tc.exec, tc.bundle
			if tc.listen {
				sp.Listen, sp.ListenNames = []*os.File{os.Stdin}, []string{"in"}
			}
			if err := sp.Check(); (err == nil) != tc.ok {
				t.Errorf("Check = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
