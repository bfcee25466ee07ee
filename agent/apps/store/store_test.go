package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack"
	"osmanager/agent/apps/pack/packtest"
	"osmanager/agent/sysroot"
)

type E = packtest.Entry

type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

func users(name string) (int, int, error) {
	if name == "www-data" {
		return 33, 33, nil
	}
	return 0, 0, fmt.Errorf("user %s: %w", name, fs.ErrNotExist)
}

func testPaths() Files { return Files{Dir: "/apps", Data: "/apps-data"} }

// open opens the store in dir (the LuoYun dir).
func open(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	r, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(tlog{t}, nil))
	}
	if o.Users == nil {
		o.Users = users
	}
	s, err := Open(r, testPaths(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func body(b []byte) pack.Source { return pack.Source{Body: bytes.NewReader(b)} }

func helloTar(version string, extra ...E) []byte {
	return packtest.Tar(true, append(packtest.Hello("hello", version), extra...)...)
}

// run runs the app's exec from its tree and returns its output.
func run(t testing.TB, v Version) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(v.Dir, v.Manifest.Exec)).Output()
	if err != nil {
		t.Fatalf("run %s %s: %v", v.Version, v.Dir, err)
	}
	return strings.TrimSpace(string(out))
}

// snapshot lists every name under dir with its type, mode and content.
func snapshot(t testing.TB, dir string) string {
	if t != nil {
		t.Helper()
	}
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h := sha256.Sum256(b)
			line += " " + hex.EncodeToString(h[:8])
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ctx := context.Background()
	a, err := s.Install(ctx, body(helloTar("1.0.0")), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Current.Tree != "1.0.0" || a.Previous != nil || a.Desired != Stopped || a.Enabled {
		t.Errorf("first install: %+v", a)
	}
	if got := run(t, a.Current); got != "hello 1.0.0" {
		t.Errorf("exec says %q", got)
	}
	if st, err := os.Stat(filepath.Join(dir, "apps-data/hello")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", err, st)
	}
	os.WriteFile(filepath.Join(dir, "apps-data/hello/kept"), []byte("data"), 0o600)

	for _, tc := range []struct {
		name    string
		version string
		force   bool
		code    apperr.Code
		cur     string
		prev    string
	}{
		{"same version", "1.0.0", false, apperr.Conflict, "", ""},
		{"older version", "0.9.0", false, apperr.Conflict, "", ""},
		{"upgrade", "2.0.0", false, "", "2.0.0", "1.0.0"},
		{"upgrade again drops the oldest", "10.0.0", false, "", "10.0.0", "2.0.0"},
		{"forced same version side by side", "10.0.0", true, "", "10.0.0~2", "10.0.0"},
		{"forced downgrade", "2.0.0", true, "", "2.0.0", "10.0.0~2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dir)
			a, err := s.Install(ctx, body(helloTar(tc.version)), InstallOptions{Force: tc.force})
			if got := apperr.CodeOf(err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil {
				if after := snapshot(t, dir); after != before {
					t.Errorf("refused install changed the store:\nbefore\n%s\nafter\n%s", before, after)
				}
				return
			}
			if a.Current.Tree != tc.cur || a.Previous == nil || a.Previous.Tree != tc.prev {
				t.Errorf("trees: current %q previous %+v; want %q, %q", a.Current.Tree, a.Previous, tc.cur, tc.prev)
			}
			trees, _ := os.ReadDir(filepath.Join(dir, "apps/hello"))
			if len(trees) != 2 {
				t.Errorf("apps/hello holds %v, want the current and previous trees", trees)
			}
			if got := run(t, a.Current); got != "hello "+tc.version {
				t.Errorf("exec says %q", got)
			}
			if got := run(t, *a.Previous); !strings.HasPrefix(got, "hello ") {
				t.Errorf("previous exec says %q", got)
			}
		})
	}

	if _, err := s.SetDesired("hello", Running); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetEnabled("hello", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("hello", func(a *App) error { a.Restarts += 3; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("hello", func(a *App) error { a.Current.Tree = "x"; return nil }); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("Update changing a version: %v", err)
	}
	if _, err := s.SetDesired("hello", "paused"); apperr.CodeOf(err) != apperr.BadRequest {
		t.Errorf("SetDesired(paused): %v", err)
	}
	var ids []uint64
	for range 3 {
		id, err := s.NextRunID()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Everything survives a reopen; the runid goes on.
	s = open(t, dir, Options{})
	a, err = s.Get("hello")
	if err != nil {
		t.Fatal(err)
	}
	if a.Desired != Running || !a.Enabled || a.Restarts != 3 || a.Current.Version != "2.0.0" || a.Current.Manifest == nil || a.Problem != "" {
		t.Errorf("after reopen: %+v", a)
	}
	if id, _ := s.NextRunID(); fmt.Sprint(ids) != "[1 2 3]" || id != 4 {
		t.Errorf("runids %v then %d, want [1 2 3] then 4", ids, id)
	}

	// Rollback: back to the previous, the one rolled back from dropped.
	a, err = s.Rollback("hello")
	if err != nil || a.Current.Tree != "10.0.0~2" || a.Previous != nil {
		t.Fatalf("rollback: %+v %v", a, err)
	}
	if got := run(t, a.Current); got != "hello 10.0.0" {
		t.Errorf("after rollback exec says %q", got)
	}
	if trees, _ := os.ReadDir(filepath.Join(dir, "apps/hello")); len(trees) != 1 {
		t.Errorf("after rollback apps/hello holds %v", trees)
	}
	if _, err := s.Rollback("hello"); apperr.CodeOf(err) != apperr.InvalidState {
		t.Errorf("second rollback: %v, want invalid_state", err)
	}
	for name, err := range map[string]error{
		"get":       func() error { _, err := s.Get("nope"); return err }(),
		"rollback":  func() error { _, err := s.Rollback("nope"); return err }(),
		"uninstall": s.Uninstall("nope", false),
		"desired":   func() error { _, err := s.SetDesired("nope", Running); return err }(),
	} {
		if apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("%s of an unknown app: %v, want not_found", name, err)
		}
	}

	// Uninstall keeps the data dir; purge removes it.
	if err := s.Uninstall("hello", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "apps/hello")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("apps/hello after uninstall: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "apps-data/hello/kept")); string(b) != "data" {
		t.Errorf("data dir not kept on uninstall")
	}
	if _, err := s.Install(ctx, body(helloTar("1.0.0")), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "apps-data/hello/kept")); string(b) != "data" {
		t.Errorf("reinstall lost the data dir")
	}
	if err := s.Uninstall("hello", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "apps-data/hello")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data dir after purge: %v", err)
	}
	if len(s.List()) != 0 {
		t.Errorf("List after uninstall: %v", s.List())
	}
}

func TestPrepareCommitAbort(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ctx := context.Background()
	if _, err := s.Install(ctx, body(helloTar("1.0.0")), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	p, err := s.Prepare(ctx, body(helloTar("1.0.0", E{Name: "new"})), InstallOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	next := p.App()
	if next.Current.Tree != "1.0.0~2" || next.Previous.Tree != "1.0.0" {
		t.Errorf("pending app %+v", next)
	}
	// While pending: the old version is current, the new runnable beside it.
	if a, _ := s.Get("hello"); a.Current.Tree != "1.0.0" {
		t.Errorf("current during prepare: %q", a.Current.Tree)
	}
	if got := run(t, next.Current); got != "hello 1.0.0" {
		t.Errorf("new exec says %q", got)
	}
	if _, err := s.Prepare(ctx, body(helloTar("2.0.0")), InstallOptions{}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("second prepare: %v, want conflict", err)
	}
	for name, err := range map[string]error{
		"uninstall": s.Uninstall("hello", false),
		"rollback":  func() error { _, err := s.Rollback("hello"); return err }(),
	} {
		if apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("%s during prepare: %v, want conflict", name, err)
		}
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("abort left:\n%s\nwant\n%s", after, before)
	}
	if _, err := p.Commit(); apperr.CodeOf(err) != apperr.InvalidState {
		t.Errorf("commit after abort: %v", err)
	}
	// A new app aborted leaves nothing either.
	p, err = s.Prepare(ctx, body(packtest.Tar(false, packtest.Hello("other", "1")...)), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if after := snapshot(t, dir); after != before {
		t.Errorf("abort of a new app left:\n%s", after)
	}
}

// TestInstallRefused installs every bad input over an installed version:
// each gets its code and leaves the store byte for byte as it was, the
// old version runnable.
func TestInstallRefused(t *testing.T) {
	ctx := context.Background()
	good := helloTar("2.0.0")
	h := sha256.Sum256(good)
	goodSum := hex.EncodeToString(h[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" {
			w.Header().Set("Content-Length", strconv.Itoa(len(good)+10))
		}
		w.Write(good)
	}))
	defer srv.Close()
	type tc struct {
		name string
		src  pack.Source
		opt  InstallOptions
		code apperr.Code
		want string
	}
	var cases []tc
	for _, b := range append(packtest.BadArchives(), packtest.BadBundles()...) {
		cases = append(cases, tc{"archive " + b.Name, body(b.Data), InstallOptions{}, b.Code, b.Want})
	}
	cases = append(cases,
		tc{"bad sha256", pack.Source{URL: srv.URL + "/a.tar.gz", SHA256: strings.Repeat("0", 64)}, InstallOptions{}, apperr.Integrity, "sha256"},
		tc{"URL with no sha256", pack.Source{URL: srv.URL + "/a.tar.gz"}, InstallOptions{}, apperr.BadRequest, "sha256"},
		tc{"download cut short", pack.Source{URL: srv.URL + "/short", SHA256: goodSum}, InstallOptions{}, apperr.Integrity, "cut short"},
		tc{"unknown user", body(packtest.Tar(false, append(packtest.Hello("hello", "3")[1:], packtest.Manifest("hello", "3", `"user": "nobody2"`))...)), InstallOptions{}, apperr.BadRequest, `"nobody2" does not exist`},
		tc{"same id and version", body(helloTar("1.0.0")), InstallOptions{}, apperr.Conflict, "already installed"},
		tc{"missing file", pack.Source{Path: "/nonexistent.tar"}, InstallOptions{}, apperr.BadRequest, "open"},
	)
	dir := t.TempDir()
	s := open(t, dir, Options{Limits: pack.Limits{MaxBytes: packtest.BadMaxBytes, MaxFiles: packtest.BadMaxFiles}})
	old, err := s.Install(ctx, body(helloTar("1.0.0")), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Install(ctx, c.src, c.opt)
			if got := apperr.CodeOf(err); got != c.code {
				t.Fatalf("code %q, want %q (%v)", got, c.code, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("store changed:\nbefore\n%s\nafter\n%s", before, after)
			}
			if got := run(t, old.Current); got != "hello 1.0.0" {
				t.Errorf("old exec says %q", got)
			}
		})
	}
	// A user that exists is accepted and owns the data dir (giving it to
	// another user needs root).
	if os.Geteuid() != 0 {
		t.Log("not root: the data dir's owner is not checked")
		return
	}
	a, err := s.Install(ctx, body(packtest.Tar(false, append(packtest.Hello("web", "1")[1:], packtest.Manifest("web", "1", `"user": "www-data"`))...)), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(a.DataDir); err != nil || st.Sys().(*syscall.Stat_t).Uid != 33 {
		t.Errorf("data dir of a www-data app: %v %+v", err, st)
	}
}

// TestInjectedFailureEveryStep fails an upgrade at each step with ENOSPC:
// no_space, and nothing changed.
func TestInjectedFailureEveryStep(t *testing.T) {
	ctx := context.Background()
	for _, step := range []Step{StepStaged, StepFetched, StepExtracted, StepSynced, StepInPlace, StepCommit} {
		for _, fresh := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s fresh=%v", step, fresh), func(t *testing.T) {
				dir := t.TempDir()
				var fail Step
				s := open(t, dir, Options{Hook: func(st Step, id string) error {
					if st == fail {
						return fmt.Errorf("injected: %w", syscall.ENOSPC)
					}
					return nil
				}})
				if !fresh {
					if _, err := s.Install(ctx, body(helloTar("1.0.0")), InstallOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				before := snapshot(t, dir)
				fail = step
				_, err := s.Install(ctx, body(helloTar("2.0.0")), InstallOptions{})
				if apperr.CodeOf(err) != apperr.NoSpace {
					t.Fatalf("err %v, want no_space", err)
				}
				if after := snapshot(t, dir); after != before {
					t.Errorf("store changed:\nbefore\n%s\nafter\n%s", before, after)
				}
				fail = ""
				if a, err := s.Install(ctx, body(helloTar("2.0.0")), InstallOptions{}); err != nil || run(t, a.Current) != "hello 2.0.0" {
					t.Errorf("install after the failure: %v", err)
				}
			})
		}
	}
}

