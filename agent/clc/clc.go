// Package clc is the agent's link to the LuoYun cloud controller (CLC),
// wire-compatible with the controllers in the field (spec:
// controller-protocol.md; the byte format is in agent/clc/wire).
//
// Link is one supervisor service. Its Run owns, and waits for, everything
// it starts: the status-script loop, one connection at a time with its
// reader, and the JOIN listener while it waits. Run goes round this loop
// until its context ends:
//
//  1. Find the controller: the address a JOIN announced last, else
//     CLC_IP:CLC_PORT. With neither, or when connecting fails, wait for a
//     JOIN on UDP CLC_MCAST_PORT joined to group CLC_MCAST_IP.
//  2. Connect (TCP keepalive: idle 10 s, interval 10 s, 3 probes) and
//     authenticate both ways: our RC4-encrypted challenge, its plain answer
//     (checked before we answer anything), its plain challenge, our
//     encrypted answer. Each step has its own timeout (10 s), because the
//     controller stays silent, connection open, for a tag it does not know.
//  3. Register "<tag> 7 <local ip>" and wait for REGISTER_REPLY: 1021 is
//     success, 1022 a refusal.
//  4. Registered: REPORT the application status (custom/scripts/status's
//     exit code, see appCode) now, whenever it changes, and at least
//     hourly; never before the register reply, which a REPORT would
//     cancel. Send ECHO_REQUEST every Heartbeat; no ECHO_REPLY within
//     EchoTimeout means the link is dead, since the controller never
//     closes an idle connection or sends a heartbeat of its own.
//  5. At any time once connected, answer ECHO_REQUEST with the same bytes
//     and OSM_QUERY_REQUEST with "<jobid> <tag> <status> <ip>".
//  6. On any error or close: drop the connection, then wait out a jittered
//     exponential backoff (1 s doubling to 30 s, reset by a registration)
//     while listening for a JOIN; a JOIN ends the wait at once.
//
// The query status is the agent state the spec lists: 5 authenticating,
// 8 registering, and once registered the application's: 101 when the
// status script says it serves (report 2000), 100 when unknown (2128 or no
// result yet), 102 otherwise (exit 1..127, stopped, failed).
//
// Link state (state.Link) and the application status (state.AppHealth) go to the
// shared state store for the status page and the local API. A missing TAG
// or KEY is an error wrapping ErrConfig: the agent marks the service failed
// and keeps running everything else. Nothing logged carries KEY or a
// challenge.
package clc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"osmanager/agent/backoff"
	"osmanager/agent/clc/wire"
	"osmanager/agent/clock"
	"osmanager/agent/conf"
	"osmanager/agent/state"
)

// errNoAddress: nothing to connect to until a JOIN comes.
var errNoAddress = errors.New("no controller address: CLC_IP is empty and no JOIN seen yet")

// ErrConfig marks a configuration the link cannot run with (no TAG, no
// KEY): restarting does not help.
var ErrConfig = errors.New("controller link not configured")

// Defaults.
const (
	DefaultPeriod      = 30 * time.Second // status script, heartbeat
	DefaultTimeout     = 10 * time.Second // handshake steps, echo, dial, writes, status script
	DefaultReportEvery = time.Hour
	DefaultJoinGap     = 100 * time.Millisecond
)

