package netconf

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
)

// fakeSub is a Subscriber fed by the test through ch.
type fakeSub struct {
	ch         chan netlink.LinkUpdate
	once       sync.Once
	subscribed chan struct{} // closed at the first Subscribe
	err        error
}

func newFakeSub() *fakeSub {
	return &fakeSub{ch: make(chan netlink.LinkUpdate, 8), subscribed: make(chan struct{})}
}

func (f *fakeSub) Subscribe(ctx context.Context) (<-chan netlink.LinkUpdate, error) {
	f.once.Do(func() { close(f.subscribed) })
	return f.ch, f.err
}

func newLink(l netlink.Link) netlink.LinkUpdate {
	return netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_NEWLINK}, Link: l}
}

func delLink(l netlink.Link) netlink.LinkUpdate {
	return netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: l}
}

// syncNL guards a fakeNL, for tests where the code under test runs in
// another goroutine while the test adds links.
type syncNL struct {
	mu sync.Mutex
	f  *fakeNL
}

func (s *syncNL) do(f func(*fakeNL)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.f)
}

func (s *syncNL) LinkList() ([]netlink.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.LinkList()
}
func (s *syncNL) LinkSetUp(l netlink.Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.LinkSetUp(l)
}
func (s *syncNL) AddrList(l netlink.Link, fam int) ([]netlink.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.AddrList(l, fam)
}
func (s *syncNL) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.AddrAdd(l, a)
}
func (s *syncNL) AddrDel(l netlink.Link, a *netlink.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.AddrDel(l, a)
}
func (s *syncNL) RouteList(l netlink.Link, fam int) ([]netlink.Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.RouteList(l, fam)
}
func (s *syncNL) RouteReplace(r *netlink.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.RouteReplace(r)
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestWait(t *testing.T) {
	const m1, m2 = "52:54:00:00:00:01", "52:54:00:00:00:02"
	tests := []struct {
		name    string
		links   []netlink.Link       // there from the start
		updates []netlink.LinkUpdate // sent once subscribed
		expire  bool                 // advance the clock past the limit after the updates
		limit   time.Duration        //
		want    []net.HardwareAddr   // missing
	}{
		{name: "all there already", links: []netlink.Link{loopback(), device(2, "ens3", m1, false), veth(3, "v", m2, false)}, limit: time.Minute},
		{name: "both appear after the start", links: []netlink.Link{loopback()}, limit: time.Minute,
			updates: []netlink.LinkUpdate{newLink(device(2, "eth0", m2, false)), newLink(device(3, "eth1", m1, false))}},
		{name: "one never comes", links: []netlink.Link{loopback(), device(2, "ens3", m1, false)}, limit: 30 * time.Second,
			expire: true, want: []net.HardwareAddr{mac(m2)}},
		{name: "removals and bridges do not count", links: []netlink.Link{loopback()}, limit: 30 * time.Second,
			updates: []netlink.LinkUpdate{delLink(device(2, "ens3", m1, false)), newLink(bridge(3, "br0", m2))},
			expire:  true, want: []net.HardwareAddr{mac(m1), mac(m2)}},
		{name: "limit 0 only looks", links: []netlink.Link{loopback(), device(2, "ens3", m2, false)}, limit: 0,
			want: []net.HardwareAddr{mac(m1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nl := &fakeNL{links: tt.links}
			sub := newFakeSub()
			clk := clock.NewFake(time.Unix(0, 0))
			type result struct {
				missing []net.HardwareAddr
				err     error
			}
			done := make(chan result, 1)
			go func() {
				m, err := Wait(context.Background(), sub, nl, []net.HardwareAddr{mac(m1), mac(m2)}, tt.limit, clk)
				done <- result{m, err}
			}()
			if tt.limit > 0 {
				<-sub.subscribed
			}
			for _, u := range tt.updates {
				sub.ch <- u
			}
			if tt.expire {
				stop := make(chan struct{})
				go func() {
					if clk.WaitPending(1, stop) {
						clk.Advance(tt.limit)
					}
				}()
				defer close(stop)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("Wait: %v", r.err)
			}
			if diff := cmp.Diff(FormatMACs(tt.want), FormatMACs(r.missing)); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if len(nl.calls) != 0 {
				t.Errorf("Wait changed something: %q", nl.calls)
			}
		})
	}
}

func TestWaitErrors(t *testing.T) {
	m := []net.HardwareAddr{mac("52:54:00:00:00:01")}
	t.Run("subscription fails", func(t *testing.T) {
		sub := newFakeSub()
		sub.err = errors.New("no netlink")
		got, err := Wait(context.Background(), sub, &fakeNL{}, m, time.Second, clock.NewFake(time.Unix(0, 0)))
		if err == nil || len(got) != 1 {
			t.Errorf("Wait = %v, %v; want the MAC missing and an error", got, err)
		}
	})
	t.Run("updates end", func(t *testing.T) {
		sub := newFakeSub()
		close(sub.ch)
		if _, err := Wait(context.Background(), sub, &fakeNL{}, m, time.Second, clock.NewFake(time.Unix(0, 0))); err == nil {
			t.Error("Wait: no error after the updates ended")
		}
	})
	t.Run("ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Wait(ctx, newFakeSub(), &fakeNL{}, m, time.Second, clock.NewFake(time.Unix(0, 0)))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait: %v; want context.Canceled", err)
		}
	})
}

