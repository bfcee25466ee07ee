// Package clcd is a LuoYun cloud controller for local use: it speaks the
// controller's side of the protocol (spec: controller-protocol.md) the way
// the controllers in the field behave, so that the demo shows an agent
// registering, the tests and benchmarks have a peer, and appliance builders
// can try an image without a cloud (`osmanager controller`, see Command).
//
// Behaviour, as the spec describes the field's controller:
//   - It answers auth step 1 at once, before checking anything, and sends
//     steps 2 and 3 back to back (one write).
//   - An unknown tag gets no reply at all; the connection stays open.
//   - A wrong answer to its challenge closes the connection, with no
//     failure packet. Answers are compared like strcasecmp.
//   - REGISTER_REPLY is 1021, or 1022 when not authenticated or the status
//     is not 7 (or the tag differs from the authenticated one). A second
//     REGISTER on a connection gets no reply; so does a REGISTER followed
//     by a REPORT before the reply was sent.
//   - REPORT is never answered; ECHO_REQUEST always is (unless NoEcho).
//   - QUERY is sent on demand (Query); a malformed reply closes the
//     connection, and so does a query that times out.
//   - A new auth with a tag that has a session closes the older session.
//   - Packets over 40959 bytes and unknown types close the connection;
//     TCP keepalive is idle 10 s, interval 10 s, 3 probes.
//   - A JOIN datagram goes out at start-up, every JoinEvery (11 s), and on
//     SendJoin.
//
// Every event is one JSON line on Log, and is passed to OnEvent.
package clcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/clc/wire"
)

// DefaultJoinEvery is how often the field's controller multicasts JOIN.
const DefaultJoinEvery = 11 * time.Second

// Server is a local controller. Fill Instances and the fields wanted;
// Listen (or Run) binds. A Server may be Run again after Run returned:
// that is a controller restart, on the same port, with counters kept.
type Server struct {
	// Listen is the TCP address; default "127.0.0.1:1369". With port 0 the
	// first Listen picks a port and later ones (restarts) reuse it.
	Listen    string
	Instances map[int32]string // tag → KEY
	Log       io.Writer        // one JSON line per event; nil for none
	// JoinTo is where JOIN datagrams go: a multicast group and port, or any
	// UDP address. The zero value sends none.
	JoinTo    netip.AddrPort
	JoinEvery time.Duration // default 11 s; negative: only at start and on SendJoin
	// Advertise is the address a JOIN announces; default the listener's
	// (which must then be a specific IP).
	Advertise netip.AddrPort
	NoEcho    bool        // never answer ECHO_REQUEST: a dead controller, for tests
	OnEvent   func(Event) // called with each event, in order, after it is logged

	mu         sync.Mutex
	ln         net.Listener
	addr       netip.AddrPort
	running    bool
	udp        *net.UDPConn
	advertised netip.AddrPort
	conns      map[*session]bool
	byTag      map[int32]*session
	regs       map[int32]int
	reports    map[int32]int32
	changed    chan struct{} // closed and replaced on every event
	nextJob    int32
	logMu      sync.Mutex
	sessions   sync.WaitGroup
}

// Event is something that happened, as logged.
type Event struct {
	Time   time.Time
	Name   string // EventRegistered, …
	Tag    int32  // -1 when not known
	Remote string // the agent's address
	IP     string // the ip an agent registered or answered a query with
	Value  int32  // register result, report value, query status
	Job    int32  // query job id
	Detail string // why, in words
}

// Event names.
const (
	EventListening       = "listening"
	EventStopped         = "stopped"
	EventJoinSent        = "join_sent"
	EventConnected       = "connected"
	EventAuthRequest     = "auth_request"
	EventUnknownTag      = "unknown_tag"
	EventReplaced        = "session_replaced"
	EventAuthenticated   = "authenticated"
	EventAuthFailed      = "auth_failed"
	EventRegistered      = "registered"
	EventRegisterRefused = "register_refused"
	EventRegisterIgnored = "register_ignored"
	EventReport          = "report"
	EventEarlyReport     = "report_before_register_reply"
	EventEcho            = "echo"
	EventQuerySent       = "query_sent"
	EventQueryReply      = "query_reply"
	EventClosed          = "closed"
)

