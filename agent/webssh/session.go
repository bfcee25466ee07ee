package webssh

import (
	"errors"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"osmanager/agent/clock"
)

const (
	maxFrame     = 64 << 10         // output bytes per websocket message
	inAckEvery   = 16 << 10         // input acknowledged at least every this many bytes
	pingEvery    = 30 * time.Second // keepalive while attached (session clock)
	readTimeout  = 75 * time.Second // no pong for this long: the connection is dead
	writeTimeout = 10 * time.Second
	readBuffer   = 1 << 10 // websocket read buffer per attachment
	// deadlineSlack is how much of writeTimeout may pass before the write
	// deadline is moved on.
	deadlineSlack = time.Second
	helloTimeout  = 10 * time.Second
	// echoWait bounds how long the websocket reader polls the pty for the
	// echo of a keystroke it has just written (term.awaitEcho); echoMax
	// is the largest input taken for a keystroke.
	echoWait = 200 * time.Microsecond
	echoMax  = 8
)

// errProtocol is a client breaking the websocket protocol.
var errProtocol = errors.New("protocol violation")

// term is one terminal session: a shell, its output buffer and at most
// one attached websocket. Goroutines: read (shell → buffer), run (buffer →
// websocket, timers, the end), and drain while queued input waits for the
// shell; the attached websocket's reader (a goroutine the HTTP handler
// starts before it returns) feeds input, resizes and acks, and after a
// keystroke reads the shell's echo itself (awaitEcho).
type term struct {
	srv     *Server
	id      SessionID
	login   *login
	sh      shell
	clk     clock.Clock
	started time.Time

	kick       chan struct{} // wakes run
	room       chan struct{} // wakes read when acks free room
	stop       chan struct{} // closed when the session starts to end
	stopOnce   sync.Once
	readerDone chan struct{}
	drains     sync.WaitGroup

	lastInput atomic.Int64 // clock time of the last input, unix nanoseconds
	rmu       sync.Mutex   // held while the shell is read and the bytes committed: read or awaitEcho
	echoMiss  atomic.Bool  // the last awaitEcho saw nothing: none until the shell prints again

	mu         sync.Mutex
	buf        outbuf
	acked      uint64   // output the client has processed
	inflight   uint64   // start of the frame being written (MaxUint64: none); one writer at a time
	views      [][]byte // the reader's frame slices
	att        *attachment
	detachedAt time.Time
	eof        bool   // the reader is done: no more output
	code       int    // the shell's exit status, once eof
	hangup     string // why the agent ends the session; "" while it lives

	inMu      sync.Mutex
	inq       []byte
	inRecv    uint64 // input received from clients
	inWritten uint64 // input written to the shell
	writing   bool   // a drain goroutine runs
}

// attachment is a websocket attached to a term.
type attachment struct {
	conn      *websocket.Conn
	wmu       sync.Mutex // one writer at a time
	wdl       time.Time  // the write deadline set last; under wmu
	sent      uint64     // output sent up to here (set before the write)
	inAckSent uint64
	pingAt    time.Time
	closeOnce sync.Once
}

// deadline keeps the write deadline between writeTimeout-deadlineSlack
// and writeTimeout ahead, setting it only when it has come nearer than
// that: one timer update a second at most, not one per frame. The caller
// holds wmu.
func (a *attachment) deadline() {
	now := time.Now()
	if a.wdl.Sub(now) < writeTimeout-deadlineSlack {
		a.wdl = now.Add(writeTimeout)
		a.conn.SetWriteDeadline(a.wdl)
	}
}

func (a *attachment) write(m Msg) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.deadline()
	return a.conn.WriteMessage(websocket.BinaryMessage, m.Append(nil))
}

// send writes m as one binary frame within writeTimeout. The caller
// holds the connection's write lock, or is its only writer.
func send(conn *websocket.Conn, m Msg) error {
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return conn.WriteMessage(websocket.BinaryMessage, m.Append(nil))
}

func (a *attachment) writeOutput(from uint64, views [][]byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.deadline()
	w, err := a.conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	var hdr [outputHeaderLen]byte
	Output{Offset: from}.Append(hdr[:0])
	w.Write(hdr[:])
	for _, v := range views {
		if _, err := w.Write(v); err != nil {
			return err
		}
	}
	return w.Close()
}

func (a *attachment) ping() error {
	return a.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
}

