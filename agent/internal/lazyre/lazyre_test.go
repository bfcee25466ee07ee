package lazyre

import (
	"sync"
	"testing"
)

func TestRE(t *testing.T) {
	id := New(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	for _, c := range []struct {
		in   string
		want bool
	}{{"hello", true}, {"a.b-c_d", true}, {"", false}, {"-x", false}, {"Hello", false}} {
		if got := id.MatchString(c.in); got != c.want {
			t.Errorf("MatchString(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	first := id.Regexp()
	if again := id.Regexp(); again != first {
		t.Error("compiled twice")
	}
}

// TestConcurrentFirstUse: goroutines racing to the first use all get the
// one compiled expression (run with -race).
func TestConcurrentFirstUse(t *testing.T) {
	re := New(`(?i)password`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !re.MatchString("Password: ") {
				t.Error("no match")
			}
		})
	}
	wg.Wait()
}

// TestBadExpressionPanicsAtUse: a bad expression does not fail at New
// (package init) but at first use, as MustCompile would have at init.
func TestBadExpressionPanicsAtUse(t *testing.T) {
	re := New(`(`)
	defer func() {
		if recover() == nil {
			t.Error("no panic for a bad expression")
		}
	}()
	re.MatchString("x")
}
