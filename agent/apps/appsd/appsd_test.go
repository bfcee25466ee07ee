package appsd

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func installed(ids ...string) func(string) bool {
	return func(id string) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
}

func TestParse(t *testing.T) {
	all := installed("hello", "api-server", "metrics", "logger", "web")
	for _, tc := range []struct {
		name  string
		files []File
		want  Config
	}{
		{"empty dir", nil, Config{}},
		{"empty object", []File{{"a.json", []byte(`{}`)}}, Config{}},
		{"one of each", []File{{"10-a.json", []byte(`{
			"services": {"web": "hello", "api": ["api-server", "--port", "9000"]},
			"startup_services": ["api"],
			"apps": ["metrics", ["logger", "-v"]]}`)}},
			Config{
				Services: []Service{
					{Name: "api", App: "api-server", Args: []string{"--port", "9000"}, Eager: true, File: "10-a.json"},
					{Name: "web", App: "hello", File: "10-a.json"},
				},
				Apps: []App{{App: "metrics", File: "10-a.json"}, {App: "logger", Args: []string{"-v"}, File: "10-a.json"}},
			}},
		{"merged in name order, startup from another file", []File{
			{"20-b.json", []byte(`{"startup_services": ["web"], "apps": ["metrics"]}`)},
			{"10-a.json", []byte(`{"services": {"web": "hello"}}`)},
		}, Config{
			Services: []Service{{Name: "web", App: "hello", Eager: true, File: "10-a.json"}},
			Apps:     []App{{App: "metrics", File: "20-b.json"}},
		}},
		{"startup and apps: one service, started once", []File{
			{"a.json", []byte(`{"services": {"web": "hello"}, "startup_services": ["web"], "apps": ["hello"]}`)},
		}, Config{Services: []Service{{Name: "web", App: "hello", Eager: true, File: "a.json"}}}},
		{"apps entry of a service's app makes it eager", []File{
			{"a.json", []byte(`{"services": {"web": "hello"}}`)}, {"b.json", []byte(`{"apps": [["hello"]]}`)},
		}, Config{Services: []Service{{Name: "web", App: "hello", Eager: true, File: "a.json"}}}},
		{"startup twice is once", []File{
			{"a.json", []byte(`{"services": {"web": "hello"}, "startup_services": ["web", "web"]}`)},
		}, Config{Services: []Service{{Name: "web", App: "hello", Eager: true, File: "a.json"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.files, all)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Parse (-want +got):\n%s", d)
			}
		})
	}
}

