package web

import (
	"html"
	"sync"
	"sync/atomic"
	"time"

	"osmanager/agent/status"
)

// pageVars is one snapshot of the page variables. Every value is checked
// (the host name and VERSION by agent/status, $curtime made here), so none
// can break out of the context a page puts it in. gen changes whenever a
// value does, so rendered pages are cached per gen.
type pageVars struct {
	vals   [numVars]string // raw, for text pages
	html   [numVars]string // HTML-escaped, for HTML pages
	ident  *status.Identity
	gen    uint64
	minute int64 // now.Unix()/60 when taken: $curtime changes with it
}

// varSource keeps the current pageVars.
type varSource struct {
	ident    func(now time.Time) *status.Identity // re-read at most once a second
	location *time.Location

	cur atomic.Pointer[pageVars]
	mu  sync.Mutex // serialises refreshes
}

// fresh reports whether p may still be served: made from the current
// Identity, and $curtime still the same minute.
func (p *pageVars) fresh(id *status.Identity, now time.Time) bool {
	return p != nil && p.ident == id && now.Unix()/60 == p.minute
}

func (s *varSource) get(now time.Time) *pageVars {
	id := s.ident(now)
	if p := s.cur.Load(); p.fresh(id, now) {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	if old.fresh(id, now) {
		return old
	}
	p := &pageVars{ident: id, minute: now.Unix() / 60}
	v := id.Version
	p.vals = [numVars]string{id.Hostname, v.Application, v.Version1, v.Version2, now.In(s.location).Format("15:04")}
	for i, x := range p.vals {
		p.html[i] = html.EscapeString(x)
	}
	p.gen = 1
	if old != nil {
		p.gen = old.gen
		if old.vals != p.vals {
			p.gen++
		}
	}
	s.cur.Store(p)
	return p
}
