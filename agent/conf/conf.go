// Package conf parses luoyun.ini / luoyun.conf, the instance configuration
// the cloud writes on the floppy (spec: instance-config.md).
//
// The file is KEY=VALUE lines without sections, ending in "\n" or "\r\n".
// Only the first '=' splits a line, since the JSON value holds '=' and
// spaces; white space around the key and the value is trimmed and every
// other byte of the value, '#', ';', quotes and all, is kept. Blank lines
// and lines whose first non-blank byte is '#' or ';' are skipped. When a
// key is given twice, the last line wins. Unknown keys are kept and
// ignored. The scanner is our own (see scan) rather than an INI library:
// the format is only "split at the first '='", and a library's quoting,
// continuation, comment and section rules are all ways to misread it.
//
// Parse separates two kinds of trouble. A file that cannot serve as the
// instance config at all (not KEY=VALUE text, no JSON, JSON that is not an
// object) is an error: the caller keeps the last good luoyun.conf. A bad
// item inside a good file (a wrong type, a TAG that is no number) is listed
// in Config.Problems and left out, and every other item still applies.
//
// No error or problem quotes the input: the file carries KEY, root's
// password hash and the page cookie, and errors reach the log, the console
// and the unauthenticated status document. Errors name a line by its
// number and, when it is one of ours, its key; never a value.
package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Defaults from the spec.
const (
	DefaultCLCPort   = 1369
	DefaultMcastIP   = "228.0.0.1"
	DefaultMcastPort = 1369
)

// ErrInvalid wraps every error that makes a file unusable as a whole.
var ErrInvalid = errors.New("invalid instance config")

// Config is a parsed luoyun.conf.
type Config struct {
	CLCIP     string
	CLCPort   int // DefaultCLCPort if absent; 0 if CLC_PORT is 0 or empty: discover the controller by multicast
	McastIP   string
	McastPort int
	Tag       int  // valid only when HasTag
	HasTag    bool //
	Key       string
	JSON      string            // the JSON value, byte for byte
	Extra     map[string]string // unknown keys
	Payload   Payload
	Problems  []error // items refused; each names the item
}

// Payload is the JSON value. Every field is optional: nil (or an empty
// slice) means the cloud did not give it, or gave it malformed, in which
// case Config.Problems says so.
type Payload struct {
	Cookie      *string   `json:"cookie"`
	WebSSH      *WebSSH   `json:"webssh"`
	Network     []Net     `json:"network"`
	Nameservers *string   `json:"nameservers"`
	Domain      *Domain   `json:"domain"`
	PasswdHash  *string   `json:"passwd_hash"`
	PublicKey   *string   `json:"public_key"`
	Storage     []Storage `json:"storage"`
}

// WebSSH configures the web terminal.
type WebSSH struct {
	Status string `json:"status"` // "enable" or "disable"
	Port   int    `json:"port"`
}

// Net is one element of "network". Err is set when the element was
// malformed; it keeps its place so that by-order matching stays right.
type Net struct {
	MAC         string `json:"mac"`
	IP          string `json:"ip"`
	Netmask     string `json:"netmask"`
	Gateway     string `json:"gateway"`
	Nameservers string `json:"nameservers"`
	Type        string `json:"type"`
	Err         error  `json:"-"`
}

// Domain names the instance.
type Domain struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// Storage is one element of "storage" (the node acts on it; kept for the page).
type Storage struct {
	Type string `json:"type"`
	Size int    `json:"size"`
}

// Key names: the only keys an error may name.
const (
	keyCLCIP     = "CLC_IP"
	keyCLCPort   = "CLC_PORT"
	keyMcastIP   = "CLC_MCAST_IP"
	keyMcastPort = "CLC_MCAST_PORT"
	keyTag       = "TAG"
	keyKey       = "KEY"
	keyJSON      = "JSON"
)

// KEY's length: the controllers' RC4 (libgcrypt) refuses keys under 40
// bits and then says nothing, which looks like an unknown TAG.
const (
	minKeyLen = 5
	maxKeyLen = 256
)