func TestPending(t *testing.T) {
	entries := []Entry{
		{Index: 0, MAC: "52:54:00:00:00:01", IP: "10.0.0.2", Netmask: "24", Gateway: "10.0.0.1"},
		{Index: 1, MAC: "52:54:00:00:00:02", IP: "10.0.1.2", Netmask: "24"},
	}
	nl := &fakeNL{links: []netlink.Link{loopback()}}
	_, err := (&Configurator{NL: nl}).Apply(context.Background(), entries)
	if err == nil {
		t.Fatal("Apply with no interfaces: no error")
	}
	tests := []struct {
		name    string
		missing []net.HardwareAddr
		want    []int // entries still failed
	}{
		{"nothing missing", nil, []int{0, 1}},
		{"one missing", []net.HardwareAddr{mac("52:54:00:00:00:02")}, []int{0}},
		{"both missing", []net.HardwareAddr{mac("52:54:00:00:00:01"), mac("52:54:00:00:00:02")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, i := range []int{0, 1} {
				var ee *EntryError
				if e := Pending(err, entries, tt.missing); e != nil && errors.As(e, &ee) {
					for _, x := range e.(interface{ Unwrap() []error }).Unwrap() {
						if errors.As(x, &ee) && ee.Index == i {
							got = append(got, i)
						}
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("failed entries = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a bad address is kept", func(t *testing.T) {
		bad := []Entry{{Index: 0, MAC: "52:54:00:00:00:01", IP: "10.0.0.300", Netmask: "24"}}
		_, err := (&Configurator{NL: nl}).Apply(context.Background(), bad)
		if Pending(err, bad, []net.HardwareAddr{mac("52:54:00:00:00:01")}) == nil {
			t.Error("Pending dropped an invalid entry's error")
		}
	})
}

func TestWatcher(t *testing.T) {
	const m1, m2 = "52:54:00:00:00:01", "52:54:00:00:00:02"
	entries := []Entry{
		{Index: 0, MAC: m1, IP: "10.0.0.2", Netmask: "24", Gateway: "10.0.0.1"},
		{Index: 1, MAC: m2, IP: "10.0.1.2", Netmask: "24"},
	}
	tests := []struct {
		name   string
		before bool // the late NIC is already there when Run starts
	}{
		{name: "appears while watching"},
		{name: "appeared before the watcher started", before: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			late := device(3, "ens4", m1, false)
			nl := &syncNL{f: &fakeNL{links: []netlink.Link{loopback(), device(2, "ens3", m2, true)}}}
			// The step configured ens3 already.
			nl.f.addrs = map[int][]netlink.Addr{2: {addr("10.0.1.2/24")}}
			if tt.before {
				nl.f.links = append(nl.f.links, late)
			}
			sub := newFakeSub()
			log, _ := testlog.New(t)
			w := NewWatcher(sub, &Configurator{NL: nl, Log: log}, entries, []net.HardwareAddr{mac(m1)})
			done := make(chan error, 1)
			go func() { done <- w.Run(context.Background()) }()
			if !tt.before {
				<-sub.subscribed
				sub.ch <- newLink(bridge(4, "br0", m1)) // not Ethernet: ignored
				nl.do(func(f *fakeNL) { f.links = append(f.links, late) })
				sub.ch <- newLink(late)
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			var calls []string
			nl.do(func(f *fakeNL) { calls = slices.Clone(f.calls) })
			want := []string{"AddrAdd ens4 10.0.0.2/24", "LinkSetUp ens4", "RouteReplace 0.0.0.0/0 via 10.0.0.1 dev ens4"}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("netlink calls (-want +got):\n%s", diff)
			}
			if got := w.Missing(); len(got) != 0 {
				t.Errorf("Missing() = %v after it appeared", got)
			}
		})
	}
	t.Run("updates end: an error to restart on", func(t *testing.T) {
		sub := newFakeSub()
		close(sub.ch)
		nl := &fakeNL{links: []netlink.Link{loopback()}}
		w := NewWatcher(sub, &Configurator{NL: nl}, entries, []net.HardwareAddr{mac(m1)})
		if err := w.Run(context.Background()); err == nil {
			t.Error("Run: no error after the updates ended")
		}
	})
	t.Run("ctx ends: nil", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		nl := &fakeNL{links: []netlink.Link{loopback()}}
		sub := newFakeSub()
		w := NewWatcher(sub, &Configurator{NL: nl}, entries, []net.HardwareAddr{mac(m1)})
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-sub.subscribed
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v; want nil on cancellation", err)
		}
	})
}