// close ends the websocket with a close frame (best effort), then closes it.
func (a *attachment) close(code int, reason string) {
	a.closeOnce.Do(func() {
		if len(reason) > 120 {
			reason = reason[:120]
		}
		a.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		a.conn.Close()
	})
}

func newTerm(srv *Server, id SessionID, l *login, sh shell) *term {
	now := srv.cfg.Clock.Now()
	t := &term{
		srv: srv, id: id, login: l, sh: sh, clk: srv.cfg.Clock, started: now,
		kick: make(chan struct{}, 1), room: make(chan struct{}, 1), stop: make(chan struct{}),
		readerDone: make(chan struct{}), inflight: math.MaxUint64,
		buf: outbuf{pool: &srv.pool},
	}
	t.lastInput.Store(now.UnixNano())
	t.detachedAt = now
	return t
}

func (t *term) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// end asks the session to end for reason.
func (t *term) end(reason string) {
	t.mu.Lock()
	if t.hangup == "" {
		t.hangup = reason
	}
	t.mu.Unlock()
	t.stopOnce.Do(func() { close(t.stop) })
	t.wake()
}

// read moves shell output into the buffer while there is room in the window.
func (t *term) read() {
	defer close(t.readerDone)
	ps, poll := t.sh.(pollShell)
	for {
		room := t.waitRoom()
		if room == 0 {
			break
		}
		var err error
		if poll {
			err = t.readPoll(ps)
		} else {
			err = t.readPlain(room)
		}
		if err != nil {
			break
		}
	}
	code, _ := t.sh.Wait()
	t.mu.Lock()
	t.eof, t.code = true, code
	t.mu.Unlock()
	t.wake()
}

// readPoll reads what the pty has once it is readable, in a pooled buffer
// taken only then: an idle session holds no read buffer. The room is taken
// again under rmu, as awaitEcho may have filled some of it meanwhile.
func (t *term) readPoll(ps pollShell) error {
	var rerr error
	err := ps.readWhenReady(func(fd int) bool {
		t.rmu.Lock()
		defer t.rmu.Unlock()
		room := t.roomNow()
		if room == 0 {
			return true // waitRoom again
		}
		var n int
		n, rerr = t.readCommit(fd, room)
		if n > 0 {
			t.echoMiss.Store(false)
		}
		return n > 0 || rerr != nil
	})
	if err != nil {
		return err
	}
	return rerr
}

// readCommit reads what the pty master fd has now, up to room bytes, and
// commits it. The caller holds rmu.
func (t *term) readCommit(fd, room int) (int, error) {
	b := t.srv.pool.get()
	defer t.srv.pool.put(b)
	p := (*b)[:min(room, cap(*b))]
	n := 0
	var rerr error
	for n < len(p) {
		k, err := rawRead(fd, p[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		if k == 0 {
			rerr = io.EOF
			break
		}
		n += k
	}
	if n > 0 {
		t.commit(p[:n])
	}
	return n, rerr
}

// awaitEcho polls the pty for the echo of a keystroke the websocket reader
// has just written and sends it from this goroutine. A shell echoes a key
// in tens of µs; left to the reader, the echo would wait for the runtime
// poller's wake-up and, with the CPU gone idle meanwhile, for the CPU's
// own (a virtual CPU's halt exit), each as long as the shell's work. The
// poll is bounded by echoWait and yields the CPU between tries, so a shell
// sharing the CPU runs first. It is skipped with one CPU, without a pty,
// while output is pending or half a frame of it unacknowledged (a flood
// goes the reader's way, and acks keep flowing), and after a poll that saw
// nothing (a password prompt, a program that does not echo) until the
// shell prints again: at most echoWait of CPU per keystroke, and only
// while it pays.
func (t *term) awaitEcho() {
	ps, ok := t.sh.(pollShell)
	if !ok || !multiCPU() || t.echoMiss.Load() {
		return
	}
	end := time.Now().Add(echoWait)
	for {
		if !t.rmu.TryLock() {
			return // the reader has it
		}
		var n int
		var err error
		if room := t.echoRoom(); room > 0 {
			ps.withFd(func(fd int) { n, err = t.readCommit(fd, room) })
		} else {
			err = errNoRoom
		}
		t.rmu.Unlock()
		if n > 0 || err != nil {
			return // sent, or the reader's business
		}
		if time.Now().After(end) {
			t.echoMiss.Store(true)
			return
		}
		rawYield()
	}
}

// errNoRoom ends awaitEcho when output is pending or the window is full.
var errNoRoom = errors.New("no room")

// multiCPU reports whether a poll can run beside the shell (and beside
// the agent's other goroutines).
func multiCPU() bool { return runtime.NumCPU() > 1 && runtime.GOMAXPROCS(0) > 1 }

// roomNow is how much output the window takes now; 0 when the session ends.
func (t *term) roomNow() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.roomLocked()
}

func (t *term) roomLocked() int {
	w := uint64(t.srv.cfg.Window)
	if t.hangup != "" || t.buf.end-t.acked >= w {
		return 0
	}
	return int(w - (t.buf.end - t.acked))
}

// echoRoom is roomNow while a websocket is attached, all output has been
// sent and less than half a frame awaits its ack (no flood in flight); 0
// otherwise.
func (t *term) echoRoom() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.att == nil || t.att.sent != t.buf.end || t.inflight != math.MaxUint64 || t.buf.end-t.acked >= maxFrame/2 {
		return 0
	}
	return t.roomLocked()
}

