// Package conf parses luoyun.ini / luoyun.conf, the instance configuration
// the cloud writes on the floppy (spec: instance-config.md).
//
// The file is KEY=VALUE lines without sections. Only the first '=' splits a
// line, since the JSON value holds '=' and spaces; every other byte of the
// value, '#', ';', quotes and all, is kept. Unknown keys are kept and
// ignored.
//
// Parse separates two kinds of trouble. A file that cannot serve as the
// instance config at all (not KEY=VALUE text, no JSON, JSON that is not an
// object) is an error: the caller keeps the last good luoyun.conf. A bad
// item inside a good file (a wrong type, a TAG that is no number) is listed
// in Config.Problems and left out, and every other item still applies.
package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/ini.v1"
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
	CLCPort   int
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

// Parse parses the bytes of luoyun.ini.
func Parse(data []byte) (*Config, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("parse luoyun.ini: %w: not UTF-8 text", ErrInvalid)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("parse luoyun.ini: %w: NUL byte", ErrInvalid)
	}
	f, err := loadINI(data)
	if err != nil {
		return nil, fmt.Errorf("parse luoyun.ini: %w: %s", ErrInvalid, strings.TrimSpace(err.Error()))
	}
	sec := f.Section(ini.DefaultSection)
	c := &Config{CLCPort: DefaultCLCPort, McastIP: DefaultMcastIP, McastPort: DefaultMcastPort}
	for _, k := range sec.Keys() {
		v := k.Value()
		switch k.Name() {
		case "CLC_IP":
			c.CLCIP = v
		case "CLC_PORT":
			c.CLCPort = c.port("CLC_PORT", v, DefaultCLCPort)
		case "CLC_MCAST_IP":
			if v != "" {
				c.McastIP = v
			}
		case "CLC_MCAST_PORT":
			c.McastPort = c.port("CLC_MCAST_PORT", v, DefaultMcastPort)
		case "TAG":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				c.problem("TAG: not a non-negative integer")
				continue
			}
			c.Tag, c.HasTag = int(n), true
		case "KEY":
			if strings.Contains(v, ":") {
				c.problem("KEY: contains ':'")
				continue
			}
			c.Key = v
		case "JSON":
			c.JSON = v
		default:
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[k.Name()] = v
		}
	}
	if len(f.Sections()) > 1 {
		c.problem("sections are not part of luoyun.ini; keys inside them are ignored")
	}
	if !sec.HasKey("JSON") {
		return nil, fmt.Errorf("parse luoyun.ini: %w: no JSON key", ErrInvalid)
	}
	if err := c.decodePayload(); err != nil {
		return nil, fmt.Errorf("parse luoyun.ini: %w: %v", ErrInvalid, err)
	}
	return c, nil
}

func (c *Config) problem(format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Errorf(format, args...))
}

func (c *Config) port(key, v string, def int) int {
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
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
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("JSON: syntax error at byte %d: %v", se.Offset, se)
		}
		return fmt.Errorf("JSON: %v", err)
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
			c.problem("JSON %s: %s", key, typeError(err))
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
			c.problem("JSON webssh.status: %q is neither enable nor disable", w.Status)
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
				err = fmt.Errorf("JSON network[%d]: %s", i, typeError(err))
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
				c.problem("JSON storage[%d]: %s", i, typeError(err))
				continue
			}
			p.Storage = append(p.Storage, Storage{Type: s.Type, Size: int(s.Size)})
		}
	}
	return nil
}

// typeError shortens encoding/json's messages to what a cloud operator needs.
func typeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: got a JSON %s, want %s", strings.ToLower(te.Field), te.Value, te.Type)
		}
		return fmt.Sprintf("got a JSON %s, want %s", te.Value, te.Type)
	}
	return err.Error()
}

// flexInt accepts 8001 and "8001".
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
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
		return fmt.Errorf("%s is neither a string nor a number", b)
	}
	*f = flexString(n.String())
	return nil
}

func loadINI(data []byte) (*ini.File, error) {
	return ini.LoadSources(ini.LoadOptions{
		KeyValueDelimiters:         "=",
		IgnoreInlineComment:        true, // '#' and ';' inside values are data
		IgnoreContinuation:         true, // a trailing '\\' is data
		PreserveSurroundedQuote:    true, // quotes are data
		AllowPythonMultilineValues: false,
		SpaceBeforeInlineComment:   true,
	}, data)
}
