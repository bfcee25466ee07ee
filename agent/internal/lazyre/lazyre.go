// Package lazyre is a regular expression compiled at its first use
// instead of at package init: the agent's binary holds the validators of
// every part (app ids, manifests, prompts), and `osmanager boot` should not
// pay for compiling those it never runs (they were a tenth of its
// start-up).
package lazyre

import (
	"regexp"
	"sync"
)

// RE is a regular expression compiled on first use. The zero value is not
// usable; make one with New, as a package variable.
type RE struct {
	re func() *regexp.Regexp
}

// New returns the expression src, to be compiled at its first use; it
// panics then if src does not compile, as regexp.MustCompile does at init.
func New(src string) *RE {
	return &RE{re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(src) })}
}

// MatchString reports whether s contains a match of the expression.
func (r *RE) MatchString(s string) bool { return r.re().MatchString(s) }

// Regexp is the compiled expression, for the methods RE does not carry.
func (r *RE) Regexp() *regexp.Regexp { return r.re() }
