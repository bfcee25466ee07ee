package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const full = `CLC_IP=192.168.1.2
CLC_PORT=1369
CLC_MCAST_IP=228.0.0.1
CLC_MCAST_PORT=1369
TAG=42
KEY=015e33a8-787d-457e-b84d-c2a101a816e0
JSON={"cookie": "9b6f", "webssh": {"status": "enable", "port": 8001}, "network": [{"mac": "52:54:00:12:34:56", "ip": "10.0.0.12", "netmask": "255.255.255.0", "gateway": "10.0.0.1", "nameservers": "8.8.8.8 8.8.4.4", "type": "default"}], "nameservers": "8.8.8.8 8.8.4.4", "domain": {"name": "app1.example.com", "ip": "10.0.0.12"}, "passwd_hash": "$6$salt$hash", "public_key": "ssh-rsa AAAA user@host", "storage": [{"type": "disk", "size": 10}]}
NEW_KEY=kept
`

func TestParseFull(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		c, err := Parse([]byte(strings.ReplaceAll(full, "\n", eol)))
		if err != nil {
			t.Fatal(err)
		}
		s := func(v string) *string { return &v }
		want := &Config{
			CLCIP: "192.168.1.2", CLCPort: 1369, McastIP: "228.0.0.1", McastPort: 1369, Tag: 42, HasTag: true,
			Key:   "015e33a8-787d-457e-b84d-c2a101a816e0",
			JSON:  strings.TrimPrefix(strings.Split(full, "\n")[6], "JSON="),
			Extra: map[string]string{"NEW_KEY": "kept"},
			Payload: Payload{
				Cookie: s("9b6f"), WebSSH: &WebSSH{Status: "enable", Port: 8001},
				Network:     []Net{{MAC: "52:54:00:12:34:56", IP: "10.0.0.12", Netmask: "255.255.255.0", Gateway: "10.0.0.1", Nameservers: "8.8.8.8 8.8.4.4", Type: "default"}},
				Nameservers: s("8.8.8.8 8.8.4.4"), Domain: &Domain{Name: "app1.example.com", IP: "10.0.0.12"},
				PasswdHash: s("$6$salt$hash"), PublicKey: s("ssh-rsa AAAA user@host"), Storage: []Storage{{Type: "disk", Size: 10}},
			},
		}
		if d := cmp.Diff(want, c, cmpopts.IgnoreFields(Net{}, "Err")); d != "" {
			t.Errorf("eol %q (-want +got):\n%s", eol, d)
		}
	}
}

func TestJSONByteForByte(t *testing.T) {
	for _, v := range []string{
		`{"a":"# not a comment ; nor this"}`,
		`{"a":"x=y=z","b":"=="}`,
		`{"q":"\"quoted\" 'single' ` + "`back`" + `"}`,
		`{"u":"日本語 ünïcödé 🚀"}`,
		`{"bs":"C:\\path\\","end":"\\"}`,
		`{"k": "v"} # trailing text stays`,
	} {
		t.Run(v, func(t *testing.T) {
			c, err := Parse([]byte("TAG=1\nJSON=" + v + "\nKEY=k\n"))
			if err != nil {
				if strings.Contains(v, "trailing") {
					return // not valid JSON; the point is only that it was not cut
				}
				t.Fatal(err)
			}
			if c.JSON != v {
				t.Errorf("JSON = %q, want %q", c.JSON, v)
			}
		})
	}
	// Surrounding white space is the one thing not kept.
	c, err := Parse([]byte("JSON=  {}  \n"))
	if err != nil || c.JSON != "{}" {
		t.Errorf("JSON = %q, %v", c.JSON, err)
	}
}