func (t *term) readPlain(room int) error {
	b := t.srv.pool.get()
	defer t.srv.pool.put(b)
	n, err := t.sh.Read((*b)[:min(room, cap(*b))])
	if n > 0 {
		t.commit((*b)[:n])
	}
	return err
}

// commit appends output to the buffer. When a websocket is attached and
// no frame is being written, the reader sends the new output itself: one
// goroutine hand-off less per pty read, for keystroke echo and for floods.
func (t *term) commit(p []byte) {
	t.mu.Lock()
	t.buf.append(p)
	a := t.att
	if a != nil && t.holdLocked(a) {
		t.mu.Unlock()
		return // ack wakes run
	}
	if a == nil || t.inflight != math.MaxUint64 || t.hangup != "" || a.sent >= t.buf.end {
		t.mu.Unlock()
		t.wake()
		return
	}
	from := a.sent
	to := t.buf.cut(from, min(t.buf.end, from+maxFrame))
	if to <= from {
		t.mu.Unlock()
		return
	}
	t.views = t.buf.views(t.views[:0], from, to)
	a.sent, t.inflight = to, from
	t.mu.Unlock()
	err := a.writeOutput(from, t.views)
	clear(t.views)
	t.mu.Lock()
	t.inflight = math.MaxUint64
	t.trimLocked()
	// Wake run if output waits, or if a resume replaced a while this
	// frame went out (run left the new attachment to us meanwhile).
	more := t.att != a || a.sent < t.buf.end
	t.mu.Unlock()
	if err != nil {
		t.detach(a)
	} else if more {
		t.wake()
	}
}

// holdLocked reports whether new output should wait to grow into a bigger
// frame: the client still has a frame's worth sent and not processed, so
// sending now gains it nothing, and a browser processes one 64 kB message
// far faster than sixteen 4 kB ones. Its next Ack, or a full window,
// releases the output.
func (t *term) holdLocked(a *attachment) bool {
	return !t.eof && a.sent-t.acked >= maxFrame && t.buf.end-a.sent < maxFrame/2 &&
		t.buf.end-t.acked < uint64(t.srv.cfg.Window) // a full window grows no more
}

// waitRoom waits until the window has room and returns how much; 0 when
// the session is ending.
func (t *term) waitRoom() int {
	for {
		t.mu.Lock()
		room, ending := t.roomLocked(), t.hangup != ""
		t.mu.Unlock()
		if ending {
			return 0
		}
		if room > 0 {
			return room
		}
		select {
		case <-t.room:
		case <-t.stop:
			return 0
		}
	}
}

// trimLocked releases acknowledged output, never what a write in flight uses.
func (t *term) trimLocked() {
	t.buf.trim(min(t.acked, t.inflight))
}

// ack records that the client processed output up to off.
func (t *term) ack(a *attachment, off uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.att != a {
		return nil
	}
	if off > a.sent {
		return errProtocol
	}
	if off > t.acked {
		t.acked = off
		t.trimLocked()
		select {
		case t.room <- struct{}{}:
		default:
		}
		if a.sent < t.buf.end {
			t.wake()
		}
	}
	return nil
}

