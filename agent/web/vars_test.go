package web

import (
	"strings"
	"testing"

	"osmanager/agent/internal/hostname"
	"osmanager/agent/status"
)

var checkHost = hostname.Check

var versionField = status.VersionField

// hostileValues are values an attacker controls (domain.name on the
// floppy, the OS host name, build/VERSION), each made to break out of one
// of the contexts a page may put a variable in.
var hostileValues = []struct{ name, value string }{
	{"script end tag", "x</script><script>alert(1)</script>"},
	{"xhtml script", `<script xmlns="http://www.w3.org/1999/xhtml">alert(1)</script>`},
	{"unquoted attribute", "a onmouseover=alert(1)"},
	{"quoted attribute", `a"onload="alert(1)`},
	{"js string", `';alert(1);//`},
	{"js template", "${alert(1)}"},
	{"css", "x}body{background:url(//evil.example)}"},
	{"css comment", "*/@import'//evil.example';/*"},
	{"xml cdata", "]]><x/>"},
	{"newline", "app1\n<script>"},
	{"nul", "app1\x00x"},
	{"non-ascii", "hôte.example"},
	{"underscore", "bad_name.example"},
	{"trailing dot", "app1.example.com."},
	{"too long", strings.Repeat("a", 64) + ".example"},
	{"backtick", "a`b"},
	{"ampersand", "a&b"},
}

// TestPageVarsHostile puts each hostile value where the page's variables
// come from and serves a page of every substituted type: only checked
// values may come out ($hostname falls back to the OS host name, that to
// localhost; VERSION's fields to "unknown").
func TestPageVarsHostile(t *testing.T) {
	pages := []string{"p.html", "p.xml", "p.xsl", "p.js", "p.css", "p.txt", "p.csv"}
	const page = "[$hostname|$application|$version1|$version2|$curtime]"
	cases := []struct {
		name    string
		setup   func(e *testEnv, v string)
		cfg     func(c *envConfig, v string)
		wantFor func(v string) string
	}{
		{"domain.name", nil,
			func(c *envConfig, v string) {
				c.Src.Hostname = v
				c.Src.OSHostname = func() (string, error) { return "vm-1234", nil }
			},
			func(string) string { return "[vm-1234|wordpress|0.1.0|3.5.1|07:08]" }},
		{"OS host name", nil,
			func(c *envConfig, v string) {
				c.Src.Hostname = ""
				c.Src.OSHostname = func() (string, error) { return v, nil }
			},
			func(string) string { return "[localhost|wordpress|0.1.0|3.5.1|07:08]" }},
		{"both", nil,
			func(c *envConfig, v string) {
				c.Src.Hostname = v
				c.Src.OSHostname = func() (string, error) { return v, nil }
			},
			func(string) string { return "[localhost|wordpress|0.1.0|3.5.1|07:08]" }},
		// VERSION's fields split on white space: values with none are one
		// field, refused whole unless they are of versionField's alphabet;
		// the others are checked by the alphabet test below.
		{"VERSION name and version1", func(e *testEnv, v string) { e.write("build/VERSION", "osmanager "+v+"\nwordpress: 3.5.1\n") }, nil,
			func(v string) string { return "[app1.example.com|wordpress|" + oneField(v) + "|3.5.1|07:08]" }},
		{"VERSION application and version2", func(e *testEnv, v string) { e.write("build/VERSION", "osmanager 0.1.0\n"+v+": "+v+"\n") }, nil,
			func(v string) string { return "[app1.example.com|" + oneField(v) + "|0.1.0|" + oneField(v) + "|07:08]" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, h := range hostileValues {
				t.Run(h.name, func(t *testing.T) {
					e := newEnv(t, func(cfg *envConfig) {
						if c.cfg != nil {
							c.cfg(cfg, h.value)
						}
					})
					if c.setup != nil {
						c.setup(e, h.value)
					}
					want := c.wantFor(h.value)
					split := strings.HasPrefix(c.name, "VERSION") && strings.ContainsAny(h.value, " \t\n")
					for _, p := range pages {
						e.write("custom/www/nocookie/"+p, page)
						r := e.do("GET", "/"+p)
						got := body(t, r)
						if r.StatusCode != 200 || !split && got != want {
							t.Errorf("GET /%s: %d %q, want %q", p, r.StatusCode, got, want)
						}
						for i, v := range strings.Split(strings.Trim(got, "[]"), "|") {
							if i > 0 && versionField(v) != v || i == 0 && checkHost(v) != nil {
								t.Errorf("GET /%s: %q: value %d, %q, is not a checked value", p, got, i, v)
							}
						}
					}
					if api := body(t, e.do("GET", "/api/v1/status")); strings.Contains(api, "alert") || strings.Contains(api, "evil") {
						t.Errorf("status API carries the hostile value:\n%s", api)
					}
				})
			}
		})
	}
}

// oneField is what VERSION makes of a value without white space.
func oneField(v string) string {
	if ok := versionField(v) == v; ok {
		return v
	}
	return status.Unknown
}
