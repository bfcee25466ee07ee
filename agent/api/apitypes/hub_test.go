package apitypes

import (
	"context"
	"testing"
)

func TestHub(t *testing.T) {
	t.Run("in order", func(t *testing.T) {
		var h Hub
		ch := h.Subscribe(t.Context(), 4)
		h.Publish(Event{Type: EventInstalled, ID: "a"})
		h.Publish(Event{Type: EventRemoved, ID: "a"})
		for _, want := range []EventType{EventInstalled, EventRemoved} {
			if got := (<-ch).Type; got != want {
				t.Errorf("event = %q, want %q", got, want)
			}
		}
	})
	t.Run("slow subscriber dropped", func(t *testing.T) {
		var h Hub
		slow := h.Subscribe(t.Context(), 2)
		fast := h.Subscribe(t.Context(), 10)
		for range 3 {
			h.Publish(Event{Type: EventChanged})
		}
		n := 0
		for range slow {
			n++
		}
		if n != 2 {
			t.Errorf("slow got %d events before the close, want 2", n)
		}
		if got := len(fast); got != 3 {
			t.Errorf("fast has %d events, want 3", got)
		}
		if got := h.Subscribers(); got != 1 {
			t.Errorf("Subscribers = %d, want 1", got)
		}
	})
	t.Run("cancel closes", func(t *testing.T) {
		var h Hub
		ctx, cancel := context.WithCancel(t.Context())
		ch := h.Subscribe(ctx, 1)
		cancel()
		if _, ok := <-ch; ok {
			t.Fatal("channel open after cancel")
		}
		h.Publish(Event{}) // no panic on a closed subscriber
		if got := h.Subscribers(); got != 0 {
			t.Errorf("Subscribers = %d, want 0", got)
		}
	})
}
