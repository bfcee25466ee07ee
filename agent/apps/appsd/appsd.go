// Package appsd reads the declared services of the apps.d dir
// (<LuoYun>/apps.d/*.json), as Fuchsia's sysmgr reads its config dir:
// every file, in name order, is one JSON object with any of
//
//	{
//	  "services": {"web": "hello", "api": ["api-server", "--port", "9000"]},
//	  "startup_services": ["api"],
//	  "apps": ["metrics", ["logger", "-v"]]
//	}
//
// services maps the name a service is reached by to the installed app
// that provides it (an app id, or [id, arg, …]: extra arguments after the
// manifest's args); startup_services lists names to start eagerly (the
// others start on their first connection); apps lists apps (id or
// [id, arg, …]) to start eagerly that provide no named service.
//
// The files merge into one Config. What is wrong is refused, one entry at
// a time, with its file and key named in a Problem, and everything else
// still loads: a file that is not valid JSON, not an object or over
// MaxFile (the whole file); an unknown key (that key); a service name
// defined twice, in one file (encoding/json would keep the last silently:
// the keys are walked as tokens) or in two (the first, in file order, is
// kept); an app that provides two services (the second refused); a bad
// name, id or argument; a startup name that no file defines; an app that
// is not installed. An apps entry naming an app that provides a service
// is that service, started eagerly once: never a second run (sysmgr's
// pitfall).
package appsd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"osmanager/agent/internal/lazyre"
)

// Limits of a file.
const (
	MaxFile  = 256 << 10
	maxArgs  = 256
	maxValue = 4096
)

// File is one file of the dir.
type File struct {
	Name string // the base name, "10-web.json"
	Data []byte
}

// Service is a declared service.
type Service struct {
	Name  string   `json:"name"`
	App   string   `json:"app"`
	Args  []string `json:"args,omitempty"`
	Eager bool     `json:"eager"` // in startup_services, or in apps
	File  string   `json:"file"`  // where it is defined
}

// App is an app started eagerly that provides no named service.
type App struct {
	App  string   `json:"app"`
	Args []string `json:"args,omitempty"`
	File string   `json:"file"`
}

// Problem is one refused entry.
type Problem struct {
	File    string `json:"file"`
	Key     string `json:"key,omitempty"` // "services.web", "apps[1]", "startup_services[0]"; "" for the whole file
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.File + ": " + p.Message
	}
	return p.File + ": " + p.Key + ": " + p.Message
}

// Config is the merged declaration.
type Config struct {
	Services []Service // by name
	Apps     []App     // in file order
	Problems []Problem // in file order
}

