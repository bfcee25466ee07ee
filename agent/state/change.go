package state

// watch is the Store's change signal: a version counted up on every change
// and a channel closed (and replaced) on the next one. Guarded by Store.mu.
type watch struct {
	version uint64
	next    chan struct{} // nil until someone asks; closed on the next change
}

// note records a change if changed holds, waking every waiter.
func (w *watch) note(changed bool) {
	if !changed {
		return
	}
	w.version++
	if w.next != nil {
		close(w.next)
		w.next = nil
	}
}

// Changed returns a channel that is closed at the next change to the
// store: a step, a service (added, updated or removed), the link, the
// application status or the terminal counters. A write that leaves
// everything as it was is no change and wakes no one; reads never do.
//
// To miss nothing, take the channel before reading:
//
//	for {
//		ch := st.Changed()
//		render(st.Services())
//		<-ch
//	}
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch.next == nil {
		s.watch.next = make(chan struct{})
	}
	return s.watch.next
}

// Version counts the changes since the store was made, so a reader that
// kept an earlier Version can tell whether it missed any (and how many):
// it grows by one per change, as Changed's channels close.
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watch.version
}
