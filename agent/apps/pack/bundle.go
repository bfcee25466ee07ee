package pack

// OCI runtime bundles (RDK DSM's deployment units).
//
// A bundle package is a tar (or tar.gz) holding one directory, the
// bundle, and nothing else at its top:
//
//	<name>/config.json   the OCI runtime configuration
//	<name>/rootfs/…      the container's root file system
//
// It is told from a manifest.json package by its content: no
// manifest.json at the top, one directory there, holding config.json.
// The app's id is <name> (the id rules apply); its version is the
// annotation org.opencontainers.image.version, or "0" without one (the
// version rules apply). config.json is read with the runtime spec's Go
// types (github.com/opencontainers/runtime-spec/specs-go): unknown keys
// are allowed, as the spec asks of its readers, but it must parse, name
// an ociVersion, have a process with non-empty args, an absolute cwd
// and no terminal (a run's output goes to its log), and a root.path
// that is relative and stays inside the bundle, naming a directory.
//
// Optional annotations give what a manifest would:
//
//	org.opencontainers.image.title        name
//	org.opencontainers.image.description  description
//	org.osmanager.restart                 restart ("no", "on-failure", "always")
//	org.osmanager.stop_timeout            stop_timeout (a Go duration)
//
// # Rules inside rootfs
//
// The archive rules apply to the whole bundle, with two exceptions for
// entries under <name>/rootfs/, which a root file system needs:
// symlinks there may have any target (absolute, climbing, dangling:
// /bin/sh -> /bin/busybox, /etc/mtab -> /proc/self/mounts), because they
// are resolved inside the container's root, never by the agent (sysroot
// follows no symlink, and an entry written through one is refused); and a
// directory's sticky bit (/tmp) is accepted and dropped with the rest of
// the mode mask. Device nodes, FIFOs, setuid and setgid stay refused
// there too. These exceptions hold only when the tree turns out to be a
// bundle: in a manifest.json package, <x>/rootfs/ gets the package rules.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/sysroot"
)

// BundleConfig is the OCI runtime configuration's name in a bundle.
const BundleConfig = "config.json"

// MaxBundleConfig caps config.json (seccomp profiles make it long).
const MaxBundleConfig = 1 << 20

// Annotations of config.json that the installer reads.
const (
	AnnotationVersion     = "org.opencontainers.image.version"
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationDescription = "org.opencontainers.image.description"
	AnnotationRestart     = "org.osmanager.restart"
	AnnotationStopTimeout = "org.osmanager.stop_timeout"
)

// Bundle is an installed OCI bundle.
type Bundle struct {
	// Dir is the bundle's directory in the tree: the app's id.
	Dir string
	// Config is config.json as checked at install; shared, read only.
	Config *specs.Spec
}

// rootfsEntries are the entries under <top>/rootfs/ that only a bundle
// may have.
type rootfsEntries struct {
	links  []rootfsLink
	sticky []string
}

type rootfsLink struct{ name, target string }

// inRootfs reports whether name is strictly inside <top>/rootfs/.
func inRootfs(name string) bool {
	parts := strings.SplitN(name, "/", 3)
	return len(parts) == 3 && parts[1] == "rootfs" && parts[2] != ""
}