// Stats is a snapshot of what the server has seen since it was made.
type Stats struct {
	Registrations map[int32]int   // successful registrations per tag
	Reports       map[int32]int32 // last REPORT per tag
	Sessions      int             // open connections
	Registered    []int32         // tags with a registered session now
}

func (s *Server) init() {
	if s.conns == nil {
		s.conns, s.byTag, s.regs, s.reports = map[*session]bool{}, map[int32]*session{}, map[int32]int{}, map[int32]int32{}
		s.changed = make(chan struct{})
	}
}

// ListenAndAddr binds the TCP listener, if not yet bound, and returns its
// address.
func (s *Server) ListenAndAddr() (netip.AddrPort, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.ln != nil {
		return s.addr, nil
	}
	addr := s.Listen
	if addr == "" {
		addr = "127.0.0.1:1369"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %q: %w", addr, err)
	}
	if port == "0" && s.addr.IsValid() {
		addr = net.JoinHostPort(host, fmt.Sprint(s.addr.Port())) // a restart: same port
	}
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	s.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return s.addr, nil
}

var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 10 * time.Second, Count: 3}

// Addr returns the bound address (valid once listening).
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run serves until ctx ends, then closes the listener and every session,
// waits for them, and returns nil.
func (s *Server) Run(ctx context.Context) error {
	addr, err := s.ListenAndAddr()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("clcd: Run called twice at once")
	}
	s.running = true
	ln := s.ln
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.ln = false, nil
		s.mu.Unlock()
	}()

	adv, err := s.advertise(addr)
	if err != nil && s.JoinTo.IsValid() {
		ln.Close()
		return err
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		ln.Close()
		s.closeAll()
		wg.Wait()
		s.sessions.Wait()
		s.mu.Lock()
		if s.udp != nil {
			s.udp.Close()
			s.udp = nil
		}
		s.mu.Unlock()
		s.event(Event{Name: EventStopped, Tag: -1, Detail: addr.String()})
	}()
	s.event(Event{Name: EventListening, Tag: -1, Detail: addr.String()})
	if s.JoinTo.IsValid() {
		if err := s.openJoin(adv); err != nil {
			return err
		}
		s.SendJoin()
		if every := s.joinEvery(); every > 0 {
			wg.Go(func() {
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						s.SendJoin()
					}
				}
			})
		}
	}
	wg.Go(func() {
		<-ctx.Done()
		ln.Close()
	})
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		s.serve(ctx, c)
	}
}

func (s *Server) joinEvery() time.Duration {
	if s.JoinEvery == 0 {
		return DefaultJoinEvery
	}
	return s.JoinEvery
}

func (s *Server) advertise(addr netip.AddrPort) (netip.AddrPort, error) {
	if s.Advertise.IsValid() {
		return s.Advertise, nil
	}
	if !addr.Addr().Is4() || addr.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("JOIN needs an IPv4 address to announce: listening on %s, so give Advertise (-advertise)", addr)
	}
	return addr, nil
}

// openJoin makes the socket JOINs leave from; multicast goes out of the
// interface holding the advertised address, as the field's controller
// does.
func (s *Server) openJoin(adv netip.AddrPort) error {
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return fmt.Errorf("JOIN socket: %w", err)
	}
	if s.JoinTo.Addr().IsMulticast() {
		raw, err := c.SyscallConn()
		if err == nil {
			var serr error
			err = raw.Control(func(fd uintptr) {
				serr = unix.SetsockoptInet4Addr(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, adv.Addr().As4())
			})
			err = errors.Join(err, serr)
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("JOIN socket: multicast interface %s: %w", adv.Addr(), err)
		}
	}
	s.mu.Lock()
	s.udp = c
	s.advertised = adv
	s.mu.Unlock()
	return nil
}

