package clcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"osmanager/agent/clc/wire"
)

// session is one agent connection on the controller side.
type session struct {
	srv    *Server
	conn   net.Conn
	remote string

	wmu sync.Mutex // serializes writes (the handler and Query write)

	mu            sync.Mutex
	tag           int32 // -1 until an AUTH_REQUEST names one
	key           string
	challenge     wire.Challenge
	challenged    bool
	authenticated bool
	registered    bool
	registerSeen  bool // a REGISTER arrived on this connection
	pendingReply  bool // REGISTER accepted, reply not yet sent
	regIP         string
	jobs          map[int32]chan wire.QueryReply
	why           string // why it closed
	closed        bool
}

func (s *Server) serve(ctx context.Context, c net.Conn) {
	sess := &session{srv: s, conn: c, remote: c.RemoteAddr().String(), tag: -1, jobs: map[int32]chan wire.QueryReply{}}
	s.mu.Lock()
	s.conns[sess] = true
	s.mu.Unlock()
	s.sessions.Add(1)
	go func() {
		defer s.sessions.Done()
		sess.run(ctx)
	}()
}

func (c *session) run(ctx context.Context) {
	c.srv.event(Event{Name: EventConnected, Tag: -1, Remote: c.remote})
	rd := wire.NewReader(c.conn)
	var err error
	for {
		var p wire.Packet
		p, err = rd.Next()
		if err != nil {
			break
		}
		if err = c.handle(p); err != nil {
			break
		}
		// A REGISTER is answered once nothing else is waiting in the
		// buffer: a REPORT that came with it cancels the answer.
		if c.takePendingReply(rd.Buffered() == 0) {
			if err = c.replyRegistered(); err != nil {
				break
			}
		}
	}
	why := c.reason()
	if why == "" {
		switch {
		case errors.Is(err, io.EOF):
			why = "agent closed the connection"
		case ctx.Err() != nil:
			why = "controller stopping"
		default:
			why = err.Error()
		}
	}
	c.close(why)
	s := c.srv
	s.mu.Lock()
	delete(s.conns, c)
	tag := c.tag
	if s.byTag[tag] == c {
		delete(s.byTag, tag)
	}
	s.mu.Unlock()
	s.event(Event{Name: EventClosed, Tag: tag, Remote: c.remote, Detail: why})
}

func (c *session) send(ms ...wire.Message) error {
	var b []byte
	for _, m := range ms {
		var err error
		if b, err = wire.Append(b, m); err != nil {
			return err
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// close closes the connection once, remembering the first reason.
func (c *session) close(why string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.why = true, why
	for job, ch := range c.jobs {
		close(ch)
		delete(c.jobs, job)
	}
	c.mu.Unlock()
	c.conn.Close()
}

func (c *session) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

func (c *session) isRegistered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registered
}

func (c *session) isAuthenticated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authenticated
}

func (c *session) expect(job int32) chan wire.QueryReply {
	ch := make(chan wire.QueryReply, 1)
	c.mu.Lock()
	if c.closed {
		close(ch)
	} else {
		c.jobs[job] = ch
	}
	c.mu.Unlock()
	return ch
}

func (c *session) forget(job int32) {
	c.mu.Lock()
	delete(c.jobs, job)
	c.mu.Unlock()
}

func (c *session) ev(name string) Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Event{Name: name, Tag: c.tag, Remote: c.remote}
}

// handle acts on one packet; an error closes the connection with it as
// the reason.
func (c *session) handle(p wire.Packet) error {
	m, err := wire.Decode(p)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case wire.AuthRequest:
		return c.authRequest(m)
	case wire.AuthReply:
		return c.authReply(m)
	case wire.RegisterRequest:
		return c.register(m)
	case wire.Report:
		return c.report(m)
	case wire.EchoRequest:
		e := c.ev(EventEcho)
		e.Detail = fmt.Sprintf("%d bytes", len(m.Data))
		if c.srv.NoEcho {
			e.Detail += ", not answered (NoEcho)"
			c.srv.event(e)
			return nil
		}
		c.srv.event(e)
		return c.send(wire.EchoReply(m))
	case wire.EchoReply:
		return nil
	case wire.QueryReply:
		return c.queryReply(m)
	}
	return fmt.Errorf("unexpected %s from an agent", p.Type)
}

