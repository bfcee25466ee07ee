package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"osmanager/agent/sysroot"
)

var testFiles = Files{Passwd: "/etc/passwd", Group: "/etc/group", Shadow: "/etc/shadow"}

// root makes a system root holding the given account files ("" leaves
// one out).
func root(t *testing.T, passwd, group, shadow string) *sysroot.Root {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	for name, body := range map[string]string{"passwd": passwd, "group": group, "shadow": shadow} {
		if body == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sys, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

const passwd = `root:x:0:0:root:/root:/bin/bash
broken line
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nohome:x:1001:1001:::
short:x:1002
badid:x:12a:0:Bad:/:/bin/sh
extra:x:1003:1003:X:/home/x:/bin/sh:more
`

const group = `root:x:0:
users:x:100:alice,bob
tty:x:5:
wheel:x:10:bob,alice
bad:x:zz:alice
alice:x:1000:alice
short:x
`

func TestLookup(t *testing.T) {
	sys := root(t, passwd, group, "")
	for _, tc := range []struct {
		name    string
		want    *User
		wantErr error
		errHas  string
	}{
		{name: "root", want: &User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root", Shell: "/bin/bash"}},
		{name: "alice", want: &User{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{1000, 100, 10}, Home: "/home/alice", Shell: "/bin/sh"}},
		{name: "nohome", want: &User{Name: "nohome", UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/", Shell: "/bin/sh"}},
		{name: "extra", want: &User{Name: "extra", UID: 1003, GID: 1003, Groups: []uint32{1003}, Home: "/home/x", Shell: "/bin/sh"}},
		{name: "nobody", wantErr: ErrUnknownUser},
		{name: "short", wantErr: ErrUnknownUser, errHas: "line 5"},
		{name: "badid", wantErr: ErrLine, errHas: "/etc/passwd line 6"},
		{name: "ali", wantErr: ErrUnknownUser},
		{name: "root:x", wantErr: ErrUnknownUser},
		{name: "", wantErr: ErrUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(sys, testFiles, tc.name)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %v naming %q", err, tc.wantErr, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("user (-want +got):\n%s", d)
			}
		})
	}
}

func TestLookupWithoutGroupFile(t *testing.T) {
	u, err := Lookup(root(t, passwd, "", ""), testFiles, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]uint32{1000}, u.Groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	if _, err := Lookup(root(t, "", group, ""), testFiles, "alice"); err == nil || errors.Is(err, ErrUnknownUser) {
		t.Errorf("no passwd file: err = %v, want a read error", err)
	}
}

func TestCredential(t *testing.T) {
	u := &User{UID: 1000, GID: 100, Groups: []uint32{100, 10}}
	c := u.Credential()
	if c.Uid != 1000 || c.Gid != 100 || !cmp.Equal(c.Groups, []uint32{100, 10}) {
		t.Errorf("credential %+v", c)
	}
	c.Groups[0] = 7
	if u.Groups[0] != 100 {
		t.Error("the credential shares the user's group slice")
	}
}

func TestGroupID(t *testing.T) {
	sys := root(t, passwd, group, "")
	for _, tc := range []struct {
		name string
		want uint32
		ok   bool
	}{
		{"tty", 5, true}, {"users", 100, true}, {"bad", 0, false}, {"short", 0, false}, {"none", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := GroupID(sys, testFiles, tc.name)
			if got != tc.want || ok != tc.ok {
				t.Errorf("GroupID = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestLoginHash(t *testing.T) {
	const h = "$6$saltsalt$abc"
	shadow := "root:" + h + ":19000:0:99999:7:::\n" +
		"locked:!" + h + ":19000:0:99999:7:::\n" +
		"star:*:19000:0:99999:7:::\n" +
		"nopass::19000:0:99999:7:::\n" +
		"expired:" + h + ":19000:0:99999:7::19000:\n" +
		"later:" + h + ":19000:0:99999:7::30000:\n" +
		"badexp:" + h + ":19000:0:99999:7::soon:\n" +
		"short:" + h + "\n" +
		"nohash\n"
	sys := root(t, "", "", shadow)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // day 20454
	for _, tc := range []struct {
		name    string
		want    string
		wantErr error
	}{
		{name: "root", want: h},
		{name: "later", want: h},
		{name: "badexp", want: h}, // an unreadable expiry is none, as before
		{name: "short", want: h},
		{name: "locked", wantErr: ErrLocked},
		{name: "star", wantErr: ErrLocked},
		{name: "nopass", wantErr: ErrNoPassword},
		{name: "expired", wantErr: ErrExpired},
		{name: "nohash", wantErr: ErrUnknownUser},
		{name: "nobody", wantErr: ErrUnknownUser},
		{name: "+nis", wantErr: ErrUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoginHash(sys, testFiles, tc.name, now)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("LoginHash = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "saltsalt") {
				t.Errorf("error %q holds the hash", err)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"root", true}, {"a.b_c-d", true}, {"", false}, {"-x", false}, {"+x", false},
		{"a:b", false}, {"a b", false}, {"a\nb", false}, {"a/b", false}, {"é", false},
		{strings.Repeat("a", 64), true}, {strings.Repeat("a", 65), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidName(tc.name); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	const secret = "$6$saltsalt$SECRETHASH"
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		data  string
		want  string
	}{
		{"passwd fields", func(b []byte) error { _, err := ParsePasswd(b); return err }, "root:x:0:0:r:/root:/bin/sh\n\nbob:" + secret + ":1\n", "line 3: bad line: 3 fields, want 7"},
		{"passwd uid", func(b []byte) error { _, err := ParsePasswd(b); return err }, "bob:" + secret + ":x:0::/:/bin/sh\n", "line 1: bad line: bad uid or gid"},
		{"passwd name", func(b []byte) error { _, err := ParsePasswd(b); return err }, "+:x:0:0::/:/bin/sh\n", "line 1: bad line: bad user name"},
		{"group fields", func(b []byte) error { _, err := ParseGroup(b); return err }, "root:x:0:\nwheel:x\n", "line 2: bad line: 2 fields, want 4"},
		{"group gid", func(b []byte) error { _, err := ParseGroup(b); return err }, "wheel:x:-1:\n", "line 1: bad line: bad gid"},
		{"shadow fields", func(b []byte) error { _, err := ParseShadow(b); return err }, "root:" + secret + ":1:2\n", "line 1: bad line: 4 fields, want 9"},
		{"shadow name", func(b []byte) error { _, err := ParseShadow(b); return err }, "root:x:::::::\n r:" + secret + ":::::::\n", "line 2: bad line: bad user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse([]byte(tc.data))
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrLine) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	users, err := ParsePasswd([]byte("root:x:0:0:root:/root:/bin/bash\r\nbob:x:1000:100:::\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []*User{
		{Name: "root", UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root", Shell: "/bin/bash"},
		{Name: "bob", UID: 1000, GID: 100, Groups: []uint32{100}, Home: "/", Shell: "/bin/sh"},
	}
	if d := cmp.Diff(want, users); d != "" {
		t.Errorf("ParsePasswd (-want +got):\n%s", d)
	}
	groups, err := ParseGroup([]byte("root:x:0:\nwheel:x:10:bob,alice\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Group{{Name: "root", GID: 0}, {Name: "wheel", GID: 10, Members: []string{"bob", "alice"}}}, groups); d != "" {
		t.Errorf("ParseGroup (-want +got):\n%s", d)
	}
	sh, err := ParseShadow([]byte("root:$6$a$b:19000:0:99999:7:::\nbob:!:19000:0:99999:7::20000:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Shadow{{Name: "root", Hash: "$6$a$b", Expire: -1}, {Name: "bob", Hash: "!", Expire: 20000}}, sh); d != "" {
		t.Errorf("ParseShadow (-want +got):\n%s", d)
	}
}

func TestCutShadowLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want ShadowLine
		ok   bool
	}{
		{"root:$6$a$b:19000:0:99999:7:::", ShadowLine{Name: "root", Hash: "$6$a$b", Rest: "19000:0:99999:7:::", HasRest: true}, true},
		{"root:hash", ShadowLine{Name: "root", Hash: "hash"}, true},
		{"root::\r", ShadowLine{Name: "root", Rest: "\r", HasRest: true}, true},
		{"root", ShadowLine{}, false},
		{"", ShadowLine{}, false},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, ok := CutShadowLine(tc.line)
			if ok != tc.ok || got != tc.want {
				t.Errorf("CutShadowLine = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// fuzzSecret marks bytes an error must never repeat.
const fuzzSecret = "Zq9SECRETq9Z"

// checkParseError: an error names a line and holds none of its bytes.
func checkParseError(t *testing.T, err error) {
	if err == nil {
		return
	}
	if !errors.Is(err, ErrLine) || !strings.HasPrefix(err.Error(), "line ") {
		t.Fatalf("error %q does not name a line", err)
	}
	if strings.Contains(err.Error(), fuzzSecret) {
		t.Fatalf("error %q holds a field's bytes", err)
	}
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"root:x:0:0:root:/root:/bin/bash\n",
		"root:x:0:\nwheel:x:10:a,b\n",
		"root:" + fuzzSecret + ":19000:0:99999:7:::\n",
		"a:" + fuzzSecret + ":x:y::/:\n\n\r\n",
		"::::::::\n" + fuzzSecret + "\n",
		"+::::::\n-:" + fuzzSecret + "\n",
	} {
		f.Add([]byte(s))
	}
}

func FuzzParsePasswd(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParsePasswd(data)
		checkParseError(t, err)
		for _, u := range users {
			if !ValidName(u.Name) || u.Home == "" || u.Shell == "" || len(u.Groups) != 1 {
				t.Fatalf("accepted %+v", u)
			}
		}
	})
}

func FuzzParseGroup(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		groups, err := ParseGroup(data)
		checkParseError(t, err)
		for _, g := range groups {
			if !ValidName(g.Name) {
				t.Fatalf("accepted %+v", g)
			}
		}
	})
}

func FuzzParseShadow(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseShadow(data)
		checkParseError(t, err)
		for _, e := range entries {
			if !ValidName(e.Name) || strings.ContainsAny(e.Hash, ":\n") {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}

// FuzzLookup: whatever the files hold, a lookup and a login check neither
// panic nor put a hash's bytes in an error.
func FuzzLookup(f *testing.F) {
	f.Add([]byte("alice:x:1000:1000::/:/bin/sh\n"), []byte("users:x:100:alice\n"), []byte("alice:"+fuzzSecret+":1:0:9:7::5:\n"), "alice")
	f.Add([]byte("alice:"+fuzzSecret+":x\n"), []byte("alice"), []byte("alice:\n"), "alice")
	f.Fuzz(func(t *testing.T, pw, gr, sh []byte, name string) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
		os.WriteFile(filepath.Join(dir, "etc/passwd"), pw, 0o600)
		os.WriteFile(filepath.Join(dir, "etc/group"), gr, 0o600)
		os.WriteFile(filepath.Join(dir, "etc/shadow"), sh, 0o600)
		sys, err := sysroot.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Lookup(sys, testFiles, name); err != nil && strings.Contains(err.Error(), fuzzSecret) {
			t.Fatalf("Lookup error %q holds a field's bytes", err)
		}
		if _, err := LoginHash(sys, testFiles, name, time.Unix(0, 0)); err != nil && strings.Contains(err.Error(), fuzzSecret) {
			t.Fatalf("LoginHash error %q holds a field's bytes", err)
		}
		GroupID(sys, testFiles, name)
	})
}
