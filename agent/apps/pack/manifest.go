// Package pack reads application packages: the manifest, the archive and
// its download. It checks everything that comes from outside and stops at
// a staged tree; agent/apps/store puts staged trees in place.
//
// # Format
//
// A package is a tar archive, plain or gzip-compressed (told apart by the
// gzip magic bytes, never by the file name), holding manifest.json at its
// top and the app's files:
//
//	manifest.json
//	bin/hello
//	share/…
//
// # Manifest
//
// manifest.json is one JSON object (at most 64 KiB), read strictly: an
// unknown key (matched exactly, case included), a key given twice at any
// level, a value of the wrong type, or anything after the object is
// refused, naming the key. Fields:
//
//	id           required; [a-z0-9][a-z0-9._-]{0,63}
//	version      required; [0-9A-Za-z][0-9A-Za-z.+_-]{0,63}; see CompareVersions
//	exec         required; path of the program inside the package (no "..", not absolute);
//	             it must be a regular file with an execute bit, or a symlink to one inside the package
//	args         arguments after exec (at most 256, each at most 4096 bytes, no NUL)
//	env          extra environment: keys [A-Za-z_][A-Za-z0-9_]*, not starting with OSM_
//	             (the runner sets OSM_APP_ID, OSM_APP_VERSION, OSM_APP_DATA, OSM_RUNID);
//	             values at most 4096 bytes with no NUL, CR or LF; at most 128 keys
//	restart      "no", "on-failure" (the default, as supervisord's autorestart=unexpected)
//	             or "always"
//	name         display name, at most 128 characters, no control characters
//	description  at most 1024 characters, no control characters
//	user         account to run as, [a-z_][a-z0-9_.-]{0,31}; default root. The installer
//	             checks it exists in the system's /etc/passwd.
//	workdir      working directory inside the package (default its top); must be a directory
//	instances    "single" (the default: at most one run) or "multi"
//	stop_timeout Go duration, SIGTERM to SIGKILL; default 10s, at most 1h
//	start_limit  {"burst": N, "interval": "10s"}: more than burst starts within interval
//	             and the run fails; default {"burst": 5, "interval": "10s"} as systemd's;
//	             burst 1–1000, interval up to 24h
//	socket       {"listen": ADDR, "name": N} or a list of them: sockets the agent binds and
//	             hands over when the app starts as a declared service (see Socket)
//
//	limits       {"memory": "256M", "cpu": 0.5, "pids": 128, "soft": true}: caps on each run's
//	             cgroup (memory.max, cpu.max, pids.max); memory a size (K, M, G, T: powers of
//	             1024) of at least 1M, cpu in cores (0.01–1024), pids 1–4194304; soft: run
//	             without them where the host cannot apply them (else the install is refused)
//	alerts       {"cpu": {"above": 80, "for": "30s"}, "memory": {"above": "200M", "for": "10s"}}:
//	             raised when the app's figure (summed over its runs) stays above the threshold
//	             for "for" (0–24h), cleared when it stays at or below it as long; metrics cpu
//	             (percent of one core), memory (bytes), pids, io (bytes/s), disk (data dir bytes)
//
// Later keys (part 2: socket) are added as fields of
// Manifest; the set of allowed keys is read from its json tags, so a key
// is refused until its field exists.
//
// # Archive rules
//
// Extract refuses, with an apperr.Error: names that are absolute, hold
// "..", NUL, control bytes or invalid UTF-8, or are over 1024 bytes;
// the same name twice; symlinks whose target is absolute, climbs out of
// the package, dangles, or reaches outside through other symlinks (every
// link is resolved inside the tree after extraction, at most 40 hops);
// hard links to anything but a regular file extracted before them;
// device nodes, FIFOs and other entry types; setuid, setgid and sticky
// bits; more than Limits.MaxFiles entries or Limits.MaxBytes of content,
// counted while decompressing (a gzip bomb stops at the cap); a missing
// or invalid manifest. Owners in the archive are ignored: files belong to
// the agent, with the archive's permission bits masked to 0755 (no
// group or world write), directories at least 0700.
//
// Unpack applies the same rules without the manifest, for other formats
// carried in such archives; Tree.Resolve follows a name inside the
// unpacked tree.
//
// An archive without manifest.json may instead be an OCI runtime bundle
// (see bundle.go): <name>/config.json and <name>/rootfs/.
package pack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/internal/lazyre"
)

// ManifestName is the manifest's name at the top of a package.
const ManifestName = "manifest.json"

