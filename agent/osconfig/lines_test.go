package osconfig

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "nameserver 8.8.8.8", true},
		{"tab", "10.0.0.1\tapp", true},
		{"utf-8 comment", "ssh-ed25519 AAAA… José", true},
		{"latin-1 byte", "comment \xe9", true},
		{"newline", "a\nb", false},
		{"carriage return", "a\rb", false},
		{"nul", "a\x00b", false},
		{"escape", "a\x1b[2Jb", false},
		{"del", "a\x7fb", false},
		{"vertical tab", "a\vb", false},
		{"form feed", "a\fb", false},
		{"nel", "a\u0085b", false},
		{"line separator", "a\u2028b", false},
		{"paragraph separator", "a\u2029b", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckText(c.in)
			if got := err == nil; got != c.ok {
				t.Errorf("CheckText(%q) = %v, want ok %v", c.in, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrControl) {
				t.Errorf("err = %v, want ErrControl", err)
			}
		})
	}
}

// oldHostsLine is the hosts line as agents before the check wrote it:
// domain.ip parsed by netip and written back with its zone, unchecked.
func oldHostsLine(t *testing.T, ip, names string) string {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		t.Fatalf("the old agent refused %q too: %v", ip, err)
	}
	return a.String() + "\t" + names + " " + hostsMark
}

// TestHostsInjection: domain.ip values with a zone holding line breaks.
// The agent must refuse them (nothing of them in /etc/hosts), and a boot
// with a good domain.ip must remove what an older agent let them write.
func TestHostsInjection(t *testing.T) {
	const base = "127.0.0.1\tlocalhost\n10.9.9.9\tother\n"
	const good = base + "10.0.0.12\tapp1.example.com app1 # osmanager\n"
	cases := []struct{ name, ip string }{
		{"newline in zone, marked tail", "fe80::1%x\n6.6.6.6 bank.example"},
		{"newline in zone, unmarked line", "fe80::1%x\n6.6.6.6 bank.example\n#"},
		{"crlf in zone", "fe80::1%x\r\n6.6.6.6 bank.example\r\n#"},
		{"two lines and a fake mark", "fe80::1%x\n6.6.6.6 bank.example # osmanager\n7.7.7.7 mail.example\n#"},
		{"mapped v4 with zone", "::ffff:10.0.0.1%z\n6.6.6.6 bank.example\n"},
		{"interface-name zone", "fe80::1%eth0"},
		{"tab zone", "fe80::1%a\t6.6.6.6 bank.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, dir, _ := setup(t)
			hosts := filepath.Join(dir, "etc/hosts")
			os.WriteFile(hosts, []byte(base), 0o644)
			_, err := cfg.SetHostname("app1.example.com", c.ip, nil)
			if err == nil || !strings.Contains(err.Error(), "domain.ip") {
				t.Errorf("SetHostname(%q) err = %v, want domain.ip refused", c.ip, err)
			}
			if got, want := read(t, dir, "etc/hosts"), base+"127.0.1.1\tapp1.example.com app1 # osmanager\n"; got != want {
				t.Errorf("hosts after the bad floppy = %q, want %q", got, want)
			}

			// What an older agent wrote for the same floppy, then a boot
			// with a good one: every line of it must go.
			os.WriteFile(hosts, []byte(base+oldHostsLine(t, c.ip, "app1.example.com app1")+"\n"), 0o644)
			if _, err := cfg.SetHostname("app1.example.com", "10.0.0.12", nil); err != nil {
				t.Fatal(err)
			}
			if got := read(t, dir, "etc/hosts"); got != good {
				t.Errorf("hosts after a good boot = %q, want %q", got, good)
			}
		})
	}
}

