package web

import (
	"net/http"
	"net/http/httptest"
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
