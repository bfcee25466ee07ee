package netconf

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"osmanager/agent/clock"
	"osmanager/agent/internal/testlog"
)

// notifySub tells the test when the subscription is in place.
type notifySub struct {
	Subscriber
	ready chan struct{}
}

func (n *notifySub) Subscribe(ctx context.Context) (<-chan netlink.LinkUpdate, error) {
	ch, err := n.Subscriber.Subscribe(ctx)
	close(n.ready)
	return ch, err
}

func addVeth(t *testing.T, h *netlink.Handle, name, mac string) {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: hw}, PeerName: name + "p"}
	if err := h.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
}

func TestWaitInNetns(t *testing.T) {
	const m = "52:54:00:00:10:01"
	entries := []Entry{{Index: 0, MAC: m, IP: "10.9.0.2", Netmask: "24", Gateway: "10.9.0.1"}}
	log, _ := testlog.New(t)

	t.Run("appears while the step waits", func(t *testing.T) {
		h, ns := newNetnsNS(t)
		sub := &notifySub{Subscriber: NetnsSubscriber{NS: &ns, Log: log}, ready: make(chan struct{})}
		type result struct {
			missing []net.HardwareAddr
			err     error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			got, err := Wait(context.Background(), sub, h, MACs(entries), 30*time.Second, nil)
			done <- result{got, err}
		}()
		<-sub.ready
		addVeth(t, h, "ens5", m)
		r := <-done
		if r.err != nil || len(r.missing) != 0 {
			t.Fatalf("Wait = %v, %v; want nothing missing", r.missing, r.err)
		}
		t.Logf("the interface was seen %v after the wait started", time.Since(start))
		c := &Configurator{NL: h, Log: log}
		ch, err := c.Apply(context.Background(), entries)
		if err != nil || len(ch) == 0 {
			t.Fatalf("Apply = %q, %v; want changes", ch, err)
		}
		if ch, err := c.Apply(context.Background(), entries); err != nil || len(ch) != 0 {
			t.Errorf("second Apply = %q, %v; want no change", ch, err)
		}
	})

	t.Run("appears after the limit: the watcher configures it", func(t *testing.T) {
		h, ns := newNetnsNS(t)
		clk := clock.NewFake(time.Unix(0, 0))
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			if clk.WaitPending(1, stop) {
				clk.Advance(30 * time.Second)
			}
		}()
		missing, err := Wait(context.Background(), NetnsSubscriber{NS: &ns, Log: log}, h, MACs(entries), 30*time.Second, clk)
		if err != nil || FormatMACs(missing) != m {
			t.Fatalf("Wait = %v, %v; want %s missing", missing, err, m)
		}
		c := &Configurator{NL: h, Log: log}
		_, err = c.Apply(context.Background(), entries)
		if err = Pending(err, entries, missing); err != nil {
			t.Fatalf("Apply, less the pending entries: %v", err)
		}

		sub := &notifySub{Subscriber: NetnsSubscriber{NS: &ns, Log: log}, ready: make(chan struct{})}
		w := NewWatcher(sub, c, entries, missing)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-sub.ready
		addVeth(t, h, "ens6", m)
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the watcher did not configure the late interface in 30 s")
		}
		state := nsState(t, h)
		for _, want := range []string{"ens6 veth up 10.9.0.2/24", "route default dev ens6 via 10.9.0.1"} {
			if !slices.Contains(state, want) {
				t.Errorf("namespace lacks %q; has %q", want, state)
			}
		}
		if ch, err := c.Apply(context.Background(), entries); err != nil || len(ch) != 0 {
			t.Errorf("Apply after the watcher = %q, %v; want no change", ch, err)
		}
	})
}
