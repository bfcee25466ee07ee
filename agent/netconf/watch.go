package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"osmanager/agent/clock"
)

// Subscriber delivers the kernel's link updates (RTM_NEWLINK, RTM_DELLINK).
// Tests pass a fake fed from a channel.
type Subscriber interface {
	// Subscribe starts the updates. The channel is closed after ctx ends,
	// or earlier if the subscription fails.
	Subscribe(ctx context.Context) (<-chan netlink.LinkUpdate, error)
}

// NetnsSubscriber subscribes to link updates in a network namespace: NS,
// or the current one when NS is nil. Log, which may be nil, gets the
// subscription's receive errors.
type NetnsSubscriber struct {
	NS  *netns.NsHandle
	Log *slog.Logger
}

// Subscribe implements Subscriber with netlink.LinkSubscribeWithOptions.
func (s NetnsSubscriber) Subscribe(ctx context.Context) (<-chan netlink.LinkUpdate, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := netlink.LinkSubscribeOptions{
		Namespace: s.NS,
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				log.Warn("link updates", "err", err)
			}
		},
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		close(done) // ends the library's closer goroutine, if it started one
		return nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	go func() {
		<-ctx.Done()
		close(done)
		// The library's reader may be blocked handing over an update
		// nobody reads any more: drain until it closes the channel.
		for range ch {
		}
	}()
	return ch, nil
}

// MACs returns the well-formed MAC addresses the entries name, in entry
// order; malformed ones are left to Apply to refuse.
func MACs(entries []Entry) []net.HardwareAddr {
	var out []net.HardwareAddr
	for _, e := range entries {
		if s, err := parseEntry(e); err == nil && s.mac != nil {
			out = append(out, s.mac)
		}
	}
	return out
}

// FormatMACs joins MACs for a message: "52:54:00:00:00:01, 52:54:00:00:00:02".
func FormatMACs(macs []net.HardwareAddr) string {
	s := make([]string, len(macs))
	for i, m := range macs {
		s[i] = m.String()
	}
	return strings.Join(s, ", ")
}

// Wait waits until each of macs names an Ethernet interface (see the
// package comment), for at most limit, and returns the MACs still missing
// then, in the order given. It subscribes to link updates before it lists
// the links, so an interface that appears in between is not missed. A
// limit <= 0 only looks. Wait returns early with ctx's error when ctx
// ends; the clock makes the limit's timer (nil: the real clock).
func Wait(ctx context.Context, sub Subscriber, nl Netlink, macs []net.HardwareAddr, limit time.Duration, clk clock.Clock) (missing []net.HardwareAddr, err error) {
	if len(macs) == 0 {
		return nil, nil
	}
	if clk == nil {
		clk = clock.Real{}
	}
	var updates <-chan netlink.LinkUpdate
	if limit > 0 {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if updates, err = sub.Subscribe(sctx); err != nil {
			return macs, err
		}
	}
	links, err := dump(ctx, nl.LinkList)
	if err != nil {
		return macs, fmt.Errorf("list links: %w", err)
	}
	missing = absent(macs, ethernet(links))
	if len(missing) == 0 || limit <= 0 {
		return missing, nil
	}
	t := clk.NewTimer(limit)
	defer t.Stop()
	for len(missing) > 0 {
		select {
		case <-ctx.Done():
			return missing, ctx.Err()
		case <-t.C():
			return missing, nil
		case u, ok := <-updates:
			if !ok {
				return missing, errors.New("link updates ended")
			}
			if l := appeared(u); l != nil {
				missing = absent(missing, []netlink.Link{l})
			}
		}
	}
	return nil, nil
}

// appeared returns the update's link if it is a new or changed Ethernet
// link, nil for anything else (a removal, a bridge).
func appeared(u netlink.LinkUpdate) netlink.Link {
	if u.Header.Type != unix.RTM_NEWLINK || u.Link == nil {
		return nil
	}
	if eth := ethernet([]netlink.Link{u.Link}); len(eth) == 1 {
		return eth[0]
	}
	return nil
}

