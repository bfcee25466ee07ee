package apitypes

import (
	"context"
	"sync"
)

// Hub fans events out to subscribers without ever blocking the
// publisher: a subscriber whose buffer is full is dropped (its channel
// closed), so a slow reader costs a bounded buffer, never the manager's
// progress. The app manager owns one and publishes to it; the local API
// subscribes one channel per GET /v1/events. The zero value is ready.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Subscribe returns a channel of the events published from now on, with
// room for buf of them (at least 1). It is closed when ctx ends or when
// the subscriber falls buf events behind.
func (h *Hub) Subscribe(ctx context.Context, buf int) <-chan Event {
	ch := make(chan Event, max(buf, 1))
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() { h.drop(ch) })
	return ch
}

func (h *Hub) drop(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// Publish sends ev to every subscriber that has room and drops the
// others.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribers is the number of live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
