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

func TestLinkAndApp(t *testing.T) {
	var s Store
	s.UpdateLink(func(l *Link) {
		l.Status, l.Reconnects = LinkRegistered, 2
		l.LastReport = &Report{Value: 2000}
	})
	got := s.Link()
	got.LastReport.Value = 1
	if s.Link().LastReport.Value != 2000 || s.Link().Status != LinkRegistered {
		t.Errorf("Link = %+v; a snapshot must not share the report", s.Link())
	}
	s.SetApp(App{Code: 2003, Meaning: "not serving (exit 3)"})
	if s.App().Code != 2003 {
		t.Errorf("App = %+v", s.App())
	}
}
