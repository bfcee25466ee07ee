// Package clc is the agent's link to the LuoYun cloud controller (CLC),
// wire-compatible with the controllers in the field (spec:
// controller-protocol.md; the byte format is in agent/clc/wire).
//
// Link is one supervisor service. Its Run owns, and waits for, everything
// it starts: the status-script loop, one connection at a time with its
// reader, and the JOIN listener while it waits. Run goes round this loop
// until its context ends:
//
//  1. Find the controller: the address a JOIN announced, while it works,
//     else CLC_IP:CLC_PORT. With neither, it waits for a JOIN.
//  2. Connect (TCP keepalive: idle 10 s, interval 10 s, 3 probes) and
//     authenticate both ways: our RC4-encrypted challenge (40 random
//     bytes), its plain answer (checked before we answer anything), its
//     plain challenge, our encrypted answer. Each step has its own timeout
//     (10 s), because the controller stays silent, connection open, for a
//     tag it does not know.
//  3. Register "<tag> 7 <local ip>" and wait for REGISTER_REPLY: 1021 is
//     success, 1022 a refusal.
//  4. Registered: REPORT the application status (custom/scripts/status's
//     exit code, see appCode; without an executable script, whether every
//     app meant to run is running, see appsCode) now, whenever it changes,
//     and at least hourly; never before the register reply, which a REPORT
//     would cancel. Send ECHO_REQUEST every Heartbeat ±10 %; no ECHO_REPLY within
//     EchoTimeout means the link is dead, since the controller never
//     closes an idle connection or sends a heartbeat of its own.
//  5. Once the controller has passed our challenge, answer ECHO_REQUEST
//     with the same bytes and OSM_QUERY_REQUEST with "<jobid> <tag>
//     <status> <ip>" (ECHO is answered from the start).
//  6. On any error or close: drop the connection and wait out a jittered
//     exponential backoff (1 s doubling to 30 s). It is reset only once a
//     session has stayed registered for StableAfter (60 s), and at most
//     MaxAttempts (6) connections start in any minute until then.
//
// JOINs are unauthenticated datagrams that anyone on the network can send,
// so they are hints, never orders. The link listens for them only while
// they can matter: CLC_IP is empty, or connecting to it failed; and only
// while waiting after a connect failure or a close (never after an auth
// failure or a 1022: the controller is up then, and a JOIN says nothing
// new). Only datagrams sent to the group count (the socket is bound to
// the group address and each datagram's destination is checked with
// IP_PKTINFO), never unicast. A JOIN ends the wait after a random 0 to
// JoinSpread (2 s), so that a fleet spreads out after a controller
// restart, and never before the attempt limit allows. The announced
// address is used while it works; when it fails, the link goes back to
// CLC_IP (if set).
//
// A session that the controller closes soon after registering (before
// StableAfter), twice in a row, is another instance with the same TAG
// knocking us off (a clone, a restored snapshot): the link says so once and
// backs off to the cap, so the two do not flap.
//
// The query status is the agent state the spec lists: 5 authenticating,
// 8 registering, and once registered the application's: 101 when the
// status script says it serves (report 2000), 100 when unknown (2128 or no
// result yet), 102 otherwise (exit 1..127, stopped, failed). Without an
// executable script the app manager's record (state.Apps) decides: 2000
// when every app whose desired state is running is running, 2130 when one
// of them has failed for good, 2129 when one is not running otherwise,
// 2128 when no app is installed. The status loop then also wakes on every
// change to the shared state (state.Store.Changed), so such a change is
// reported at once, not at the next StatusPeriod.
//
// Link state (state.Link) and the application status (state.AppHealth) go to the
// shared state store for the status page and the local API. A missing TAG
// or KEY, or a KEY shorter than 5 bytes, is an error wrapping ErrConfig:
// the agent marks the service failed and keeps running everything else.
// Nothing logged carries KEY or a challenge.
package clc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
// KEY, a KEY too short): restarting does not help. Errors wrapping it say
// so to the supervisor through ConfigError's Permanent method.
var ErrConfig error = &ConfigError{"controller link not configured"}

// ConfigError is the type of ErrConfig.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

