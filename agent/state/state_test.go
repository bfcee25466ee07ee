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
	s.SetAppHealth(AppHealth{Code: 2003, Meaning: "not serving (exit 3)"})
	if s.AppHealth().Code != 2003 {
		t.Errorf("AppHealth = %+v", s.AppHealth())
	}
}

// TestAppHealthDurationText: the deprecated text form is made from the
// nanoseconds, so the two cannot disagree; before the first check there
// is none.
func TestAppHealthDurationText(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, c := range []struct {
		name string
		in   AppHealth
		want string
	}{
		{"checked", AppHealth{Checked: at, Duration: 12 * time.Millisecond}, "12ms"},
		{"odd value", AppHealth{Checked: at, Duration: 1234567 * time.Nanosecond}, "1.234567ms"},
		{"instant", AppHealth{Checked: at}, "0s"},
		{"text from the writer is replaced", AppHealth{Checked: at, Duration: time.Second, DurationText: "5s"}, "1s"},
		{"never checked", AppHealth{Duration: time.Second, DurationText: "1s"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s Store
			s.SetAppHealth(c.in)
			if got := s.AppHealth().DurationText; got != c.want {
				t.Errorf("DurationText = %q, want %q", got, c.want)
			}
		})
	}
}
