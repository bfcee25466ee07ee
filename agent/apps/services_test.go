package apps

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"osmanager/agent/api"
	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/proc"
)

var _ api.Services = (*Manager)(nil)

var listenfd struct {
	once sync.Once
	path string
	bin  string
	err  error
}

// listenfdBinary builds testdata/listenfd once per test binary, into
// one place per user that each build replaces with a rename (no temp
// dir left per run; a binary being run elsewhere is not disturbed).
func listenfdBinary(t testing.TB) (path, body string) {
	t.Helper()
	listenfd.once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("osm-listenfd-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			listenfd.err = err
			return
		}
		listenfd.path = filepath.Join(dir, "listenfd")
		tmp := fmt.Sprintf("%s.%d", listenfd.path, os.Getpid())
		out, err := exec.Command("go", "build", "-o", tmp, "./testdata/listenfd").CombinedOutput()
		if err == nil {
			err = os.Rename(tmp, listenfd.path)
		}
		if err != nil {
			os.Remove(tmp)
			listenfd.err = fmt.Errorf("go build listenfd: %v: %s", err, out)
			return
		}
		b, err := os.ReadFile(listenfd.path)
		listenfd.bin, listenfd.err = string(b), err
	})
	if listenfd.err != nil {
		t.Skipf("no listenfd test server: %v", listenfd.err)
	}
	return listenfd.path, listenfd.bin
}

