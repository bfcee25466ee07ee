package backoff

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: 30 * time.Second, Factor: 2, Jitter: 0.5, Rand: func() float64 { return 0 }}
	var got []time.Duration
	for range 7 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Errorf("delay %d = %v, want %v", i, got[i], want[i]*time.Second)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Errorf("after Reset = %v, want 1s", d)
	}
	b.Rand = func() float64 { return 0.999 }
	if d := b.Next(); d < time.Second || d > 1100*time.Millisecond {
		t.Errorf("jittered second delay = %v, want about 1s (2s less ~50%%)", d)
	}
}

func TestJitterSpread(t *testing.T) {
	b := New(time.Second, 30*time.Second)
	seen := map[time.Duration]bool{}
	for range 20 {
		b.Reset()
		d := b.Next()
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("delay %v outside [0.5s, 1s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Error("20 jittered delays were all equal")
	}
}