// authRequest is step 1: answer at once, then challenge, in one write.
func (c *session) authRequest(m wire.AuthRequest) error {
	s := c.srv
	e := c.ev(EventAuthRequest)
	e.Tag = m.Tag
	s.event(e)
	key, known := s.Instances[m.Tag]
	if !known || wire.CheckKey(key) != nil {
		e.Name, e.Detail = EventUnknownTag, "no reply; connection left open"
		s.event(e)
		return nil
	}
	s.mu.Lock()
	old := s.byTag[m.Tag]
	s.byTag[m.Tag] = c
	s.mu.Unlock()
	if old != nil && old != c {
		old.close("replaced by a new session of the same tag")
		ev := Event{Name: EventReplaced, Tag: m.Tag, Remote: old.remote, Detail: "new session from " + c.remote}
		s.event(ev)
	}
	answer, err := wire.Crypt(key, m.Data)
	if err != nil {
		return err
	}
	ch := wire.NewUUIDChallenge()
	c.mu.Lock()
	c.tag, c.key, c.challenge, c.challenged, c.authenticated = m.Tag, key, ch, true, false
	c.mu.Unlock()
	return c.send(wire.AuthReply{Tag: m.Tag, Data: answer}, wire.AuthRequest{Tag: m.Tag, Data: [wire.AuthDataLen]byte(ch)})
}

// authReply checks the agent's answer to our challenge; a wrong one
// closes the connection without a word.
func (c *session) authReply(m wire.AuthReply) error {
	c.mu.Lock()
	if !c.challenged {
		c.mu.Unlock()
		return errors.New("OSM_AUTH_REPLY before any challenge")
	}
	plain, err := wire.Crypt(c.key, m.Data)
	ok := err == nil && c.challenge.MatchesFold(plain)
	c.challenged = false
	c.authenticated = ok
	c.mu.Unlock()
	if !ok {
		c.srv.event(c.ev(EventAuthFailed))
		return errors.New("wrong answer to the challenge")
	}
	c.srv.event(c.ev(EventAuthenticated))
	return nil
}

func (c *session) register(m wire.RegisterRequest) error {
	c.mu.Lock()
	again := c.registerSeen
	c.registerSeen = true
	auth, tag := c.authenticated, c.tag
	c.mu.Unlock()
	e := c.ev(EventRegisterRefused)
	e.IP = m.IP
	if again {
		e.Name, e.Detail = EventRegisterIgnored, "second REGISTER on this connection: no reply"
		c.srv.event(e)
		return nil
	}
	switch {
	case !auth:
		e.Detail = "not authenticated"
	case m.Status != wire.StateUnregistered:
		e.Detail = fmt.Sprintf("status %d, want %d", m.Status, wire.StateUnregistered)
	case m.Tag != tag:
		e.Detail = fmt.Sprintf("registers tag %d, authenticated as %d", m.Tag, tag)
	default:
		c.mu.Lock()
		c.pendingReply, c.regIP = true, m.IP
		c.mu.Unlock()
		return nil
	}
	e.Value = wire.RegisterFailed
	c.srv.event(e)
	return c.send(wire.RegisterReply{Result: wire.RegisterFailed})
}

// takePendingReply reports whether a REGISTER reply is due now.
func (c *session) takePendingReply(now bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pendingReply || !now {
		return false
	}
	c.pendingReply = false
	return true
}

func (c *session) replyRegistered() error {
	if err := c.send(wire.RegisterReply{Result: wire.RegisterOK}); err != nil {
		return err
	}
	s := c.srv
	c.mu.Lock()
	c.registered = true
	tag, ip := c.tag, c.regIP
	c.mu.Unlock()
	s.mu.Lock()
	s.regs[tag]++
	s.mu.Unlock()
	e := c.ev(EventRegistered)
	e.IP, e.Value = ip, wire.RegisterOK
	s.event(e)
	return nil
}

func (c *session) report(m wire.Report) error {
	c.mu.Lock()
	registered := c.registered
	early := !registered && c.pendingReply
	if early {
		c.pendingReply = false // the field's controller never answers it now
	}
	tag := c.tag
	c.mu.Unlock()
	if !registered {
		e := c.ev(EventEarlyReport)
		e.Detail = fmt.Sprintf("REPORT %d before REGISTER_REPLY; the register stays unanswered", m.Status)
		c.srv.event(e)
		return nil
	}
	s := c.srv
	s.mu.Lock()
	s.reports[tag] = m.Status
	s.mu.Unlock()
	e := c.ev(EventReport)
	e.Value, e.Detail = m.Status, "application "+wire.AppMeaning(m.Status)
	s.event(e)
	return nil
}

func (c *session) queryReply(m wire.QueryReply) error {
	c.mu.Lock()
	ch := c.jobs[m.JobID]
	delete(c.jobs, m.JobID)
	c.mu.Unlock()
	e := c.ev(EventQueryReply)
	e.Job, e.Value, e.IP = m.JobID, m.Status, m.IP
	if ch == nil {
		e.Detail = "no such job waiting"
	}
	if m.Tag != e.Tag {
		e.Detail = fmt.Sprintf("reply names tag %d", m.Tag)
	}
	c.srv.event(e)
	if ch != nil {
		ch <- m
	}
	return nil
}