// svcPkg is an app whose program is listenfd (a script that execs the
// binary built once: the same pid, and a small package), with the
// manifest's extra keys (a "socket").
func svcPkg(t testing.TB, id, version string, extra ...string) []byte {
	path, _ := listenfdBinary(t)
	return pkg(id, version, "#!/bin/sh\nexec "+path+" \"$@\"\n", extra...)
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func socketKey(addrs ...string) string {
	var s []string
	for _, a := range addrs {
		s = append(s, fmt.Sprintf(`{"listen": %q}`, a))
	}
	return `"socket": [` + strings.Join(s, ", ") + `]`
}

func (f *fixture) writeDecl(name, body string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Join(f.dir, "apps.d"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.dir, "apps.d", name)
	if body == "" {
		os.Remove(p)
		return
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) reload() apitypes.Reloaded {
	f.t.Helper()
	rep, err := f.m.Reload(ctxT(f.t))
	if err != nil {
		f.t.Fatalf("Reload = %v", err)
	}
	return rep
}

func (f *fixture) service(key string) apitypes.Service {
	f.t.Helper()
	l, err := f.m.Services(ctxT(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range l.Services {
		if s.Name == key || "app:"+s.App == key && s.Name == "" {
			return s
		}
	}
	f.t.Fatalf("no service %s in %+v", key, l.Services)
	return apitypes.Service{}
}

// waitService polls the service until ok, with a deadline.
func (f *fixture) waitService(key, what string, ok func(apitypes.Service) bool) apitypes.Service {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := f.service(key)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("service %s: not %s: %+v", key, what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stateIs(st apitypes.RunState) func(apitypes.Service) bool {
	return func(s apitypes.Service) bool { return s.State == st }
}

// ask connects and reads the server's one line.
func ask(t testing.TB, network, addr string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}

func (f *fixture) liveRuns(id string) []apitypes.Run {
	f.t.Helper()
	runs, err := f.m.Runs(ctxT(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	var out []apitypes.Run
	for _, r := range runs {
		if r.ID == id && !r.State.Done() {
			out = append(out, r)
		}
	}
	return out
}

// TestLazyService: a declared service with a TCP and a Unix socket is
// bound at load and started by its first connection, which was made
// before the app was ready (it waits 300 ms before accepting) and is
// answered, not refused; the app gets the sockets by systemd's
// convention; after its idle exit the agent holds the sockets again and
// the next connection starts a new run.
func TestLazyService(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp, "/run/hello.sock")), false)
	f.writeDecl("10-web.json", `{"services": {"web": ["hello", "-idle", "300ms", "-delay", "300ms"]}}`)
	rep := f.reload()
	if !slices.Equal(rep.Added, []string{"web"}) || len(rep.Problems) != 0 {
		t.Fatalf("reload: %+v", rep)
	}
	s := f.service("web")
	want := apitypes.Service{Name: "web", App: "hello", Args: []string{"-idle", "300ms", "-delay", "300ms"}, Start: apitypes.Lazy,
		Sockets: []string{"tcp " + tcp, "unix /run/hello.sock"}, State: apitypes.Listening, File: "10-web.json"}
	if !equalService(s, want) {
		t.Errorf("service = %+v, want %+v", s, want)
	}
	if runs := f.liveRuns("hello"); len(runs) != 0 {
		t.Fatalf("runs before any connection: %+v", runs)
	}
	sock := filepath.Join(f.dir, "run/hello.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Fatalf("unix socket: %v, %v", fi, err)
	}

	got := ask(t, "tcp", tcp)
	first := f.service("web")
	if first.RunID == 0 || first.Starts != 1 || got != fmt.Sprintf("hello from %d %d", f.pid(first.RunID), first.RunID) {
		t.Errorf("answer %q, service %+v", got, first)
	}
	f.waitLog("hello", `2 sockets (hello:hello) args []`)
	f.waitService("web", "listening again after the idle exit", stateIs(apitypes.Listening))
	if r, _ := f.m.Run(ctxT(t), first.RunID); r.State != apitypes.Exited || r.LastExit.String() != "exit 0" {
		t.Errorf("first run %+v, want exited 0", r)
	}

	got = ask(t, "unix", sock)
	second := f.service("web")
	if second.RunID == first.RunID || second.Starts != 2 || !strings.HasSuffix(got, fmt.Sprint(" ", second.RunID)) {
		t.Errorf("second answer %q, service %+v (first run %d)", got, second, first.RunID)
	}
	if _, err := f.m.Terminate(ctxT(t), second.RunID); err != nil {
		t.Fatal(err)
	}
	f.waitService("web", "listening after a terminate", stateIs(apitypes.Listening))
	if got := ask(t, "tcp", tcp); !strings.HasPrefix(got, "hello from") {
		t.Errorf("third answer %q", got)
	}
}

func equalService(a, b apitypes.Service) bool {
	return a.Name == b.Name && a.App == b.App && slices.Equal(a.Args, b.Args) && a.Start == b.Start &&
		slices.Equal(a.Sockets, b.Sockets) && a.State == b.State && a.File == b.File && a.Error == b.Error
}

func (f *fixture) pid(runid uint64) int {
	f.t.Helper()
	r, err := f.m.Run(ctxT(f.t), runid)
	if err != nil || len(r.PIDs) == 0 {
		return 0
	}
	return r.PIDs[0]
}

// TestEagerOnce: a service in startup_services and its app in apps is
// one run, started at load with its sockets; an apps entry without
// sockets is started once, and a start of the service's app gives the
// unit's run (existing), not a second one.
func TestEagerOnce(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.mustInstall(pkg("ticker", "1.0.0", ticker), false)
	f.writeDecl("10-a.json", `{"services": {"web": "hello"}, "startup_services": ["web"], "apps": ["hello", ["ticker", "-x"]]}`)
	f.writeDecl("20-b.json", `{"apps": ["ticker"]}`)
	rep := f.reload()
	if !slices.Equal(rep.Added, []string{"app:ticker", "web"}) {
		t.Errorf("added %q", rep.Added)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].File != "20-b.json" || rep.Problems[0].Key != "apps[0]" {
		t.Errorf("problems %+v, want the second ticker refused", rep.Problems)
	}
	web := f.service("web")
	if web.Start != apitypes.Eager || web.State != apitypes.Active || web.Starts != 1 {
		t.Errorf("web = %+v, want eager, running, one start", web)
	}
	if runs := f.liveRuns("hello"); len(runs) != 1 || runs[0].RunID != web.RunID {
		t.Fatalf("runs of hello %+v, want one (%d)", runs, web.RunID)
	}
	if got := ask(t, "tcp", tcp); got != fmt.Sprintf("hello from %d %d", f.pid(web.RunID), web.RunID) {
		t.Errorf("answer %q from run %d", got, web.RunID)
	}
	if runs := f.liveRuns("ticker"); len(runs) != 1 {
		t.Errorf("runs of ticker %+v, want one", runs)
	}
	st, err := f.m.Start(ctxT(t), "hello")
	if err != nil || !st.Existing || st.RunID != web.RunID {
		t.Errorf("Start(hello) = %+v, %v; want the unit's run %d, existing", st, err, web.RunID)
	}
	// A reload with nothing changed touches nothing.
	rep = f.reload()
	if len(rep.Added)+len(rep.Removed)+len(rep.Changed) != 0 || f.service("web").RunID != web.RunID {
		t.Errorf("second reload %+v", rep)
	}
	if runs := f.liveRuns("hello"); len(runs) != 1 {
		t.Errorf("runs of hello after a reload %+v, want one", runs)
	}
}

// TestStartOfLazyService: osmctl start of the app of a lazy socket
// service starts it through its unit, with the sockets.
func TestStartOfLazyService(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.writeDecl("10-web.json", `{"services": {"web": "hello"}}`)
	f.reload()
	st, err := f.m.Start(ctxT(t), "hello")
	if err != nil || st.Existing || st.State != apitypes.Active {
		t.Fatalf("Start = %+v, %v", st, err)
	}
	if got := ask(t, "tcp", tcp); got != fmt.Sprintf("hello from %d %d", st.PIDs[0], st.RunID) {
		t.Errorf("answer %q, run %+v", got, st)
	}
	if a, _ := f.m.Detail(ctxT(t), "hello"); a.Desired != apitypes.Stopped {
		t.Errorf("desired %s: a unit's run leaves the desired state alone", a.Desired)
	}
}

// TestReload: new services start per their declaration, removed ones
// stop, changed ones are made again, unchanged ones are untouched (same
// run); SIGHUP (the Reload channel) reloads too.
func TestReload(t *testing.T) {
	f := newFixture(t, nil, "")
	tcpA, tcpB, tcpD := freePort(t), freePort(t), freePort(t)
	f.mustInstall(svcPkg(t, "a", "1.0.0", socketKey(tcpA)), false)
	f.mustInstall(svcPkg(t, "b", "1.0.0", socketKey(tcpB)), false)
	f.mustInstall(svcPkg(t, "d", "1.0.0", socketKey(tcpD)), false)
	f.mustInstall(pkg("c", "1.0.0", ticker), false)
	f.writeDecl("10-x.json", `{"services": {"a": "a", "b": "b"}, "startup_services": ["a", "b"], "apps": ["c"]}`)
	f.reload()
	a0, b0, c0 := f.service("a"), f.service("b"), f.service("app:c")
	for _, s := range []apitypes.Service{a0, b0, c0} {
		if s.State != apitypes.Active {
			t.Fatalf("%+v not running", s)
		}
	}
	f.writeDecl("10-x.json", `{"services": {"a": ["a", "-idle", "1h"], "d": "d"}, "startup_services": ["a"], "apps": ["c"]}`)
	rep := f.reload()
	if !slices.Equal(rep.Added, []string{"d"}) || !slices.Equal(rep.Removed, []string{"b"}) || !slices.Equal(rep.Changed, []string{"a"}) || !slices.Equal(rep.Unchanged, []string{"app:c"}) {
		t.Errorf("reload: added %q removed %q changed %q unchanged %q", rep.Added, rep.Removed, rep.Changed, rep.Unchanged)
	}
	if r, _ := f.m.Run(ctxT(t), b0.RunID); !r.State.Done() {
		t.Errorf("run of removed b is %s", r.State)
	}
	if c, err := net.DialTimeout("tcp", tcpB, time.Second); err == nil {
		c.Close()
		t.Errorf("removed b's socket still accepts")
	}
	if r, _ := f.m.Run(ctxT(t), a0.RunID); !r.State.Done() {
		t.Errorf("old run of changed a is %s", r.State)
	}
	if a1 := f.service("a"); a1.RunID == a0.RunID || a1.State != apitypes.Active || !slices.Equal(a1.Args, []string{"-idle", "1h"}) {
		t.Errorf("changed a: %+v (was run %d)", a1, a0.RunID)
	}
	if c1 := f.service("app:c"); c1.RunID != c0.RunID || c1.State != apitypes.Active {
		t.Errorf("unchanged c: %+v, want run %d untouched", c1, c0.RunID)
	}
	if d := f.service("d"); d.State != apitypes.Listening {
		t.Errorf("new lazy d: %+v", d)
	}
	// SIGHUP.
	f.writeDecl("10-x.json", `{"services": {"a": ["a", "-idle", "1h"]}, "startup_services": ["a"], "apps": ["c"]}`)
	f.hup <- syscall.SIGHUP
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, _ := f.m.Services(ctxT(t))
		if len(l.Services) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload: %+v", l.Services)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Removing the dir stops the rest.
	f.writeDecl("10-x.json", "")
	if rep := f.reload(); len(rep.Removed) != 2 {
		t.Errorf("removed %q", rep.Removed)
	}
	if runs := append(f.liveRuns("a"), f.liveRuns("c")...); len(runs) != 0 {
		t.Errorf("runs left: %+v", runs)
	}
}

// TestDeclaredBadInput: a malformed file, a name defined in two files, a
// service naming an app that is not installed, a socket address in use
// and one not allowed: each refused with its file and key, and the good
// service still loads and answers.
func TestDeclaredBadInput(t *testing.T) {
	f := newFixture(t, nil, "")
	good, busy := freePort(t), freePort(t)
	hold, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(good)), false)
	f.mustInstall(svcPkg(t, "busy", "1.0.0", socketKey(busy)), false)
	_, err = f.install(svcPkg(t, "etc", "1.0.0", socketKey("/etc/evil.sock")), false)
	if apperr.CodeOf(err) != apperr.BadRequest || !strings.Contains(err.Error(), `"socket"[0] "/etc/evil.sock": a Unix socket must be under /run/`) {
		t.Errorf("install with a socket outside /run: %v", err)
	}
	f.writeDecl("10-good.json", `{"services": {"web": "hello", "busy": "busy"}}`)
	f.writeDecl("20-bad.json", `{"services": {"x": "hello",}`)
	f.writeDecl("30-dup.json", `{"services": {"web": "busy", "gone": "nope"}}`)
	if err := os.Symlink("10-good.json", filepath.Join(f.dir, "apps.d", "15-link.json")); err != nil {
		t.Fatal(err)
	}
	f.writeDecl("README", "not json, not read")
	rep := f.reload()
	want := []apitypes.ServiceProblem{
		{File: "15-link.json", Message: "not a regular file; refused"},
		{File: "20-bad.json", Message: "not valid JSON (at byte 28: invalid character '}' looking for beginning of object key string); the file is refused"},
		{File: "30-dup.json", Key: "services.web", Message: `service "web" defined twice (first in 10-good.json, which is kept)`},
		{File: "30-dup.json", Key: "services.gone", Message: `app "nope" is not installed`},
	}
	if !slices.Equal(rep.Problems, want) {
		t.Errorf("problems\n%+v\nwant\n%+v", rep.Problems, want)
	}
	b := f.service("busy")
	if b.State != apitypes.Failed || !strings.Contains(b.Error, "10-good.json: services.busy: socket tcp "+busy+": listen tcp "+busy+": bind: address already in use") {
		t.Errorf("busy = %+v", b)
	}
	if got := ask(t, "tcp", good); !strings.HasPrefix(got, "hello from") {
		t.Errorf("the good service answered %q", got)
	}
	// A Unix socket path in use by another process, and a file in the way.
	f.mustInstall(svcPkg(t, "u1", "1.0.0", socketKey("/run/taken.sock")), false)
	f.mustInstall(svcPkg(t, "u2", "1.0.0", socketKey("/run/file.sock")), false)
	os.MkdirAll(filepath.Join(f.dir, "run"), 0o755)
	other, err := net.Listen("unix", filepath.Join(f.dir, "run/taken.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	os.WriteFile(filepath.Join(f.dir, "run/file.sock"), []byte("x"), 0o644)
	f.writeDecl("40-unix.json", `{"services": {"u1": "u1", "u2": "u2"}}`)
	f.reload()
	if s := f.service("u1"); s.State != apitypes.Failed || !strings.Contains(s.Error, "address already in use") {
		t.Errorf("u1 = %+v", s)
	}
	if s := f.service("u2"); s.State != apitypes.Failed || !strings.Contains(s.Error, "exists and is not a socket; not removed") {
		t.Errorf("u2 = %+v", s)
	}
	// Freed, the failed one binds at the next reload.
	hold.Close()
	rep = f.reload()
	if !slices.Contains(rep.Changed, "busy") || f.service("busy").State != apitypes.Listening {
		t.Errorf("busy after the port was freed: %+v (reload %+v)", f.service("busy"), rep)
	}
}

// TestServiceStartLimit: activations count against the app's start
// limit; past it the service fails and its socket is closed (refused,
// not left hanging) until a reload.
func TestServiceStartLimit(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp), `"start_limit": {"burst": 2, "interval": "1h"}`), false)
	f.writeDecl("10-web.json", `{"services": {"web": ["hello", "-once"]}}`)
	f.reload()
	for i := range 2 {
		if got := ask(t, "tcp", tcp); !strings.HasPrefix(got, "hello from") {
			t.Fatalf("connection %d: %q", i, got)
		}
		f.waitService("web", "listening", stateIs(apitypes.Listening))
	}
	c, err := net.DialTimeout("tcp", tcp, 5*time.Second)
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 1)
		_, err = c.Read(b)
		c.Close()
	}
	if err == nil {
		t.Errorf("third connection answered past the start limit")
	}
	s := f.waitService("web", "failed", stateIs(apitypes.Failed))
	if !strings.Contains(s.Error, "start limit hit: 2 starts within 1h0m0s") {
		t.Errorf("service %+v", s)
	}
	if c, err := net.DialTimeout("tcp", tcp, time.Second); err == nil {
		c.Close()
		t.Errorf("socket still open after the start limit")
	}
	if _, err := f.m.Start(ctxT(t), "hello"); apperr.CodeOf(err) != apperr.CantStart || !strings.Contains(err.Error(), "start limit hit") {
		t.Errorf("Start of the failed service's app = %v, want cant_start with the reason", err)
	}
	if rep := f.reload(); !slices.Equal(rep.Changed, []string{"web"}) || f.service("web").State != apitypes.Listening {
		t.Errorf("a reload makes the failed service again: %+v", rep)
	}
}

