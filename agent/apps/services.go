package apps

// Declared services: the apps.d dir (agent/apps/appsd parses it) turned
// into units, each an app the manager starts for the declaration, on the
// same runner as every other run.
//
// A unit is a named service of apps.d, or an entry of its "apps" list. A
// unit whose app's manifest declares sockets holds them: the agent binds
// them when the unit is made and a loop goroutine waits (poll(2), no
// accept) for a connection; the first one starts the app with the
// sockets handed over (runner.Spec.Listen), so the connection waits in
// the kernel's backlog until the app accepts it, never refused. While the
// run lives the loop only waits for its end (the runner restarts it by
// its policy, with the same sockets); once it is final the agent watches
// the sockets again. Activations count against the app's start limit:
// more than burst within interval and the unit fails, its sockets closed
// (a client is refused rather than left hanging), until a reload. A run
// holding the agent's sockets stops with the agent (StopWithAgent): the
// next agent binds them again.
//
// An eager unit starts when made (a socket unit: its first run without
// waiting for a connection); an eager unit without sockets whose app
// already has a live run (adopted after an agent restart, or started by
// hand) takes that run: never a second one. A lazy unit without sockets
// has nothing to start it: it is listed idle.
//
// Reload reads the dir again and compares each unit's fingerprint
// (provider, args, eager, sockets, the app's installed tree): a new unit
// is made, a removed one stopped (its run terminated, its sockets
// closed), a changed one stopped and made again, an unchanged one left
// alone; a failed one is made again. Install, rollback and uninstall of
// a provider apply the last read declaration again (not the dir: edits
// wait for a reload).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/appsd"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/runner"
	"osmanager/agent/sysroot"
)

// unit is one declared service or eager app.
type unit struct {
	key   string // the service name, or "app:<id>"
	name  string // the service name; "" for an apps entry
	app   string
	args  []string
	eager bool
	file  string
	socks pack.Sockets
	limit pack.StartLimit
	fp    string // what a reload compares

	files []*os.File // the bound sockets, blocking; fds 3, 4, … of the runs
	names []string   // their LISTEN_FDNAMES
	unix  []boundPath

	kick   chan chan error // start now (start or once of the provider)
	ended  chan uint64     // a run of the unit became final
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop returns; nil: no loop

	mu     sync.Mutex
	state  apitypes.RunState // listening, idle or failed; "" while its run is the state
	runid  uint64
	count  int
	starts []time.Time
	err    string
}

type boundPath struct {
	host string
	ino  uint64
}

// declKey is how a problem names the unit's entry.
func (u *unit) declKey() string {
	if u.name != "" {
		return "services." + u.name
	}
	return fmt.Sprintf("apps %q", u.app)
}

func (u *unit) set(st apitypes.RunState, err string) {
	u.mu.Lock()
	u.state, u.err = st, err
	u.mu.Unlock()
}

// decl is the session's declared units.
type decl struct {
	mu     sync.Mutex // held by apply, and briefly by readers
	files  []appsd.File
	cfg    appsd.Config
	loaded time.Time
	units  map[string]*unit
	ctx    context.Context // the units' loops; ends with Serve
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool // Serve is ending: nothing more is made
}

// readDecl reads the apps.d dir's *.json files; a file that cannot be
// read is a problem of its own.
func (m *Manager) readDecl() ([]appsd.File, []appsd.Problem) {
	dir := m.cfg.AppsD
	if dir == "" {
		return nil, nil
	}
	names, err := m.cfg.Root.ReadDirNames(dir)
	if err != nil {
		return nil, []appsd.Problem{{File: dir, Message: err.Error()}}
	}
	slices.Sort(names)
	var files []appsd.File
	var probs []appsd.Problem
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		name := dir + "/" + n
		fi, err := m.cfg.Root.Lstat(name)
		if err == nil && !fi.Mode().IsRegular() {
			probs = append(probs, appsd.Problem{File: n, Message: "not a regular file; refused"})
			continue
		}
		data, err := m.cfg.Root.ReadFile(name, appsd.MaxFile+1)
		if err != nil {
			probs = append(probs, appsd.Problem{File: n, Message: "cannot read: " + err.Error()})
			continue
		}
		files = append(files, appsd.File{Name: n, Data: data})
	}
	return files, probs
}