// absent returns the MACs no link in eth has.
func absent(macs []net.HardwareAddr, eth []netlink.Link) []net.HardwareAddr {
	var out []net.HardwareAddr
	for _, m := range macs {
		if !slices.ContainsFunc(eth, func(l netlink.Link) bool { return slices.Equal(l.Attrs().HardwareAddr, m) }) {
			out = append(out, m)
		}
	}
	return out
}

// Pending removes from err the failures of entries whose MAC is in missing
// and which failed only because their interface is not there yet: those
// are the watcher's to configure, not failures of the step.
func Pending(err error, entries []Entry, missing []net.HardwareAddr) error {
	if err == nil || len(missing) == 0 {
		return err
	}
	late := map[int]bool{}
	for _, e := range entries {
		if s, perr := parseEntry(e); perr == nil && s.mac != nil && slices.ContainsFunc(missing, func(m net.HardwareAddr) bool { return slices.Equal(m, s.mac) }) {
			late[e.Index] = true
		}
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var keep []error
	for _, e := range errs {
		var ee *EntryError
		if errors.As(e, &ee) && late[ee.Index] && onlyNoInterface(ee.Err) {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// onlyNoInterface reports whether err is ErrNoInterface and nothing else.
func onlyNoInterface(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyNoInterface(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, ErrNoInterface)
}

// Watcher configures the interfaces that were missing when the network
// step gave up waiting, as they appear: on each new Ethernet link with a
// missing MAC it applies all the entries again (Apply is a reconciler, so
// what is already right is left alone, and the default route is settled
// as the package comment says). Run returns nil once every missing
// interface was configured, and an error if the link updates fail (the
// supervisor starts it again; it lists the links first, so nothing that
// appeared in between is lost).
type Watcher struct {
	Sub     Subscriber
	Config  *Configurator
	Entries []Entry

	mu      sync.Mutex
	missing []net.HardwareAddr
	log     *slog.Logger
}

// NewWatcher returns a Watcher for the missing MACs.
func NewWatcher(sub Subscriber, c *Configurator, entries []Entry, missing []net.HardwareAddr) *Watcher {
	return &Watcher{Sub: sub, Config: c, Entries: entries, missing: slices.Clone(missing)}
}

// SetLogger takes the supervisor's logger (supervisor.LogReceiver).
func (w *Watcher) SetLogger(l *slog.Logger) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = l
}

// Missing returns the MACs not configured yet.
func (w *Watcher) Missing() []net.HardwareAddr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.missing)
}

func (w *Watcher) logger() *slog.Logger {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log != nil {
		return w.log
	}
	return w.Config.logger()
}

// Run watches the links until every missing interface was configured or
// ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	if len(w.Missing()) == 0 {
		return nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := w.Sub.Subscribe(sctx)
	if err != nil {
		return err
	}
	links, err := dump(ctx, w.Config.NL.LinkList)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	if err := w.found(ctx, ethernet(links)); err != nil || len(w.Missing()) == 0 {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("link updates ended")
			}
			l := appeared(u)
			if l == nil {
				continue
			}
			if err := w.found(ctx, []netlink.Link{l}); err != nil || len(w.Missing()) == 0 {
				return err
			}
		}
	}
}

// found configures the entries again if any of links has a missing MAC.
func (w *Watcher) found(ctx context.Context, links []netlink.Link) error {
	before := w.Missing()
	still := absent(before, links)
	if len(still) == len(before) {
		return nil
	}
	log := w.logger()
	c := *w.Config
	c.Log = log // the supervisor's, with service=netwatch
	changes, err := c.Apply(ctx, w.Entries)
	if ctx.Err() != nil {
		return nil
	}
	err = Pending(err, w.Entries, still)
	w.mu.Lock()
	w.missing = still
	w.mu.Unlock()
	for _, m := range before {
		if !slices.ContainsFunc(still, func(s net.HardwareAddr) bool { return slices.Equal(s, m) }) {
			log.Info("late interface appeared; configured it", "mac", m.String(), "changes", strings.Join(changes, "; "))
		}
	}
	if err != nil {
		// The entries are applied; a failure here is no reason to watch
		// again from scratch, so log it rather than fail the service.
		log.Warn("configure late interface", "err", err)
	}
	return nil
}