// Permanent reports that restarting cannot cure the error (see
// supervisor.IsPermanent).
func (e *ConfigError) Permanent() bool { return true }

// Defaults.
const (
	DefaultPeriod      = 30 * time.Second // status script, heartbeat
	DefaultTimeout     = 10 * time.Second // handshake steps, echo, dial, writes, status script
	DefaultReportEvery = time.Hour
	DefaultStableAfter = time.Minute     // registered this long: the backoff starts again from 1 s
	DefaultJoinSpread  = 2 * time.Second // a JOIN's reconnect waits a random 0..this
	DefaultMaxAttempts = 6               // connections started per minute, until stable
)

// attemptWindow is the window MaxAttempts counts in.
const attemptWindow = time.Minute

// Link is the controller link service. Fill Tag, Key, Controller and/or
// Group, State and Log (FromConf fills the first four); the rest defaults.
type Link struct {
	Tag int32 // the instance's TAG; negative means missing
	Key string

	// Controller is CLC_IP:CLC_PORT ("host:port"); empty when none is
	// configured, which means: discover it by JOIN.
	Controller string
	// Group is CLC_MCAST_IP:CLC_MCAST_PORT, where JOINs arrive. The zero
	// value means: do not listen for JOINs.
	Group netip.AddrPort

	StatusScript  string        // custom/scripts/status; run if executable
	ScriptEnv     []string      // extra KEY=VALUE for it
	StatusPeriod  time.Duration // how often it runs; default 30 s
	StatusTimeout time.Duration // its time limit; default 10 s, at most StatusPeriod
	ReportEvery   time.Duration // re-send an unchanged status this often; default 1 h
	Heartbeat     time.Duration // ECHO_REQUEST period once registered, ±10 %; default 30 s
	EchoTimeout   time.Duration // wait for ECHO_REPLY; default 10 s
	StepTimeout   time.Duration // each handshake step, the dial, each write; default 10 s
	// StableAfter is how long a session must stay registered before the
	// backoff and the attempt limit start afresh; default 60 s. A session
	// closed sooner, twice in a row, counts as another instance with our
	// TAG knocking us off.
	StableAfter time.Duration
	// JoinSpread: a JOIN that ends a wait starts the next attempt after a
	// random 0..JoinSpread, so a fleet does not come back all at once;
	// default 2 s, negative for none.
	JoinSpread time.Duration
	// MaxAttempts is the most connections started in any minute until a
	// session is stable, whatever JOINs arrive; default 6.
	MaxAttempts int

	State      *state.Store
	Log        *slog.Logger            // carries the service attribute; the link adds none
	Clock      clock.Clock             // default clock.Real
	NewBackoff func() *backoff.Backoff // default 1 s to 30 s, doubling, 50% jitter
	Rand       func() float64          // [0,1), for JoinSpread and the heartbeat's jitter; default math/rand/v2

	// Dial connects to the controller; default TCP with the spec's
	// keepalive. ListenJoin opens the socket JOINs arrive on; default a
	// UDP socket bound to Group and joined to it (see ListenMulticast).
	// Tests replace them.
	Dial       func(ctx context.Context, addr string) (net.Conn, error)
	ListenJoin func(ctx context.Context, group netip.AddrPort) (JoinConn, error)

	// newChallenge replaces wire.NewChallenge in the interop tests, which
	// replay the spec's test vector byte for byte.
	newChallenge func() wire.Challenge
}

// JoinConn is the socket JOINs arrive on.
type JoinConn interface {
	// ReadJoin reads one datagram into b and returns its length, its
	// sender, and the destination address of its IP header (invalid when
	// unknown).
	ReadJoin(b []byte) (n int, from netip.AddrPort, to netip.Addr, err error)
	Close() error
}

