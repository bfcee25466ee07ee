package clc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/clock"
	"osmanager/agent/state"
)

// phase is where a session stands; each has its own timeout and its own
// reading of a close.
type phase int

const (
	phaseAuthReply   phase = iota // sent our challenge (step 1), awaiting its answer (step 2)
	phaseAuthRequest              // checked its answer, awaiting its challenge (step 3)
	phaseRegister                 // answered and sent REGISTER_REQUEST, awaiting REGISTER_REPLY
	phaseRegistered               // reporting; heartbeat running
)

// session is one connection to the controller, from the first AUTH_REQUEST
// to the close. Only the session's own goroutine writes to conn; a reader
// goroutine hands it the packets.
type session struct {
	*runner
	conn    net.Conn
	addr    string
	localIP string
	phase   phase
	start   time.Time
	buf     []byte // write buffer

	challenge wire.Challenge // ours, until the controller has answered it

	step     timer // the handshake step's deadline
	steady   timer // StableAfter since registering
	beat     timer // next heartbeat
	echo     timer // the pending heartbeat's deadline
	report   timer // next unchanged re-report
	echoData []byte
	echoSeq  uint64
	reported bool
	lastSent int32

	registeredAt time.Time
	isStable     bool // registered for StableAfter
	closedByPeer bool // the controller closed the connection
}

// timer is a clock.Timer that may be unset; its channel is nil then, so a
// select ignores it.
type timer struct{ t clock.Timer }

func (t *timer) set(c clock.Clock, d time.Duration) {
	t.stop()
	t.t = c.NewTimer(d)
}

func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

func (t *timer) C() <-chan time.Time {
	if t.t == nil {
		return nil
	}
	return t.t.C()
}

// session runs one connection until it fails or ctx ends, and closes it.
// The error says what went wrong in words an operator can act on; the
// outcome what it tells about the controller.
func (r *runner) session(ctx context.Context, conn net.Conn, addr string) (outcome, error) {
	s := &session{runner: r, conn: conn, addr: addr, localIP: localIP(conn), start: r.clock.Now()}
	err := s.run(ctx)
	return s.outcome(err), err
}

func (s *session) run(ctx context.Context) error {
	r, conn, addr := s.runner, s.conn, s.addr
	packets := make(chan wire.Packet, 16)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { readErr <- readLoop(conn, packets, done) })
	// Closing conn is what stops a blocked write or read, whether the
	// session ends on its own or ctx ends.
	stopAfter := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stopAfter()
		close(done)
		conn.Close()
		wg.Wait()
		for _, t := range []*timer{&s.step, &s.steady, &s.beat, &s.echo, &s.report} {
			t.stop()
		}
	}()

	r.setLink(func(l *state.Link) { l.Status, l.Controller = state.LinkAuthenticating, addr })
	r.log.Debug("connected", "controller", addr, "local_ip", s.localIP)
	if err := s.sendChallenge(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			// The reader queued every packet it read before it failed:
			// handle those first, so a REGISTER_REPLY 1022 followed by a
			// close reads as a refusal, not as a close.
			if herr := s.drain(packets); herr != nil {
				return herr
			}
			return s.closed(err)
		case p := <-packets:
			if err := s.handle(p); err != nil {
				return err
			}
		case <-s.step.C():
			return s.stepTimeout()
		case <-s.steady.C():
			s.steady.stop()
			s.isStable = true
			s.stable()
		case <-s.beat.C():
			if err := s.heartbeat(); err != nil {
				return err
			}
		case <-s.echo.C():
			return fmt.Errorf("controller did not answer ECHO_REQUEST within %s: %w", s.EchoTimeout, errLinkDead)
		case <-s.report.C():
			if err := s.sendReport(true); err != nil {
				return err
			}
		case <-s.status.changed:
			if err := s.sendReport(false); err != nil {
				return err
			}
		}
	}
}