// checkRootfsLink checks what is left to check of a rootfs symlink's
// target: it is stored, never followed.
func checkRootfsLink(target string) error {
	switch {
	case target == "":
		return errors.New("empty target")
	case len(target) > maxNameLen:
		return errors.New("target too long")
	case strings.ContainsFunc(target, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("target holds a control byte")
	}
	return nil
}

// rootfsRules judges the rootfs entries once the tree is complete: a
// bundle keeps them; any other tree applies the package rules to them.
func (x *extractor) rootfsRules() error {
	if _, ok := x.bundleName(); ok {
		return nil
	}
	if len(x.rootfs.sticky) > 0 {
		return badArchive("%s: setuid, setgid or sticky bit (sticky)", x.rootfs.sticky[0])
	}
	for _, l := range x.rootfs.links {
		if err := checkLinkTarget(l.name, l.target); err != nil {
			return badArchive("symlink %s -> %q: %v", l.name, clip(l.target), err)
		}
		x.links = append(x.links, l.name)
	}
	return nil
}

// bundleName says whether the tree is a bundle: no manifest.json, one
// directory at the top (not a symlink), holding a config.json.
func (x *extractor) bundleName() (string, bool) {
	names, err := x.root.ReadDirNames(x.dir)
	if err != nil || len(names) != 1 || names[0] == ManifestName {
		return "", false
	}
	st, err := x.root.Lstat(x.host(names[0]))
	if err != nil || !st.IsDir() {
		return "", false
	}
	if _, err := x.root.Lstat(x.host(names[0] + "/" + BundleConfig)); err != nil {
		return "", false
	}
	return names[0], true
}

func badBundle(format string, a ...any) error {
	return apperr.New(apperr.BadRequest, "bundle: "+fmt.Sprintf(format, a...))
}

// bundle reads and checks the bundle <name> of the tree and makes its
// manifest.
func (x *extractor) bundle(name string) (*Manifest, error) {
	if !ValidID(name) {
		return nil, badBundle("name %q is not a valid app id ([a-z0-9][a-z0-9._-]{0,63})", clip(name))
	}
	cfg := name + "/" + BundleConfig
	st, err := x.root.Lstat(x.host(cfg))
	if err != nil || !st.Mode().IsRegular() {
		return nil, badBundle("%s is not a regular file", cfg)
	}
	data, err := x.root.ReadFile(x.host(cfg), MaxBundleConfig)
	if errors.Is(err, sysroot.ErrTooLarge) {
		return nil, apperr.New(apperr.TooLarge, fmt.Sprintf("bundle: %s over %d bytes", cfg, MaxBundleConfig))
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, "read "+cfg, err)
	}
	spec, err := ParseBundleConfig(data)
	if err != nil {
		return nil, err
	}
	rootPath, _ := CleanName(spec.Root.Path) // checked by ParseBundleConfig
	at, fi, err := x.resolve(name + "/" + rootPath)
	switch {
	case err != nil:
		return nil, badBundle(`%s: "root.path" %q: %v`, cfg, clip(spec.Root.Path), err)
	case !strings.HasPrefix(at, name+"/"):
		return nil, badBundle(`%s: "root.path" %q: not inside the bundle`, cfg, clip(spec.Root.Path))
	case !fi.IsDir():
		return nil, badBundle(`%s: "root.path" %q: %s is not a directory`, cfg, clip(spec.Root.Path), at)
	}
	m := &Manifest{ID: name, Version: "0", Bundle: &Bundle{Dir: name, Config: spec}}
	a := spec.Annotations
	if v, ok := a[AnnotationVersion]; ok {
		if !ValidVersion(v) {
			return nil, badBundle(`%s: annotation %s %q: want [0-9A-Za-z][0-9A-Za-z.+_-]{0,63}`, cfg, AnnotationVersion, clip(v))
		}
		m.Version = v
	}
	m.Name, m.Description, m.Restart = a[AnnotationTitle], a[AnnotationDescription], Restart(a[AnnotationRestart])
	if v, ok := a[AnnotationStopTimeout]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, badBundle(`%s: annotation %s %q: want a duration above 0 (such as "10s")`, cfg, AnnotationStopTimeout, clip(v))
		}
		m.StopTimeout = Duration(d)
	}
	if err := m.check(); err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return nil, badBundle("%s: annotations: %s", cfg, strings.TrimPrefix(ae.Msg, "manifest: "))
		}
		return nil, err
	}
	return m, nil
}

// ParseBundleConfig reads an OCI runtime configuration (config.json) and
// checks what the agent needs of it: it parses as the runtime spec's
// types, names an ociVersion, has a process with args, an absolute cwd
// and no terminal, and a root.path that is relative and does not climb
// out of the bundle. Unknown keys are allowed (the spec requires that
// readers ignore them). Errors are apperr bad_request, naming the key.
func ParseBundleConfig(data []byte) (*specs.Spec, error) {
	if len(data) > MaxBundleConfig {
		return nil, apperr.New(apperr.TooLarge, fmt.Sprintf("bundle: %s over %d bytes", BundleConfig, MaxBundleConfig))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var s specs.Spec
	if err := dec.Decode(&s); err != nil {
		return nil, badBundle("%s: %s", BundleConfig, jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badBundle("%s: data after the JSON object", BundleConfig)
	}
	bad := func(f string, a ...any) error { return badBundle(BundleConfig+": "+f, a...) }
	p := s.Process
	switch {
	case s.Version == "":
		return nil, bad(`"ociVersion" is missing`)
	case p == nil:
		return nil, bad(`"process" is missing`)
	case len(p.Args) == 0 || p.Args[0] == "":
		return nil, bad(`"process.args" is empty`)
	case p.Terminal:
		return nil, bad(`"process.terminal" is true: a run has no terminal (its output goes to its log)`)
	case !path.IsAbs(p.Cwd):
		return nil, bad(`"process.cwd" %q: want an absolute path`, clip(p.Cwd))
	case s.Root == nil || s.Root.Path == "":
		return nil, bad(`"root.path" is missing`)
	}
	for i, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, bad(`"process.args"[%d] holds NUL`, i)
		}
	}
	for i, e := range p.Env {
		if strings.IndexByte(e, 0) >= 0 || !strings.Contains(e, "=") {
			return nil, bad(`"process.env"[%d]: want NAME=value without NUL`, i)
		}
	}
	clean, err := CleanName(s.Root.Path)
	switch {
	case strings.HasPrefix(s.Root.Path, "/"):
		return nil, bad(`"root.path" %q: absolute; want a path inside the bundle`, clip(s.Root.Path))
	case err != nil:
		return nil, bad(`"root.path" %q: not inside the bundle: %v`, clip(s.Root.Path), err)
	case clean == ".":
		return nil, bad(`"root.path" %q: names the bundle itself`, clip(s.Root.Path))
	}
	return &s, nil
}
