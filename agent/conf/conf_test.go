package conf

import (
	"errors"
	"strings"
	"testing"

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
		"no JSON":          "TAG=1\nKEY=k\n",
		"broken JSON":      "JSON={\"a\":\n",
		"JSON array":       "JSON=[1,2]\n",
		"JSON string":      "JSON=\"x\"\n",
		"JSON null":        "JSON=null\n",
		"empty":            "",
		"binary":           "\x00\x01\x02JSON={}",
		"not utf-8":        "JSON={\"a\":\"\xff\"}\n",
		"line without '='": "TAG=1\ngarbage line\nJSON={}\n",
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
	c, err := Parse([]byte("CLC_IP=\nCLC_PORT=\nJSON={}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.CLCIP != "" || c.CLCPort != 1369 || c.McastIP != "228.0.0.1" || c.McastPort != 1369 || c.HasTag || len(c.Problems) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

// refJSON is the spec's reading of the JSON line: the text after the first
// '=' of the last line whose key is JSON, without surrounding white space.
func refJSON(data string) (string, bool) {
	val, ok := "", false
	for _, line := range strings.Split(data, "\n") {
		k, v, found := strings.Cut(strings.TrimSuffix(line, "\r"), "=")
		if found && strings.TrimSpace(k) == "JSON" {
			val, ok = strings.TrimSpace(v), true
		}
	}
	return val, ok
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("JSON={\"a\":\"#;=\\\"\"}\r\nTAG=1\n"))
	f.Add([]byte("[sec]\nJSON={}\n"))
	f.Add([]byte("JSON={\"network\":[{\"netmask\":24},1]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not ErrInvalid or not one line: %q", err)
			}
			return
		}
		if ref, ok := refJSON(string(data)); ok && strings.HasPrefix(ref, "{") && !strings.Contains(string(data), "[") && c.JSON != ref {
			t.Fatalf("JSON = %q, want %q", c.JSON, ref)
		}
	})
}