// Parse parses the bytes of luoyun.ini.
func Parse(data []byte) (*Config, error) {
	lines, section, err := scan(data)
	if err != nil {
		return nil, fmt.Errorf("parse luoyun.ini: %w: %v", ErrInvalid, err)
	}
	c := &Config{CLCPort: DefaultCLCPort, McastIP: DefaultMcastIP, McastPort: DefaultMcastPort}
	if section > 0 {
		c.problem("line %d: a [section] line; luoyun.ini has no sections, so the keys after it are ignored", section)
	}
	last := make(map[string]int, len(lines)) // key → index of its last line
	for i, l := range lines {
		last[l.key] = i
	}
	jsonLine := 0
	for i, l := range lines {
		if last[l.key] != i {
			continue // given again further down: the last one wins
		}
		v := l.value
		switch l.key {
		case keyCLCIP:
			c.CLCIP = v
		case keyCLCPort:
			// 0 or empty: no port, so discover the controller by multicast.
			c.CLCPort = 0
			if v != "" {
				c.CLCPort = c.port(keyCLCPort, v, DefaultCLCPort, 0)
			}
		case keyMcastIP:
			if v != "" {
				c.McastIP = v
			}
		case keyMcastPort:
			c.McastPort = c.port(keyMcastPort, v, DefaultMcastPort, 1)
		case keyTag:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				c.problem("TAG: not a non-negative integer")
				continue
			}
			c.Tag, c.HasTag = int(n), true
		case keyKey:
			switch {
			case v == "":
				// No KEY: the controller link says so when it starts.
			case len(v) < minKeyLen:
				c.problem("KEY: shorter than %d bytes (RC4 needs at least 40 bits)", minKeyLen)
			case len(v) > maxKeyLen:
				c.problem("KEY: longer than %d bytes (RC4 takes at most %d)", maxKeyLen, maxKeyLen)
			case strings.Contains(v, ":"):
				c.problem("KEY: contains ':'")
			default:
				c.Key = v
			}
		case keyJSON:
			c.JSON, jsonLine = v, l.n
		default:
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[l.key] = v
		}
	}
	if jsonLine == 0 && section > 0 {
		return nil, fmt.Errorf("parse luoyun.ini: %w: no JSON key before the [section] line %d", ErrInvalid, section)
	}
	if jsonLine == 0 {
		return nil, fmt.Errorf("parse luoyun.ini: %w: no JSON key", ErrInvalid)
	}
	if err := c.decodePayload(); err != nil {
		return nil, fmt.Errorf("parse luoyun.ini: %w: line %d, %v", ErrInvalid, jsonLine, err)
	}
	return c, nil
}

// line is one KEY=VALUE line.
type line struct {
	n          int // line number, from 1
	key, value string
}

// scan splits data into KEY=VALUE lines. Lines from a [section] line on
// are checked but not returned; section is that line's number (0: none).
//
// An error names the line by number, and by key only when the key is one
// of ours: a line without '=' may be a secret itself (a KEY line that lost
// its '=', a JSON value broken over two lines), and an unknown "key" may
// be part of one.
func scan(data []byte) (lines []line, section int, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark, as editors write
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte("\n"))
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		text := bytes.TrimSpace(raw)
		k, v, hasEq := bytes.Cut(text, []byte("="))
		bad := func(what string) error {
			if name, ours := ourKey(k); hasEq && ours {
				return fmt.Errorf("line %d, %s: %s", n, name, what)
			}
			return fmt.Errorf("line %d: %s", n, what)
		}
		switch {
		case !utf8.Valid(raw):
			return nil, 0, bad("not UTF-8 text")
		case bytes.IndexByte(raw, 0) >= 0:
			return nil, 0, bad("NUL byte")
		case len(text) == 0, text[0] == '#', text[0] == ';':
			continue // blank or comment
		case text[0] == '[':
			if section == 0 {
				section = n
			}
			continue
		case !hasEq:
			return nil, 0, fmt.Errorf("line %d: not KEY=VALUE (no '=')", n) // by number only: it may be the secret
		}
		key := string(bytes.TrimSpace(k))
		if key == "" {
			return nil, 0, fmt.Errorf("line %d: not KEY=VALUE (nothing before '=')", n)
		}
		if section == 0 {
			lines = append(lines, line{n: n, key: key, value: string(bytes.TrimSpace(v))})
		}
	}
	return lines, section, nil
}

// ourKey returns k's name if it is one of the keys the spec defines.
func ourKey(k []byte) (string, bool) {
	switch s := string(bytes.TrimSpace(k)); s {
	case keyCLCIP, keyCLCPort, keyMcastIP, keyMcastPort, keyTag, keyKey, keyJSON:
		return s, true
	}
	return "", false
}

func (c *Config) problem(format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Errorf(format, args...))
}

// port reads a port number of at least min; empty gives def.
func (c *Config) port(key, v string, def, min int) int {
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 65535 {
		c.problem("%s: not a port number", key)
		return def
	}
	return n
}