// Link is the controller link service. Fill Tag, Key, Controller and/or
// Group, State and Log (FromConf fills the first four); the rest defaults.
type Link struct {
	Tag int32 // the instance's TAG; negative means missing
	Key string

	// Controller is CLC_IP:CLC_PORT ("host:port"); empty when none is
	// configured.
	Controller string
	// Group is CLC_MCAST_IP:CLC_MCAST_PORT, where JOINs arrive. The zero
	// value means: do not listen for JOINs.
	Group netip.AddrPort

	StatusScript  string        // custom/scripts/status; run if executable
	ScriptEnv     []string      // extra KEY=VALUE for it
	StatusPeriod  time.Duration // how often it runs; default 30 s
	StatusTimeout time.Duration // its time limit; default 10 s, at most StatusPeriod
	ReportEvery   time.Duration // re-send an unchanged status this often; default 1 h
	Heartbeat     time.Duration // ECHO_REQUEST period once registered; default 30 s
	EchoTimeout   time.Duration // wait for ECHO_REPLY; default 10 s
	StepTimeout   time.Duration // each handshake step, the dial, each write; default 10 s
	// JoinGap is the least time between two attempts that JOINs trigger,
	// so a JOIN flood cannot make the agent spin; default 100 ms.
	JoinGap time.Duration

	State      *state.Store
	Log        *slog.Logger
	Clock      clock.Clock             // default clock.Real
	NewBackoff func() *backoff.Backoff // default 1 s to 30 s, doubling, 50% jitter

	// Dial connects to the controller; default TCP with the spec's
	// keepalive. ListenJoin opens the socket JOINs arrive on; default a
	// UDP socket on Group's port joined to Group's address. Tests replace
	// them.
	Dial       func(ctx context.Context, addr string) (net.Conn, error)
	ListenJoin func(ctx context.Context, group netip.AddrPort) (net.PacketConn, error)

	// newChallenge replaces wire.NewChallenge in the interop tests, which
	// replay the spec's test vector byte for byte.
	newChallenge func() wire.Challenge
}

// FromConf returns a Link for the instance config c (nil: none). Problems
// with TAG or KEY surface when it runs; an unusable multicast group only
// turns discovery off, with a log line then.
func FromConf(c *conf.Config) *Link {
	l := &Link{Tag: -1}
	if c == nil {
		return l
	}
	if c.HasTag {
		l.Tag = int32(c.Tag) // conf parses TAG as a non-negative int32
	}
	l.Key = c.Key
	if c.CLCIP != "" {
		l.Controller = net.JoinHostPort(c.CLCIP, strconv.Itoa(c.CLCPort))
	}
	if ip, err := netip.ParseAddr(c.McastIP); err == nil && ip.Is4() && ip.IsMulticast() && c.McastPort > 0 {
		l.Group = netip.AddrPortFrom(ip, uint16(c.McastPort))
	}
	return l
}

// check refuses a configuration the link cannot work with.
func (l *Link) check() error {
	var missing []string
	if l.Tag < 0 {
		missing = append(missing, "TAG")
	}
	if l.Key == "" {
		missing = append(missing, "KEY")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: luoyun.conf has no %s; the controller link needs both TAG and KEY", ErrConfig, strings.Join(missing, " and "))
	}
	if err := wire.CheckKey(l.Key); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if strings.Contains(l.Key, ":") {
		return fmt.Errorf("%w: KEY contains ':', which no controller accepts", ErrConfig)
	}
	return nil
}

// runner is one Run of a Link: the Link with defaults filled in, plus
// what the loop keeps between connections.
type runner struct {
	Link
	log    *slog.Logger
	clock  clock.Clock
	bo     *backoff.Backoff
	status appStatus

	discovered string    // the address the last JOIN announced
	attempts   int       // connection attempts so far
	lastJoinAt time.Time // when a JOIN last ended a wait
	lastErr    string    // the previous failure, to log repeats quietly
	lastListen string    // the previous JOIN-listener failure
}