// parseDecl parses files against the installed apps.
func (m *Manager) parseDecl(s *session, files []appsd.File, probs []appsd.Problem) appsd.Config {
	cfg := appsd.Parse(files, func(id string) bool {
		_, err := s.st.Get(id)
		return err == nil
	})
	cfg.Problems = append(probs, cfg.Problems...)
	return cfg
}

// units makes the units of cfg (nothing bound or started yet).
func (m *Manager) units(s *session, cfg appsd.Config) map[string]*unit {
	out := map[string]*unit{}
	mk := func(key, name, app string, args []string, eager bool, file string) {
		u := &unit{key: key, name: name, app: app, args: args, eager: eager, file: file,
			limit: pack.StartLimit{Burst: pack.DefaultBurst, Interval: pack.Duration(pack.DefaultInterval)}}
		tree := ""
		if a, err := s.st.Get(app); err == nil {
			tree = a.Current.Tree
			if mf := a.Current.Manifest; mf != nil {
				u.socks = mf.Socket
				if mf.StartLimit != nil {
					u.limit = *mf.StartLimit
				}
			}
		}
		u.fp = fmt.Sprintf("%s\x00%q\x00%v\x00%v\x00%s", app, args, eager, u.socks, tree)
		out[key] = u
	}
	for _, sv := range cfg.Services {
		mk(sv.Name, sv.Name, sv.App, sv.Args, sv.Eager, sv.File)
	}
	for _, a := range cfg.Apps {
		mk("app:"+a.App, "", a.App, a.Args, true, a.File)
	}
	return out
}

// socketApps lists the apps of cfg's units that hold sockets: recover
// leaves them to their units.
func (m *Manager) socketApps(s *session, cfg appsd.Config) map[string]bool {
	out := map[string]bool{}
	for _, u := range m.units(s, cfg) {
		if len(u.socks) > 0 {
			out[u.app] = true
		}
	}
	return out
}

// apply makes the session's units those of files: see the comment at
// the top. force names an app whose units are made again even if
// unchanged ("" for none).
func (m *Manager) apply(ctx context.Context, s *session, files []appsd.File, probs []appsd.Problem, force string) apitypes.Reloaded {
	d := &s.decl
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return apitypes.Reloaded{Added: []string{}, Removed: []string{}, Changed: []string{}, Unchanged: []string{}, ServiceList: m.serviceList(s)}
	}
	cfg := m.parseDecl(s, files, probs)
	for _, p := range cfg.Problems {
		m.log.Error("declared service refused", "file", p.File, "key", p.Key, "err", p.Message)
	}
	next := m.units(s, cfg)
	rep := apitypes.Reloaded{Added: []string{}, Removed: []string{}, Changed: []string{}, Unchanged: []string{}}
	var keys []string
	for k := range d.units {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		old := d.units[k]
		nu := next[k]
		old.mu.Lock()
		failed := old.state == apitypes.Failed
		old.mu.Unlock()
		switch {
		case nu == nil:
			m.closeUnit(ctx, s, old, true)
			delete(d.units, k)
			rep.Removed = append(rep.Removed, k)
			m.log.Info("declared service removed", "unit", k, "app", old.app)
		case nu.fp != old.fp || failed || old.app == force:
			m.closeUnit(ctx, s, old, true)
			delete(d.units, k)
			rep.Changed = append(rep.Changed, k)
		default:
			rep.Unchanged = append(rep.Unchanged, k)
			delete(next, k)
		}
	}
	keys = keys[:0]
	for k := range next {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		u := next[k]
		if !slices.Contains(rep.Changed, k) {
			rep.Added = append(rep.Added, k)
		}
		d.units[k] = u
		m.openUnit(ctx, s, u)
	}
	d.files, d.cfg, d.loaded = files, cfg, time.Now().UTC()
	rep.ServiceList = m.serviceList(s)
	return rep
}