// TestHostsMarkedLines: every line ending in the mark is the agent's; only
// one, exactly ours, stays, in the first one's place.
func TestHostsMarkedLines(t *testing.T) {
	cases := []struct{ name, old, want string }{
		{"stale line", "127.0.0.1\tlocalhost\n10.1.1.1\told # osmanager\n::1\tlocalhost\n",
			"127.0.0.1\tlocalhost\n10.0.0.12\tapp1 # osmanager\n::1\tlocalhost\n"},
		{"two marked lines", "10.1.1.1\ta # osmanager\n127.0.0.1\tlocalhost\n6.6.6.6\tbank # osmanager  \r\n",
			"10.0.0.12\tapp1 # osmanager\n127.0.0.1\tlocalhost\n"},
		{"user's zoned line, no mark after", "127.0.0.1\tlocalhost\nfe80::1%eth0\trouter\n::1\tlocalhost\n",
			"127.0.0.1\tlocalhost\n10.0.0.12\tapp1 # osmanager\nfe80::1%eth0\trouter\n::1\tlocalhost\n"},
		// An old agent's write: from the zoned line to the last mark.
		{"zoned line down to the last mark", "::1\tlocalhost\nfe80::1%x\n10.1.1.1\ta # osmanager\n7.7.7.7\tmail\n10.1.1.2\tb # osmanager\n127.0.0.1\tlocalhost\n",
			"::1\tlocalhost\n10.0.0.12\tapp1 # osmanager\n127.0.0.1\tlocalhost\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, dir, _ := setup(t)
			os.WriteFile(filepath.Join(dir, "etc/hosts"), []byte(c.old), 0o644)
			if _, err := cfg.SetHostname("app1", "10.0.0.12", nil); err != nil {
				t.Fatal(err)
			}
			if got := read(t, dir, "etc/hosts"); got != c.want {
				t.Errorf("hosts = %q, want %q", got, c.want)
			}
		})
	}
}

// TestLinesRefused: a value with a line break reaching a configurator
// directly (past the config's own checks) is refused where the line is
// written, and the file is not touched.
func TestLinesRefused(t *testing.T) {
	cfg, dir, _ := setup(t)
	const resolv = "search corp.example\nnameserver 192.168.0.1\n"
	os.WriteFile(filepath.Join(dir, "etc/resolv.conf"), []byte(resolv), 0o644)
	if _, _, err := cfg.SetNameservers([]string{"8.8.8.8\nsearch evil.example"}); !errors.Is(err, ErrControl) {
		t.Errorf("SetNameservers err = %v, want ErrControl", err)
	}
	if got := read(t, dir, "etc/resolv.conf"); got != resolv {
		t.Errorf("resolv.conf changed: %q", got)
	}

	key := newKey(t, "k")
	good, err := ParseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	bad := `command="echo` + "\x0b" + `x" ` + key
	if _, err := ParseKeys(bad); err == nil || !strings.Contains(err.Error(), "line 1") || !errors.Is(err, ErrControl) {
		t.Errorf("ParseKeys(control byte) err = %v, want line 1 refused", err)
	}
	if _, err := withBlock(nil, append(good, "ssh-ed25519 AAAA\nssh-rsa BBBB")); !errors.Is(err, ErrControl) {
		t.Errorf("withBlock(newline) err = %v, want ErrControl", err)
	}
	var w lines
	w.replace([]byte("root:x:1\n"), "root's line", "root:", "$6$a\n", ":1")
	if err := w.err(); !errors.Is(err, ErrControl) || strings.Contains(err.Error(), "$6$a") {
		t.Errorf("shadow line err = %v, want ErrControl without the value", err)
	}
}

// FuzzHostsLine: whatever /etc/hosts holds, the result has exactly one
// marked line, ours, and a second pass changes nothing.
func FuzzHostsLine(f *testing.F) {
	f.Add([]byte("127.0.0.1\tlocalhost\n"))
	f.Add([]byte("fe80::1%x\n6.6.6.6 bank\n#\tapp # osmanager\n"))
	f.Add([]byte("a # osmanager\nb # osmanager\r\nc"))
	f.Add([]byte("::%"))
	f.Fuzz(func(t *testing.T, old []byte) {
		cfg, dir, _ := setup(t)
		name := filepath.Join(dir, "etc/hosts")
		os.WriteFile(name, old, 0o644)
		if _, err := cfg.setHostsLine("10.0.0.12", "app1"); err != nil {
			t.Fatal(err)
		}
		first, _ := os.ReadFile(name)
		n := 0
		for _, l := range splitLines(first) {
			if hostsMarked(l) {
				n++
				if string(l) != "10.0.0.12\tapp1 # osmanager\n" {
					t.Errorf("marked line %q", l)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d marked lines in %q", n, first)
		}
		if did, err := cfg.setHostsLine("10.0.0.12", "app1"); err != nil || did {
			t.Errorf("second pass: changed %v, err %v", did, err)
		}
	})
}