// Run runs the link until ctx ends, then returns nil. It returns early
// only with an error wrapping ErrConfig.
func (l *Link) Run(ctx context.Context) error {
	r := &runner{Link: *l, clock: l.Clock}
	r.fill()
	if err := l.check(); err != nil {
		r.setLink(func(s *state.Link) { s.Status, s.LastError = state.LinkDisconnected, err.Error() })
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	r.log.Info("controller link starting", "tag", r.Tag, "controller", orNone(r.Controller), "join_group", groupText(r.Group))
	wg.Go(func() { r.statusLoop(ctx) })
	r.setLink(func(s *state.Link) { s.Status, s.Controller = state.LinkDisconnected, r.Controller })
	for {
		connected, err := r.attempt(ctx)
		if ctx.Err() != nil {
			r.setLink(func(s *state.Link) { s.Status = state.LinkDisconnected })
			return nil
		}
		delay := r.bo.Next()
		r.logFailure(err, delay)
		status := state.LinkDisconnected
		if !connected && r.Group.IsValid() {
			status = state.LinkDiscovering // now waiting for a JOIN
		}
		if join, ok := r.wait(ctx, delay, status, err); ok {
			if a := join.String(); a != r.discovered {
				r.log.Info("controller announced by JOIN", "controller", a)
				r.discovered = a
			} else {
				r.log.Debug("JOIN seen: reconnecting now", "controller", a)
			}
		}
	}
}

func (r *runner) fill() {
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	r.log = r.Log.With("service", "clc")
	if r.State == nil {
		r.State = &state.Store{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&r.StatusPeriod, DefaultPeriod)
	def(&r.StatusTimeout, DefaultTimeout)
	r.StatusTimeout = min(r.StatusTimeout, r.StatusPeriod)
	def(&r.ReportEvery, DefaultReportEvery)
	def(&r.Heartbeat, DefaultPeriod)
	def(&r.EchoTimeout, DefaultTimeout)
	def(&r.StepTimeout, DefaultTimeout)
	def(&r.JoinGap, DefaultJoinGap)
	if r.NewBackoff != nil {
		r.bo = r.NewBackoff()
	} else {
		r.bo = backoff.New(time.Second, 30*time.Second)
	}
	if r.Dial == nil {
		r.Dial = r.dialTCP
	}
	if r.ListenJoin == nil {
		r.ListenJoin = listenMulticast
	}
	r.status.changed = make(chan struct{}, 1)
}

// attempt connects to the first controller address that answers and runs
// one session on it. connected says whether a connection was made.
func (r *runner) attempt(ctx context.Context) (connected bool, err error) {
	var targets []string
	for _, a := range []string{r.discovered, r.Controller} {
		if a != "" && (len(targets) == 0 || targets[0] != a) {
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		return false, errNoAddress
	}
	for _, addr := range targets {
		if r.attempts > 0 {
			r.setLink(func(s *state.Link) { s.Reconnects++ })
		}
		r.attempts++
		r.setLink(func(s *state.Link) { s.Status, s.Controller = state.LinkConnecting, addr })
		r.log.Debug("connecting", "controller", addr)
		conn, derr := r.Dial(ctx, addr)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("connect %s: %w", addr, bareNetError(derr)))
			continue
		}
		return true, r.session(ctx, conn, addr)
	}
	return false, err
}

// bareNetError drops the "dial tcp ADDR: connect:" wrapping, which the
// caller's message already says.
func bareNetError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}

func (r *runner) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:         r.StepTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 10 * time.Second, Count: 3},
	}
	return d.DialContext(ctx, "tcp", addr)
}

// logFailure logs why the link is down: a warning when the reason is new,
// a debug line when it repeats, so an outage does not flood the log.
func (r *runner) logFailure(err error, delay time.Duration) {
	msg := err.Error()
	lv, what := slog.LevelWarn, "controller link down"
	if errors.Is(err, errNoAddress) {
		// Discovery is the normal start without CLC_IP, not a failure.
		lv, what = slog.LevelInfo, "waiting for a JOIN to find the controller"
	}
	if msg == r.lastErr {
		lv = slog.LevelDebug
	}
	r.lastErr = msg
	r.log.Log(context.Background(), lv, what, "err", msg, "attempts", r.attempts, "retry_in", delay.Round(time.Millisecond))
}

