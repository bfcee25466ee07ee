package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack/packtest"
)

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func TestFetch(t *testing.T) {
	archive := packtest.Tar(true, hello()...)
	big := bytes.Repeat([]byte("x"), 4096)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.tar.gz", func(w http.ResponseWriter, r *http.Request) { w.Write(archive) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/big-unannounced", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(big)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(archive)+100))
		w.Write(archive)
	})
	mux.HandleFunc("/closed", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		w.Write(archive[:len(archive)/2])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(archive)))
		w.Write(archive[:10])
		w.(http.Flusher).Flush()
		select { // never finishes on its own: the client's time limit must end it
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	local := filepath.Join(t.TempDir(), "hello.tar.gz")
	os.WriteFile(local, archive, 0o644)
	good := sum(archive)
	for _, tc := range []struct {
		name string
		src  Source
		lim  Limits
		code apperr.Code
		want string
	}{
		{"url ok", Source{URL: srv.URL + "/ok.tar.gz", SHA256: good}, Limits{}, "", ""},
		{"url ok upper-case sha", Source{URL: srv.URL + "/ok.tar.gz", SHA256: strings.ToUpper(good)}, Limits{}, "", ""},
		{"path ok", Source{Path: local}, Limits{}, "", ""},
		{"path ok with sha", Source{Path: local, SHA256: good}, Limits{}, "", ""},
		{"body ok", Source{Body: bytes.NewReader(archive)}, Limits{}, "", ""},
		{"url without sha256", Source{URL: srv.URL + "/ok.tar.gz"}, Limits{}, apperr.BadRequest, "needs its sha256"},
		{"bad sha256 format", Source{URL: srv.URL + "/ok.tar.gz", SHA256: "abc"}, Limits{}, apperr.BadRequest, "64 hex"},
		{"bad sha256", Source{URL: srv.URL + "/ok.tar.gz", SHA256: sum([]byte("other"))}, Limits{}, apperr.Integrity, "sha256 is " + good},
		{"path bad sha256", Source{Path: local, SHA256: sum(nil)}, Limits{}, apperr.Integrity, "sha256"},
		{"not http", Source{URL: "ftp://example.com/a.tar", SHA256: good}, Limits{}, apperr.BadRequest, "http or https"},
		{"http 404", Source{URL: srv.URL + "/missing", SHA256: good}, Limits{}, apperr.BadRequest, "404"},
		{"over the cap announced", Source{URL: srv.URL + "/big", SHA256: sum(big)}, Limits{MaxArchive: 1000}, apperr.TooLarge, "announced"},
		{"over the cap chunked", Source{URL: srv.URL + "/big-unannounced", SHA256: sum(big)}, Limits{MaxArchive: 1000}, apperr.TooLarge, "cap"},
		{"body over the cap", Source{Body: bytes.NewReader(big)}, Limits{MaxArchive: 1000}, apperr.TooLarge, "cap"},
		{"cut short", Source{URL: srv.URL + "/short", SHA256: good}, Limits{}, apperr.Integrity, "cut short"},
		{"connection closed", Source{URL: srv.URL + "/closed", SHA256: good}, Limits{}, apperr.Integrity, ""},
		{"slow beyond the limit", Source{URL: srv.URL + "/slow", SHA256: good}, Limits{FetchTimeout: 200 * time.Millisecond}, apperr.BadRequest, "time limit"},
		{"no server", Source{URL: "http://" + closedAddr(t) + "/a", SHA256: good}, Limits{}, apperr.BadRequest, "fetch"},
		{"missing path", Source{Path: "/nonexistent/x.tar"}, Limits{}, apperr.BadRequest, "open package"},
		{"path is a dir", Source{Path: t.TempDir()}, Limits{}, apperr.BadRequest, "not a regular file"},
		{"two sources", Source{Path: local, URL: srv.URL}, Limits{}, apperr.BadRequest, "one of"},
		{"no source", Source{}, Limits{}, apperr.BadRequest, "one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, dir := stage(t)
			f, err := Fetch(context.Background(), tc.src, r, "/stage/archive", tc.lim, nil)
			if got := apperr.CodeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
				if left, _ := os.ReadDir(filepath.Join(dir, "stage")); len(left) != 0 {
					t.Errorf("left behind: %v", left)
				}
				return
			}
			defer f.File.Close()
			if f.SHA256 != good || f.Size != int64(len(archive)) {
				t.Errorf("fetched %d bytes, sha256 %s; want %d, %s", f.Size, f.SHA256, len(archive), good)
			}
			if _, err := Extract(context.Background(), f.File, r, "/stage", Limits{}); err != nil {
				t.Errorf("extract fetched archive: %v", err)
			}
		})
	}
}

func TestSourceDescribeRedacts(t *testing.T) {
	s := Source{URL: "https://user:pw@example.com/app.tar?token=SECRET#x"}
	if got, want := s.Describe(), "https://example.com/app.tar"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	r, _ := stage(t)
	_, err := Fetch(context.Background(), Source{URL: "http://user:pw@" + closedAddr(t) + "/a?token=SECRET", SHA256: sum(nil)}, r, "/stage/a", Limits{}, nil)
	if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v shows the URL's secrets", err)
	}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
