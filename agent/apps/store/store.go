// Package store keeps the installed applications on disk, under the
// LuoYun dir:
//
//	apps/state.json          installed apps, desired states, runid counter (atomic, 0600)
//	apps/<id>/<tree>/        an unpacked package; <tree> is its version, or version~N
//	                         when the same version is installed side by side (force);
//	                         for an OCI bundle, the tree holds <id>/config.json and <id>/rootfs/
//	apps/.staging/<random>/  one install in progress: archive (the download), tree/
//	apps-data/<id>/          the app's data dir (OSM_APP_DATA), 0700, owned by its user;
//	                         kept across versions and on uninstall without purge
//
// state.json is the truth: a tree it does not name is an orphan (a crash
// between moving a tree into place and writing the state, or between
// writing the state and removing a dropped tree) and Open removes it, with
// every staging dir. Each app keeps its current version and at most one
// previous version, for Rollback.
//
// # Install, in two phases
//
// Prepare fetches the archive into a staging dir (pack.Fetch: size cap,
// sha256), unpacks and checks it there (pack.Extract), checks the
// manifest's user, fsyncs the tree once, and moves it to apps/<id>/<tree>
// with one rename, beside the version in use, which is untouched. The
// state still names the old version: a crash up to here leaves the old
// version installed and runnable, and the new tree is swept at the next
// Open. Pending.Commit then makes the new version current in one atomic
// write of state.json (the old current becomes previous, the old previous
// is dropped); Pending.Abort removes the new tree. The manager replaces a
// running app as: Prepare, stop the old run, start the new one from
// Pending.App().Dir; on success Commit, on failure Abort and start the old
// one again. Install is Prepare + Commit for an app that is not running.
//
// Without Force, installing the version that is current, or an older one
// (CompareVersions), is a conflict.
//
// All writes go through sysroot (rooted, no symlink followed, state.json
// written atomically); a full disk at any step is apperr.NoSpace with the
// staging dir removed.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack"
	"osmanager/agent/sysroot"
)

// Schema is the version of state.json this package writes. A state file
// with a newer schema is refused (an older agent must not rewrite it).
const Schema = 1

// Desired is the state the manager keeps an app in.
type Desired string

// The desired states.
const (
	Stopped Desired = "stopped"
	Running Desired = "running"
)

// Version is one installed version of an app.
type Version struct {
	Version   string    `json:"version"`
	Tree      string    `json:"tree"` // directory name under apps/<id>/
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"` // archive bytes
	Installed time.Time `json:"installed"`

	Manifest *pack.Manifest `json:"-"` // read from the tree at Open and install; shared, read only
	Dir      string         `json:"-"` // host path of the tree, for exec
}

// App is an installed app's record. New fields go at the end with
// omitempty; unknown fields in state.json are ignored on read.
type App struct {
	ID       string   `json:"id"`
	Current  Version  `json:"current"`
	Previous *Version `json:"previous,omitempty"`
	Desired  Desired  `json:"desired"`
	Enabled  bool     `json:"enabled"`  // started once the boot steps are done
	Restarts int64    `json:"restarts"` // the runner's restart count, kept across agent restarts

	DataDir string `json:"-"` // host path of the data dir
	Problem string `json:"-"` // why the current tree cannot be used (missing, bad manifest); "" when fine
}

func (a *App) clone() App {
	c := *a
	if a.Previous != nil {
		p := *a.Previous
		c.Previous = &p
	}
	return c
}

type stateFile struct {
	Schema    int             `json:"schema"`
	NextRunID uint64          `json:"next_runid"`
	Apps      map[string]*App `json:"apps"`
}

// Step names a point in a store operation, for Options.Hook.
type Step string

// The steps, in order of an install.
const (
	StepStaged    Step = "staged"     // staging dir made
	StepFetched   Step = "fetched"    // archive copied and verified
	StepExtracted Step = "extracted"  // tree unpacked and checked
	StepSynced    Step = "synced"     // tree fsynced
	StepInPlace   Step = "in-place"   // tree renamed to apps/<id>/<tree>; state unchanged
	StepCommit    Step = "commit"     // about to write state.json naming the new version
	StepCommitted Step = "committed"  // state.json names the new current version
	StepDropped   Step = "dropped"    // an unneeded tree removed
	StepUninstall Step = "uninstall"  // state.json no longer names the app
	StepRollback  Step = "rolledback" // state.json names the previous version as current
)

