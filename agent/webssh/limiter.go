package webssh

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxTracked bounds how many client addresses the limiter remembers.
const maxTracked = 4096

// limiter counts failed logins per client address. Attempts in progress
// count as failures until they succeed, so parallel guesses gain nothing.
type limiter struct {
	max    int
	window time.Duration

	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n, pending int
	first      time.Time
}

// clientKey is the address failures are counted by: the IP, or the /64
// for IPv6 (one host usually owns a whole /64).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// begin starts an attempt from key, or reports false when key has failed
// too often within the window.
func (l *limiter) begin(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*failures)
	}
	f := l.m[key]
	if f != nil && f.pending == 0 && now.Sub(f.first) >= l.window {
		delete(l.m, key)
		f = nil
	}
	if f == nil {
		if len(l.m) >= maxTracked {
			l.prune(now)
		}
		f = &failures{first: now}
		l.m[key] = f
	}
	if f.n+f.pending >= l.max {
		return false
	}
	f.pending++
	return true
}

// end finishes an attempt begun by begin.
func (l *limiter) end(key string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil {
		return
	}
	f.pending--
	if ok {
		f.n = 0
	} else {
		f.n++
	}
	if f.n == 0 && f.pending == 0 {
		delete(l.m, key)
	}
}

// prune forgets expired entries and, if the table is still full, the
// oldest one.
func (l *limiter) prune(now time.Time) {
	var oldest string
	for k, f := range l.m {
		if f.pending == 0 && now.Sub(f.first) >= l.window {
			delete(l.m, k)
			continue
		}
		if oldest == "" || f.first.Before(l.m[oldest].first) {
			oldest = k
		}
	}
	if len(l.m) >= maxTracked && oldest != "" {
		delete(l.m, oldest)
	}
}