// TestServiceInstallUninstall: a forced install of a new version of a
// service's app makes its unit again (the new version answers);
// uninstall refuses the service (not installed) and closes its socket.
func TestServiceInstallUninstall(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.writeDecl("10-web.json", `{"services": {"web": "hello"}, "startup_services": ["web"]}`)
	f.reload()
	old := f.service("web")
	f.mustInstall(svcPkg(t, "hello", "2.0.0", socketKey(tcp)), false)
	s := f.waitService("web", "running the new version", func(s apitypes.Service) bool { return s.State == apitypes.Active && s.RunID != old.RunID })
	if r, _ := f.m.Run(ctxT(t), s.RunID); r.Version != "2.0.0" {
		t.Errorf("run %+v, want version 2.0.0", r)
	}
	if runs := f.liveRuns("hello"); len(runs) != 1 {
		t.Errorf("live runs %+v, want one", runs)
	}
	if got := ask(t, "tcp", tcp); got != fmt.Sprintf("hello from %d %d", f.pid(s.RunID), s.RunID) {
		t.Errorf("answer %q, want run %d", got, s.RunID)
	}
	if err := f.m.Uninstall(ctxT(t), "hello", false); err != nil {
		t.Fatal(err)
	}
	l, _ := f.m.Services(ctxT(t))
	if len(l.Services) != 0 || len(l.Problems) != 1 || l.Problems[0].Message != `app "hello" is not installed` {
		t.Errorf("after uninstall: %+v", l)
	}
	if c, err := net.DialTimeout("tcp", tcp, time.Second); err == nil {
		c.Close()
		t.Errorf("socket still open after uninstall")
	}
}

