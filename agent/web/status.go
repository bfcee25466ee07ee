package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// statusTTL is how long a built status document is served before it is
// built again: its system figures (cpu_percent above all) move once a
// second at most. A change to the shared state makes a new one at once,
// which keeps its predecessor's expiry, so the figures still move every
// second however often the state changes.
const statusTTL = pageTTL

// statusDoc is the status document as every reader is sent it, with its
// header values; shared by all responses, never modified.
type statusDoc struct {
	version uint64 // the state store's Version it was built from
	built   int64  // clock Unix ns
	expires int64  // clock Unix ns
	body    []byte
	etag    []string
	length  []string
}

// fresh reports whether d may still be sent at now for the store at
// version v.
func (d *statusDoc) fresh(v uint64, now int64) bool {
	return d != nil && d.version == v && d.built <= now && now < d.expires
}

// stale reports whether d, no longer fresh at now, may still be sent
// while its successor is built: the state is unchanged since d was built,
// and d expired less than a statusTTL ago.
func (d *statusDoc) stale(v uint64, now int64) bool {
	return d != nil && d.version == v && d.built <= now && now < d.expires+int64(statusTTL)
}

// statusCache holds the current document; one build at a time, which the
// requests that missed it together wait for and share, unless only time
// made it old (then they send it until the new one is in).
type statusCache struct {
	cur atomic.Pointer[statusDoc]
	mu  sync.Mutex // held while building
}

// statusDoc returns the document to send now, building it if the one held
// is a second old or the state changed since it was built.
func (s *Server) statusDoc() (*statusDoc, error) {
	now := s.clock.Now().UnixNano()
	v := s.state.Version()
	d := s.doc.cur.Load()
	if d.fresh(v, now) {
		return d, nil
	}
	if d.stale(v, now) {
		// Out of date by time alone: one request builds the next
		// document, and the others go on sending this one meanwhile
		// rather than queue behind the build (a fraction of a millisecond
		// of /proc, statfs and netlink; more on a loaded CPU).
		if !s.doc.mu.TryLock() {
			return d, nil
		}
	} else {
		s.doc.mu.Lock()
	}
	defer s.doc.mu.Unlock()
	// Taken again: a change while this request waited must not be missed,
	// and one built meanwhile is shared.
	now, v = s.clock.Now().UnixNano(), s.state.Version()
	if d := s.doc.cur.Load(); d.fresh(v, now) {
		return d, nil
	}
	if s.hooks.status != nil {
		s.hooks.status()
	}
	// The version is read before the document: a change during the build
	// leaves the document tagged older, so the next request builds again.
	body, err := s.status.JSON()
	if err != nil {
		return nil, err
	}
	expires := now + int64(statusTTL)
	if prev := s.doc.cur.Load(); prev != nil && prev.built <= now && now < prev.expires {
		expires = prev.expires // rebuilt for a change of the state
	}
	sum := sha256.Sum256(body)
	d = &statusDoc{version: v, built: now, expires: expires, body: body,
		etag: []string{`"` + hex.EncodeToString(sum[:12]) + `"`}, length: []string{strconv.Itoa(len(body))}}
	s.doc.cur.Store(d)
	return d, nil
}

// serveStatus sends the status document (agent/status builds it).
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	d, err := s.statusDoc()
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = s.hdr.json
	h["Cache-Control"] = s.hdr.noStore
	h["Content-Security-Policy"] = s.hdr.cspNone
	h["Etag"] = d.etag
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, d.etag[0]) {
		delete(h, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = d.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(d.body)
	}
}
