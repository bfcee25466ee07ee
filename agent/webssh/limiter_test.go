package webssh

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLimiter plays attacks against the limiter's tables with a fake time.
func TestLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type try struct {
		addr, user string
		ok         bool    // the password is right
		want       verdict // what begin answers
		at         time.Duration
	}
	fail := func(addr, user string, want verdict) try { return try{addr: addr, user: user, want: want} }
	succeed := func(addr, user string) try { return try{addr: addr, user: user, ok: true} }
	repeat := func(n int, tr try) []try {
		out := make([]try, n)
		for i := range out {
			out[i] = tr
		}
		return out
	}
	cat := func(parts ...[]try) []try {
		var out []try
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		tries []try
	}{
		{"failures of one account", cat(repeat(3, fail("a", "root", allowed)), repeat(2, fail("a", "root", refusedPair)))},
		{"a success by another account clears nothing of root's", cat(
			[]try{fail("a", "root", allowed), succeed("a", "alice"), fail("a", "root", allowed), succeed("a", "alice"),
				fail("a", "root", allowed), succeed("a", "alice"), fail("a", "root", refusedPair)})},
		{"a success clears that account's count", cat(
			repeat(2, fail("a", "root", allowed)), []try{succeed("a", "root")},
			repeat(3, fail("a", "root", allowed)), []try{fail("a", "root", refusedPair)})},
		{"a success clears no other account's count", cat(
			repeat(2, fail("a", "alice", allowed)), []try{succeed("a", "root")},
			[]try{fail("a", "alice", allowed), fail("a", "alice", refusedPair)})},
		{"many accounts from one address", cat(
			repeat(2, fail("a", "u1", allowed)), repeat(2, fail("a", "u2", allowed)), repeat(2, fail("a", "u3", allowed)),
			[]try{fail("a", "u4", refusedAddr), fail("b", "u4", allowed)})},
		{"the address count survives a success", cat(
			repeat(2, fail("a", "u1", allowed)), repeat(2, fail("a", "u2", allowed)), []try{succeed("a", "u1"), succeed("a", "u2")},
			repeat(2, fail("a", "u3", allowed)), []try{fail("a", "u5", refusedAddr)})},
		{"the window ends", cat(repeat(3, fail("a", "root", allowed)), []try{fail("a", "root", refusedPair),
			{addr: "a", user: "root", at: 5 * time.Minute, want: allowed}})},
		{"the budget caps many addresses", cat(
			func() (out []try) {
				for i := range 10 {
					out = append(out, fail(fmt.Sprint("10.0.0.", i), "root", allowed))
				}
				return out
			}(),
			[]try{fail("10.0.1.1", "root", refusedBudget), fail("10.0.1.2", "alice", refusedBudget),
				{addr: "10.0.1.3", user: "root", at: time.Minute, want: allowed}})},
		{"invalid names share one count", cat(repeat(3, fail("a", "x:1", allowed)), []try{fail("a", "x\n2", refusedPair)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &limiter{pairMax: 3, addrMax: 6, window: 5 * time.Minute, budget: 10}
			for i, tr := range tc.tries {
				v, _, _ := l.begin(tr.addr, tr.user, t0.Add(tr.at))
				if v != tr.want {
					t.Fatalf("try %d (%s as %s): verdict %d, want %d", i+1, tr.addr, tr.user, v, tr.want)
				}
				if v == allowed {
					l.end(tr.addr, tr.user, tr.ok)
				}
			}
		})
	}
}

// TestLimiterBudgetLogsOnce: a flood past the budget writes one log line
// per period.
func TestLimiterBudgetLogsOnce(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := &limiter{pairMax: 5, addrMax: 10, window: 5 * time.Minute, budget: 1}
	l.begin("a", "root", t0)
	logged := 0
	for i := range 100 {
		v, retry, logIt := l.begin(fmt.Sprint("b", i), "root", t0.Add(time.Second))
		if v != refusedBudget || retry != 59*time.Second {
			t.Fatalf("verdict %d retry %v, want budget refusal, 59s", v, retry)
		}
		if logIt {
			logged++
		}
	}
	if _, _, logIt := l.begin("c", "root", t0.Add(time.Minute+time.Second)); logIt {
		t.Error("a check in the new period was logged as refused")
	}
	if logged != 1 {
		t.Errorf("%d refusals logged, want 1", logged)
	}
}

// TestLimiterMemoryBounded: hostile senders with ever new addresses and
// names grow no table past maxTracked.
func TestLimiterMemoryBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := &limiter{pairMax: 5, addrMax: 10, window: 5 * time.Minute, budget: 1 << 30}
	for i := range 3 * maxTracked {
		addr, user := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), fmt.Sprintf("user%d%s", i, strings.Repeat("x", 50))
		if v, _, _ := l.begin(addr, user, t0); v != allowed {
			t.Fatalf("try %d refused", i)
		}
		l.end(addr, user, false)
	}
	if p, a := l.sizes(); p > maxTracked || a > maxTracked {
		t.Errorf("tables hold %d pairs, %d addresses; want at most %d each", p, a, maxTracked)
	}
}

// TestLoginThrottleHTTP: the attacks of the report, through the server.
func TestLoginThrottleHTTP(t *testing.T) {
	t.Run("alternating with a good login", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxFailures = 3 })
		attacker := e.client()
		var codes []int
		for range 6 {
			codes = append(codes, attacker.login("root", "guess"))
			if code := attacker.login("alice", testPassword); code != http.StatusNoContent {
				t.Fatalf("alice: %d", code)
			}
		}
		want := []int{401, 401, 401, 429, 429, 429}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("guesses at root: %v, want %v", codes, want)
		}
	})
	t.Run("40 loopback addresses", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.LoginBudget = 60 })
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := e.clientFrom(fmt.Sprintf("127.0.%d.%d", 1+i/200, 2+i%200))
				for range 5 {
					code := c.login("root", "guess")
					mu.Lock()
					counts[code]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if counts[http.StatusUnauthorized] != 60 || counts[http.StatusTooManyRequests] != 140 {
			t.Errorf("answers %v, want 60 checked (401) and 140 refused (429)", counts)
		}
		if n := strings.Count(e.log.String(), "login budget spent"); n != 1 {
			t.Errorf("%d log lines about the budget, want 1", n)
		}
	})
}

// clientFrom is a client whose connections come from the loopback address
// local (any of 127/8).
func (e *testEnv) clientFrom(local string) *client {
	e.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	e.t.Cleanup(tr.CloseIdleConnections)
	jar, _ := cookiejar.New(nil)
	c := &client{e: e, jar: jar, hc: &http.Client{Jar: jar, Transport: tr}}
	resp, err := c.hc.Get(e.url + "/")
	if err != nil {
		e.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(string(page))
	if m == nil {
		e.t.Fatal("no CSRF token")
	}
	c.csrf = m[1]
	return c
}