// TestServicesAcrossAgentRestart (cgroups): at the agent's stop the run
// holding its sockets stops with it and an eager app without sockets is
// left running; the next agent adopts that run (not a second one) and
// binds the sockets again, the eager service answering on them.
func TestServicesAcrossAgentRestart(t *testing.T) {
	cg := testCgroups(t)
	dir := t.TempDir()
	f := newFixture(t, cg, dir)
	f.keep = true
	f.stop()
	f.start()
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.mustInstall(pkg("tick", "1.0.0", ticker), false)
	f.writeDecl("10-a.json", `{"services": {"web": "hello"}, "startup_services": ["web"], "apps": ["tick"]}`)
	f.reload()
	web, tick := f.service("web"), f.service("app:tick")
	webPid, tickPid := f.pid(web.RunID), f.pid(tick.RunID)
	f.stop()
	if alive(webPid) {
		t.Errorf("the run holding the agent's sockets (pid %d) outlived its agent", webPid)
	}
	if !alive(tickPid) {
		t.Fatalf("the eager app's run (pid %d) did not outlive its agent", tickPid)
	}

	f2 := newFixture(t, cg, dir)
	tick2 := f2.service("app:tick")
	if tick2.RunID != tick.RunID || f2.pid(tick2.RunID) != tickPid || len(f2.liveRuns("tick")) != 1 {
		t.Errorf("tick after the restart: %+v, runs %+v; want run %d adopted, once", tick2, f2.liveRuns("tick"), tick.RunID)
	}
	web2 := f2.service("web")
	if web2.State != apitypes.Active || web2.RunID == web.RunID {
		t.Errorf("web after the restart: %+v", web2)
	}
	if got := ask(t, "tcp", tcp); got != fmt.Sprintf("hello from %d %d", f2.pid(web2.RunID), web2.RunID) {
		t.Errorf("answer %q, want run %d", got, web2.RunID)
	}
	for _, r := range append(f2.liveRuns("tick"), f2.liveRuns("hello")...) {
		f2.m.Terminate(ctxT(t), r.RunID)
	}
}

