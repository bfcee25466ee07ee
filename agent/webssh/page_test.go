package webssh

import (
	"html/template"
	"strings"
	"testing"
)

// TestPageTemplateMatchesHTMLTemplate: the page renders byte for byte as
// html/template rendered it, for logged-in and logged-out, plain and TLS.
func TestPageTemplateMatchesHTMLTemplate(t *testing.T) {
	src, err := assetFS.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := parsePage(assetFS, "assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	ref := template.Must(template.New("page").Parse(string(src)))
	for _, c := range []struct {
		name string
		d    pageData
	}{
		{"logged out, plain HTTP", pageData{Title: "vm-1", CSRF: "0123456789abcdef0123456789abcdef"}},
		{"logged in, TLS", pageData{Title: "vm-1.example", CSRF: "ffff", User: "root", Secure: true}},
		{"hostile title and user", pageData{Title: `<script>alert("x")</script>&'`, CSRF: `"><img>`, User: `a" onload="x`}},
		{"empty", pageData{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got, want strings.Builder
			if err := ours.Execute(&got, c.d); err != nil {
				t.Fatal(err)
			}
			if err := ref.Execute(&want, c.d); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("page differs from html/template's:\ngot:\n%s\nwant:\n%s", got.String(), want.String())
			}
		})
	}
}

// TestPageTemplateRefuses: actions the renderer does not know, and fields
// where HTML escaping is not the right escaping, are refused at parse time.
func TestPageTemplateRefuses(t *testing.T) {
	for _, c := range []struct{ name, src string }{
		{"unknown field", `<p>{{.Password}}</p>`},
		{"not a field", `<p>{{Title}}</p>`},
		{"pipeline", `<p>{{.Title | printf "%s"}}</p>`},
		{"range", `{{range .User}}x{{end}}`},
		{"unclosed action", `<p>{{.Title</p>`},
		{"end without if", `<p>{{end}}</p>`},
		{"if without end", `{{if .User}}<p>`},
		{"in a script", `<script>var t = "{{.Title}}";</script>`},
		{"in a style", `<style>p { content: "{{.Title}}" }</style>`},
		{"unquoted attribute", `<p title={{.Title}}>`},
		{"single-quoted attribute", `<p title='{{.Title}}'>`},
		{"in a URL", `<a href="{{.Title}}">`},
		{"in an event handler", `<p onclick="{{.Title}}">`},
		{"tag name", `<{{.Title}}>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parsePageText(c.src); err == nil {
				t.Errorf("parsePageText(%q) = nil error, want a refusal", c.src)
			}
		})
	}
	for _, ok := range []string{`<p>{{.Title}}</p>`, `<p title="{{.Title}}">`, `<script src="/x.js"></script><p>{{.User}}</p>`, `{{if not .Secure}}<b>{{end}}`} {
		if _, err := parsePageText(ok); err != nil {
			t.Errorf("parsePageText(%q): %v", ok, err)
		}
	}
}

// FuzzPageTemplate: whatever the field values, the rendered page has the
// page's own tags only (a value never opens a tag or leaves its
// attribute).
func FuzzPageTemplate(f *testing.F) {
	ours, err := parsePage(assetFS, "assets/index.html")
	if err != nil {
		f.Fatal(err)
	}
	var clean strings.Builder
	ours.Execute(&clean, pageData{Title: "t", CSRF: "c", User: "u"})
	want := strings.Count(clean.String(), "<") + strings.Count(clean.String(), `"`)
	f.Add("t", "c", "u")
	f.Add(`<script>`, `"`, `'&`)
	f.Fuzz(func(t *testing.T, title, csrf, user string) {
		if title == "" || csrf == "" || user == "" {
			return // a field that is set keeps the page's shape the same
		}
		var b strings.Builder
		if err := ours.Execute(&b, pageData{Title: title, CSRF: csrf, User: user}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(b.String(), "<") + strings.Count(b.String(), `"`); got != want {
			t.Errorf("page has %d < and \" , want %d: a value broke out", got, want)
		}
	})
}
