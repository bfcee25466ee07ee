package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the handler and not the recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkSubstitutedPage is the handler's cost for the shipped page
// template as an appliance's index.html (scripts/bench/web measures the
// whole server).
func BenchmarkSubstitutedPage(b *testing.B) {
	e := newEnv(b, func(c *envConfig) { c.Clock, c.Src.Clock = nil, nil })
	e.write("custom/www/nocookie/index.html", string(DefaultPage()))
	h := e.srv.Handler()
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	}
}

// BenchmarkStatus is the handler's cost for GET /api/v1/status with the
// document cached (it is built once a second).
func BenchmarkStatus(b *testing.B) {
	e := newEnv(b, func(c *envConfig) { c.Clock, c.Src.Clock = nil, nil })
	h := e.srv.Handler()
	r := httptest.NewRequest("GET", "/api/v1/status", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	}
}

// BenchmarkStaticFile is the handler's cost for a 16 KiB static file kept
// in memory.
func BenchmarkStaticFile(b *testing.B) {
	e := newEnv(b, func(c *envConfig) { c.Clock, c.Src.Clock = nil, nil })
	e.write("custom/www/nocookie/logo.png", strings.Repeat("x", 16<<10))
	h := e.srv.Handler()
	r := httptest.NewRequest("GET", "/logo.png", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	}
}