// SendJoin sends one JOIN datagram now.
func (s *Server) SendJoin() error {
	s.mu.Lock()
	c, adv := s.udp, s.advertised
	s.mu.Unlock()
	if c == nil {
		return errors.New("clcd: not sending JOINs (no JoinTo, or not running)")
	}
	b, _ := wire.Append(nil, wire.Join{Addr: adv})
	_, err := c.WriteToUDPAddrPort(b, s.JoinTo)
	ev := Event{Name: EventJoinSent, Tag: -1, Detail: fmt.Sprintf("join %s to %s", adv, s.JoinTo)}
	if err != nil {
		ev.Detail += ": " + err.Error()
	}
	s.event(ev)
	return err
}

// event logs e as one JSON line and hands it to OnEvent.
func (s *Server) event(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.Log != nil {
		line := struct {
			Time   string `json:"time"`
			Event  string `json:"event"`
			Tag    *int32 `json:"tag,omitempty"`
			Remote string `json:"remote,omitempty"`
			IP     string `json:"ip,omitempty"`
			Value  *int32 `json:"value,omitempty"`
			Job    *int32 `json:"job,omitempty"`
			Detail string `json:"detail,omitempty"`
		}{Time: e.Time.Format(time.RFC3339Nano), Event: e.Name, Remote: e.Remote, IP: e.IP, Detail: e.Detail}
		if e.Tag >= 0 {
			line.Tag = &e.Tag
		}
		switch e.Name {
		case EventRegistered, EventRegisterRefused, EventReport, EventQueryReply:
			line.Value = &e.Value
		}
		if e.Name == EventQuerySent || e.Name == EventQueryReply {
			line.Job = &e.Job
		}
		b, _ := json.Marshal(line)
		s.Log.Write(append(b, '\n'))
	}
	if s.OnEvent != nil {
		s.OnEvent(e)
	}
	s.mu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	st := Stats{Registrations: map[int32]int{}, Reports: map[int32]int32{}, Sessions: len(s.conns)}
	for k, v := range s.regs {
		st.Registrations[k] = v
	}
	for k, v := range s.reports {
		st.Reports[k] = v
	}
	for tag, c := range s.byTag {
		if c.isRegistered() {
			st.Registered = append(st.Registered, tag)
		}
	}
	return st
}

// Wait blocks until cond holds for the server's stats, or ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		s.init()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Stats()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("clcd: waiting: %w (stats %+v)", ctx.Err(), s.Stats())
		}
	}
}

// WaitRegistered blocks until tag has registered n times in all (across
// restarts), or ctx ends.
func (s *Server) WaitRegistered(ctx context.Context, tag int32, n int) error {
	return s.Wait(ctx, func(st Stats) bool { return st.Registrations[tag] >= n })
}

// Query sends OSM_QUERY_REQUEST to tag's session and waits for the reply.
// If ctx's deadline passes first, the session is dropped, as the field's
// controller drops it when the job times out.
func (s *Server) Query(ctx context.Context, tag int32) (wire.QueryReply, error) {
	s.mu.Lock()
	c := s.byTag[tag]
	s.nextJob++
	job := s.nextJob
	s.mu.Unlock()
	if c == nil || !c.isAuthenticated() {
		return wire.QueryReply{}, fmt.Errorf("clcd: query: tag %d has no authenticated session", tag)
	}
	ch := c.expect(job)
	s.event(Event{Name: EventQuerySent, Tag: tag, Remote: c.remote, Job: job})
	if err := c.send(wire.QueryRequest{JobID: job}); err != nil {
		c.forget(job)
		return wire.QueryReply{}, fmt.Errorf("clcd: query: %w", err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return wire.QueryReply{}, fmt.Errorf("clcd: query job %d: session closed (%s)", job, c.reason())
		}
		return r, nil
	case <-ctx.Done():
		c.forget(job)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.close(fmt.Sprintf("query job %d timed out", job))
		}
		return wire.QueryReply{}, fmt.Errorf("clcd: query job %d: %w", job, ctx.Err())
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	var all []*session
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.close("controller stopping")
	}
}
