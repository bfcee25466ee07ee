package osconfig

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrControl means a value meant for a system file holds a line break or
// another control character, which could add lines of its own to the file.
var ErrControl = errors.New("holds a line break or control character")

// CheckText refuses text that would not stay on its line: C0 controls
// other than tab (newline and carriage return among them), DEL, and the
// Unicode line breaks and C1 controls (U+0080–U+009F, U+2028, U+2029) when
// the text is UTF-8. Bytes that are not UTF-8 are let through: files such
// as authorized_keys may carry Latin-1 comments.
func CheckText(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return ErrControl
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if n > 1 && (r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029) {
			return ErrControl
		}
		i += n
	}
	return nil
}

// lines builds the text of a system file line by line. It is the one place
// where the configurators write lines: a line kept from the file as it was
// is copied byte for byte (keep), and a line the agent makes from config
// values (add) has every part checked with CheckText first. A refused
// line is left out and recorded, and the caller writes nothing when err
// is set, so no value can slip a line of its own into a system file.
type lines struct {
	buf  bytes.Buffer
	errs []error
}

// keep copies a line of the old file, adding the newline it may lack.
func (w *lines) keep(l []byte) {
	w.buf.Write(l)
	if !bytes.HasSuffix(l, []byte("\n")) {
		w.buf.WriteByte('\n')
	}
}

// add writes one line made of parts, after checking each. what names the
// line in the error; the parts never appear in it (one may be a secret).
func (w *lines) add(what string, parts ...string) { w.line(what, "\n", parts) }

// replace writes a line made of parts in place of the old line l, ending
// as l ended (a last line without a newline stays without one).
func (w *lines) replace(l []byte, what string, parts ...string) {
	eol := ""
	if bytes.HasSuffix(l, []byte("\n")) {
		eol = "\n"
	}
	w.line(what, eol, parts)
}

func (w *lines) line(what, eol string, parts []string) {
	for _, p := range parts {
		if err := CheckText(p); err != nil {
			w.errs = append(w.errs, fmt.Errorf("%s refused: %w", what, err))
			return
		}
	}
	for _, p := range parts {
		w.buf.WriteString(p)
	}
	w.buf.WriteString(eol)
}

// err reports the lines add refused.
func (w *lines) err() error { return errors.Join(w.errs...) }

// bytes returns the text built so far.
func (w *lines) bytes() []byte { return w.buf.Bytes() }

// splitLines splits a file into its lines, each with its newline (the last
// may lack one); empty pieces are dropped.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}