// Manifest limits.
const (
	MaxManifest    = 64 << 10
	maxArgs        = 256
	maxEnv         = 128
	maxValue       = 4096
	maxName        = 128
	maxDescription = 1024
	maxStopTimeout = time.Hour
	maxInterval    = 24 * time.Hour
	maxBurst       = 1000
)

// Restart is a restart policy.
type Restart string

// The restart policies.
const (
	RestartNo        Restart = "no"
	RestartOnFailure Restart = "on-failure"
	RestartAlways    Restart = "always"
)

// Instances says how many runs an app may have at once.
type Instances string

// The instance modes.
const (
	Single Instances = "single"
	Multi  Instances = "multi"
)

// Defaults applied by ParseManifest.
const (
	DefaultRestart     = RestartOnFailure
	DefaultStopTimeout = 10 * time.Second
	DefaultBurst       = 5
	DefaultInterval    = 10 * time.Second
)

// Manifest is a package's manifest.json, checked and with defaults
// filled in.
type Manifest struct {
	ID          string            `json:"id"`
	Version     string            `json:"version"`
	Exec        string            `json:"exec"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Restart     Restart           `json:"restart,omitempty"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	User        string            `json:"user,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
	Instances   Instances         `json:"instances,omitempty"`
	StopTimeout Duration          `json:"stop_timeout,omitempty"`
	StartLimit  *StartLimit       `json:"start_limit,omitempty"`

	// Declared services (socket.go).
	Socket Sockets `json:"socket,omitempty"`
	// OCI bundles (part 2): set when the package is an OCI runtime
	// bundle rather than a manifest.json package; never read from JSON.
	Bundle *Bundle `json:"-"`
	// Monitoring (limits.go): caps on the run's cgroup, and alerts on the
	// app's figures.
	Limits *ResourceLimits `json:"limits,omitempty"`
	Alerts Alerts          `json:"alerts,omitempty"`
}

// StartLimit is the start rate limit: more than Burst starts within
// Interval and the run ends failed.
type StartLimit struct {
	Burst    int      `json:"burst"`
	Interval Duration `json:"interval"`
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("10s", "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want a duration string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (such as \"10s\")", s)
	}
	*d = Duration(v)
	return nil
}

var (
	idRE      = lazyre.New(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	versionRE = lazyre.New(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
	envKeyRE  = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userRE    = lazyre.New(`^[a-z_][a-z0-9_.-]{0,31}$`)
)

// ValidID reports whether id is a valid app id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// ValidVersion reports whether v is a valid version string. Versions are
// also directory names in the store, so they hold no slash and no "~".
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

func bad(format string, a ...any) error {
	return apperr.New(apperr.BadRequest, "manifest: "+fmt.Sprintf(format, a...))
}

// ParseManifest reads and checks a manifest, filling in defaults. Every
// error is an apperr.Error with code bad_request (too_large over
// MaxManifest) naming the key at fault.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifest {
		return nil, apperr.New(apperr.TooLarge, fmt.Sprintf("manifest: over %d bytes", MaxManifest))
	}
	if err := checkKeys(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, bad("%s", jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the JSON object")
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "want a JSON object, not " + te.Value
		}
		return fmt.Sprintf("%q: want %s, not %s", te.Field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "not valid JSON (empty or cut short)"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// keysOf lists the json names of a struct type's fields.
func keysOf(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			keys[name] = ft
		}
	}
	return keys
}

var manifestType = reflect.TypeFor[Manifest]()

// checkKeys walks the JSON and refuses keys given twice at any level and
// keys that match no field exactly (encoding/json alone would take "ID"
// for "id" and keep the last of two "exec" keys).
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkValue(dec, manifestType, "", 0)
}

func walkValue(dec *json.Decoder, t reflect.Type, at string, depth int) error {
	if depth > 16 {
		return bad("nested too deep at %q", at)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad("%s", jsonError(err))
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if d == '[' {
		for dec.More() {
			if err := walkValue(dec, nil, at+"[]", depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad("%s", jsonError(err))
		}
		return nil
	}
	var fields map[string]reflect.Type
	var elem reflect.Type // a map's values: each checked as that type
	if t != nil && t.Kind() == reflect.Struct {
		fields = keysOf(t)
	}
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
		if elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("%s", jsonError(err))
		}
		key, _ := tok.(string)
		name := key
		if at != "" {
			name = at + "." + key
		}
		if seen[key] {
			return bad("key %q given twice", name)
		}
		seen[key] = true
		sub := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				return bad("unknown key %q", name)
			}
			sub = ft
		}
		if err := walkValue(dec, sub, name, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad("%s", jsonError(err))
	}
	return nil
}

// check validates every field and fills in defaults.
func (m *Manifest) check() error {
	switch {
	case m.ID == "":
		return bad(`"id" is missing`)
	case !ValidID(m.ID):
		return bad(`"id" %q: want [a-z0-9][a-z0-9._-]{0,63}`, clip(m.ID))
	case m.Version == "":
		return bad(`"version" is missing`)
	case !ValidVersion(m.Version):
		return bad(`"version" %q: want [0-9A-Za-z][0-9A-Za-z.+_-]{0,63}`, clip(m.Version))
	case m.Exec == "" && m.Bundle == nil:
		return bad(`"exec" is missing`)
	}
	if m.Exec != "" {
		if err := checkTreePath(m.Exec); err != nil {
			return bad(`"exec" %q: %v`, clip(m.Exec), err)
		}
	}
	if m.Workdir != "" {
		if err := checkTreePath(m.Workdir); err != nil {
			return bad(`"workdir" %q: %v`, clip(m.Workdir), err)
		}
	}
	if len(m.Args) > maxArgs {
		return bad(`"args": more than %d`, maxArgs)
	}
	for i, a := range m.Args {
		if len(a) > maxValue || strings.IndexByte(a, 0) >= 0 {
			return bad(`"args"[%d]: over %d bytes or holds NUL`, i, maxValue)
		}
	}
	if len(m.Env) > maxEnv {
		return bad(`"env": more than %d keys`, maxEnv)
	}
	for k, v := range m.Env {
		switch {
		case !envKeyRE.MatchString(k) || len(k) > 256:
			return bad(`"env" key %q: want [A-Za-z_][A-Za-z0-9_]*`, clip(k))
		case strings.HasPrefix(k, "OSM_"):
			return bad(`"env" key %q: OSM_ is reserved for the agent`, k)
		case len(v) > maxValue || strings.ContainsAny(v, "\x00\r\n"):
			return bad(`"env" %s: value over %d bytes or holds NUL or a line break`, k, maxValue)
		}
	}
	switch m.Restart {
	case "":
		m.Restart = DefaultRestart
	case RestartNo, RestartOnFailure, RestartAlways:
	default:
		return bad(`"restart" %q: want no, on-failure or always`, clip(string(m.Restart)))
	}
	switch m.Instances {
	case "":
		m.Instances = Single
	case Single, Multi:
	default:
		return bad(`"instances" %q: want single or multi`, clip(string(m.Instances)))
	}
	if err := checkText(m.Name, maxName); err != nil {
		return bad(`"name": %v`, err)
	}
	if err := checkText(m.Description, maxDescription); err != nil {
		return bad(`"description": %v`, err)
	}
	if m.User != "" && !userRE.MatchString(m.User) {
		return bad(`"user" %q: want an account name [a-z_][a-z0-9_.-]{0,31}`, clip(m.User))
	}
	switch {
	case m.StopTimeout == 0:
		m.StopTimeout = Duration(DefaultStopTimeout)
	case m.StopTimeout < 0 || m.StopTimeout.D() > maxStopTimeout:
		return bad(`"stop_timeout" %v: want above 0 and at most %v`, m.StopTimeout.D(), maxStopTimeout)
	}
	if m.StartLimit == nil {
		m.StartLimit = &StartLimit{Burst: DefaultBurst, Interval: Duration(DefaultInterval)}
	}
	if b := m.StartLimit.Burst; b < 1 || b > maxBurst {
		return bad(`"start_limit.burst" %d: want 1 to %d`, b, maxBurst)
	}
	if iv := m.StartLimit.Interval.D(); iv <= 0 || iv > maxInterval {
		return bad(`"start_limit.interval" %v: want above 0 and at most %v`, iv, maxInterval)
	}
	if err := m.Socket.check(); err != nil {
		return err
	}
	if err := m.Limits.check(); err != nil {
		return err
	}
	return CheckAppAlerts(m.Alerts, "alerts")
}

// checkTreePath checks a relative path inside a package.
func checkTreePath(p string) error {
	clean, err := CleanName(p)
	if err != nil {
		return err
	}
	if clean == "." {
		return errors.New("names the package's top")
	}
	return nil
}

func checkText(s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("over %d characters", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return errors.New("holds a control character or line break")
		}
	}
	return nil
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
