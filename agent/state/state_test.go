package state

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSteps(t *testing.T) {
	var s Store
	s.SetStep(Step{Name: "floppy", Status: StepFailed, Error: "no medium"})
	changed := []string{"/etc/shadow"}
	s.SetStep(Step{Name: "password", Status: StepOK, Changed: changed})
	s.SetStep(Step{Name: "floppy", Status: StepOK})
	changed[0] = "mutated by caller"
	got := s.Steps()
	want := []Step{{Name: "floppy", Status: StepOK}, {Name: "password", Status: StepOK, Changed: []string{"/etc/shadow"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Steps (-want +got):\n%s", d)
	}
	got[1].Changed[0] = "mutated by reader"
	if s.Steps()[1].Changed[0] != "/etc/shadow" {
		t.Error("a snapshot shares memory with the store")
	}
}

func TestServicesConcurrent(t *testing.T) {
	var s Store
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.UpdateService("web", func(sv *Service) { sv.Restarts++; sv.Since = time.Unix(1, 0) })
				_ = s.Services()
			}
		}()
	}
	wg.Wait()
	if got := s.Services(); len(got) != 1 || got[0].Restarts != 800 {
		t.Errorf("Services = %+v, want one with 800 restarts", got)
	}
}
