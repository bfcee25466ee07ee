package webssh

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// TestOnRequest: Config.OnRequest is called once for every request, the
// page's and the assets' alike.
func TestOnRequest(t *testing.T) {
	var n atomic.Int64
	e := newEnv(t, func(c *Config) { c.OnRequest = func() { n.Add(1) } })
	for _, p := range []string{"/", "/assets/term.js", "/nosuch"} {
		resp, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := n.Load(); got != 3 {
		t.Errorf("OnRequest called %d times for 3 requests", got)
	}
}