// redeclare applies the last read declaration again after the app id
// was installed, rolled back or removed.
func (m *Manager) redeclare(ctx context.Context, s *session, id string) {
	if m.cfg.AppsD == "" {
		return
	}
	s.decl.mu.Lock()
	files := s.decl.files
	var probs []appsd.Problem
	for _, p := range s.decl.cfg.Problems {
		if !slices.ContainsFunc(files, func(f appsd.File) bool { return f.Name == p.File }) {
			probs = append(probs, p) // a file that could not be read
		}
	}
	s.decl.mu.Unlock()
	m.apply(ctx, s, files, probs, id)
}

// dropUnits stops the units of app id before it is removed, so that no
// connection starts it meanwhile.
func (m *Manager) dropUnits(ctx context.Context, s *session, id string) {
	d := &s.decl
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, u := range d.units {
		if u.app == id {
			m.closeUnit(ctx, s, u, true)
			delete(d.units, k)
		}
	}
}

// socketUnit returns the unit of app id that holds sockets, if any.
func (m *Manager) socketUnit(s *session, id string) *unit {
	d := &s.decl
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.units {
		if u.app == id && len(u.socks) > 0 {
			return u
		}
	}
	return nil
}

// openUnit binds the unit's sockets and starts its loop, or starts (or
// takes) the run of an eager unit without sockets.
func (m *Manager) openUnit(ctx context.Context, s *session, u *unit) {
	u.kick, u.ended = make(chan chan error), make(chan uint64, 4)
	log := m.log.With("unit", u.key, "app", u.app)
	if len(u.socks) == 0 {
		if !u.eager {
			u.set(apitypes.Idle, "")
			log.Info("declared service without a socket: not started (list it in startup_services, or start its app)")
			return
		}
		if live := m.live(s, u.app); len(live) > 0 {
			u.mu.Lock()
			u.runid = live[0]
			u.mu.Unlock()
			s.mu.Lock()
			if e := s.runs[live[0]]; e != nil {
				e.unit = u
			}
			s.mu.Unlock()
			log.Info("declared app already runs; its run is taken", "runid", live[0])
			return
		}
		if _, err := m.unitStart(ctx, s, u); err != nil {
			log.Error("declared app not started", "err", err)
			return
		}
		return
	}
	if err := m.bind(u); err != nil {
		msg := fmt.Sprintf("%s: %s: %v", u.file, u.declKey(), err)
		log.Error("declared service's socket refused", "err", msg)
		u.set(apitypes.Failed, msg)
		return
	}
	u.set(apitypes.Listening, "")
	log.Info("declared service listening", "sockets", socketNames(u.socks), "eager", u.eager)
	var first uint64
	if u.eager {
		// The first run before the load returns, as without sockets.
		u.overLimit(time.Now())
		u.set("", "")
		rs, err := m.unitStart(ctx, s, u)
		if err != nil {
			log.Error("declared service not started; it waits for a connection", "err", err)
			u.set(apitypes.Listening, err.Error())
		} else {
			log.Info("declared service started", "why", "eager", "runid", rs.RunID)
			first = rs.RunID
		}
	}
	lctx, cancel := context.WithCancel(s.decl.ctx)
	u.cancel, u.done = cancel, make(chan struct{})
	s.decl.wg.Add(1)
	go func() {
		defer s.decl.wg.Done()
		m.unitLoop(lctx, s, u, first)
	}()
}

// closeUnit ends the unit's loop, terminates its live run (with stopRun)
// and closes its sockets.
func (m *Manager) closeUnit(ctx context.Context, s *session, u *unit, stopRun bool) {
	if u.cancel != nil {
		u.cancel()
		<-u.done
	}
	u.mu.Lock()
	runid := u.runid
	u.mu.Unlock()
	if stopRun && runid != 0 {
		if rs, err := s.r.State(runid); err == nil && !rs.State.Final() {
			if _, err := s.r.Terminate(ctx, runid); err != nil {
				m.log.Warn("declared service's run not stopped", "unit", u.key, "runid", runid, "err", err)
			}
		}
	}
	u.closeSockets()
}

func (u *unit) closeSockets() {
	for _, f := range u.files {
		f.Close()
	}
	for _, p := range u.unix {
		if inodeOf(p.host) == p.ino && p.ino != 0 {
			os.Remove(p.host)
		}
	}
	u.files, u.unix = nil, nil
}