// TestSocketRunOfKilledAgentStopped: a run recorded as holding the
// agent's sockets that outlived its agent (SIGKILL: no shutdown stopped
// it) is adopted by the next agent and stopped, and its service binds
// the sockets again.
func TestSocketRunOfKilledAgentStopped(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, nil, dir)
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.stop()
	// What the killed agent left: a live process and its record.
	orphan := exec.Command("sleep", "300")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { orphan.Wait(); close(waited) }()
	t.Cleanup(func() { orphan.Process.Kill(); <-waited })
	st, err := proc.Table{}.Stat(orphan.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"runs": [{"tree": "1.0.0", "socket": true, "record": {"runtime": "process", "id": "hello", "runid": 1000, "pid": %d, "start_time": %d, "started": "2026-01-02T03:04:05Z"}}]}`,
		orphan.Process.Pid, st.Start)
	if err := os.WriteFile(filepath.Join(dir, "apps/.runs.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	f.writeDecl("10-web.json", `{"services": {"web": "hello"}}`)

	f2 := newFixture(t, nil, dir)
	select {
	case <-waited:
	case <-time.After(15 * time.Second):
		t.Fatalf("the orphaned socket run (pid %d) was not stopped", orphan.Process.Pid)
	}
	if r, err := f2.m.Run(ctxT(t), 1000); err != nil || !r.State.Done() {
		t.Errorf("run 1000 = %+v, %v; want adopted and over", r, err)
	}
	if s := f2.service("web"); s.State != apitypes.Listening {
		t.Errorf("web = %+v, want listening", s)
	}
	if got := ask(t, "tcp", tcp); !strings.HasPrefix(got, "hello from") {
		t.Errorf("answer %q", got)
	}
}

// TestServiceNewVersionCannotStart: a new version of an eager service's
// app that cannot start is not kept: the install fails cant_start and the
// old version runs again as the service, with its sockets.
func TestServiceNewVersionCannotStart(t *testing.T) {
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	f.mustInstall(svcPkg(t, "hello", "1.0.0", socketKey(tcp)), false)
	f.writeDecl("10-web.json", `{"services": {"web": "hello"}, "startup_services": ["web"]}`)
	f.reload()
	_, err := f.install(pkg("hello", "2.0.0", noStart, socketKey(tcp)), false)
	if apperr.CodeOf(err) != apperr.CantStart || !strings.Contains(err.Error(), "1.0.0 kept and started again") {
		t.Fatalf("install of a version that cannot start = %v, want cant_start", err)
	}
	if a, _ := f.m.Detail(ctxT(t), "hello"); a.Version != "1.0.0" {
		t.Errorf("version %s after the failed install, want 1.0.0", a.Version)
	}
	s := f.waitService("web", "running", stateIs(apitypes.Active))
	if r, _ := f.m.Run(ctxT(t), s.RunID); r.Version != "1.0.0" {
		t.Errorf("service's run %+v, want version 1.0.0", r)
	}
	if got := ask(t, "tcp", tcp); got != fmt.Sprintf("hello from %d %d", f.pid(s.RunID), s.RunID) {
		t.Errorf("answer %q", got)
	}
}
