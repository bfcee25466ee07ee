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

// woken reports whether ch is closed, without waiting.
func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestChanged checks that every kind of change wakes a waiter and bumps the
// version by one, and that a write leaving all as it was wakes no one.
func TestChanged(t *testing.T) {
	at := time.Unix(100, 0)
	tests := []struct {
		name   string
		before func(*Store) // the state the write starts from
		write  func(*Store)
		want   bool // a change
	}{
		{"new step", nil, func(s *Store) { s.SetStep(Step{Name: "floppy", Status: StepOK}) }, true},
		{"step replaced", func(s *Store) { s.SetStep(Step{Name: "floppy", Status: StepOK}) },
			func(s *Store) { s.SetStep(Step{Name: "floppy", Status: StepFailed}) }, true},
		{"step changed list", func(s *Store) { s.SetStep(Step{Name: "conf", Changed: []string{"/a"}}) },
			func(s *Store) { s.SetStep(Step{Name: "conf", Changed: []string{"/b"}}) }, true},
		{"same step again", func(s *Store) { s.SetStep(Step{Name: "conf", Started: at, Changed: []string{"/a"}}) },
			func(s *Store) { s.SetStep(Step{Name: "conf", Started: at, Changed: []string{"/a"}}) }, false},
		{"service added", nil, func(s *Store) { s.UpdateService("web", func(*Service) {}) }, true},
		{"service updated", func(s *Store) { s.UpdateService("web", func(*Service) {}) },
			func(s *Store) { s.UpdateService("web", func(sv *Service) { sv.Restarts++ }) }, true},
		{"service untouched", func(s *Store) { s.UpdateService("web", func(sv *Service) { sv.Since = at }) },
			func(s *Store) { s.UpdateService("web", func(sv *Service) { sv.Since = at }) }, false},
		{"service removed", func(s *Store) { s.UpdateService("web", func(*Service) {}) },
			func(s *Store) { s.RemoveService("web") }, true},
		{"unknown service removed", nil, func(s *Store) { s.RemoveService("web") }, false},
		{"link", nil, func(s *Store) { s.UpdateLink(func(l *Link) { l.Status = LinkConnecting }) }, true},
		{"link report value in place", func(s *Store) { s.UpdateLink(func(l *Link) { l.LastReport = &Report{Value: 2000} }) },
			func(s *Store) { s.UpdateLink(func(l *Link) { l.LastReport.Value = 2001 }) }, true},
		{"link untouched", func(s *Store) { s.UpdateLink(func(l *Link) { l.LastReport = &Report{Value: 2000} }) },
			func(s *Store) { s.UpdateLink(func(l *Link) { l.LastReport = &Report{Value: 2000} }) }, false},
		{"app", nil, func(s *Store) { s.SetAppHealth(AppHealth{Code: 2000}) }, true},
		{"same app", func(s *Store) { s.SetAppHealth(AppHealth{Code: 2000}) }, func(s *Store) { s.SetAppHealth(AppHealth{Code: 2000}) }, false},
		{"terminal", nil, func(s *Store) { s.UpdateTerminal(func(t *Terminal) { t.Active++ }) }, true},
		{"terminal untouched", nil, func(s *Store) { s.UpdateTerminal(func(*Terminal) {}) }, false},
		{"reads only", func(s *Store) { s.SetStep(Step{Name: "floppy"}) }, func(s *Store) {
			_, _, _, _, _, _ = s.Steps(), s.Services(), s.Link(), s.AppHealth(), s.Terminal(), s.Version()
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Store
			if tc.before != nil {
				tc.before(&s)
			}
			ch, v := s.Changed(), s.Version()
			tc.write(&s)
			if got := woken(ch); got != tc.want {
				t.Errorf("waiter woken = %v, want %v", got, tc.want)
			}
			wantV := v
			if tc.want {
				wantV++
			}
			if got := s.Version(); got != wantV {
				t.Errorf("version = %d, want %d", got, wantV)
			}
			if tc.want && woken(s.Changed()) {
				t.Error("the channel after a change is already closed")
			}
		})
	}
}

// TestChangedConcurrent has waiters follow writers: each waiter must see
// the final state, and -race checks the signal itself.
func TestChangedConcurrent(t *testing.T) {
	var s Store
	const writers, writes = 4, 200
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ch := s.Changed()
				if t := s.Terminal(); t.Sessions == writers*writes {
					return
				}
				<-ch
			}
		}()
	}
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range writes {
				s.UpdateTerminal(func(t *Terminal) { t.Sessions++ })
			}
		}()
	}
	wg.Wait()
	if got := s.Version(); got != writers*writes {
		t.Errorf("version = %d, want %d", got, writers*writes)
	}
}

func TestApps(t *testing.T) {
	var s Store
	a := Apps{Cgroups: "hybrid", Apps: []AppView{
		{ID: "db", Desired: "running", Runs: []RunView{{RunID: 1, State: "exited"}, {RunID: 2, State: "running"}}},
		{ID: "tool", Desired: "stopped"},
	}}
	ch := s.Changed()
	s.SetApps(a)
	select {
	case <-ch:
	default:
		t.Fatal("SetApps did not signal a change")
	}
	a.Apps[0].Runs[0].State = "changed by the writer after SetApps"
	got := s.Apps()
	got.Apps[0].Runs[0].State = "changed by the reader"
	if s.Apps().Apps[0].Runs[0].State != "exited" {
		t.Error("Apps returned the store's own slices")
	}
	ch = s.Changed()
	s.SetApps(s.Apps())
	select {
	case <-ch:
		t.Error("the same record signalled a change")
	default:
	}
	for _, tc := range []struct {
		name string
		apps Apps
		want bool
	}{
		{"none", Apps{}, true},
		{"running", a, true},
		{"desired running, only exited", Apps{Apps: []AppView{{ID: "db", Desired: "running", Runs: []RunView{{State: "exited"}}}}}, false},
		{"desired running, no run", Apps{Apps: []AppView{{ID: "db", Desired: "running"}}}, false},
		{"paused is not running", Apps{Apps: []AppView{{ID: "db", Desired: "running", Runs: []RunView{{State: "paused"}}}}}, false},
	} {
		if got := tc.apps.AppsRunning(); got != tc.want {
			t.Errorf("%s: AppsRunning = %v, want %v", tc.name, got, tc.want)
		}
	}
}
