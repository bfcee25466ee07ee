package pack

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/apps/apperr"
)

func TestParseManifestDefaults(t *testing.T) {
	m, err := ParseManifest([]byte(`{"id": "hello", "version": "1.0.0", "exec": "bin/hello", "args": [], "env": {}, "restart": "on-failure"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{ID: "hello", Version: "1.0.0", Exec: "bin/hello", Args: []string{}, Env: map[string]string{},
		Restart: RestartOnFailure, Instances: Single, StopTimeout: Duration(10 * time.Second),
		StartLimit: &StartLimit{Burst: 5, Interval: Duration(10 * time.Second)}}
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("manifest (-want +got):\n%s", d)
	}
	full := `{"id": "a.b-c_9", "version": "2.0.0-rc.1+b5", "exec": "./bin//x", "args": ["-v", "a b"], "env": {"PORT": "8080", "_X": ""},
		"restart": "always", "name": "Hello", "description": "says hello", "user": "www-data", "workdir": "share",
		"instances": "multi", "stop_timeout": "1m30s", "start_limit": {"burst": 3, "interval": "1m"}}`
	m, err = ParseManifest([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if m.StopTimeout.D() != 90*time.Second || m.StartLimit.Burst != 3 || m.Instances != Multi || m.Restart != RestartAlways {
		t.Errorf("full manifest read as %+v", m)
	}
}

func TestParseManifestRefused(t *testing.T) {
	base := `"id": "hello", "version": "1.0.0", "exec": "bin/hello"`
	for _, tc := range []struct {
		name, json, want string
		code             apperr.Code
	}{
		{"empty", ``, "empty or cut short", apperr.BadRequest},
		{"not json", `hello`, "not valid JSON", apperr.BadRequest},
		{"array", `[]`, "want a JSON object", apperr.BadRequest},
		{"trailing data", `{` + base + `} {}`, "data after the JSON object", apperr.BadRequest},
		{"trailing garbage", `{` + base + `}x`, "", apperr.BadRequest},
		{"unknown key", `{` + base + `, "restrat": "no"}`, `unknown key "restrat"`, apperr.BadRequest},
		{"wrong case key", `{` + base + `, "Exec": "x"}`, `unknown key "Exec"`, apperr.BadRequest},
		{"unknown nested key", `{` + base + `, "start_limit": {"burst": 1, "intervall": "1s"}}`, `unknown key "start_limit.intervall"`, apperr.BadRequest},
		{"socket misspelt", `{` + base + `, "sockets": {"listen": ":80"}}`, `unknown key "sockets"`, apperr.BadRequest},
		{"duplicate key", `{` + base + `, "exec": "bin/other"}`, `"exec" given twice`, apperr.BadRequest},
		{"duplicate env key", `{` + base + `, "env": {"A": "1", "A": "2"}}`, `"env.A" given twice`, apperr.BadRequest},
		{"missing id", `{"version": "1", "exec": "x"}`, `"id" is missing`, apperr.BadRequest},
		{"bad id upper", `{"id": "Hello", "version": "1", "exec": "x"}`, `"id" "Hello"`, apperr.BadRequest},
		{"bad id slash", `{"id": "a/b", "version": "1", "exec": "x"}`, `"id"`, apperr.BadRequest},
		{"bad id dot first", `{"id": ".a", "version": "1", "exec": "x"}`, `"id"`, apperr.BadRequest},
		{"bad id long", `{"id": "` + strings.Repeat("a", 65) + `", "version": "1", "exec": "x"}`, `"id"`, apperr.BadRequest},
		{"missing version", `{"id": "a", "exec": "x"}`, `"version" is missing`, apperr.BadRequest},
		{"bad version slash", `{"id": "a", "version": "1/2", "exec": "x"}`, `"version"`, apperr.BadRequest},
		{"bad version tilde", `{"id": "a", "version": "1~2", "exec": "x"}`, `"version"`, apperr.BadRequest},
		{"missing exec", `{"id": "a", "version": "1"}`, `"exec" is missing`, apperr.BadRequest},
		{"exec absolute", `{"id": "a", "version": "1", "exec": "/bin/sh"}`, `absolute`, apperr.BadRequest},
		{"exec dotdot", `{"id": "a", "version": "1", "exec": "../x"}`, `".."`, apperr.BadRequest},
		{"exec top", `{"id": "a", "version": "1", "exec": "."}`, `top`, apperr.BadRequest},
		{"exec wrong type", `{"id": "a", "version": "1", "exec": 5}`, `"exec": want string`, apperr.BadRequest},
		{"workdir dotdot", `{` + base + `, "workdir": "a/../../x"}`, `"workdir"`, apperr.BadRequest},
		{"args NUL", `{` + base + `, "args": ["a\u0000b"]}`, `"args"[0]`, apperr.BadRequest},
		{"env key with =", `{` + base + `, "env": {"A=B": "1"}}`, `"env" key`, apperr.BadRequest},
		{"env key empty", `{` + base + `, "env": {"": "1"}}`, `"env" key`, apperr.BadRequest},
		{"env key NUL", `{` + base + `, "env": {"A\u0000": "1"}}`, `"env" key`, apperr.BadRequest},
		{"env value newline", `{` + base + `, "env": {"A": "1\nB=2"}}`, `line break`, apperr.BadRequest},
		{"env value NUL", `{` + base + `, "env": {"A": "1\u0000"}}`, `NUL`, apperr.BadRequest},
		{"env reserved", `{` + base + `, "env": {"OSM_APP_ID": "x"}}`, `reserved`, apperr.BadRequest},
		{"bad restart", `{` + base + `, "restart": "sometimes"}`, `"restart"`, apperr.BadRequest},
		{"bad instances", `{` + base + `, "instances": "many"}`, `"instances"`, apperr.BadRequest},
		{"name control", `{` + base + `, "name": "a\u001bb"}`, `"name"`, apperr.BadRequest},
		{"description line break", `{` + base + `, "description": "a\u2028b"}`, `"description"`, apperr.BadRequest},
		{"bad user", `{` + base + `, "user": "root:x"}`, `"user"`, apperr.BadRequest},
		{"stop_timeout number", `{` + base + `, "stop_timeout": 10}`, `duration`, apperr.BadRequest},
		{"stop_timeout bad", `{` + base + `, "stop_timeout": "10 s"}`, `not a duration`, apperr.BadRequest},
		{"stop_timeout negative", `{` + base + `, "stop_timeout": "-1s"}`, `"stop_timeout"`, apperr.BadRequest},
		{"stop_timeout huge", `{` + base + `, "stop_timeout": "2h"}`, `"stop_timeout"`, apperr.BadRequest},
		{"burst zero", `{` + base + `, "start_limit": {"burst": 0, "interval": "1s"}}`, `"start_limit.burst"`, apperr.BadRequest},
		{"interval missing", `{` + base + `, "start_limit": {"burst": 2}}`, `"start_limit.interval"`, apperr.BadRequest},
		{"too large", `{` + base + `, "description": "` + strings.Repeat("x", MaxManifest) + `"}`, `over`, apperr.TooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if got := apperr.CodeOf(err); got != tc.code {
				t.Errorf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	// Each is below the next.
	order := []string{"0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.0+b1", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := range order {
		for j := range order {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := CompareVersions(order[i], order[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"10", "9", -1},          // not semver: byte order
		{"1.10", "1.9", -1},      // not semver (two parts)
		{"v1.0.0", "v0.9.0", 1},  // not semver (prefix), byte order agrees here
		{"1.0.0", "1.0", 1},      // one semver, one not: byte order
		{"01.0.0", "1.0.0", -1},  // leading zero: not semver
		{"1.0.0-01", "1.0.0", 1}, // leading zero in pre-release: not semver, byte order
		{"2024.1", "2024.1", 0},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"id": "hello", "version": "1.0.0", "exec": "bin/hello", "args": [], "env": {}, "restart": "on-failure"}`))
	f.Add([]byte(`{"id": "a", "version": "1", "exec": "x", "start_limit": {"burst": 3, "interval": "1m"}, "env": {"A": "b"}}`))
	f.Add([]byte(`{"id": "a", "id": "b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if c := apperr.CodeOf(err); c != apperr.BadRequest && c != apperr.TooLarge {
				t.Fatalf("code %q for %v", c, err)
			}
			return
		}
		// What is accepted is valid by every rule and stays so.
		if !ValidID(m.ID) || !ValidVersion(m.Version) || m.StartLimit == nil || m.StopTimeout <= 0 {
			t.Fatalf("accepted an invalid manifest: %+v", m)
		}
		for k, v := range m.Env {
			if strings.ContainsAny(k, "=\x00\n\r") || strings.ContainsAny(v, "\x00\n\r") {
				t.Fatalf("accepted env %q=%q", k, v)
			}
		}
		if _, err := CleanName(m.Exec); err != nil || strings.HasPrefix(m.Exec, "/") {
			t.Fatalf("accepted exec %q", m.Exec)
		}
	})
}