// wait waits for d, or until a JOIN arrives on Group, whose address it
// returns. status and cause are the link state to show while waiting;
// they are published once the wait is set up, so that whoever sees them
// knows the backoff timer runs.
func (r *runner) wait(ctx context.Context, d time.Duration, status state.LinkStatus, cause error) (netip.AddrPort, bool) {
	t := r.clock.NewTimer(d)
	defer t.Stop()
	var joins chan netip.AddrPort
	if r.Group.IsValid() {
		pc, err := r.ListenJoin(ctx, r.Group)
		if err != nil {
			lv := slog.LevelWarn
			if err.Error() == r.lastListen {
				lv = slog.LevelDebug
			}
			r.lastListen = err.Error()
			r.log.Log(ctx, lv, "cannot listen for JOIN; will retry", "group", r.Group.String(), "err", err)
			status = state.LinkDisconnected
		} else {
			r.lastListen = ""
			joins = make(chan netip.AddrPort, 1)
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { r.readJoins(pc, joins, done) })
			defer func() {
				close(done)
				pc.Close()
				wg.Wait()
			}()
		}
	}
	r.setLink(func(s *state.Link) { s.Status, s.LastError = status, cause.Error() })
	var (
		early   netip.AddrPort
		gap     clock.Timer
		gapC    <-chan time.Time
		pending bool
	)
	defer func() {
		if gap != nil {
			gap.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return netip.AddrPort{}, false
		case <-t.C():
			return netip.AddrPort{}, false
		case <-gapC:
			r.lastJoinAt = r.clock.Now()
			return early, true
		case a := <-joins:
			if pending {
				early = a
				continue
			}
			if wait := r.JoinGap - r.clock.Now().Sub(r.lastJoinAt); wait > 0 && !r.lastJoinAt.IsZero() {
				early, pending = a, true
				gap = r.clock.NewTimer(wait)
				gapC = gap.C()
				continue
			}
			r.lastJoinAt = r.clock.Now()
			return a, true
		}
	}
}

// readJoins reads datagrams until pc is closed, passing on valid JOINs and
// logging anything else (the first at warning level, the rest at debug).
func (r *runner) readJoins(pc net.PacketConn, joins chan<- netip.AddrPort, done <-chan struct{}) {
	buf := make([]byte, 1500)
	bad := 0
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-done:
			default:
				r.log.Warn("JOIN listener failed", "err", err)
			}
			return
		}
		j, err := wire.ParseJoinDatagram(buf[:n])
		if err == nil && !usable(j.Addr.Addr()) {
			err = fmt.Errorf("JOIN announces %s, not a unicast address", j.Addr.Addr())
		}
		if err != nil {
			lv := slog.LevelWarn
			if bad > 0 {
				lv = slog.LevelDebug
			}
			bad++
			r.log.Log(context.Background(), lv, "ignoring datagram that is not a JOIN", "from", from.String(), "bytes", n, "err", err)
			continue
		}
		select {
		case joins <- j.Addr:
		default: // one is waiting already
		}
	}
}

// usable reports whether a JOIN's address is one to connect to.
func usable(ip netip.Addr) bool {
	return !ip.IsUnspecified() && !ip.IsMulticast() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// listenMulticast opens a UDP socket on the group's port (SO_REUSEADDR,
// any local address) joined to the group on the interface the kernel
// routes it to. It fails while no interface can reach the group (network
// not up yet); the caller retries at its next wait.
func listenMulticast(_ context.Context, group netip.AddrPort) (net.PacketConn, error) {
	c, err := net.ListenMulticastUDP("udp4", nil, net.UDPAddrFromAddrPort(group))
	if err != nil {
		return nil, fmt.Errorf("listen for JOIN on %s: %w", group, err)
	}
	return c, nil
}

func (r *runner) setLink(f func(*state.Link)) {
	now := r.clock.Now()
	r.State.UpdateLink(func(s *state.Link) {
		old := s.Status
		f(s)
		if s.Status != old || s.Since.IsZero() {
			s.Since = now
		}
	})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func groupText(g netip.AddrPort) string {
	if !g.IsValid() {
		return "none"
	}
	return g.String()
}