func socketNames(ss pack.Sockets) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Network()+" "+s.Listen)
	}
	return out
}

// bind binds the unit's sockets (all or none).
func (m *Manager) bind(u *unit) error {
	for _, sk := range u.socks {
		f, bp, err := m.bindOne(sk)
		if err != nil {
			u.closeSockets()
			return fmt.Errorf("socket %s %s: %w", sk.Network(), sk.Listen, err)
		}
		u.files = append(u.files, f)
		u.names = append(u.names, cmpOr(sk.Name, u.app))
		if bp.host != "" {
			u.unix = append(u.unix, bp)
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// socketMode is the mode of a service's Unix socket: anyone may connect
// (as systemd's SocketMode default); the app decides who it serves.
const socketMode = 0o666

// bindOne binds one socket and returns it as a blocking file.
func (m *Manager) bindOne(sk pack.Socket) (*os.File, boundPath, error) {
	if err := pack.CheckListen(sk.Listen); err != nil {
		return nil, boundPath{}, err
	}
	var ln net.Listener
	var bp boundPath
	if sk.Unix() {
		if m.cfg.Sys == nil {
			return nil, bp, errors.New("no system root for Unix sockets")
		}
		if _, err := m.cfg.Sys.MkdirAll(dirOf(sk.Listen), 0o755, 0o755, sysroot.Keep); err != nil {
			return nil, bp, err
		}
		host, err := m.cfg.Sys.Path(sk.Listen)
		if err != nil {
			return nil, bp, err
		}
		if len(host) > 107 {
			return nil, bp, fmt.Errorf("%s: over 107 bytes, the limit of a Unix socket path", host)
		}
		if err := removeStale(host); err != nil {
			return nil, bp, err
		}
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: host, Net: "unix"})
		if err != nil {
			return nil, bp, err
		}
		ul.SetUnlinkOnClose(false)
		if err := os.Chmod(host, socketMode); err != nil {
			ul.Close()
			os.Remove(host)
			return nil, bp, err
		}
		ln, bp = ul, boundPath{host: host, ino: inodeOf(host)}
	} else {
		var err error
		if ln, err = net.Listen("tcp", sk.Listen); err != nil {
			return nil, bp, err
		}
	}
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	ln.Close() // the dup in f keeps the socket
	if err == nil {
		err = unix.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		if bp.host != "" {
			os.Remove(bp.host)
		}
		return nil, boundPath{}, err
	}
	return f, bp, nil
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// removeStale removes a Unix socket nobody listens on; a live one or
// anything else is an error.
func removeStale(host string) error {
	fi, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket; not removed", host)
	}
	if c, err := net.DialTimeout("unix", host, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: address already in use (another process listens on it)", host)
	}
	return os.Remove(host)
}

func inodeOf(p string) uint64 {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return 0
	}
	return st.Ino
}

// unitLoop serves a socket unit until ctx ends or it fails; current is
// the run it has started already (0 for none).
func (m *Manager) unitLoop(ctx context.Context, s *session, u *unit, current uint64) {
	defer close(u.done)
	log := m.log.With("unit", u.key, "app", u.app)
	for {
		if current != 0 {
			for done := false; !done; {
				select {
				case <-ctx.Done():
					return
				case id := <-u.ended:
					done = id == current
				case r := <-u.kick:
					r <- errRunning
				}
			}
			log.Info("declared service's run ended; its sockets are watched again", "runid", current)
			current = 0
		}
		u.set(apitypes.Listening, "")
		reply, ok := u.waitConn(ctx)
		if !ok {
			return
		}
		why := "connection"
		if reply != nil {
			why = "start"
		}
		if msg := u.overLimit(time.Now()); msg != "" {
			log.Error("declared service failed; its sockets are closed until a reload", "reason", msg)
			u.closeSockets()
			u.set(apitypes.Failed, fmt.Sprintf("%s: %s: %s", u.file, u.declKey(), msg))
			answer(reply, apperr.New(apperr.CantStart, msg))
			return
		}
		u.set("", "")
		woke := time.Now()
		rs, err := m.unitStart(ctx, s, u)
		answer(reply, err)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("declared service's run did not start", "why", why, "err", err)
			u.set(apitypes.Listening, err.Error())
			continue
		}
		log.Info("declared service started", "why", why, "runid", rs.RunID, "took", time.Since(woke).Round(time.Microsecond))
		current = rs.RunID
	}
}