// UserLookup returns the uid and gid of an account, or an error wrapping
// fs.ErrNotExist when there is none. PasswdUsers reads the system's
// /etc/passwd.
type UserLookup func(name string) (uid, gid int, err error)

// Options configure a Store. The zero value works: default limits, only
// root as a manifest user, a plain HTTP client.
type Options struct {
	Limits pack.Limits
	Users  UserLookup   // nil: only root (an empty "user", or "root") is accepted
	HTTP   *http.Client // nil: a client with no timeout of its own (Limits.FetchTimeout applies)
	Log    *slog.Logger // the manager's logger (it carries service=); nil logs nothing
	Now    func() time.Time
	// Hook, when set, is called at each Step; an error it returns fails
	// the operation at that point, as a real error would (the tests
	// inject ENOSPC and crashes with it).
	Hook func(step Step, id string) error
}

// InstallOptions are the caller's choices for one install.
type InstallOptions struct {
	Force bool // install the current or an older version again, side by side
}

// Store is the on-disk app store. Its methods are safe for concurrent use.
type Store struct {
	root  *sysroot.Root
	paths Files
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	state   stateFile
	pending map[string]*Pending
}

// Files names the store's dirs in its root (the LuoYun dir); the wiring
// fills them from the agent's path table (paths.AppsDir, paths.AppsData).
type Files struct {
	Dir  string // installed applications: <id>/<tree>/, .staging/, state.json
	Data string // per-app data dirs, <id>/, kept across versions and on uninstall without purge
}

// State is the store's state file (installed apps, desired states,
// runid counter).
func (f Files) State() string { return f.Dir + "/state.json" }

// Staging holds the staging dirs, one per install in progress; whatever
// is there at start was left by a crash.
func (f Files) Staging() string { return f.Dir + "/.staging" }

// Open reads the store under root (the LuoYun dir), creating its dirs,
// and removes what a crash left: staging dirs and trees state.json does
// not name. A state.json that cannot be read is an error, and then
// nothing is removed.
func Open(root *sysroot.Root, p Files, o Options) (*Store, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits = o.Limits.WithDefaults()
	s := &Store{root: root, paths: p, opts: o, log: o.Log, pending: map[string]*Pending{}}
	for _, d := range []string{p.Dir, p.Data} {
		if _, err := root.MkdirAll(d, 0o755, 0o755, sysroot.Keep); err != nil {
			return nil, apperr.Wrap(apperr.Internal, "open app store", err)
		}
	}
	data, err := root.ReadFile(p.State(), 64<<20)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.state = stateFile{Schema: Schema, NextRunID: 1, Apps: map[string]*App{}}
	case err != nil:
		return nil, apperr.Wrap(apperr.Internal, "read app state", err)
	default:
		if err := json.Unmarshal(data, &s.state); err != nil {
			return nil, apperr.Wrap(apperr.Internal, "read app state "+p.State(), err)
		}
		if s.state.Schema > Schema {
			return nil, apperr.New(apperr.Internal, fmt.Sprintf("app state %s has schema %d, newer than this agent's %d", p.State(), s.state.Schema, Schema))
		}
		if s.state.Apps == nil {
			s.state.Apps = map[string]*App{}
		}
		if s.state.NextRunID == 0 {
			s.state.NextRunID = 1
		}
		for id, a := range s.state.Apps {
			if !pack.ValidID(id) || a.ID != id || !validTree(a.Current.Tree) || (a.Previous != nil && !validTree(a.Previous.Tree)) {
				return nil, apperr.New(apperr.Internal, fmt.Sprintf("app state %s: bad record for %q", p.State(), id))
			}
		}
	}
	s.sweep()
	if _, err := root.MkdirAll(p.Staging(), 0o700, 0o755, sysroot.Keep); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "open app store", err)
	}
	for _, a := range s.state.Apps {
		s.load(a)
	}
	return s, nil
}

// validTree checks a tree name from state.json before it becomes a path.
func validTree(t string) bool {
	v, n, ok := strings.Cut(t, "~")
	if ok {
		if _, err := strconv.Atoi(n); err != nil {
			return false
		}
	}
	return pack.ValidVersion(v)
}