// input queues p for the shell. A pty takes keystrokes at once, from this
// goroutine; what it does not take waits for a drain goroutine, so the
// websocket reader never blocks on the shell (acks must keep flowing). A
// keystroke the pty took whole has its echo awaited here (awaitEcho).
func (t *term) input(p []byte) error {
	direct, err := t.queueInput(p)
	if direct && len(p) <= echoMax {
		t.awaitEcho()
	}
	return err
}

// queueInput writes p to the pty or queues it; direct reports that the
// pty took all of it at once.
func (t *term) queueInput(p []byte) (direct bool, err error) {
	t.lastInput.Store(t.clk.Now().UnixNano())
	t.inMu.Lock()
	defer t.inMu.Unlock()
	if len(t.inq)+len(p) > t.srv.cfg.InWindow {
		return false, errProtocol
	}
	t.inRecv += uint64(len(p))
	before := t.inWritten
	if !t.writing && len(t.inq) == 0 {
		if ps, ok := t.sh.(pollShell); ok {
			n, err := ps.tryWrite(p)
			if err != nil {
				return false, nil // the shell is gone; the session ends by itself
			}
			t.inWritten += uint64(n)
			p = p[n:]
			direct = len(p) == 0
		}
	}
	if len(p) > 0 {
		t.inq = append(t.inq, p...)
		if !t.writing {
			t.writing = true
			t.drains.Add(1)
			go t.drain()
		}
	}
	if before/inAckEvery != t.inWritten/inAckEvery {
		t.wake()
	}
	return direct, nil
}

// drain writes queued input to the shell, blocking as the shell allows.
func (t *term) drain() {
	defer t.drains.Done()
	for {
		t.inMu.Lock()
		q := t.inq
		if len(q) == 0 {
			t.inq, t.writing = nil, false
			t.inMu.Unlock()
			t.wake()
			return
		}
		t.inq = nil
		t.inMu.Unlock()
		for len(q) > 0 {
			n, err := t.sh.Write(q)
			q = q[n:]
			t.inMu.Lock()
			t.inWritten += uint64(n)
			t.inMu.Unlock()
			t.wake()
			if err != nil {
				t.inMu.Lock()
				t.inq, t.writing = nil, false
				t.inMu.Unlock()
				return
			}
		}
	}
}

// attach makes a the session's websocket, replacing any other, and tells
// the client where its output resumes.
func (t *term) attach(a *attachment, offset uint64, resumed bool) error {
	a.wmu.Lock()
	t.mu.Lock()
	if t.hangup != "" {
		t.mu.Unlock()
		a.wmu.Unlock()
		return errors.New("session ending")
	}
	m := Attached{ID: t.id, Window: uint32(t.srv.cfg.Window), InWindow: uint32(t.srv.cfg.InWindow)}
	if resumed {
		m.Flags |= FlagResumed
	}
	offset = min(offset, t.buf.end)
	if offset < t.buf.start {
		offset = t.buf.start
		m.Flags |= FlagGap
	}
	if offset > t.acked {
		t.acked = offset
		t.trimLocked()
		select {
		case t.room <- struct{}{}:
		default:
		}
	}
	m.Offset = offset
	a.sent = offset
	a.pingAt = t.clk.Now().Add(pingEvery)
	old := t.att
	t.att = a
	t.mu.Unlock()
	t.inMu.Lock()
	m.InOffset = t.inRecv
	t.inMu.Unlock()
	a.deadline()
	err := a.conn.WriteMessage(websocket.BinaryMessage, m.Append(nil))
	a.wmu.Unlock()
	if old != nil {
		old.close(websocket.ClosePolicyViolation, "taken over by another connection")
	}
	t.wake()
	return err
}

// detach forgets a if it is still attached; the resume window starts.
func (t *term) detach(a *attachment) {
	t.mu.Lock()
	if t.att == a {
		t.att = nil
		t.detachedAt = t.clk.Now()
	}
	t.mu.Unlock()
	a.conn.Close()
	t.wake()
}

// expiry returns why the session must end now, if it must.
func (t *term) expiry(now time.Time) string {
	cfg := &t.srv.cfg
	switch {
	case !now.Before(t.started.Add(cfg.MaxSession)):
		return "maximum session length reached"
	case !now.Before(time.Unix(0, t.lastInput.Load()).Add(cfg.IdleTimeout)):
		return "idle timeout"
	case t.att == nil && !now.Before(t.detachedAt.Add(cfg.ResumeWindow)):
		if t.eof {
			return "shell exited while disconnected"
		}
		return "not resumed in time"
	}
	return ""
}