// errRunning answers a kick when the unit's run is there already.
var errRunning = errors.New("runs already")

func answer(reply chan error, err error) {
	if reply != nil {
		reply <- err
	}
}

// overLimit counts an activation and says whether it is one too many.
func (u *unit) overLimit(now time.Time) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	iv := u.limit.Interval.D()
	u.starts = slices.DeleteFunc(u.starts, func(t time.Time) bool { return now.Sub(t) >= iv })
	if len(u.starts) >= u.limit.Burst {
		return fmt.Sprintf("start limit hit: %d starts within %s", len(u.starts), iv)
	}
	u.starts = append(u.starts, now)
	return ""
}

// waitConn waits until a connection is pending on one of the sockets
// (ok), a start is asked for (reply set), or ctx ends (not ok).
func (u *unit) waitConn(ctx context.Context) (reply chan error, ok bool) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, false
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	pfds := make([]unix.PollFd, 0, len(u.files)+1)
	for _, f := range u.files {
		pfds = append(pfds, unix.PollFd{Fd: int32(f.Fd()), Events: unix.POLLIN})
	}
	pfds = append(pfds, unix.PollFd{Fd: int32(p[0]), Events: unix.POLLIN})
	res := make(chan error, 1)
	go func() {
		for {
			_, err := unix.Poll(pfds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			res <- err
			return
		}
	}()
	wake := func() {
		unix.Write(p[1], []byte{1})
		<-res
	}
	select {
	case err := <-res:
		return nil, err == nil
	case <-ctx.Done():
		wake()
		return nil, false
	case r := <-u.kick:
		wake()
		return r, true
	}
}