func (s *Store) appDir(id string) string      { return s.paths.Dir + "/" + id }
func (s *Store) treeName(id, t string) string { return s.appDir(id) + "/" + t }
func (s *Store) dataName(id string) string    { return s.paths.Data + "/" + id }

// load fills in the host paths and manifests of a record.
func (s *Store) load(a *App) {
	a.DataDir, _ = s.root.Path(s.dataName(a.ID))
	a.Problem = ""
	for _, v := range []*Version{&a.Current, a.Previous} {
		if v == nil {
			continue
		}
		v.Dir, _ = s.root.Path(s.treeName(a.ID, v.Tree))
		var err error
		v.Manifest, err = pack.Load(s.root, s.treeName(a.ID, v.Tree)) // manifest.json or an OCI bundle's config.json
		if err != nil && v == &a.Current {
			a.Problem = fmt.Sprintf("version %s: %v", v.Version, err)
			s.log.Error("app unusable", "app", a.ID, "version", v.Version, "err", err)
		}
	}
}

// sweep removes staging dirs and trees state.json does not name.
func (s *Store) sweep() {
	if err := s.root.RemoveAll(s.paths.Staging()); err != nil {
		s.log.Error("remove staging dirs", "err", err)
	}
	names, err := s.root.ReadDirNames(s.paths.Dir)
	if err != nil {
		s.log.Error("sweep app store", "err", err)
		return
	}
	for _, id := range names {
		if strings.HasPrefix(id, ".") || id == "state.json" {
			continue
		}
		a := s.state.Apps[id]
		if a == nil {
			s.log.Info("removed leftover app dir", "app", id)
			s.root.RemoveAll(s.appDir(id))
			continue
		}
		trees, err := s.root.ReadDirNames(s.appDir(id))
		if err != nil {
			continue
		}
		for _, t := range trees {
			if t == a.Current.Tree || (a.Previous != nil && t == a.Previous.Tree) {
				continue
			}
			s.log.Info("removed leftover app tree", "app", id, "tree", t)
			s.root.RemoveAll(s.treeName(id, t))
		}
	}
}

func (s *Store) hook(step Step, id string) error {
	if s.opts.Hook != nil {
		return s.opts.Hook(step, id)
	}
	return nil
}

// writeState writes state.json atomically; on error the caller restores
// its in-memory change.
func (s *Store) writeState() error {
	s.state.Schema = Schema
	data, err := json.MarshalIndent(&s.state, "", "  ")
	if err != nil {
		return apperr.Wrap(apperr.Internal, "encode app state", err)
	}
	if _, err := s.root.WriteFile(s.paths.State(), append(data, '\n'), sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o755}); err != nil {
		return apperr.Wrap(apperr.Internal, "write app state", err)
	}
	return nil
}

// Pending is a prepared install: its tree is in place beside the current
// version, and the state does not name it yet. Call Commit or Abort once.
type Pending struct {
	s       *Store
	id      string
	version Version
	done    bool
}

// App returns the app as it will be after Commit (for starting the new
// version before committing).
func (p *Pending) App() App {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	a := App{ID: p.id, Desired: Stopped}
	if old := p.s.state.Apps[p.id]; old != nil {
		a = old.clone()
		cur := a.Current
		a.Previous = &cur
	}
	a.Current = p.version
	a.DataDir, _ = p.s.root.Path(p.s.dataName(p.id))
	a.Problem = ""
	return a
}