// deadline returns when run must next look at the clock.
func (t *term) deadline() time.Time {
	cfg := &t.srv.cfg
	d := t.started.Add(cfg.MaxSession)
	if idle := time.Unix(0, t.lastInput.Load()).Add(cfg.IdleTimeout); idle.Before(d) {
		d = idle
	}
	if t.att == nil {
		if r := t.detachedAt.Add(cfg.ResumeWindow); r.Before(d) {
			d = r
		}
	} else if t.att.pingAt.Before(d) {
		d = t.att.pingAt
	}
	return d
}

// run sends output to the attached websocket, keeps the timers and ends
// the session.
func (t *term) run() {
	var (
		timer   clock.Timer
		timerAt time.Time
		views   [][]byte
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := t.clk.Now()
		t.mu.Lock()
		if t.hangup == "" {
			t.hangup = t.expiry(now)
		}
		if t.hangup != "" {
			t.mu.Unlock()
			t.finish()
			return
		}
		a := t.att
		if a != nil && a.sent < t.buf.end && t.inflight == math.MaxUint64 && !t.holdLocked(a) {
			from, to := a.sent, min(t.buf.end, a.sent+maxFrame)
			if !t.eof {
				to = t.buf.cut(from, to)
			}
			if to > from {
				views = t.buf.views(views[:0], from, to)
				a.sent, t.inflight = to, from
				t.mu.Unlock()
				err := a.writeOutput(from, views)
				clear(views)
				t.mu.Lock()
				t.inflight = math.MaxUint64
				t.trimLocked()
				t.mu.Unlock()
				if err != nil {
					t.detach(a)
				}
				continue
			}
		}
		if a != nil {
			t.inMu.Lock()
			written, drained := t.inWritten, len(t.inq) == 0
			t.inMu.Unlock()
			if written-a.inAckSent >= inAckEvery || drained && written != a.inAckSent && written-a.inAckSent >= inAckEvery/4 {
				a.inAckSent = written
				t.mu.Unlock()
				if err := a.write(InputAck{Offset: written}); err != nil {
					t.detach(a)
				}
				continue
			}
			if t.eof && a.sent == t.buf.end {
				t.hangup = "exited"
				t.mu.Unlock()
				t.finish()
				return
			}
			if !now.Before(a.pingAt) {
				a.pingAt = now.Add(pingEvery)
				t.mu.Unlock()
				if err := a.ping(); err != nil {
					t.detach(a)
				}
				continue
			}
		}
		next := t.deadline()
		t.mu.Unlock()
		if timer == nil || next.Before(timerAt) {
			if timer != nil {
				timer.Stop()
			}
			// From the clock's time now, not the loop's start: a clock
			// that jumped meanwhile (a test's fake one, or a suspend)
			// would otherwise set the timer late by the jump.
			timer, timerAt = t.clk.NewTimer(next.Sub(t.clk.Now())), next
		}
		select {
		case <-t.kick:
		case <-timer.C():
			timer = nil
		}
	}
}

// finish tells the attached client why the session ends, hangs up the
// shell (SIGKILL after the grace period), waits for the session's
// goroutines and removes it.
func (t *term) finish() {
	t.stopOnce.Do(func() { close(t.stop) })
	t.mu.Lock()
	reason, a, eof, code := t.hangup, t.att, t.eof, t.code
	t.att = nil
	t.mu.Unlock()
	if a != nil {
		m := Exit{Code: -1, Reason: reason}
		if eof && reason == "exited" {
			m = Exit{Code: int32(code), Reason: "shell exited"}
		}
		a.write(m)
		a.close(websocket.CloseNormalClosure, m.Reason)
	}
	if !eof {
		t.sh.Hangup()
		grace := t.clk.NewTimer(t.srv.cfg.KillGrace)
		select {
		case <-t.readerDone:
		case <-grace.C():
			t.sh.Kill()
			<-t.readerDone
		}
		grace.Stop()
	}
	<-t.readerDone
	t.drains.Wait()
	t.mu.Lock()
	t.buf.trim(t.buf.end)
	code = t.code
	t.mu.Unlock()
	t.srv.removeTerm(t, reason, code)
}