// unitStart starts a run of the unit's app with its args and sockets.
func (m *Manager) unitStart(ctx context.Context, s *session, u *unit) (runner.State, error) {
	a, err := s.st.Get(u.app)
	if err != nil {
		return runner.State{}, err
	}
	if a.Problem != "" {
		return runner.State{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s cannot run: %s", a.ID, a.Problem))
	}
	rs, err := m.startRunFor(ctx, s, a, a.Current, u)
	u.mu.Lock()
	u.count++
	if rs.RunID != 0 {
		u.runid = rs.RunID
	}
	u.mu.Unlock()
	return rs, err
}

// kickUnit starts the socket unit's app now (start or once of its
// provider) and returns its run.
func (m *Manager) kickUnit(ctx context.Context, s *session, u *unit) (apitypes.Started, error) {
	if u.done == nil {
		u.mu.Lock()
		msg := u.err
		u.mu.Unlock()
		return apitypes.Started{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s provides declared service %s, which failed: %s", u.app, u.key, msg))
	}
	r := make(chan error, 1)
	select {
	case u.kick <- r:
	case <-u.done:
		u.mu.Lock()
		msg := cmpOr(u.err, "stopped")
		u.mu.Unlock()
		return apitypes.Started{}, apperr.New(apperr.CantStart, fmt.Sprintf("%s provides declared service %s, which is not running: %s", u.app, u.key, msg))
	case <-ctx.Done():
		return apitypes.Started{}, apperr.Wrap(apperr.Internal, "start "+u.app, ctx.Err())
	}
	var err error
	select {
	case err = <-r:
	case <-ctx.Done():
		return apitypes.Started{}, apperr.Wrap(apperr.Internal, "start "+u.app, ctx.Err())
	}
	existing := errors.Is(err, errRunning)
	if err != nil && !existing {
		return apitypes.Started{}, err
	}
	u.mu.Lock()
	runid := u.runid
	u.mu.Unlock()
	rs, err := s.r.State(runid)
	if err != nil {
		return apitypes.Started{}, runErr(err, runid)
	}
	return apitypes.Started{Run: m.runDoc(s, rs), Existing: existing, Note: fmt.Sprintf("%s runs as run %d for declared service %s, with its sockets", u.app, runid, u.key)}, nil
}

// stopUnits ends every unit's loop and closes the sockets, at the end of
// Serve; the runs are left to the runner's shutdown.
func (m *Manager) stopUnits(s *session) {
	d := &s.decl
	d.mu.Lock() // no apply is under way, and none comes after
	defer d.mu.Unlock()
	d.closed = true
	d.cancel()
	d.wg.Wait() // the loops never take d.mu
	for _, u := range d.units {
		u.closeSockets()
	}
}

// unitDoc is the unit as GET /v1/services shows it.
func (m *Manager) unitDoc(s *session, u *unit) apitypes.Service {
	u.mu.Lock()
	st, runid, count, msg := u.state, u.runid, u.count, u.err
	u.mu.Unlock()
	doc := apitypes.Service{Name: u.name, App: u.app, Args: u.args, Start: apitypes.Lazy, Sockets: socketNames(u.socks),
		RunID: runid, Starts: count, File: u.file, Error: msg}
	if u.eager {
		doc.Start = apitypes.Eager
	}
	if runid != 0 && st != apitypes.Failed {
		if rs, err := s.r.State(runid); err == nil && (st == "" || !rs.State.Final()) {
			st = apitypes.RunState(rs.State)
		}
	}
	if st == "" {
		st = apitypes.Idle
	}
	doc.State = st
	if len(u.socks) == 0 && !u.eager {
		doc.Note = "no socket in its manifest: started only by startup_services or osmctl start"
	}
	return doc
}

func (m *Manager) serviceList(s *session) apitypes.ServiceList {
	d := &s.decl
	l := apitypes.ServiceList{Dir: m.cfg.AppsD, Loaded: d.loaded, Services: []apitypes.Service{}, Problems: []apitypes.ServiceProblem{}}
	keys := make([]string, 0, len(d.units))
	for k := range d.units {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		l.Services = append(l.Services, m.unitDoc(s, d.units[k]))
	}
	for _, p := range d.cfg.Problems {
		l.Problems = append(l.Problems, apitypes.ServiceProblem{File: p.File, Key: p.Key, Message: p.Message})
	}
	return l
}

// Services lists the declared services and the refused entries.
func (m *Manager) Services(ctx context.Context) (apitypes.ServiceList, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.ServiceList{}, err
	}
	s.decl.mu.Lock()
	defer s.decl.mu.Unlock()
	return m.serviceList(s), nil
}

// Reload reads the apps.d dir again and applies it.
func (m *Manager) Reload(ctx context.Context) (apitypes.Reloaded, error) {
	s, err := m.session(ctx)
	if err != nil {
		return apitypes.Reloaded{}, err
	}
	return m.reload(ctx, s), nil
}

func (m *Manager) reload(ctx context.Context, s *session) apitypes.Reloaded {
	files, probs := m.readDecl()
	rep := m.apply(ctx, s, files, probs, "")
	m.log.Info("declared services reloaded", "dir", m.cfg.AppsD, "added", rep.Added, "removed", rep.Removed, "changed", rep.Changed, "unchanged", len(rep.Unchanged), "problems", len(rep.Problems))
	return rep
}

// unitsStarted says whether an eager unit of app id failed to start.
func (m *Manager) unitsStarted(s *session, id string) error {
	d := &s.decl
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(d.units)) {
		u := d.units[k]
		if u.app != id || !u.eager {
			continue
		}
		u.mu.Lock()
		runid, st, msg := u.runid, u.state, u.err
		u.mu.Unlock()
		rs, err := s.r.State(runid)
		switch {
		case st == apitypes.Failed:
			errs = append(errs, fmt.Errorf("declared service %s: %s", k, msg))
		case runid == 0 || err != nil:
			errs = append(errs, fmt.Errorf("declared service %s: not started: %s", k, cmpOr(msg, "no run")))
		case rs.State == runner.Failed:
			errs = append(errs, fmt.Errorf("declared service %s: run %d %s", k, runid, rs.Reason))
		}
	}
	return errors.Join(errs...)
}

// liveFree returns the app's live runs that no unit owns.
func (m *Manager) liveFree(s *session, id string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for runid, e := range s.runs {
		if e.spec.ID == id && e.unit == nil && !e.st.State.Final() {
			out = append(out, runid)
		}
	}
	slices.Sort(out)
	return out
}