// Prepare stages, checks and places a package without making it current.
// On any error nothing is left: no staging dir, no new tree, the state
// untouched.
func (s *Store) Prepare(ctx context.Context, src pack.Source, o InstallOptions) (_ *Pending, err error) {
	staging := s.paths.Staging() + "/" + strconv.FormatUint(rand.Uint64(), 36)
	if _, err := s.root.MkdirAll(s.paths.Staging(), 0o700, 0o755, sysroot.Keep); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "make staging dir", err)
	}
	if err := s.root.Mkdir(staging, 0o700); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "make staging dir", err)
	}
	defer func() {
		if rerr := s.root.RemoveAll(staging); rerr != nil {
			s.log.Error("remove staging dir", "dir", staging, "err", rerr)
		}
	}()
	if err := s.hook(StepStaged, ""); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "stage", err)
	}
	start := s.opts.Now()
	fetched, err := pack.Fetch(ctx, src, s.root, staging+"/archive", s.opts.Limits, s.opts.HTTP)
	if err != nil {
		return nil, err
	}
	defer fetched.File.Close()
	if err := s.hook(StepFetched, ""); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "fetch", err)
	}
	tree := staging + "/tree"
	if err := s.root.Mkdir(tree, 0o755); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "make staging dir", err)
	}
	m, err := pack.Extract(ctx, fetched.File, s.root, tree, s.opts.Limits)
	if err != nil {
		return nil, err
	}
	if err := s.checkUser(m.User); err != nil {
		return nil, err
	}
	if err := s.hook(StepExtracted, m.ID); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "unpack", err)
	}
	if err := s.root.SyncTree(tree); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "sync unpacked tree", err)
	}
	if err := s.hook(StepSynced, m.ID); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "sync unpacked tree", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Apps[m.ID]
	switch {
	case s.pending[m.ID] != nil:
		return nil, apperr.New(apperr.Conflict, fmt.Sprintf("an install of %s is in progress", m.ID))
	case old == nil || o.Force:
	case old.Current.Version == m.Version:
		return nil, apperr.New(apperr.Conflict, fmt.Sprintf("%s %s is already installed (use force to install it again)", m.ID, m.Version))
	case pack.CompareVersions(m.Version, old.Current.Version) < 0:
		return nil, apperr.New(apperr.Conflict, fmt.Sprintf("%s %s is older than the installed %s (use force to downgrade)", m.ID, m.Version, old.Current.Version))
	}
	if old == nil {
		defer func() {
			if err != nil { // a new app: its dir goes too
				s.root.RemoveAll(s.appDir(m.ID))
			}
		}()
	}
	if _, err := s.root.MkdirAll(s.appDir(m.ID), 0o755, 0o755, sysroot.Keep); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "make app dir", err)
	}
	name := s.freeTree(m.ID, m.Version, old)
	if err := s.root.Rename(tree, s.treeName(m.ID, name)); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "move tree into place", err)
	}
	if err := s.hook(StepInPlace, m.ID); err != nil {
		s.root.RemoveAll(s.treeName(m.ID, name))
		return nil, apperr.Wrap(apperr.Internal, "move tree into place", err)
	}
	dir, _ := s.root.Path(s.treeName(m.ID, name))
	p := &Pending{s: s, id: m.ID, version: Version{
		Version: m.Version, Tree: name, SHA256: fetched.SHA256, Size: fetched.Size,
		Installed: s.opts.Now().UTC(), Manifest: m, Dir: dir,
	}}
	s.pending[m.ID] = p
	s.log.Info("app staged", "app", m.ID, "version", m.Version, "tree", name, "source", src.Describe(),
		"bytes", fetched.Size, "took", s.opts.Now().Sub(start).Round(time.Microsecond))
	return p, nil
}

// freeTree picks a tree name for version that no kept version uses and
// that is not on disk.
func (s *Store) freeTree(id, version string, old *App) string {
	used := func(t string) bool {
		if old != nil && (old.Current.Tree == t || (old.Previous != nil && old.Previous.Tree == t)) {
			return true
		}
		_, err := s.root.Lstat(s.treeName(id, t))
		return err == nil
	}
	name := version
	for n := 2; used(name); n++ {
		name = version + "~" + strconv.Itoa(n)
	}
	return name
}

func (s *Store) checkUser(user string) error {
	if user == "" || user == "root" {
		return nil
	}
	if s.opts.Users == nil {
		return apperr.New(apperr.BadRequest, fmt.Sprintf("manifest: user %q: only root is allowed here (no account lookup)", user))
	}
	if _, _, err := s.opts.Users(user); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return apperr.New(apperr.BadRequest, fmt.Sprintf("manifest: user %q does not exist on this system", user))
		}
		return apperr.Wrap(apperr.Internal, "look up user "+user, err)
	}
	return nil
}

