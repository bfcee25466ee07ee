package pack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"osmanager/agent/internal/lazyre"
)

// Socket is one listening socket of a declared service (the manifest's
// "socket"): the agent binds it at start and holds it; the first
// connection starts the app, which gets the socket as systemd hands one
// over (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, fds from 3).
//
// Listen is either a TCP address, "IP:PORT" with an IP literal (loopback,
// an address of the host, or 0.0.0.0 / [::] for every address; no host
// names: nothing is resolved) and a port 1–65535, or a Unix socket path
// under /run of the system root ("/run/hello.sock", "/run/hello/api.sock";
// clean, absolute, at most 100 bytes). Anything else is refused. Name is
// the socket's entry in LISTEN_FDNAMES, [A-Za-z0-9._-]{1,64}; default the
// app's id.
type Socket struct {
	Listen string `json:"listen"`
	Name   string `json:"name,omitempty"`
}

// Sockets is the manifest's "socket": one object, or a list of them.
type Sockets []Socket

// MaxSockets caps the sockets of one app.
const MaxSockets = 16

// SocketDir is the directory Unix socket paths must be under (in the
// system root).
const SocketDir = "/run/"

const maxSocketPath = 100 // sun_path is 108 bytes, with room for a short system root

var socketNameRE = lazyre.New(`^[A-Za-z0-9._-]{1,64}$`)

// Unix reports whether the socket is a Unix socket path.
func (s Socket) Unix() bool { return strings.HasPrefix(s.Listen, "/") }

// Network is "unix" or "tcp".
func (s Socket) Network() string {
	if s.Unix() {
		return "unix"
	}
	return "tcp"
}

// UnmarshalJSON takes one socket object or a list of them, each read
// strictly: keys are matched exactly (encoding/json would take "Listen"
// for "listen") and an unknown one is refused by name.
func (ss *Sockets) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var raws []json.RawMessage
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &raws); err != nil {
			return fmt.Errorf(`"socket": want an object or a list of objects`)
		}
	} else {
		raws = []json.RawMessage{b}
	}
	out := make(Sockets, 0, len(raws))
	for i, raw := range raws {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
			return fmt.Errorf(`"socket"[%d]: want an object {"listen": ADDR}`, i)
		}
		var s Socket
		for k, v := range keys {
			var dst *string
			switch k {
			case "listen":
				dst = &s.Listen
			case "name":
				dst = &s.Name
			default:
				return fmt.Errorf(`unknown key "socket.%s"`, clip(k))
			}
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf(`"socket.%s": want a string`, k)
			}
		}
		out = append(out, s)
	}
	*ss = out
	return nil
}

// check validates the sockets (see Socket for the rules).
func (ss Sockets) check() error {
	if len(ss) > MaxSockets {
		return bad(`"socket": more than %d`, MaxSockets)
	}
	seen := map[string]bool{}
	for i, s := range ss {
		if err := CheckListen(s.Listen); err != nil {
			return bad(`"socket"[%d] %q: %v`, i, clip(s.Listen), err)
		}
		if s.Name != "" && !socketNameRE.MatchString(s.Name) {
			return bad(`"socket"[%d] name %q: want [A-Za-z0-9._-]{1,64}`, i, clip(s.Name))
		}
		key := s.Network() + " " + s.Listen
		if seen[key] {
			return bad(`"socket"[%d] %q: given twice`, i, clip(s.Listen))
		}
		seen[key] = true
	}
	return nil
}

// CheckListen says what is wrong with a socket address, if anything.
func CheckListen(addr string) error {
	if addr == "" {
		return fmt.Errorf(`"listen" is missing`)
	}
	for _, r := range addr {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("holds a control character")
		}
	}
	if strings.HasPrefix(addr, "/") {
		switch {
		case path.Clean(addr) != addr:
			return fmt.Errorf("not a clean path (no //, . or ..)")
		case !strings.HasPrefix(addr, SocketDir) || len(addr) == len(SocketDir):
			return fmt.Errorf("a Unix socket must be under %s", SocketDir)
		case len(addr) > maxSocketPath:
			return fmt.Errorf("a Unix socket path is at most %d bytes", maxSocketPath)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want IP:PORT (127.0.0.1:8081, [::1]:8081, 0.0.0.0:80) or a path under %s", SocketDir)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("host %q: want an IP address (no names, nothing is resolved)", clip(host))
	}
	if ip.Zone() != "" {
		return fmt.Errorf("host %q: no zones", clip(host))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("port %q: want 1 to 65535", clip(port))
	}
	return nil
}