// FromConf returns a Link for the instance config c (nil: none). Problems
// with TAG or KEY surface when it runs; an unusable multicast group only
// turns discovery off, with a log line then. An empty CLC_IP or a
// CLC_PORT of 0 means: discover the controller by JOIN.
func FromConf(c *conf.Config) *Link {
	l := &Link{Tag: -1}
	if c == nil {
		return l
	}
	if c.HasTag {
		l.Tag = int32(c.Tag) // conf parses TAG as a non-negative int32
	}
	l.Key = c.Key
	if c.CLCIP != "" && c.CLCPort > 0 {
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
		return fmt.Errorf("%w: luoyun.conf has no %s (missing, or refused by the conf step); the controller link needs both TAG and KEY", ErrConfig, strings.Join(missing, " and "))
	}
	if len(l.Key) < wire.MinKeyLen {
		return fmt.Errorf("%w: KEY shorter than %d bytes (%d): the controllers' RC4 refuses keys under 40 bits and never answers", ErrConfig, wire.MinKeyLen, len(l.Key))
	}
	if err := wire.CheckKey(l.Key); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if strings.Contains(l.Key, ":") {
		return fmt.Errorf("%w: KEY contains ':', which no controller accepts", ErrConfig)
	}
	return nil
}

// outcome is how an attempt ended, which decides what may end the wait
// after it.
type outcome int

const (
	outNoAddress outcome = iota // nothing to connect to
	outConnect                  // connecting failed: refused, timed out, unreachable
	outClosed                   // a registered session was closed or died
	outKicked                   // closed soon after registering, again: another instance?
	outRefused                  // the controller is up but will not have us: auth, 1022, protocol, silence
)

// runner is one Run of a Link: the Link with defaults filled in, plus
// what the loop keeps between connections.
type runner struct {
	Link
	log    *slog.Logger
	clock  clock.Clock
	bo     *backoff.Backoff
	idleBo *backoff.Backoff // between looks for a JOIN while there is no address
	status appStatus

	discovered string      // the address a JOIN announced, while it works
	ctrlDown   bool        // the last connect to Controller failed
	dials      int         // connections started since Run began
	attempts   int         // connections started in this outage
	recent     []time.Time // starts of the last MaxAttempts connections, until stable
	kicks      int         // sessions in a row closed soon after registering
	kickWarned bool        // "another instance?" said for this run of kicks
	lastErr    string      // the previous failure, to log repeats quietly
	lastListen string      // the previous JOIN-listener failure
	lastQuery  int32       // the status the last query was answered with; -1 none
	badJoins   int         // datagrams refused; touched by one reader at a time
}

// SetLogger sets Log: the supervisor hands the link its logger, which
// carries the service attribute (see supervisor.LogReceiver).
func (l *Link) SetLogger(log *slog.Logger) { l.Log = log }