// Commit makes the prepared version current: the old current becomes the
// previous version and the old previous is removed. The data dir is made
// (owned by the manifest's user) before the state changes.
func (p *Pending) Commit() (App, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.done {
		return App{}, apperr.New(apperr.InvalidState, "install already committed or aborted")
	}
	m := p.version.Manifest
	_, statErr := s.root.Lstat(s.dataName(p.id))
	if err := s.makeDataDir(p.id, m.User); err != nil {
		return App{}, err
	}
	committed := false
	defer func() {
		if !committed && statErr != nil { // made just now: no trace of a failed commit
			s.root.RemoveAll(s.dataName(p.id))
		}
	}()
	if err := s.hook(StepCommit, p.id); err != nil {
		return App{}, apperr.Wrap(apperr.Internal, "commit", err)
	}
	old := s.state.Apps[p.id]
	var a *App
	var dropped *Version
	if old == nil {
		a = &App{ID: p.id, Desired: Stopped}
	} else {
		c := old.clone()
		a = &c
		dropped = a.Previous
		cur := a.Current
		a.Previous = &cur
	}
	a.Current = p.version
	s.state.Apps[p.id] = a
	if err := s.writeState(); err != nil {
		if old == nil {
			delete(s.state.Apps, p.id)
		} else {
			s.state.Apps[p.id] = old
		}
		return App{}, err
	}
	committed = true
	p.done = true
	delete(s.pending, p.id)
	s.load(a)
	if err := s.hook(StepCommitted, p.id); err != nil {
		s.log.Error("after commit", "app", p.id, "err", err)
	}
	if dropped != nil && dropped.Tree != a.Current.Tree {
		s.drop(p.id, dropped.Tree)
	}
	s.log.Info("app installed", "app", p.id, "version", a.Current.Version, "tree", a.Current.Tree)
	return a.clone(), nil
}

// Abort removes the prepared tree; the state was never changed.
func (p *Pending) Abort() error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	delete(s.pending, p.id)
	if err := s.root.RemoveAll(s.treeName(p.id, p.version.Tree)); err != nil {
		return apperr.Wrap(apperr.Internal, "remove prepared tree", err)
	}
	if s.state.Apps[p.id] == nil {
		s.root.RemoveAll(s.appDir(p.id)) // made by Prepare for a new app; empty now
	}
	s.log.Info("app install aborted", "app", p.id, "version", p.version.Version)
	return nil
}

// drop removes a tree no longer named by the state; a failure only logs
// (the next Open sweeps it).
func (s *Store) drop(id, tree string) {
	if err := s.root.RemoveAll(s.treeName(id, tree)); err != nil {
		s.log.Error("remove old app tree", "app", id, "tree", tree, "err", err)
		return
	}
	if err := s.hook(StepDropped, id); err != nil {
		s.log.Error("after drop", "app", id, "err", err)
	}
}

// Install prepares and commits in one go, for an app that is not running
// (or not installed).
func (s *Store) Install(ctx context.Context, src pack.Source, o InstallOptions) (App, error) {
	p, err := s.Prepare(ctx, src, o)
	if err != nil {
		return App{}, err
	}
	a, err := p.Commit()
	if err != nil {
		p.Abort()
		return App{}, err
	}
	return a, nil
}

// Rollback makes the previous version current again and removes the
// version rolled back from; there is then no previous version. The
// manager stops the app's runs first and starts it again after.
func (s *Store) Rollback(id string) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.get(id)
	if err != nil {
		return App{}, err
	}
	if a.Previous == nil {
		return App{}, apperr.New(apperr.InvalidState, fmt.Sprintf("%s has no previous version to roll back to", id))
	}
	old := a.clone()
	dropped := a.Current
	a.Current, a.Previous = *a.Previous, nil
	if err := s.writeState(); err != nil {
		*a = old
		return App{}, err
	}
	s.load(a)
	if err := s.hook(StepRollback, id); err != nil {
		s.log.Error("after rollback", "app", id, "err", err)
	}
	s.drop(id, dropped.Tree)
	s.log.Info("app rolled back", "app", id, "version", a.Current.Version, "from", dropped.Version)
	return a.clone(), nil
}

