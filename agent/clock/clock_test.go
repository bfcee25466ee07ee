package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	a, b := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer = false")
	}
	f.Advance(time.Second)
	select {
	case <-b.C():
	default:
		t.Fatal("1s timer did not fire at 1s")
	}
	select {
	case <-a.C():
		t.Fatal("2s timer fired at 1s")
	default:
	}
	if f.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", f.Pending())
	}
	f.Advance(time.Second)
	if got := <-a.C(); !got.Equal(time.Unix(2, 0)) {
		t.Errorf("fired at %v, want 2s", got)
	}
	if z := f.NewTimer(0); len(z.C()) != 1 {
		t.Error("zero timer did not fire at once")
	}
}

func TestWaitPending(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	go f.NewTimer(time.Minute)
	if !f.WaitPending(1, nil) {
		t.Fatal("WaitPending returned false")
	}
	done := make(chan struct{})
	close(done)
	if f.WaitPending(5, done) {
		t.Error("WaitPending(5) with done closed = true")
	}
}