func (s *session) drain(packets <-chan wire.Packet) error {
	for {
		select {
		case p := <-packets:
			if err := s.handle(p); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func readLoop(conn net.Conn, packets chan<- wire.Packet, done <-chan struct{}) error {
	rd := wire.NewReader(conn)
	for {
		p, err := rd.Next()
		if err != nil {
			return err
		}
		select {
		case packets <- p:
		case <-done:
			return nil
		}
	}
}

// send writes the messages in one write, with a deadline.
func (s *session) send(ms ...wire.Message) error {
	s.buf = s.buf[:0]
	for _, m := range ms {
		var err error
		if s.buf, err = wire.Append(s.buf, m); err != nil {
			return err
		}
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.StepTimeout))
	if _, err := s.conn.Write(s.buf); err != nil {
		return fmt.Errorf("write %s to controller: %w", ms[0].Type(), err)
	}
	return nil
}

// sendChallenge is auth step 1. The step timer is set before the write, so
// that whoever reads the packet knows the deadline is running.
func (s *session) sendChallenge() error {
	ch := wire.NewChallenge()
	if s.newChallenge != nil {
		ch = s.newChallenge()
	}
	enc, err := wire.Crypt(s.Key, ch)
	if err != nil {
		return err
	}
	s.phase = phaseAuthReply
	s.step.set(s.clock, s.StepTimeout)
	s.challenge = ch
	return s.send(wire.AuthRequest{Tag: s.Tag, Data: enc})
}

func (s *session) handle(p wire.Packet) error {
	m, err := wire.Decode(p)
	if err != nil {
		return fmt.Errorf("bad packet from controller: %w", err)
	}
	switch m := m.(type) {
	case wire.EchoRequest:
		return s.send(wire.EchoReply(m))
	case wire.EchoReply:
		if s.echoData != nil && bytes.Equal(m.Data, s.echoData) {
			s.echo.stop()
			s.echoData = nil
			s.log.Debug("heartbeat answered")
		} else {
			s.log.Debug("ignoring an ECHO_REPLY we did not ask for", "bytes", len(m.Data))
		}
		return nil
	case wire.QueryRequest:
		if s.phase == phaseAuthReply {
			// The field's controllers query registered sessions only; one
			// that has not proved it knows KEY gets nothing.
			s.log.Debug("ignoring OSM_QUERY_REQUEST: the controller has not passed our challenge", "job", m.JobID)
			return nil
		}
		st := s.queryState()
		lv := slog.LevelDebug // repeats: a cloud may query every few seconds
		if st != s.lastQuery {
			lv = slog.LevelInfo
		}
		s.lastQuery = st
		s.log.Log(context.Background(), lv, "query answered", "job", m.JobID, "status", st)
		return s.send(wire.QueryReply{JobID: m.JobID, Tag: s.Tag, Status: st, IP: s.localIP})
	case wire.AuthReply:
		return s.authReply(m)
	case wire.AuthRequest:
		return s.authRequest(m)
	case wire.RegisterReply:
		return s.registerReply(m)
	}
	return fmt.Errorf("unexpected %s from controller (%s)", p.Type, s.phaseName())
}

// authReply is step 2: the controller's answer must be our challenge,
// exactly, which proves it knows KEY.
func (s *session) authReply(m wire.AuthReply) error {
	if s.phase != phaseAuthReply {
		return fmt.Errorf("unexpected OSM_AUTH_REPLY from controller (%s)", s.phaseName())
	}
	if m.Tag != s.Tag {
		return fmt.Errorf("controller answered auth step 2 for tag %d; we are tag %d", m.Tag, s.Tag)
	}
	if !s.challenge.Equal(m.Data) {
		return errors.New("controller failed our challenge (auth step 2): it does not know our KEY, or our KEY is wrong")
	}
	s.challenge = wire.Challenge{}
	s.phase = phaseAuthRequest
	s.step.set(s.clock, s.StepTimeout)
	s.log.Debug("controller authenticated")
	return nil
}

// authRequest is step 3: answer the controller's challenge, then register
// in the same write.
func (s *session) authRequest(m wire.AuthRequest) error {
	if s.phase != phaseAuthRequest {
		// Never answer a challenge from a controller that has not proved
		// itself: the answer would hand it RC4 keystream.
		return fmt.Errorf("unexpected OSM_AUTH_REQUEST from controller (%s)", s.phaseName())
	}
	if m.Tag != s.Tag {
		return fmt.Errorf("controller sent auth step 3 for tag %d; we are tag %d", m.Tag, s.Tag)
	}
	ans, err := wire.Crypt(s.Key, m.Data)
	if err != nil {
		return err
	}
	s.phase = phaseRegister
	s.step.set(s.clock, s.StepTimeout)
	return s.send(wire.AuthReply{Tag: s.Tag, Data: ans},
		wire.RegisterRequest{Tag: s.Tag, Status: wire.StateUnregistered, IP: s.localIP})
}

func (s *session) registerReply(m wire.RegisterReply) error {
	if s.phase != phaseRegister {
		return fmt.Errorf("unexpected OSM_REGISTER_REPLY from controller (%s)", s.phaseName())
	}
	switch m.Result {
	case wire.RegisterOK:
	case wire.RegisterFailed:
		return errors.New("controller refused registration (REGISTER_REPLY 1022)")
	default:
		return fmt.Errorf("controller answered registration with %d, neither 1021 nor 1022", m.Result)
	}
	s.step.stop()
	s.phase = phaseRegistered
	s.registeredAt = s.clock.Now()
	// The backoff starts afresh only once this session has lasted: a
	// controller that kicks us at once (another instance with our TAG)
	// must not get us back within a second.
	s.steady.set(s.clock, s.StableAfter)
	s.beat.set(s.clock, s.beatPeriod())
	took := s.registeredAt.Sub(s.start)
	// Logged before it shows, so whoever sees the state finds the line.
	s.log.Info("registered with controller", "controller", s.addr, "local_ip", s.localIP, "tag", s.Tag, "attempts", s.attempts, "took", took.Round(time.Microsecond))
	s.setLink(func(l *state.Link) { l.Status, l.LastError = state.LinkRegistered, "" })
	s.lastErr = ""
	s.attempts = 0 // the outage is over
	return s.sendReport(true)
}

// sendReport reports the application status, if known and registered:
// always when force, else only when it changed since the last report.
func (s *session) sendReport(force bool) error {
	if s.phase != phaseRegistered {
		return nil
	}
	v, known := s.status.get()
	if !known || (!force && s.reported && v == s.lastSent) {
		return nil
	}
	if err := s.send(wire.Report{Status: v}); err != nil {
		return err
	}
	s.reported, s.lastSent = true, v
	s.report.set(s.clock, s.ReportEvery)
	now := s.clock.Now()
	s.setLink(func(l *state.Link) { l.LastReport = &state.Report{Value: v, At: now} })
	s.log.Debug("report sent", "value", v, "meaning", wire.AppMeaning(v))
	return nil
}

func (s *session) heartbeat() error {
	if s.echoData == nil {
		s.echoSeq++
		s.echoData = binary.BigEndian.AppendUint64([]byte("osm"), s.echoSeq)
		s.echo.set(s.clock, s.EchoTimeout)
	}
	s.beat.set(s.clock, s.beatPeriod())
	return s.send(wire.EchoRequest{Data: s.echoData})
}

// beatPeriod is Heartbeat ±10 %, drawn anew for each beat, so that a fleet
// registered in the same second does not echo in the same second forever.
func (s *session) beatPeriod() time.Duration {
	return time.Duration(float64(s.Heartbeat) * (0.9 + 0.2*s.Rand()))
}

func (s *session) queryState() int32 {
	switch s.phase {
	case phaseAuthReply, phaseAuthRequest:
		return wire.StateAuthenticating
	case phaseRegister:
		return wire.StateRegistering
	}
	return queryState(s.status.get())
}

func (s *session) phaseName() string {
	switch s.phase {
	case phaseAuthReply:
		return "waiting for OSM_AUTH_REPLY, auth step 2"
	case phaseAuthRequest:
		return "waiting for OSM_AUTH_REQUEST, auth step 3"
	case phaseRegister:
		return "waiting for OSM_REGISTER_REPLY"
	}
	return "registered"
}

func (s *session) stepTimeout() error {
	switch s.phase {
	case phaseAuthReply:
		return fmt.Errorf("no OSM_AUTH_REPLY (auth step 2) within %s: controller silent: unknown TAG %d, or overloaded", s.StepTimeout, s.Tag)
	case phaseAuthRequest:
		return fmt.Errorf("no OSM_AUTH_REQUEST (auth step 3) within %s", s.StepTimeout)
	}
	return fmt.Errorf("no OSM_REGISTER_REPLY within %s", s.StepTimeout)
}

// closed explains a read error in terms of where the session stood.
func (s *session) closed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		s.closedByPeer = true
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		if errors.Is(err, wire.ErrTooLong) || errors.Is(err, wire.ErrUnknownType) || errors.Is(err, wire.ErrTruncated) {
			return fmt.Errorf("bad packet from controller (%s): %w", s.phaseName(), err)
		}
		return fmt.Errorf("read from controller (%s): %w", s.phaseName(), err)
	}
	switch s.phase {
	case phaseRegister:
		return errors.New("controller closed the connection before OSM_REGISTER_REPLY; it does that when it rejects our auth answer (wrong KEY for this TAG?)")
	case phaseRegistered:
		if s.isStable {
			return errors.New("controller closed the connection")
		}
		return fmt.Errorf("controller closed the connection %s after registering", s.clock.Now().Sub(s.registeredAt).Round(time.Millisecond))
	}
	return fmt.Errorf("controller closed the connection (%s)", s.phaseName())
}

// errLinkDead: no ECHO_REPLY in time.
var errLinkDead = errors.New("link dead")

// outcome classifies how the session ended. A close by the controller
// soon after registering counts as a kick; the second in a row turns err
// into the question an operator should ask.
func (s *session) outcome(err error) outcome {
	if s.phase != phaseRegistered {
		return outRefused
	}
	if errors.Is(err, errLinkDead) {
		return outClosed
	}
	if !s.closedByPeer || s.isStable {
		if s.closedByPeer {
			s.kicks = 0
		}
		return outClosed
	}
	s.kicks++
	if s.kicks < 2 {
		return outClosed
	}
	return outKicked
}

// localIP is the address the controller sees us at, for REGISTER and query
// replies.
func localIP(c net.Conn) string {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap().String()
		}
	}
	return "empty" // what the old agent sent when it had no address
}