// Run runs the link until ctx ends, then returns nil. It returns early
// only with an error wrapping ErrConfig.
func (l *Link) Run(ctx context.Context) error {
	r := &runner{Link: *l, clock: l.Clock, lastQuery: -1}
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
		out, err := r.attempt(ctx)
		if ctx.Err() != nil {
			r.setLink(func(s *state.Link) { s.Status = state.LinkDisconnected })
			return nil
		}
		now := r.clock.Now()
		var delay time.Duration
		switch out {
		case outNoAddress:
			// Not a failure: only how often to look again (re-open the
			// JOIN socket, which fails while the network is not up).
			delay = r.idleBo.Next()
		case outKicked:
			delay = max(r.bo.Next(), r.capDelay())
		default:
			delay = r.bo.Next()
		}
		until := now.Add(delay)
		if next := r.nextAllowed(); next.After(until) {
			until = next
		}
		r.logFailure(out, err, until.Sub(now))
		// JOINs matter only where they may end this wait: after a connect
		// failure or a close, and only while CLC_IP is empty or failing.
		listen := r.Group.IsValid() && (out == outNoAddress || out == outConnect || out == outClosed) &&
			(r.Controller == "" || r.ctrlDown)
		if join, ok := r.wait(ctx, until, listen, err); ok {
			r.idleBo.Reset()
			if a := join.String(); a != r.discovered {
				r.log.Info("controller announced by JOIN", "controller", a)
				r.discovered = a
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
	r.log = r.Log
	if r.State == nil {
		r.State = &state.Store{}
	}
	r.StatusPeriod = cmp.Or(r.StatusPeriod, DefaultPeriod)
	r.StatusTimeout = cmp.Or(r.StatusTimeout, DefaultTimeout)
	r.StatusTimeout = min(r.StatusTimeout, r.StatusPeriod)
	r.ReportEvery = cmp.Or(r.ReportEvery, DefaultReportEvery)
	r.Heartbeat = cmp.Or(r.Heartbeat, DefaultPeriod)
	r.EchoTimeout = cmp.Or(r.EchoTimeout, DefaultTimeout)
	r.StepTimeout = cmp.Or(r.StepTimeout, DefaultTimeout)
	r.StableAfter = cmp.Or(r.StableAfter, DefaultStableAfter)
	switch {
	case r.JoinSpread == 0:
		r.JoinSpread = DefaultJoinSpread
	case r.JoinSpread < 0:
		r.JoinSpread = 0
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	if r.NewBackoff != nil {
		r.bo, r.idleBo = r.NewBackoff(), r.NewBackoff()
	} else {
		r.bo, r.idleBo = backoff.New(time.Second, 30*time.Second), backoff.New(time.Second, 30*time.Second)
	}
	if r.Dial == nil {
		r.Dial = r.dialTCP
	}
	if r.ListenJoin == nil {
		r.ListenJoin = ListenMulticast
	}
	r.status.changed = make(chan struct{}, 1)
}

// attempt connects to the controller's address, if it has one, and runs
// one session there. It says how that ended.
func (r *runner) attempt(ctx context.Context) (outcome, error) {
	addr := r.discovered
	if addr == "" {
		addr = r.Controller
	}
	if addr == "" {
		return outNoAddress, errNoAddress
	}
	if r.dials > 0 {
		r.setLink(func(s *state.Link) { s.Reconnects++ })
	}
	r.dials++
	r.attempts++
	r.recent = append(r.recent, r.clock.Now())
	if len(r.recent) > r.MaxAttempts {
		r.recent = r.recent[len(r.recent)-r.MaxAttempts:]
	}
	r.setLink(func(s *state.Link) { s.Status, s.Controller = state.LinkConnecting, addr })
	r.log.Debug("connecting", "controller", addr)
	conn, err := r.Dial(ctx, addr)
	if err != nil {
		if addr == r.Controller {
			r.ctrlDown = true
		}
		r.kicks = 0 // nobody is knocking us off a controller that is down
		r.failedAt(addr, outConnect)
		return outConnect, fmt.Errorf("connect %s: %w", addr, bareNetError(err))
	}
	if addr == r.Controller {
		r.ctrlDown = false
	}
	out, err := r.session(ctx, conn, addr)
	if out == outKicked {
		err = fmt.Errorf("%w, %d times in a row: another instance with TAG %d is registered?", err, r.kicks, r.Tag)
	}
	if ctx.Err() == nil {
		r.failedAt(addr, out)
	}
	return out, err
}

// failedAt drops a discovered address that failed, so that the next
// attempt goes to CLC_IP. Without CLC_IP it is kept (it is all there is)
// unless the controller there would not have us.
func (r *runner) failedAt(addr string, out outcome) {
	if addr != r.discovered || addr == r.Controller {
		return
	}
	if r.Controller != "" || out == outRefused {
		r.log.Info("dropping the address a JOIN announced", "controller", addr, "next", orNone(r.Controller))
		r.discovered = ""
	}
}

// nextAllowed is the earliest time the attempt limit lets the next
// connection start (zero: now).
func (r *runner) nextAllowed() time.Time {
	if len(r.recent) < r.MaxAttempts {
		return time.Time{}
	}
	return r.recent[len(r.recent)-r.MaxAttempts].Add(attemptWindow)
}

// capDelay is the backoff's cap, jittered like its other delays.
func (r *runner) capDelay() time.Duration {
	f := rand.Float64
	if r.bo.Rand != nil {
		f = r.bo.Rand
	}
	return time.Duration(float64(r.bo.Max) * (1 - r.bo.Jitter*f()))
}

// stable is called once a session has stayed registered for StableAfter:
// the outage is over for good, so backoff and limit start afresh.
func (r *runner) stable() {
	r.bo.Reset()
	r.recent = nil
	r.kicks = 0
	r.kickWarned = false
	r.log.Debug("link stable", "after", r.StableAfter)
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
func (r *runner) logFailure(out outcome, err error, delay time.Duration) {
	msg := err.Error()
	lv, what := slog.LevelWarn, "controller link down"
	switch {
	case out == outNoAddress:
		// Discovery is the normal start without CLC_IP, not a failure.
		lv, what = slog.LevelInfo, "waiting for a JOIN to find the controller"
	case out == outKicked && r.kickWarned:
		lv = slog.LevelDebug // said once per run of kicks
	case out == outKicked:
		r.kickWarned = true
	}
	if msg == r.lastErr {
		lv = slog.LevelDebug
	}
	r.lastErr = msg
	r.log.Log(context.Background(), lv, what, "err", msg, "attempts", r.attempts, "retry_in", delay.Round(time.Millisecond))
}

// wait waits until the time until, or less when listen is set and a JOIN
// arrives on Group: then until a random 0..JoinSpread later (but not before
// the attempt limit allows). It returns the first such JOIN's address.
// cause is the failure to show while waiting; the link state is published
// once the wait is set up, so that whoever sees it knows the timer runs.
func (r *runner) wait(ctx context.Context, until time.Time, listen bool, cause error) (netip.AddrPort, bool) {
	t := r.clock.NewTimer(until.Sub(r.clock.Now()))
	defer func() { t.Stop() }()
	status := state.LinkDisconnected
	var joins chan netip.AddrPort
	if listen {
		pc, err := r.ListenJoin(ctx, r.Group)
		if err != nil {
			lv := slog.LevelWarn
			if err.Error() == r.lastListen {
				lv = slog.LevelDebug
			}
			r.lastListen = err.Error()
			r.log.Log(ctx, lv, "cannot listen for JOIN; will retry", "group", r.Group.String(), "err", err)
		} else {
			r.lastListen = ""
			status = state.LinkDiscovering
			joins = make(chan netip.AddrPort)
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
	var join netip.AddrPort
	for {
		select {
		case <-ctx.Done():
			return netip.AddrPort{}, false
		case <-t.C():
			return join, join.IsValid()
		case a := <-joins:
			if join.IsValid() {
				continue // the first JOIN has set the time already
			}
			join = a
			now := r.clock.Now()
			at := now.Add(time.Duration(r.Rand() * float64(r.JoinSpread)))
			if next := r.nextAllowed(); next.After(at) {
				at = next
			}
			if at.Before(until) {
				t.Stop()
				t = r.clock.NewTimer(at.Sub(now))
				until = at
			}
			r.log.Debug("JOIN seen", "controller", a.String(), "retry_in", until.Sub(now).Round(time.Millisecond))
		}
	}
}

// readJoins reads datagrams until pc is closed, passing on valid JOINs
// sent to the group and logging anything else (the first at warning
// level, the rest at debug).
func (r *runner) readJoins(pc JoinConn, joins chan<- netip.AddrPort, done <-chan struct{}) {
	buf := make([]byte, 1500)
	for {
		n, from, to, err := pc.ReadJoin(buf)
		if err != nil {
			select {
			case <-done:
			default:
				r.log.Warn("JOIN listener failed", "err", err)
			}
			return
		}
		j, err := wire.ParseJoinDatagram(buf[:n])
		switch {
		case to != r.Group.Addr():
			// Unicast (or another group): anyone can send those.
			err = fmt.Errorf("sent to %s, not to the group %s", addrText(to), r.Group.Addr())
		case err == nil && !usable(j.Addr.Addr()):
			err = fmt.Errorf("JOIN announces %s, not a unicast address", j.Addr.Addr())
		}
		if err != nil {
			lv := slog.LevelWarn
			if r.badJoins > 0 {
				lv = slog.LevelDebug
			}
			r.badJoins++
			r.log.Log(context.Background(), lv, "ignoring datagram that is not a JOIN to the group", "from", from.String(), "bytes", n, "err", err)
			continue
		}
		select {
		case joins <- j.Addr:
		case <-done:
			return
		}
	}
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "an unknown address"
	}
	return a.String()
}

// usable reports whether a JOIN's address is one to connect to.
func usable(ip netip.Addr) bool {
	return !ip.IsUnspecified() && !ip.IsMulticast() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
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