func TestOpenSweepsAndRefusesBadState(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	if _, err := s.Install(context.Background(), body(helloTar("1.0.0")), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, dir)
	for _, d := range []string{"apps/.staging/abc/tree/bin", "apps/hello/9.9.9/bin", "apps/ghost/1/bin"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		os.WriteFile(filepath.Join(dir, d, "x"), []byte("x"), 0o644)
	}
	open(t, dir, Options{})
	if got := snapshot(t, dir); got != want {
		t.Errorf("after Open:\n%s\nwant\n%s", got, want)
	}
	for name, data := range map[string]string{
		"corrupt":      "{",
		"newer schema": `{"schema": 99, "apps": {}}`,
		"bad tree":     `{"schema": 1, "apps": {"hello": {"id": "hello", "current": {"version": "1", "tree": "../../etc"}}}}`,
		"bad id":       `{"schema": 1, "apps": {"../x": {"id": "../x", "current": {"version": "1", "tree": "1"}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			os.MkdirAll(filepath.Join(d, "apps/hello/1.0.0"), 0o755)
			os.WriteFile(filepath.Join(d, "apps/state.json"), []byte(data), 0o600)
			r, _ := sysroot.New(d)
			if _, err := Open(r, testPaths(), Options{}); err == nil {
				t.Fatal("opened")
			}
			if _, err := os.Stat(filepath.Join(d, "apps/hello/1.0.0")); err != nil {
				t.Errorf("a refused state file still swept the trees: %v", err)
			}
		})
	}
	// A current tree gone missing is reported, not fatal.
	os.RemoveAll(filepath.Join(dir, "apps/hello/1.0.0"))
	if a, _ := open(t, dir, Options{}).Get("hello"); a.Problem == "" {
		t.Errorf("missing tree: no Problem in %+v", a)
	}
}

func TestPasswdUsers(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nwww-data:x:33:34::/var/www:/usr/sbin/nologin\nbad:x:y:1::/:/bin/sh\n"), 0o644)
	r, _ := sysroot.New(dir)
	lookup := PasswdUsers(r, "/etc/passwd")
	if uid, gid, err := lookup("www-data"); uid != 33 || gid != 34 || err != nil {
		t.Errorf("www-data: %d %d %v", uid, gid, err)
	}
	if _, _, err := lookup("nobody"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("nobody: %v", err)
	}
	if _, _, err := lookup("bad"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad line: %v", err)
	}
}

func BenchmarkInstall1MB(b *testing.B) {
	payload := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{}).Read(payload) // incompressible: the archive stays near 1 MB
	archive := packtest.Tar(true, append(packtest.Hello("hello", "1.0.0"), E{Name: "share/blob", Body: string(payload)})...)
	s := open(b, b.TempDir(), Options{Log: slog.New(slog.DiscardHandler)})
	b.SetBytes(int64(len(archive)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Install(context.Background(), body(archive), InstallOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}

var _ = tar.TypeReg

// TestConcurrent installs apps and hands out runids from many goroutines
// (run with -race): every install lands, runids are unique.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	const n = 8
	errs := make(chan error, 2*n)
	ids := make(chan uint64, n*5)
	for i := range n {
		go func() {
			_, err := s.Install(context.Background(), body(packtest.Tar(false, packtest.Hello(fmt.Sprintf("app%d", i), "1.0.0")...)), InstallOptions{})
			errs <- err
		}()
		go func() {
			var err error
			for range 5 {
				var id uint64
				if id, err = s.NextRunID(); err != nil {
					break
				}
				ids <- id
			}
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("runid %d handed out twice", id)
		}
		seen[id] = true
	}
	if got := len(open(t, dir, Options{}).List()); got != n || len(seen) != n*5 {
		t.Errorf("%d apps, %d runids; want %d, %d", got, len(seen), n, n*5)
	}
}
