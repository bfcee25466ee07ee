package web

import (
	"bytes"
	"html"
)

// The page variables, in the order of pageVars.vals.
const (
	varHostname = iota
	varApplication
	varVersion1
	varVersion2
	varCurtime
	numVars
)

var varNames = [numVars]string{"hostname", "application", "version1", "version2", "curtime"}

func varIndex(name []byte) int {
	for i, n := range varNames {
		if string(name) == n {
			return i
		}
	}
	return -1
}

// segment is a piece of a compiled page: literal bytes, or (lit == nil) the
// page variable with index v, written in the page as src.
type segment struct {
	lit []byte
	v   int
	src []byte
}

// compile splits a page into literals and variable references, reading it
// exactly as Python's string.Template.safe_substitute, which the old
// agent's web server applied to every page:
//
//	$$                  → "$"
//	$name, ${name}      → the variable's value when name is one of varNames
//	                      (case-sensitive; identifiers are [_A-Za-z][_A-Za-z0-9]*,
//	                      matched greedily, so $hostnamex is the unknown "hostnamex")
//	anything else       → left as it is: unknown $words and ${words}, a $
//	                      followed by a non-identifier ($(…), $.ajax, $1, "${x"),
//	                      a trailing $
//
// The page is read as bytes, so any ASCII-compatible encoding (UTF-8, GBK,
// Latin-1) is left intact.
func compile(src []byte) []segment {
	var segs []segment
	start := 0 // start of the pending literal
	emitLit := func(end int) {
		if end > start {
			segs = append(segs, segment{lit: src[start:end:end]})
		}
	}
	i := 0
	for {
		j := bytes.IndexByte(src[i:], '$')
		if j < 0 {
			break
		}
		j += i
		switch {
		case j+1 < len(src) && src[j+1] == '$': // escaped: keep one '$'
			emitLit(j + 1)
			i, start = j+2, j+2
		case j+1 < len(src) && identStart(src[j+1]): // $name
			k := j + 2
			for k < len(src) && identPart(src[k]) {
				k++
			}
			if v := varIndex(src[j+1 : k]); v >= 0 {
				emitLit(j)
				segs = append(segs, segment{v: v, src: src[j:k:k]})
				start = k
			}
			i = k
		case j+2 < len(src) && src[j+1] == '{' && identStart(src[j+2]): // ${name}, if closed
			k := j + 3
			for k < len(src) && identPart(src[k]) {
				k++
			}
			if k >= len(src) || src[k] != '}' {
				i = j + 1 // "${x" without its brace: the '$' stays, scanning goes on after it
				break
			}
			if v := varIndex(src[j+2 : k]); v >= 0 {
				emitLit(j)
				segs = append(segs, segment{v: v, src: src[j : k+1 : k+1]})
				start = k + 1
			}
			i = k + 1
		default: // an ill-formed '$' stays
			i = j + 1
		}
	}
	emitLit(len(src))
	return segs
}

func identStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func identPart(c byte) bool  { return identStart(c) || '0' <= c && c <= '9' }

// render joins the segments with vals filled in.
func render(segs []segment, vals *[numVars]string) []byte {
	n := 0
	for _, s := range segs {
		if s.lit != nil {
			n += len(s.lit)
		} else {
			n += len(vals[s.v])
		}
	}
	out := make([]byte, 0, n)
	for _, s := range segs {
		if s.lit != nil {
			out = append(out, s.lit...)
		} else {
			out = append(out, vals[s.v]...)
		}
	}
	return out
}

// Substitute expands page as the old agent did (see compile) with the
// values of vars, which maps variable names to values; names it lacks are
// left in place. htmlEscape escapes the values for an HTML page (the
// values never hold markup in practice, so this changes nothing for a
// well-formed host name or version and stops a hostile one).
func Substitute(page []byte, vars map[string]string, htmlEscape bool) []byte {
	var vals [numVars]string
	known := [numVars]bool{}
	for i, n := range varNames {
		vals[i], known[i] = vars[n]
		if htmlEscape {
			vals[i] = html.EscapeString(vals[i])
		}
	}
	segs := compile(page)
	// A variable missing from vars stays as written.
	for i, s := range segs {
		if s.lit == nil && !known[s.v] {
			segs[i] = segment{lit: s.src}
		}
	}
	return render(segs, &vals)
}
