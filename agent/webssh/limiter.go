package webssh

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// maxTracked bounds each of the limiter's tables (client addresses,
// address-and-account pairs): about 200 bytes an entry.
const maxTracked = 4096

// budgetPeriod is the period of the global password-check budget.
const budgetPeriod = time.Minute

// limiter throttles password checks three ways:
//
//   - failures per client address and account (MaxFailures): a success
//     clears only that account's count for that address;
//   - failures per client address, all accounts together (AddrFailures):
//     a success clears nothing here, so logging in as one account between
//     guesses at another gains nothing;
//   - password checks per minute from everyone (LoginBudget), so many
//     addresses together get no more than one does many times over.
//
// Attempts in progress count as failures until they succeed, so parallel
// guesses gain nothing. Refused attempts are not checked and change no
// table, and the budget bounds how fast entries are made, so a flood of
// addresses or names cannot flush the tables faster than they expire.
type limiter struct {
	pairMax, addrMax int
	window           time.Duration
	budget           int

	mu          sync.Mutex
	pair, addr  table
	budgetStart time.Time
	budgetUsed  int
	budgetWarn  bool // the refusal of this period was logged
}

// table counts failures per key, at most maxTracked keys.
type table map[string]*failures

type failures struct {
	n, pending int
	first      time.Time
}

// verdict is limiter.begin's answer.
type verdict int

const (
	allowed       verdict = iota
	refusedPair           // too many failures for this account from this address
	refusedAddr           // too many failures from this address
	refusedBudget         // the global budget is spent
)

// clientKey is the address failures are counted by: the IP, or the /64
// for IPv6 (one host usually owns a whole /64).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > 64 {
			host = host[:64]
		}
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// pairKey names an account tried from a client address. Names that can
// never be accounts share one key (and are refused without a check).
func pairKey(addr, user string) string {
	if !validName(user) {
		user = "\x00invalid"
	}
	return addr + "\x00" + user
}

// get returns key's entry, dropping it when its window has passed, and
// makes one (room permitting) when create is set.
func (t table) get(key string, now time.Time, window time.Duration, create bool) *failures {
	f := t[key]
	if f != nil && f.pending == 0 && now.Sub(f.first) >= window {
		delete(t, key)
		f = nil
	}
	if f == nil && create {
		if len(t) >= maxTracked {
			t.prune(now, window)
		}
		f = &failures{first: now}
		t[key] = f
	}
	return f
}

// prune forgets expired entries and, if the table is still full, its
// oldest eighth, so a full table costs one scan per maxTracked/8 new keys.
func (t table) prune(now time.Time, window time.Duration) {
	for k, f := range t {
		if f.pending == 0 && now.Sub(f.first) >= window {
			delete(t, k)
		}
	}
	if len(t) < maxTracked {
		return
	}
	keys := slices.Collect(maps.Keys(t))
	slices.SortFunc(keys, func(a, b string) int { return t[a].first.Compare(t[b].first) })
	for _, k := range keys[:maxTracked/8] {
		delete(t, k)
	}
}

func (f *failures) full(max int) bool { return f != nil && f.n+f.pending >= max }

// begin starts a password check of user from addr (a clientKey), or says
// why not. logIt is set on the first budget refusal of a period, so a
// flood writes one log line a minute, not one a request. retry is when
// the refusal may lift.
func (l *limiter) begin(addr, user string, now time.Time) (v verdict, retry time.Duration, logIt bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pair == nil {
		l.pair, l.addr = make(table), make(table)
	}
	pk := pairKey(addr, user)
	if f := l.pair.get(pk, now, l.window, false); f.full(l.pairMax) {
		return refusedPair, f.first.Add(l.window).Sub(now), false
	}
	if f := l.addr.get(addr, now, l.window, false); f.full(l.addrMax) {
		return refusedAddr, f.first.Add(l.window).Sub(now), false
	}
	if now.Sub(l.budgetStart) >= budgetPeriod || now.Before(l.budgetStart) {
		l.budgetStart, l.budgetUsed, l.budgetWarn = now, 0, false
	}
	if l.budgetUsed >= l.budget {
		logIt = !l.budgetWarn
		l.budgetWarn = true
		return refusedBudget, l.budgetStart.Add(budgetPeriod).Sub(now), logIt
	}
	l.budgetUsed++
	l.pair.get(pk, now, l.window, true).pending++
	l.addr.get(addr, now, l.window, true).pending++
	return allowed, 0, false
}

// end finishes a check begun by begin.
func (l *limiter) end(addr, user string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pk := pairKey(addr, user)
	for _, e := range []struct {
		t     table
		key   string
		clear bool
	}{{l.pair, pk, ok}, {l.addr, addr, false}} {
		f := e.t[e.key]
		if f == nil {
			continue
		}
		f.pending--
		switch {
		case e.clear:
			f.n = 0
		case !ok:
			f.n++
		}
		if f.n == 0 && f.pending == 0 {
			delete(e.t, e.key)
		}
	}
}

// sizes returns the tables' sizes (tests).
func (l *limiter) sizes() (pair, addr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pair), len(l.addr)
}