// TestParseRefused: each bad entry is refused with its file and key, and
// what else the files hold still loads (the service "ok" of ok.json).
func TestParseRefused(t *testing.T) {
	ok := File{"50-ok.json", []byte(`{"services": {"ok": "web"}}`)}
	okSvc := Service{Name: "ok", App: "web", File: "50-ok.json"}
	for _, tc := range []struct {
		name     string
		files    []File
		problems []Problem
		services []Service // besides ok
		apps     []App
	}{
		{"malformed file", []File{{"10-bad.json", []byte(`{"services": {"web": "hello",}}`)}},
			[]Problem{{"10-bad.json", "", "not valid JSON (at byte 30: invalid character '}' looking for beginning of object key string); the file is refused"}}, nil, nil},
		{"cut short", []File{{"10-bad.json", []byte(`{"services": {`)}},
			[]Problem{{"10-bad.json", "", "not valid JSON (at byte 14: unexpected end of JSON input); the file is refused"}}, nil, nil},
		{"empty file", []File{{"10-bad.json", nil}},
			[]Problem{{"10-bad.json", "", "not valid JSON (at byte 0: unexpected end of JSON input); the file is refused"}}, nil, nil},
		{"not an object", []File{{"10-bad.json", []byte(`["hello"]`)}},
			[]Problem{{"10-bad.json", "", "not a JSON object; the file is refused"}}, nil, nil},
		{"not UTF-8", []File{{"10-bad.json", []byte("{\"apps\": [\"\xff\"]}")}},
			[]Problem{{"10-bad.json", "", "not valid UTF-8; the file is refused"}}, nil, nil},
		{"too large", []File{{"10-bad.json", []byte(`{"apps": [` + strings.Repeat(`"hello",`, MaxFile/8) + `"hello"]}`)}},
			[]Problem{{"10-bad.json", "", "over 262144 bytes; the file is refused"}}, nil, nil},
		{"unknown key, the rest loads", []File{{"10-a.json", []byte(`{"servics": {"x": "hello"}, "services": {"web": "hello"}}`)}},
			[]Problem{{"10-a.json", "servics", "unknown key (want services, startup_services or apps)"}},
			[]Service{{Name: "web", App: "hello", File: "10-a.json"}}, nil},
		{"duplicate name in one file", []File{{"10-a.json", []byte(`{"services": {"web": "hello", "web": "metrics"}}`)}},
			[]Problem{{"10-a.json", "services.web", `service "web" defined twice (first earlier in this file, which is kept)`}},
			[]Service{{Name: "web", App: "hello", File: "10-a.json"}}, nil},
		{"duplicate name across files", []File{
			{"10-a.json", []byte(`{"services": {"web": "hello"}}`)}, {"20-b.json", []byte(`{"services": {"web": "metrics"}}`)}},
			[]Problem{{"20-b.json", "services.web", `service "web" defined twice (first in 10-a.json, which is kept)`}},
			[]Service{{Name: "web", App: "hello", File: "10-a.json"}}, nil},
		{"top key twice", []File{{"10-a.json", []byte(`{"apps": ["hello"], "apps": ["metrics"]}`)}},
			[]Problem{{"10-a.json", "apps", "key given twice; the second is refused"}}, nil, []App{{App: "hello", File: "10-a.json"}}},
		{"app not installed", []File{{"10-a.json", []byte(`{"services": {"web": "nope"}, "startup_services": ["web"], "apps": ["gone", "hello"]}`)}},
			[]Problem{
				{"10-a.json", "services.web", `app "nope" is not installed`},
				{"10-a.json", "apps[0]", `app "gone" is not installed`},
			}, nil, []App{{App: "hello", File: "10-a.json"}}},
		{"startup of no service", []File{{"10-a.json", []byte(`{"startup_services": ["nope"]}`)}},
			[]Problem{{"10-a.json", "startup_services[0]", `no service "nope" is defined`}}, nil, nil},
		{"one app, two services", []File{{"10-a.json", []byte(`{"services": {"a": "hello", "b": "hello"}}`)}},
			[]Problem{{"10-a.json", "services.b", `app "hello" already provides service "a" (in 10-a.json); an app provides one service`}},
			[]Service{{Name: "a", App: "hello", File: "10-a.json"}}, nil},
		{"apps twice", []File{{"10-a.json", []byte(`{"apps": ["hello"]}`)}, {"20-a.json", []byte(`{"apps": ["hello"]}`)}},
			[]Problem{{"20-a.json", "apps[0]", `app "hello" listed twice (first in 10-a.json, which is kept)`}}, nil, []App{{App: "hello", File: "10-a.json"}}},
		{"apps args differ from the service's", []File{{"10-a.json", []byte(`{"services": {"web": ["hello", "-a"]}, "apps": [["hello", "-b"]]}`)}},
			[]Problem{{"10-a.json", "apps[0]", `app "hello" provides service "web" (in 10-a.json), started once as the service; these args differ from the service's and are ignored`}},
			[]Service{{Name: "web", App: "hello", Args: []string{"-a"}, Eager: true, File: "10-a.json"}}, nil},
		{"bad values", []File{{"10-a.json", []byte(`{"services": {"Bad Name": "hello", "x": 5, "y": [], "z": ["Hello"], "w": ["hello", 3]},
			"startup_services": "x", "apps": {"a": 1}}`)}},
			[]Problem{
				{"10-a.json", "services.Bad Name", "bad service name: want [A-Za-z0-9][A-Za-z0-9._-]{0,127}"},
				{"10-a.json", "services.x", `want "app-id" or ["app-id", "arg", …], not 5`},
				{"10-a.json", "services.y", `want "app-id" or ["app-id", "arg", …], not []`},
				{"10-a.json", "services.z", `app id "Hello": want [a-z0-9][a-z0-9._-]{0,63}`},
				{"10-a.json", "services.w", `want "app-id" or ["app-id", "arg", …], not ["hello", 3]`},
				{"10-a.json", "startup_services", "want a list of service names"},
				{"10-a.json", "apps", `want a list of app ids or ["app-id", "arg", …]`},
			}, nil, nil},
		{"services not an object", []File{{"10-a.json", []byte(`{"services": ["hello"]}`)}},
			[]Problem{{"10-a.json", "services", `want an object {"name": "app-id" | ["app-id", "arg", …]}`}}, nil, nil},
		{"arg with NUL", []File{{"10-a.json", []byte(`{"apps": [["hello", "a\u0000b"]]}`)}},
			[]Problem{{"10-a.json", "apps[0]", "arg 1: over 4096 bytes or holds NUL"}}, nil, nil},
		{"control bytes in a key are not echoed", []File{{"10-a.json", []byte(`{"a\u001b[2Jb": 1}`)}},
			[]Problem{{"10-a.json", "a?[2Jb", "unknown key (want services, startup_services or apps)"}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(append(tc.files, ok), installed("hello", "metrics", "web"))
			want := Config{Services: append(tc.services, okSvc), Apps: tc.apps, Problems: tc.problems}
			sortServices(want.Services)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Parse (-want +got):\n%s", d)
			}
		})
	}
}

func sortServices(s []Service) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j].Name < s[i].Name {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// FuzzParse: any bytes in any two files give a Config without a panic,
// every problem naming its file, and messages and keys free of control
// characters (they go into logs and answers).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"services": {"web": "hello", "api": ["api", "-v"]}, "startup_services": ["api"], "apps": ["hello", ["x", "y"]]}`), []byte(`{"services": {"web": "x"}}`))
	f.Add([]byte(`{"services": {"web": "hello", "web": "hello"}}`), []byte(`{`))
	f.Add([]byte(`{"a": 1, "apps": [[]], "startup_services": [1]}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		cfg := Parse([]File{{"a.json", a}, {"b.json", b}}, func(id string) bool { return id != "x" })
		names := map[string]bool{}
		for _, s := range cfg.Services {
			if names[s.Name] || !ValidName(s.Name) || !idRE.MatchString(s.App) || s.App == "x" {
				t.Fatalf("bad service %+v", s)
			}
			names[s.Name] = true
		}
		for _, p := range cfg.Problems {
			if p.File != "a.json" && p.File != "b.json" {
				t.Fatalf("problem without its file: %+v", p)
			}
			for _, s := range []string{p.Key, p.Message} {
				if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n\x1b") {
					t.Fatalf("problem with control bytes: %q", s)
				}
			}
		}
	})
}
