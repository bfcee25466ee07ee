package webssh

import (
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"strings"
)

// pageTemplate is the terminal page's template: the HTML of
// assets/index.html with {{.Field}} (the field's value, HTML-escaped),
// {{if .Field}}, {{if not .Field}} and {{end}}, over the fields of
// pageData. It replaces html/template, whose reflection (a method looked
// up by name at run time) kept every exported method of every type in the
// binary: 2.6 MB of it.
//
// The page puts fields only in text and in double-quoted attribute
// values, where HTML escaping (& < > " ') is the right one; a field
// anywhere else (a script, a URL, an unquoted attribute) is refused when
// the page is parsed, so the page cannot drift into a place this escaping
// does not cover.
type pageTemplate struct {
	parts []pagePart
}

// pagePart is literal text, a field's value, or the start (if, if not)
// or end of a conditional.
type pagePart struct {
	kind  partKind
	text  string // kindText: the HTML; others: the field name
	match int    // kindIf, kindIfNot: the index of its kindEnd
}

type partKind int

const (
	kindText partKind = iota
	kindField
	kindIf
	kindIfNot
	kindEnd
)

// pageFields are the names a page may use, as in pageData.
var pageFields = map[string]bool{"Title": true, "CSRF": true, "User": true, "Secure": true}

func parsePage(fsys fs.FS, name string) (*pageTemplate, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	t, err := parsePageText(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func parsePageText(src string) (*pageTemplate, error) {
	t := &pageTemplate{}
	var open []int // the ifs not yet ended
	rest := src
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, pagePart{kind: kindText, text: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, pagePart{kind: kindText, text: rest[:i]})
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, errors.New("unclosed {{")
		}
		action := strings.Fields(rest[i+2 : i+j])
		before := src[:len(src)-len(rest)+i]
		rest = rest[i+j+2:]
		field := func(s string) (string, error) {
			name, ok := strings.CutPrefix(s, ".")
			if !ok || !pageFields[name] {
				return "", fmt.Errorf("unknown field %q", s)
			}
			return name, nil
		}
		switch {
		case len(action) == 1 && action[0] == "end":
			if len(open) == 0 {
				return nil, errors.New("{{end}} without {{if}}")
			}
			t.parts[open[len(open)-1]].match = len(t.parts)
			open = open[:len(open)-1]
			t.parts = append(t.parts, pagePart{kind: kindEnd})
		case len(action) == 1:
			name, err := field(action[0])
			if err != nil {
				return nil, err
			}
			if !escapedContext(before) {
				return nil, fmt.Errorf("{{%s}} is neither in text nor in a double-quoted attribute", action[0])
			}
			t.parts = append(t.parts, pagePart{kind: kindField, text: name})
		case len(action) == 2 && action[0] == "if", len(action) == 3 && action[0] == "if" && action[1] == "not":
			name, err := field(action[len(action)-1])
			if err != nil {
				return nil, err
			}
			kind := kindIf
			if len(action) == 3 {
				kind = kindIfNot
			}
			open = append(open, len(t.parts))
			t.parts = append(t.parts, pagePart{kind: kind, text: name})
		default:
			return nil, fmt.Errorf("unsupported action {{%s}}", strings.Join(action, " "))
		}
	}
	if len(open) > 0 {
		return nil, errors.New("{{if}} without {{end}}")
	}
	return t, nil
}

// escapedContext reports whether the text before a field leaves it in
// element text (outside any tag, not in a script or style) or in a
// double-quoted attribute value.
func escapedContext(before string) bool {
	lower := strings.ToLower(before)
	for _, raw := range []string{"script", "style"} {
		if strings.LastIndex(lower, "<"+raw) > strings.LastIndex(lower, "</"+raw) {
			return false
		}
	}
	lt, gt := strings.LastIndexByte(before, '<'), strings.LastIndexByte(before, '>')
	if lt <= gt {
		return true // text
	}
	tag := before[lt:]
	if strings.Count(tag, `"`)%2 == 0 || !strings.HasSuffix(strings.TrimRight(tag[:strings.LastIndexByte(tag, '"')], " "), "=") {
		return false
	}
	// A quoted value of an attribute that takes a URL or script is out.
	attr := strings.TrimRight(tag[:strings.LastIndexByte(tag, '"')], "= ")
	attr = strings.ToLower(attr[strings.LastIndexAny(attr, " \t\n")+1:])
	return attr != "href" && attr != "src" && attr != "action" && attr != "style" && !strings.HasPrefix(attr, "on")
}

// Execute writes the page for d.
func (t *pageTemplate) Execute(w io.Writer, d pageData) error {
	value := func(name string) (string, bool) {
		switch name {
		case "Title":
			return d.Title, d.Title != ""
		case "CSRF":
			return d.CSRF, d.CSRF != ""
		case "User":
			return d.User, d.User != ""
		case "Secure":
			return fmt.Sprint(d.Secure), d.Secure
		}
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(t.parts); i++ {
		p := t.parts[i]
		switch p.kind {
		case kindText:
			b.WriteString(p.text)
		case kindField:
			v, _ := value(p.text)
			b.WriteString(html.EscapeString(v))
		case kindIf, kindIfNot:
			if _, set := value(p.text); set != (p.kind == kindIf) {
				i = p.match // skip to the end; the loop steps past it
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
