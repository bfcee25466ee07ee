package web

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goldenVars are the values testdata/subst/gen.py substitutes.
var goldenVars = map[string]string{
	"hostname": "app1.example.com", "application": "wordpress",
	"version1": "0.1.0", "version2": "3.5.1", "curtime": "07:08",
}

// TestSubstituteGolden checks the substitution against Python's own
// string.Template.safe_substitute: the .golden files are its output (see
// testdata/subst/gen.py) on pages shaped like the old agent's appliances'.
func TestSubstituteGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/subst/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") || strings.HasSuffix(in, ".py") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			page, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(in + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			if got := Substitute(page, goldenVars, false); !bytes.Equal(got, want) {
				t.Errorf("Substitute(%s):\n got: %q\nwant: %q", in, got, want)
			}
		})
	}
	if n < 4 {
		t.Fatalf("only %d golden inputs found", n)
	}
}

func TestSubstituteCases(t *testing.T) {
	vars := map[string]string{"hostname": "h", "curtime": "12:34"}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no dollars", "no dollars"},
		{"$hostname", "h"},
		{"${hostname}", "h"},
		{"$hostname.", "h."},
		{"$hostnamex", "$hostnamex"},
		{"$Hostname", "$Hostname"},
		{"$$", "$"},
		{"$$$", "$$"},
		{"$$hostname", "$hostname"},
		{"$$$hostname", "$h"},
		{"$", "$"},
		{"a$", "a$"},
		{"${", "${"},
		{"${hostname", "${hostname"},
		{"${hostname$hostname", "${hostnameh"},
		{"${ hostname}", "${ hostname}"},
		{"$application", "$application"}, // not in vars: left
		{"${version1}", "${version1}"},
		{"$(x) $.y $1 $-", "$(x) $.y $1 $-"},
		{"$curtime$hostname", "12:34h"},
		{"${curtime}x", "12:34x"},
		{"$_", "$_"},
	} {
		if got := string(Substitute([]byte(tc.in), vars, false)); got != tc.want {
			t.Errorf("Substitute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSubstituteHTMLEscapes(t *testing.T) {
	vars := map[string]string{"hostname": `<script>"x"&'y'</script>`}
	got := string(Substitute([]byte("<h1>$hostname</h1>"), vars, true))
	if want := "<h1>&lt;script&gt;&#34;x&#34;&amp;&#39;y&#39;&lt;/script&gt;</h1>"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(Substitute([]byte("$hostname"), vars, false)); got != vars["hostname"] {
		t.Errorf("text page: got %q, want the value as it is", got)
	}
}

// safeSubstitute is an independent reading of safe_substitute: Python's
// own pattern, run by Go's regexp (leftmost-first, like Python's re).
func safeSubstitute(page []byte, vars map[string]string) []byte {
	re := regexp.MustCompile(`\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|())`)
	return re.ReplaceAllFunc(page, func(m []byte) []byte {
		sm := re.FindSubmatch(m)
		switch {
		case sm[1] != nil:
			return []byte("$")
		case sm[2] != nil:
			if v, ok := vars[string(sm[2])]; ok {
				return []byte(v)
			}
		case sm[3] != nil:
			if v, ok := vars[string(sm[3])]; ok {
				return []byte(v)
			}
		}
		return m
	})
}

func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"$hostname ${curtime} $$ $foo ${x", "$$$hostname$", "${hostname}${version1}", "$(a) $.b"} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/subst/oldpage.html"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		got := Substitute(page, goldenVars, false)
		want := safeSubstitute(page, goldenVars)
		if !bytes.Equal(got, want) {
			t.Fatalf("Substitute(%q)\n got %q\nwant %q", page, got, want)
		}
	})
}