// decodePayload decodes the JSON object item by item: a bad item is a
// problem, not a failure. Only JSON that is not an object fails.
func (c *Config) decodePayload() error {
	var items map[string]json.RawMessage
	if err := json.Unmarshal([]byte(c.JSON), &items); err != nil {
		return fmt.Errorf("JSON: %s", syntaxError(err, len(c.JSON)))
	}
	if items == nil {
		return errors.New("JSON: not an object")
	}
	p := &c.Payload
	decode := func(key string, dst any) bool {
		raw, ok := items[key]
		if !ok || string(raw) == "null" {
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			c.problem("JSON %s: %s", key, itemError(err))
			return false
		}
		return true
	}
	for _, f := range []struct {
		key string
		dst **string
	}{{"cookie", &p.Cookie}, {"nameservers", &p.Nameservers}, {"passwd_hash", &p.PasswdHash}, {"public_key", &p.PublicKey}} {
		var s string
		if decode(f.key, &s) {
			*f.dst = &s
		}
	}
	var w struct {
		Status string  `json:"status"`
		Port   flexInt `json:"port"`
	}
	if decode("webssh", &w) {
		switch w.Status {
		case "", "enable", "disable":
			p.WebSSH = &WebSSH{Status: w.Status, Port: int(w.Port)}
			if w.Port < 0 || w.Port > 65535 {
				c.problem("JSON webssh.port: not a port number")
				p.WebSSH.Port = 0
			}
		default:
			c.problem("JSON webssh.status: neither enable nor disable")
		}
	}
	var d Domain
	if decode("domain", &d) {
		p.Domain = &d
	}
	var nets []json.RawMessage
	if decode("network", &nets) {
		for i, raw := range nets {
			var n struct {
				MAC, IP, Gateway, Nameservers, Type string
				Netmask                             flexString
			}
			if err := json.Unmarshal(raw, &n); err != nil {
				err = fmt.Errorf("JSON network[%d]: %s", i, itemError(err))
				c.Problems = append(c.Problems, err)
				p.Network = append(p.Network, Net{Err: err})
				continue
			}
			p.Network = append(p.Network, Net{MAC: n.MAC, IP: n.IP, Netmask: string(n.Netmask), Gateway: n.Gateway, Nameservers: n.Nameservers, Type: n.Type})
		}
	}
	var st []json.RawMessage
	if decode("storage", &st) {
		for i, raw := range st {
			var s struct {
				Type string
				Size flexInt
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				c.problem("JSON storage[%d]: %s", i, itemError(err))
				continue
			}
			p.Storage = append(p.Storage, Storage{Type: s.Type, Size: int(s.Size)})
		}
	}
	return nil
}

// syntaxContexts are the places encoding/json's scanner names after the
// character it quotes ("invalid character 'x' after object key"): fixed
// text of the library, safe to repeat, unlike the character.
var syntaxContexts = []string{
	"looking for beginning of value",
	"looking for beginning of object key string",
	"after object key:value pair",
	"after object key",
	"after array element",
	"after top-level value",
	"in string literal",
	"in string escape code",
	"in \\u hexadecimal character escape",
	"after decimal point in numeric literal",
	"in exponent of numeric literal",
	"in numeric literal",
	"in literal true",
	"in literal false",
	"in literal null",
}

// syntaxError describes why the JSON value is not a JSON object, by kind
// and byte offset only: encoding/json's own message quotes a byte of the
// input, and the input holds the password hash and the cookie.
func syntaxError(err error, size int) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		msg := se.Error() // only matched against fixed text, never repeated
		if strings.HasPrefix(msg, "unexpected end of JSON input") {
			return fmt.Sprintf("ends after %d bytes, inside a value (a JSON value broken over lines?)", size)
		}
		if strings.Contains(msg, "exceeded max depth") {
			return fmt.Sprintf("nested too deep at byte %d of %d", se.Offset, size)
		}
		for _, ctx := range syntaxContexts {
			if strings.Contains(msg, ctx) {
				return fmt.Sprintf("syntax error at byte %d of %d: unexpected character %s", se.Offset, size, ctx)
			}
		}
		return fmt.Sprintf("syntax error at byte %d of %d", se.Offset, size)
	case errors.As(err, &te):
		return "not an object but a JSON " + jsonKind(te.Value)
	}
	return "not a JSON object"
}

// itemError says what is wrong with one item, without quoting it.
func itemError(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		what := fmt.Sprintf("got a JSON %s, want %s", jsonKind(te.Value), goKind(te.Type))
		if te.Field != "" {
			return strings.ToLower(te.Field) + ": " + what // our field names, not the input's
		}
		return what
	case errors.Is(err, errNotInteger), errors.Is(err, errNotStringOrNumber):
		return err.Error()
	}
	return "malformed"
}

// jsonKind is the first word of UnmarshalTypeError.Value, which goes on
// with the number itself ("number 5").
func jsonKind(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	return kind
}

// goKind names a Go type the way the JSON would have to look.
func goKind(t reflect.Type) string {
	if t == nil {
		return "something else"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.Kind().String()
}

var (
	errNotInteger        = errors.New("not an integer")
	errNotStringOrNumber = errors.New("neither a string nor a number")
)

// flexInt accepts 8001 and "8001".
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errNotInteger
	}
	*f = flexInt(n)
	return nil
}

// flexString accepts "24", "255.255.255.0" and 24.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errNotStringOrNumber
	}
	*f = flexString(n.String())
	return nil
}
