package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"osmanager/agent/internal/hostname"
)

// Unknown stands for a value the agent cannot find, as in the old agent.
const Unknown = "unknown"

// Version is <root>/build/VERSION: line 1 "NAME VERSION1", line 2
// "APPLICATION: VERSION2". Fields it lacks are Unknown.
type Version struct {
	Name        string `json:"name"`
	Version1    string `json:"version1"`
	Application string `json:"application"`
	Version2    string `json:"version2"`
}

// maxVersionField bounds a field of VERSION.
const maxVersionField = 64

// versionField keeps a VERSION field only when it is 1 to 64 characters
// of [A-Za-z0-9._+~:-] (what package names and version strings use), and
// is Unknown otherwise. The page puts these values into HTML, XML,
// JavaScript and CSS alike, where no escaping fits every context: a value
// of this alphabet cannot leave a string, a tag, an attribute or a comment
// in any of them.
func versionField(f string) string {
	if f == "" || len(f) > maxVersionField {
		return Unknown
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+~:-", c) >= 0) {
			return Unknown
		}
	}
	return f
}

// ParseVersion reads a VERSION file the way the old agent did: fields split
// on white space, the application's trailing ':' stripped. Where the old
// agent failed on a short line, the missing fields are Unknown, and so is
// a field that versionField refuses.
func ParseVersion(data []byte) Version {
	v := Version{Unknown, Unknown, Unknown, Unknown}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines [2][]string
	for i := 0; i < 2 && sc.Scan(); i++ {
		lines[i] = strings.Fields(sc.Text())
	}
	if f := lines[0]; len(f) > 0 {
		v.Name = f[0]
		if len(f) > 1 {
			v.Version1 = f[1]
		}
	}
	if f := lines[1]; len(f) > 0 {
		if a := strings.Trim(f[0], ":"); a != "" {
			v.Application = a
		}
		if len(f) > 1 {
			v.Version2 = f[1]
		}
	}
	v.Name, v.Version1 = versionField(v.Name), versionField(v.Version1)
	v.Application, v.Version2 = versionField(v.Application), versionField(v.Version2)
	return v
}

// maxVersionFile bounds what is read of VERSION (it is two short lines).
const maxVersionFile = 4 << 10

func readVersion(name string) (Version, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil // the spec's "unknown", not a fault
		}
		return ParseVersion(nil), err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVersionFile))
	return ParseVersion(data), err
}

// pageVars is one snapshot of the page variables. Every value is checked
// (the host name by RFC 1123, VERSION's fields by versionField, $curtime
// made here), so none can break out of the context a page puts it in.
// gen changes whenever a value does, so rendered pages are cached per gen.
type pageVars struct {
	vals    [numVars]string // raw, for text pages and the API
	html    [numVars]string // HTML-escaped, for HTML pages
	version Version
	gen     uint64
	checked time.Time // when the snapshot was taken
	minute  int64     // now.Unix()/60 at that time: $curtime changes with it
}

// varsTTL is how long a snapshot stands before the host name and VERSION
// are read again (they change rarely; a request must not pay for a read).
const varsTTL = time.Second

// fallbackHost is the page's host name when neither domain.name nor the
// OS host name is a valid one.
const fallbackHost = "localhost"

// varSource keeps the current pageVars.
type varSource struct {
	hostname    string                 // domain.name from the config, checked; "" → osHostname
	osHostname  func() (string, error) // default os.Hostname
	versionFile string
	location    *time.Location
	onError     func(what string, err error)

	cur atomic.Pointer[pageVars]
	mu  sync.Mutex // serialises refreshes
}

// fresh reports whether p may still be served at now: read less than
// varsTTL ago, and $curtime still the same minute.
func (p *pageVars) fresh(now time.Time) bool {
	if p == nil {
		return false
	}
	age := now.Sub(p.checked)
	return age >= 0 && age < varsTTL && now.Unix()/60 == p.minute
}

func (s *varSource) get(now time.Time) *pageVars {
	if p := s.cur.Load(); p.fresh(now) {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	if old.fresh(now) {
		return old
	}
	p := &pageVars{checked: now, minute: now.Unix() / 60}
	host := s.hostname
	if host == "" {
		h, err := s.osHostname()
		if err == nil {
			if hostname.Check(h) != nil {
				err = fmt.Errorf("the OS host name is not an RFC 1123 name; the page shows %s", fallbackHost)
				h = ""
			}
		}
		if err != nil {
			s.onError("host name", err)
		}
		host = h
	}
	if host == "" {
		host = fallbackHost
	}
	v, err := readVersion(s.versionFile)
	if err != nil {
		s.onError("VERSION", err)
	}
	p.version = v
	p.vals = [numVars]string{host, v.Application, v.Version1, v.Version2, now.In(s.location).Format("15:04")}
	for i, x := range p.vals {
		p.html[i] = html.EscapeString(x)
	}
	p.gen = 1
	if old != nil {
		p.gen = old.gen
		if old.vals != p.vals {
			p.gen++
		}
	}
	s.cur.Store(p)
	return p
}
