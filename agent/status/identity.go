package status

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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

// MaxVersionField bounds a field of VERSION: a longer one is Unknown.
const MaxVersionField = 64

// VersionField keeps a VERSION field only when it is 1 to 64 characters
// of [A-Za-z0-9._+~:-] (what package names and version strings use), and
// is Unknown otherwise. The page puts these values into HTML, XML,
// JavaScript and CSS alike, where no escaping fits every context: a value
// of this alphabet cannot leave a string, a tag, an attribute or a comment
// in any of them.
func VersionField(f string) string {
	if f == "" || len(f) > MaxVersionField {
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
// a field that VersionField refuses.
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
	v.Name, v.Version1 = VersionField(v.Name), VersionField(v.Version1)
	v.Application, v.Version2 = VersionField(v.Application), VersionField(v.Version2)
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

// IdentityTTL is how long an Identity stands before the host name and
// VERSION are read again (they change rarely; a request must not pay for a
// read).
const IdentityTTL = time.Second

// fallbackHost is the host name shown when neither domain.name nor the OS
// host name is a valid one.
const fallbackHost = "localhost"

// Identity is who the instance says it is: its host name and build/VERSION.
// Every value is checked (the host name by RFC 1123, VERSION's fields by
// VersionField), so none can break out of the context a page puts it in.
// An Identity is never modified; a new one replaces it.
type Identity struct {
	Hostname string
	Version  Version
	checked  time.Time // when it was read
}

// identitySource keeps the current Identity.
type identitySource struct {
	hostname    string                 // domain.name from the config, checked; "" → osHostname
	osHostname  func() (string, error) // default os.Hostname
	versionFile string
	onError     func(what string, err error)

	cur atomic.Pointer[Identity]
	mu  sync.Mutex // serialises reads
}

func (id *Identity) fresh(now time.Time) bool {
	if id == nil {
		return false
	}
	age := now.Sub(id.checked)
	return age >= 0 && age < IdentityTTL
}

func (s *identitySource) get(now time.Time) *Identity {
	if id := s.cur.Load(); id.fresh(now) {
		return id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id := s.cur.Load(); id.fresh(now) {
		return id
	}
	id := &Identity{checked: now}
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
	id.Hostname = host
	v, err := readVersion(s.versionFile)
	if err != nil {
		s.onError("VERSION", err)
	}
	id.Version = v
	s.cur.Store(id)
	return id
}