// Uninstall forgets the app and removes its trees; its data dir goes too
// with purge, and is kept otherwise (a later install of the same id finds
// it). The manager stops every run of the app first.
func (s *Store) Uninstall(id string, purge bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.get(id)
	if err != nil {
		return err
	}
	delete(s.state.Apps, id)
	if err := s.writeState(); err != nil {
		s.state.Apps[id] = a
		return err
	}
	if err := s.hook(StepUninstall, id); err != nil {
		s.log.Error("after uninstall", "app", id, "err", err)
	}
	var errs []error
	if err := s.root.RemoveAll(s.appDir(id)); err != nil {
		errs = append(errs, err)
	}
	if purge {
		if err := s.root.RemoveAll(s.dataName(id)); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("app uninstalled", "app", id, "purge", purge)
	if err := errors.Join(errs...); err != nil {
		return apperr.Wrap(apperr.Internal, "uninstall "+id+" (forgotten; files left)", err)
	}
	return nil
}

func (s *Store) get(id string) (*App, error) {
	if s.pending[id] != nil {
		return nil, apperr.New(apperr.Conflict, fmt.Sprintf("an install of %s is in progress", id))
	}
	a := s.state.Apps[id]
	if a == nil {
		return nil, apperr.New(apperr.NotFound, fmt.Sprintf("no app %q installed", clip(id)))
	}
	return a, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Get returns a copy of the app's record.
func (s *Store) Get(id string) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.state.Apps[id]
	if a == nil {
		return App{}, apperr.New(apperr.NotFound, fmt.Sprintf("no app %q installed", clip(id)))
	}
	return a.clone(), nil
}

// List returns copies of every record, sorted by id.
func (s *Store) List() []App {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]App, 0, len(s.state.Apps))
	for _, a := range s.state.Apps {
		out = append(out, a.clone())
	}
	slices.SortFunc(out, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Update changes an app's record with f and writes the state; f may
// change Desired, Enabled and Restarts (what the manager and runner own),
// not the versions. If f or the write fails the record is unchanged.
func (s *Store) Update(id string, f func(*App) error) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.state.Apps[id]
	if a == nil {
		return App{}, apperr.New(apperr.NotFound, fmt.Sprintf("no app %q installed", clip(id)))
	}
	old := a.clone()
	if err := f(a); err != nil {
		*a = old
		return App{}, err
	}
	if a.ID != old.ID || a.Current.Tree != old.Current.Tree || (a.Previous == nil) != (old.Previous == nil) ||
		(a.Previous != nil && a.Previous.Tree != old.Previous.Tree) {
		*a = old
		return App{}, apperr.New(apperr.Internal, "update "+id+": versions are changed only by install and rollback")
	}
	if a.Desired != Running && a.Desired != Stopped {
		d := a.Desired
		*a = old
		return App{}, apperr.New(apperr.BadRequest, fmt.Sprintf("desired state %q: want running or stopped", d))
	}
	if err := s.writeState(); err != nil {
		*a = old
		return App{}, err
	}
	return a.clone(), nil
}

// SetDesired records whether the app should be running.
func (s *Store) SetDesired(id string, d Desired) (App, error) {
	return s.Update(id, func(a *App) error { a.Desired = d; return nil })
}

// SetEnabled records whether the app starts once the boot steps are done.
func (s *Store) SetEnabled(id string, on bool) (App, error) {
	return s.Update(id, func(a *App) error { a.Enabled = on; return nil })
}

// NextRunID returns a new run id: increasing from 1, persisted before it
// is returned, so never reused while state.json lives.
func (s *Store) NextRunID() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.state.NextRunID
	s.state.NextRunID++
	if err := s.writeState(); err != nil {
		s.state.NextRunID = id
		return 0, err
	}
	return id, nil
}

// MakeDataDir makes the app's data dir (0700, owned by its manifest's
// user) if missing, fixes its owner if the user changed, and returns its
// host path. Commit calls it; the runner may call it before each start.
func (s *Store) MakeDataDir(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.state.Apps[id]
	if a == nil {
		return "", apperr.New(apperr.NotFound, fmt.Sprintf("no app %q installed", clip(id)))
	}
	user := ""
	if a.Current.Manifest != nil {
		user = a.Current.Manifest.User
	}
	if err := s.makeDataDir(id, user); err != nil {
		return "", err
	}
	return a.DataDir, nil
}

func (s *Store) makeDataDir(id, user string) error {
	owner := sysroot.Keep
	if user != "" && user != "root" && s.opts.Users != nil {
		uid, gid, err := s.opts.Users(user)
		if err != nil {
			return apperr.Wrap(apperr.BadRequest, "data dir of "+id+": user "+user, err)
		}
		owner = sysroot.Owner{UID: uid, GID: gid}
	}
	if _, err := s.root.MkdirAll(s.dataName(id), 0o700, 0o755, owner); err != nil {
		return apperr.Wrap(apperr.Internal, "make data dir of "+id, err)
	}
	return nil
}