func TestParseInvalid(t *testing.T) {
	for name, in := range map[string]string{
		"no JSON":            "TAG=1\nKEY=k\n",
		"broken JSON":        "JSON={\"a\":\n",
		"JSON array":         "JSON=[1,2]\n",
		"JSON string":        "JSON=\"x\"\n",
		"JSON null":          "JSON=null\n",
		"empty":              "",
		"binary":             "\x00\x01\x02JSON={}",
		"not utf-8":          "JSON={\"a\":\"\xff\"}\n",
		"line without '='":   "TAG=1\ngarbage line\nJSON={}\n",
		"nothing before '='": "=x\nJSON={}\n",
		"NUL in a comment":   "# \x00\nJSON={}\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(in))
			if !errors.Is(err, ErrInvalid) || c != nil {
				t.Errorf("Parse = %v, %v; want ErrInvalid", c, err)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestItemsRefusedOneByOne(t *testing.T) {
	in := `TAG=abc
KEY=has:colon
CLC_PORT=99999
JSON={"cookie": 5, "webssh": {"status": "maybe"}, "network": [{"ip": 10}, {"ip": "10.0.0.2", "netmask": 24}, "eth0"], "nameservers": ["8.8.8.8"], "domain": "x", "passwd_hash": "$6$ok$ok", "public_key": {"k": 1}, "storage": [{"size": "ten"}, {"type": "disk", "size": "10"}]}
`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var probs []string
	for _, p := range c.Problems {
		probs = append(probs, p.Error())
	}
	for _, want := range []string{"TAG", "KEY", "CLC_PORT", "JSON cookie", "JSON webssh.status", "JSON network[0]", "JSON network[2]", "JSON nameservers", "JSON domain", "JSON public_key", "JSON storage[0]"} {
		found := false
		for _, p := range probs {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("no problem reported for %s; got %q", want, probs)
		}
	}
	if c.HasTag || c.Key != "" || c.CLCPort != DefaultCLCPort || c.Payload.Cookie != nil || c.Payload.Domain != nil {
		t.Errorf("bad items were kept: %+v", c)
	}
	if c.Payload.PasswdHash == nil || *c.Payload.PasswdHash != "$6$ok$ok" {
		t.Error("a good item next to bad ones was dropped")
	}
	if n := c.Payload.Network; len(n) != 3 || n[0].Err == nil || n[1].Err != nil || n[1].Netmask != "24" || n[2].Err == nil {
		t.Errorf("network = %+v, want 3 entries in place, middle one good with netmask 24", n)
	}
	if s := c.Payload.Storage; len(s) != 1 || s[0].Size != 10 {
		t.Errorf("storage = %+v", s)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("CLC_IP=\nJSON={}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.CLCIP != "" || c.CLCPort != 1369 || c.McastIP != "228.0.0.1" || c.McastPort != 1369 || c.HasTag || len(c.Problems) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestCLCPort(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       int
		problem    bool
	}{
		{"absent", "", DefaultCLCPort, false},
		{"given", "CLC_PORT=2000\n", 2000, false},
		{"zero means discover", "CLC_PORT=0\n", 0, false},
		{"empty means discover", "CLC_PORT=\n", 0, false},
		{"blank means discover", "CLC_PORT=   \r\n", 0, false},
		{"too big", "CLC_PORT=65536\n", DefaultCLCPort, true},
		{"negative", "CLC_PORT=-1\n", DefaultCLCPort, true},
		{"not a number", "CLC_PORT=abc\n", DefaultCLCPort, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("CLC_IP=10.0.0.1\n" + tc.line + "JSON={}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.CLCPort != tc.want {
				t.Errorf("CLCPort = %d, want %d", c.CLCPort, tc.want)
			}
			if got := len(c.Problems) > 0; got != tc.problem {
				t.Errorf("problems = %q, want some: %v", c.Problems, tc.problem)
			}
		})
	}
	// CLC_MCAST_PORT keeps its meaning: 0 is no port.
	c, err := Parse([]byte("CLC_MCAST_PORT=0\nJSON={}\n"))
	if err != nil || c.McastPort != DefaultMcastPort || len(c.Problems) != 1 {
		t.Errorf("CLC_MCAST_PORT=0: %+v, %v", c, err)
	}
}

func TestKeyChecked(t *testing.T) {
	for _, tc := range []struct {
		name, key, want, problem string
	}{
		{"uuid", "015e33a8-787d-457e-b84d-c2a101a816e0", "015e33a8-787d-457e-b84d-c2a101a816e0", ""},
		{"5 bytes", "abcde", "abcde", ""},
		{"quotes are part of it", `"""abcdef`, `"""abcdef`, ""},
		{"empty is no KEY", "", "", ""},
		{"4 bytes", "abcd", "", "KEY: shorter than 5 bytes (RC4 needs at least 40 bits)"},
		{"1 byte", "x", "", "KEY: shorter than 5 bytes (RC4 needs at least 40 bits)"},
		{"257 bytes", strings.Repeat("k", 257), "", "KEY: longer than 256 bytes (RC4 takes at most 256)"},
		{"colon", "abc:defgh", "", "KEY: contains ':'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("KEY=" + tc.key + "\nJSON={}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Key != tc.want {
				t.Errorf("Key = %q, want %q", c.Key, tc.want)
			}
			var got []string
			for _, p := range c.Problems {
				got = append(got, p.Error())
			}
			want := []string(nil)
			if tc.problem != "" {
				want = []string{tc.problem}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func TestScanRules(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string // every key=value Parse kept, JSON included
		problems int
	}{
		{"blank lines and comments", "\n# KEY=commented\n  ; TAG=1\n\t\r\nJSON={}\n", map[string]string{"JSON": "{}"}, 0},
		{"CRLF", "A=1\r\nJSON={}\r\n", map[string]string{"A": "1", "JSON": "{}"}, 0},
		{"no final line end", "A=1\nJSON={}", map[string]string{"A": "1", "JSON": "{}"}, 0},
		{"only the first '=' splits", "A= =b=c= \nJSON={}", map[string]string{"A": "=b=c=", "JSON": "{}"}, 0},
		{"white space trimmed around key and value", "  A \t=\t x y \nJSON={}", map[string]string{"A": "x y", "JSON": "{}"}, 0},
		{"a lone CR inside a value is kept", "A=x\ry\nJSON={}", map[string]string{"A": "x\ry", "JSON": "{}"}, 0},
		{"# and ; inside a value are data", "A=x # y ; z\nJSON={}", map[string]string{"A": "x # y ; z", "JSON": "{}"}, 0},
		{"quotes are data", "A=\"x\"\nB='y'\nC=`z`\nD=\"\"\"w\"\"\"\nJSON={}", map[string]string{"A": `"x"`, "B": "'y'", "C": "`z`", "D": `"""w"""`, "JSON": "{}"}, 0},
		{"a KEY=\"\"\" value is data", "KEY=\"\"\"abcdef\nJSON={}", map[string]string{"JSON": "{}"}, 0},
		{"a trailing backslash is data", "A=x\\\nJSON={}", map[string]string{"A": `x\`, "JSON": "{}"}, 0},
		{"quoted key names are data", "\"A\"=1\nJSON={}", map[string]string{`"A"`: "1", "JSON": "{}"}, 0},
		{"non-ASCII kept", "A=日本 ü\nJSON={}", map[string]string{"A": "日本 ü", "JSON": "{}"}, 0},
		{"byte order mark", "\xef\xbb\xbfA=1\nJSON={}", map[string]string{"A": "1", "JSON": "{}"}, 0},
		{"last duplicate wins", "A=1\nJSON={\"x\":1}\nA=2\nJSON={}", map[string]string{"A": "2", "JSON": "{}"}, 0},
		{"keys after a section are ignored", "JSON={}\nA=1\n[sec]\nB=2\nJSON=[]\n", map[string]string{"A": "1", "JSON": "{}"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{"JSON": c.JSON}
			for k, v := range c.Extra {
				got[k] = v
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("keys (-want +got):\n%s", d)
			}
			if len(c.Problems) != tc.problems {
				t.Errorf("problems = %q, want %d", c.Problems, tc.problems)
			}
		})
	}
	c, err := Parse([]byte("KEY=first:bad\nKEY=abcdef\nJSON={}"))
	if err != nil || c.Key != "abcdef" || len(c.Problems) != 0 {
		t.Errorf("a later good KEY does not replace an earlier bad one: %+v, %v", c, err)
	}
}

// Secrets for the leak tests: no four bytes in a row of either can occur
// in an error message by chance.
const (
	leakKey    = "Qz7~Wv9k-Jp3m~Rt8y"
	leakHash   = "$6$Xq9Zw$Vb7Kp2Lm4Nj8Hg5Fd3"
	leakCookie = "Ck4~Yh6u-Tg2w"
)

// leaks returns what of secret (the whole, or four bytes in a row) text
// holds.
func leaks(text string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for i := 0; i+4 <= len(s); i++ {
			if strings.Contains(text, s[i:i+4]) {
				found = append(found, s[i:i+4])
			}
		}
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

// LeakInputs are luoyun.ini bodies that make some parser in conf fail
// while a secret sits in the failing line or value. The agent's tests
// boot with them too.
func LeakInputs() []struct{ Name, Body, Line string } {
	k, h, ck := leakKey, leakHash, leakCookie
	big := strings.Repeat(k, 4000)
	return []struct{ Name, Body, Line string }{
		{"KEY line without '='", "TAG=1\nKEY " + k + "\nJSON={}\n", "line 2"},
		{"KEY line with ':' for '='", "TAG=1\nKEY: " + k + "\nJSON={}\n", "line 2"},
		{"the KEY alone on a line", "TAG=1\n" + k + "\nJSON={}\n", "line 2"},
		{"KEY=\"\"\" (a multi-line quote)", "TAG=1\nKEY=\"\"\"" + k + "\n" + k + "\"\"\"\nJSON={}\n", "line 3"},
		{"KEY=\"\"\" and no closing line", "TAG=1\nKEY=\"\"\"" + k + "\n" + k + "\n", "line 3"},
		{"JSON broken over two lines", "KEY=" + k + "\nJSON={\"cookie\": \"" + ck + "\",\n\"passwd_hash\": \"" + h + "\"}\n", "line 3"},
		{"JSON broken over two lines, '=' in the second", "JSON={\"cookie\": \"" + ck + "\",\n\"passwd_hash\": \"" + h + "==\"}\n", "line 1"},
		{"JSON broken, CRLF", "JSON={\"passwd_hash\":\r\n\"" + h + "\"}\r\n", "line 2"},
		{"invalid JSON with the hash inside", "JSON={\"passwd_hash\": \"" + h + "\" \"cookie\": \"" + ck + "\"}\n", "line 1"},
		{"the hash unquoted", "JSON={\"passwd_hash\": " + h + "}\n", "line 1"},
		{"the hash as the JSON", "JSON=" + h + "\n", "line 1"},
		{"a control byte in the hash", "JSON={\"passwd_hash\": \"" + h + "\x01" + h + "\"}\n", "line 1"},
		{"bad escape in the hash", "JSON={\"passwd_hash\": \"" + h + "\\q\"}\n", "line 1"},
		{"text after the object", "JSON={\"passwd_hash\": \"" + h + "\"} " + h + "\n", "line 1"},
		{"JSON a string", "JSON=\"" + h + "\"\n", "line 1"},
		{"JSON a number", "JSON=98765432109876543210\n", "line 1"},
		{"JSON too deep", "JSON=" + strings.Repeat("[", 10001) + h + "\n", "line 1"},
		{"NUL in the KEY line", "KEY=" + k + "\x00" + k + "\nJSON={}\n", "line 1, KEY"},
		{"NUL in the hash", "JSON={\"passwd_hash\": \"" + h + "\x00\"}\n", "line 1, JSON"},
		{"bad UTF-8 in the KEY line", "JSON={}\nKEY=" + k + "\xff" + k + "\n", "line 2, KEY"},
		{"bad UTF-8 in the KEY line's key", "JSON={}\nKEY\xff" + k + "=x\n", "line 2"},
		{"bad UTF-8 in the hash", "JSON={\"passwd_hash\": \"" + h + "\xc3\"}\n", "line 1, JSON"},
		{"bad UTF-8 without '='", "JSON={}\n" + k + "\xfe\n", "line 2"},
		{"huge line without '='", "JSON={}\nKEY " + big + "\n", "line 2"},
		{"huge JSON, broken at its end", "JSON={\"passwd_hash\": \"" + h + "\", \"x\": \"" + big + "\",\n}\n", "line 2"},
		{"a section named by the KEY", "[" + k + "]\nJSON={}\n", ""},
		{"nothing before '='", "=" + k + "\nJSON={}\n", "line 1"},
		{"KEY shorter than 5 bytes", "KEY=" + k[:4] + "\nJSON={}\n", ""},
		{"KEY with ':'", "KEY=" + k + ":" + k + "\nJSON={}\n", ""},
		{"KEY too long", "KEY=" + big + "\nJSON={}\n", ""},
		{"KEY as TAG", "TAG=" + k + "\nJSON={}\n", ""},
		{"KEY as ports", "CLC_PORT=" + k + "\nCLC_MCAST_PORT=" + k + "\nJSON={}\n", ""},
		{"hash as a number", "JSON={\"passwd_hash\": 98765432109876543210}\n", ""},
		{"hash as the web terminal's port", "JSON={\"webssh\": {\"port\": \"" + h + "\"}}\n", ""},
		{"cookie as the web terminal's status", "JSON={\"webssh\": {\"status\": \"" + ck + "\"}}\n", ""},
		{"hash as a netmask", "JSON={\"network\": [{\"netmask\": {\"" + h + "\": 1}}, {\"netmask\": [\"" + h + "\"]}]}\n", ""},
		{"hash as a storage size", "JSON={\"storage\": [{\"size\": \"" + h + "\"}, {\"size\": " + "98765432109876543210}]}\n", ""},
		{"hash as a key of a typed item", "JSON={\"domain\": {\"" + h + "\": 1, \"name\": 5}, \"passwd_hash\": {\"" + h + "\": \"" + h + "\"}}\n", ""},
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	for _, tc := range LeakInputs() {
		t.Run(tc.Name, func(t *testing.T) {
			c, err := Parse([]byte(tc.Body))
			var texts []string
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %q is not ErrInvalid", err)
				}
				texts = append(texts, err.Error())
				if tc.Line != "" && !strings.Contains(err.Error(), tc.Line+":") && !strings.Contains(err.Error(), tc.Line+",") {
					t.Errorf("error %q does not name %q", err, tc.Line)
				}
			} else {
				for _, p := range c.Problems {
					texts = append(texts, p.Error())
				}
				if len(texts) == 0 {
					t.Fatalf("Parse accepted it without a problem: %+v", c)
				}
			}
			for _, text := range texts {
				if got := leaks(text, leakKey, leakHash, leakCookie, "98765432109876543210"); len(got) > 0 {
					t.Errorf("error %.200q carries secret bytes %q", text, got)
				}
				if strings.Contains(text, "\n") {
					t.Errorf("error %.200q is not one line", text)
				}
				if len(text) > 200 {
					t.Errorf("error of %d bytes: %.200q", len(text), text)
				}
			}
		})
	}
}

// refLines is the spec's reading of luoyun.ini, written apart from scan:
// lines split at "\n" (a "\r" before it dropped), blank lines and '#' or
// ';' comments skipped, the key and value split at the first '=' and
// trimmed, the last of a key winning. ok is false when the file is not
// such text (a line without '=' or with nothing before it, a NUL, bad
// UTF-8). Lines from a '[' line on are left out.
func refLines(data string) (kv map[string]string, ok bool) {
	if !utf8.ValidString(data) || strings.ContainsRune(data, 0) {
		return nil, false
	}
	data = strings.TrimPrefix(data, "\uFEFF")
	kv = map[string]string{}
	section := false
	for _, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			section = true
			continue
		}
		i := strings.Index(l, "=")
		if i <= 0 || strings.TrimSpace(l[:i]) == "" {
			return nil, false
		}
		if !section {
			kv[strings.TrimSpace(l[:i])] = strings.TrimSpace(l[i+1:])
		}
	}
	return kv, true
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(strings.ReplaceAll(full, "\n", "\r\n")))
	f.Add([]byte("JSON={\"a\":\"#;=\\\"\"}\r\nTAG=1\n"))
	f.Add([]byte("[sec]\nJSON={}\n"))
	f.Add([]byte("JSON={}\n[sec]\nKEY=abcdef\n"))
	f.Add([]byte("# c\n; c\n\nJSON={\"network\":[{\"netmask\":24},1]}"))
	f.Add([]byte("\xef\xbb\xbfKEY=a\nKEY=abcdef\nCLC_PORT=0\nJSON={}"))
	for _, in := range LeakInputs() {
		if len(in.Body) < 1000 {
			f.Add([]byte(in.Body))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		ref, ok := refLines(string(data))
		refJSON, hasJSON := ref["JSON"]
		var obj map[string]json.RawMessage
		wantOK := ok && hasJSON && json.Unmarshal([]byte(refJSON), &obj) == nil && obj != nil
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not ErrInvalid or not one line: %q", err)
			}
			if wantOK {
				t.Fatalf("Parse refused a file the spec reads: %v", err)
			}
			return
		}
		if !wantOK {
			t.Fatalf("Parse accepted a file the spec refuses: %+v", c)
		}
		got := map[string]string{"JSON": c.JSON}
		for k, v := range c.Extra {
			got[k] = v
		}
		want := map[string]string{}
		for k, v := range ref {
			if _, ours := ourKey([]byte(k)); !ours || k == "JSON" {
				want[k] = v
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("keys (-spec +got):\n%s", d)
		}
		if c.CLCIP != ref["CLC_IP"] {
			t.Fatalf("CLCIP = %q, spec %q", c.CLCIP, ref["CLC_IP"])
		}
		if k, given := ref["KEY"]; c.Key != "" && (!given || c.Key != k) {
			t.Fatalf("Key = %q, spec %q", c.Key, k)
		}
	})
}

// msgBytes are the bytes conf's messages are made of. A message byte
// outside them came from the input.
const msgBytes = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:()'=[]._-?\\"

var hashValue = regexp.MustCompile(`"passwd_hash"\s*:\s*"((?:[^"\\]|\\.)*)`)

// FuzzErrorsCarryNoSecret: whatever the file, no error or problem holds
// the KEY value or the passwd_hash value it gave, nor any byte a message
// is not made of. Where the input says @K or @H, a known secret goes in,
// so that it can be looked for by its pieces too.
func FuzzErrorsCarryNoSecret(f *testing.F) {
	f.Add([]byte("TAG=1\nKEY @K\nJSON={}\n"))
	f.Add([]byte("KEY=\"\"\"@K\nJSON={}\n"))
	f.Add([]byte("KEY=@K\nJSON={\"passwd_hash\": \"@H\",\n\"cookie\": \"x\"}\n"))
	f.Add([]byte("KEY=@K\nJSON={\"passwd_hash\": \"@H\" 1}\n"))
	f.Add([]byte("KEY=@K\nJSON={\"passwd_hash\": @H}\n"))
	f.Add([]byte("KEY=@K\x00\nJSON={}\n"))
	f.Add([]byte("KEY=@K\xff\nJSON={}\n"))
	f.Add([]byte("KEY=$6$@K\nJSON={\"passwd_hash\": {\"x\": \"$6$abc$def\"}, \"webssh\": {\"port\": \"@H\"}}\n"))
	f.Add([]byte(full))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.ReplaceAll(data, []byte("@K"), []byte(leakKey))
		data = bytes.ReplaceAll(data, []byte("@H"), []byte(leakHash))
		c, err := Parse(data)
		var texts []string
		if err != nil {
			texts = append(texts, err.Error())
		} else {
			for _, p := range c.Problems {
				texts = append(texts, p.Error())
			}
		}
		var secrets []string
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "KEY" {
				secrets = append(secrets, strings.TrimSpace(v))
			}
		}
		for _, m := range hashValue.FindAllStringSubmatch(string(data), -1) {
			secrets = append(secrets, m[1])
		}
		for _, text := range texts {
			if i := strings.IndexFunc(text, func(r rune) bool { return !strings.ContainsRune(msgBytes, r) }); i >= 0 {
				t.Fatalf("error %q holds %q, which no message is made of", text, text[i:])
			}
			if got := leaks(text, leakKey, leakHash); len(got) > 0 {
				t.Fatalf("error %q holds secret bytes %q", text, got)
			}
			for _, s := range secrets {
				// A value made only of message bytes may be a message's
				// own words ("KEY=line"); the check above covers it.
				if len(s) >= 4 && strings.Contains(text, s) && strings.Trim(s, msgBytes) != "" {
					t.Fatalf("error %q holds the secret %q", text, s)
				}
			}
		}
	})
}