var (
	nameRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	idRE   = lazyre.New(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// ValidName reports whether s is a valid service name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// launch is an app id with its extra args.
type launch struct {
	app  string
	args []string
}

// fileDecl is what one file declares, in order.
type fileDecl struct {
	services []struct {
		name string
		l    launch
	}
	startup []struct {
		key, name string
	}
	apps []struct {
		key string
		l   launch
	}
}

// Parse merges the files (sorted by name) into a Config. installed says
// whether an app id is installed; nil takes every id as installed.
func Parse(files []File, installed func(id string) bool) Config {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	var cfg Config
	problem := func(file, key, format string, a ...any) {
		cfg.Problems = append(cfg.Problems, Problem{File: file, Key: key, Message: fmt.Sprintf(format, a...)})
	}
	byName := map[string]*Service{}
	provider := map[string]string{} // app id → service name
	refused := map[string]bool{}    // service names refused for a reason already told
	type startRef struct{ file, key, name string }
	var starts []startRef
	type appRef struct {
		file, key string
		l         launch
	}
	var apps []appRef
	for _, f := range files {
		d := parseFile(f, problem)
		for _, s := range d.services {
			key := "services." + s.name
			if prev := byName[s.name]; prev != nil {
				where := "in " + prev.File
				if prev.File == f.Name {
					where = "earlier in this file"
				}
				problem(f.Name, key, "service %q defined twice (first %s, which is kept)", s.name, where)
				continue
			}
			if refused[s.name] {
				problem(f.Name, key, "service %q defined twice (first refused)", s.name)
				continue
			}
			if installed != nil && !installed(s.l.app) {
				problem(f.Name, key, "app %q is not installed", s.l.app)
				refused[s.name] = true
				continue
			}
			if other, ok := provider[s.l.app]; ok {
				problem(f.Name, key, "app %q already provides service %q (in %s); an app provides one service", s.l.app, other, byName[other].File)
				refused[s.name] = true
				continue
			}
			byName[s.name] = &Service{Name: s.name, App: s.l.app, Args: s.l.args, File: f.Name}
			provider[s.l.app] = s.name
		}
		for _, s := range d.startup {
			starts = append(starts, startRef{f.Name, s.key, s.name})
		}
		for _, a := range d.apps {
			apps = append(apps, appRef{f.Name, a.key, a.l})
		}
	}
	for _, s := range starts {
		switch svc := byName[s.name]; {
		case svc != nil:
			svc.Eager = true
		case refused[s.name]:
			// its problem is told already
		default:
			problem(s.file, s.key, "no service %q is defined", s.name)
		}
	}
	eagerApps := map[string]string{} // app id → file
	for _, a := range apps {
		if name, ok := provider[a.l.app]; ok {
			svc := byName[name]
			if len(a.l.args) > 0 && !slices.Equal(a.l.args, svc.Args) {
				problem(a.file, a.key, "app %q provides service %q (in %s), started once as the service; these args differ from the service's and are ignored", a.l.app, name, svc.File)
			}
			svc.Eager = true
			continue
		}
		if prev, ok := eagerApps[a.l.app]; ok {
			problem(a.file, a.key, "app %q listed twice (first in %s, which is kept)", a.l.app, prev)
			continue
		}
		if installed != nil && !installed(a.l.app) {
			problem(a.file, a.key, "app %q is not installed", a.l.app)
			continue
		}
		eagerApps[a.l.app] = a.file
		cfg.Apps = append(cfg.Apps, App{App: a.l.app, Args: a.l.args, File: a.file})
	}
	for _, s := range byName {
		cfg.Services = append(cfg.Services, *s)
	}
	slices.SortFunc(cfg.Services, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return cfg
}

// parseFile reads one file; problems go to problem.
func parseFile(f File, problem func(file, key, format string, a ...any)) fileDecl {
	var d fileDecl
	if len(f.Data) > MaxFile {
		problem(f.Name, "", "over %d bytes; the file is refused", MaxFile)
		return d
	}
	if !utf8.Valid(f.Data) {
		problem(f.Name, "", "not valid UTF-8; the file is refused")
		return d
	}
	var v any
	if err := json.Unmarshal(f.Data, &v); err != nil {
		problem(f.Name, "", "not valid JSON (%s); the file is refused", jsonError(err))
		return d
	}
	if _, ok := v.(map[string]any); !ok {
		problem(f.Name, "", "not a JSON object; the file is refused")
		return d
	}
	// Valid JSON from here: walk the top object's keys as tokens, so that
	// a key given twice is seen.
	dec := json.NewDecoder(bytes.NewReader(f.Data))
	dec.Token() // {
	seen := map[string]bool{}
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		var raw json.RawMessage
		dec.Decode(&raw)
		if seen[key] {
			problem(f.Name, clip(key), "key given twice; the second is refused")
			continue
		}
		seen[key] = true
		switch key {
		case "services":
			d.services = parseServices(f.Name, raw, problem)
		case "startup_services":
			var names []json.RawMessage
			if json.Unmarshal(raw, &names) != nil {
				problem(f.Name, key, "want a list of service names")
				continue
			}
			for i, n := range names {
				k := fmt.Sprintf("startup_services[%d]", i)
				var s string
				if json.Unmarshal(n, &s) != nil || !ValidName(s) {
					problem(f.Name, k, "want a service name [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not %s", clip(string(n)))
					continue
				}
				d.startup = append(d.startup, struct{ key, name string }{k, s})
			}
		case "apps":
			var list []json.RawMessage
			if json.Unmarshal(raw, &list) != nil {
				problem(f.Name, key, `want a list of app ids or ["app-id", "arg", …]`)
				continue
			}
			for i, e := range list {
				k := fmt.Sprintf("apps[%d]", i)
				l, err := parseLaunch(e)
				if err != nil {
					problem(f.Name, k, "%v", err)
					continue
				}
				d.apps = append(d.apps, struct {
					key string
					l   launch
				}{k, l})
			}
		default:
			problem(f.Name, clip(key), "unknown key (want services, startup_services or apps)")
		}
	}
	return d
}

func parseServices(file string, raw json.RawMessage, problem func(file, key, format string, a ...any)) []struct {
	name string
	l    launch
} {
	var out []struct {
		name string
		l    launch
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		problem(file, "services", `want an object {"name": "app-id" | ["app-id", "arg", …]}`)
		return nil
	}
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
		var v json.RawMessage
		dec.Decode(&v)
		key := "services." + clip(name)
		if !ValidName(name) {
			problem(file, key, "bad service name: want [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
			continue
		}
		l, err := parseLaunch(v)
		if err != nil {
			problem(file, key, "%v", err)
			continue
		}
		out = append(out, struct {
			name string
			l    launch
		}{name, l})
	}
	return out
}

// parseLaunch reads "app-id" or ["app-id", "arg", …].
func parseLaunch(raw json.RawMessage) (launch, error) {
	var id string
	if json.Unmarshal(raw, &id) == nil {
		if !idRE.MatchString(id) {
			return launch{}, fmt.Errorf("app id %q: want [a-z0-9][a-z0-9._-]{0,63}", clip(id))
		}
		return launch{app: id}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return launch{}, fmt.Errorf(`want "app-id" or ["app-id", "arg", …], not %s`, clip(string(raw)))
	}
	if !idRE.MatchString(list[0]) {
		return launch{}, fmt.Errorf("app id %q: want [a-z0-9][a-z0-9._-]{0,63}", clip(list[0]))
	}
	if len(list)-1 > maxArgs {
		return launch{}, fmt.Errorf("more than %d args", maxArgs)
	}
	for i, a := range list[1:] {
		if len(a) > maxValue || strings.IndexByte(a, 0) >= 0 {
			return launch{}, fmt.Errorf("arg %d: over %d bytes or holds NUL", i+1, maxValue)
		}
	}
	return launch{app: list[0], args: list[1:]}, nil
}

func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "empty or cut short"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// clip makes a value from a file fit for a message and a log line: valid
// UTF-8, no control characters, at most 80 characters.
func clip(s string) string {
	r := []rune(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
	if len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return string(r)
}
