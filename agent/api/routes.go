package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	paths := map[string]bool{}
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
		method, path, _ := cutPattern(pattern)
		paths[path] = true
		mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			err := h(sw, r)
			if err != nil {
				s.fail(sw, r, err)
			}
			p, _ := PeerOf(r.Context())
			s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", sw.code(), "uid", p.UID, "dur", time.Since(start).Round(time.Microsecond))
		})
	}
	a := s.cfg.Apps
	handle("POST /v1/apps", s.install)
	handle("GET /v1/apps", list(a.List))
	handle("GET /v1/apps/{id}", s.byID(a.Detail))
	handle("DELETE /v1/apps/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := appID(r)
		if err != nil {
			return err
		}
		q, err := query(r, "purge")
		if err != nil {
			return err
		}
		purge, err := flag(q, "purge")
		if err != nil {
			return err
		}
		err = a.Uninstall(r.Context(), id, purge)
		return reply(w, http.StatusOK, apitypes.Removed{ID: id, Purged: purge}, err)
	})
	handle("POST /v1/apps/{id}/start", s.byIDStart(a.Start))
	handle("POST /v1/apps/{id}/once", s.byIDStart(a.Once))
	handle("POST /v1/apps/{id}/rollback", s.byID(a.Rollback))
	handle("POST /v1/apps/{id}/enable", s.byID(a.Enable))
	handle("POST /v1/apps/{id}/disable", s.byID(a.Disable))
	handle("GET /v1/apps/{id}/logs", s.logs)
	handle("GET /v1/runs", list(a.Runs))
	handle("GET /v1/runs/{runid}", s.byRun(a.Run))
	handle("POST /v1/runs/{runid}/pause", s.byRun(a.Pause))
	handle("POST /v1/runs/{runid}/resume", s.byRun(a.Resume))
	handle("POST /v1/runs/{runid}/terminate", s.byRun(a.Terminate))
	handle("GET /v1/events", s.events)
	s.serviceRoutes(handle)
	handle("GET /v1/stats", s.stats)
	handle("GET /v1/status", func(w http.ResponseWriter, r *http.Request) error {
		if err := noQuery(r); err != nil {
			return err
		}
		if s.cfg.Status == nil {
			return apperr.New(apperr.Internal, "no status document")
		}
		doc, err := s.cfg.Status.JSON()
		if err != nil {
			return apperr.Wrap(apperr.Internal, "status document", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(doc)
		return nil
	})
	// A known path with another method, and any other path, answer in
	// the API's error format, not the mux's plain text.
	for p := range paths {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeErrorStatus(w, http.StatusMethodNotAllowed, apperr.BadRequest, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apperr.New(apperr.NotFound, "no such route: "+r.URL.Path))
	})
	return mux
}

func cutPattern(p string) (method, path string, ok bool) {
	for i := range len(p) {
		if p[i] == ' ' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

// fail answers err, unless the answer has begun (a stream); internal
// errors are logged, the others are the caller's business.
func (s *Server) fail(w *statusWriter, r *http.Request, err error) {
	code := apperr.CodeOf(err)
	if code == apperr.Internal {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if w.status != 0 {
		return
	}
	writeError(w, err)
}

func (s *Server) byID(f func(context.Context, string) (apitypes.App, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := appID(r)
		if err != nil {
			return err
		}
		if err := noQuery(r); err != nil {
			return err
		}
		app, err := f(r.Context(), id)
		return reply(w, http.StatusOK, app, err)
	}
}

func (s *Server) byIDStart(f func(context.Context, string) (apitypes.Started, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := appID(r)
		if err != nil {
			return err
		}
		if err := noQuery(r); err != nil {
			return err
		}
		st, err := f(r.Context(), id)
		status := http.StatusCreated
		if st.Existing {
			status = http.StatusOK
		}
		if st.PIDs == nil {
			st.PIDs = []int{}
		}
		return reply(w, status, st, err)
	}
}

func (s *Server) byRun(f func(context.Context, uint64) (apitypes.Run, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := strconv.ParseUint(r.PathValue("runid"), 10, 64)
		if err != nil || id == 0 {
			return apperr.New(apperr.BadRequest, fmt.Sprintf("bad runid %q: a positive integer", r.PathValue("runid")))
		}
		if err := noQuery(r); err != nil {
			return err
		}
		run, err := f(r.Context(), id)
		if run.PIDs == nil {
			run.PIDs = []int{}
		}
		return reply(w, http.StatusOK, run, err)
	}
}

func appID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !pack.ValidID(id) {
		return "", apperr.New(apperr.BadRequest, fmt.Sprintf("bad app id %q: [a-z0-9][a-z0-9._-]{0,63}", clip(id)))
	}
	return id, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// query parses the query and refuses keys other than allowed, so a typo
// does not pass.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apperr.New(apperr.BadRequest, "malformed query")
	}
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, apperr.New(apperr.BadRequest, fmt.Sprintf("unknown query parameter %q", clip(k)))
		}
		if len(q[k]) > 1 {
			return nil, apperr.New(apperr.BadRequest, fmt.Sprintf("query parameter %q given twice", k))
		}
	}
	return q, nil
}

func noQuery(r *http.Request) error {
	_, err := query(r)
	return err
}

func flag(q url.Values, k string) (bool, error) {
	switch q.Get(k) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, apperr.New(apperr.BadRequest, fmt.Sprintf("%s=%q: want 1 or 0", k, clip(q.Get(k))))
}

// decodeJSON reads a strict JSON body of at most MaxJSON bytes.
func decodeJSON(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxJSON+1))
	if err != nil {
		return apperr.Wrap(apperr.BadRequest, "read body", err)
	}
	if len(data) > MaxJSON {
		return apperr.New(apperr.TooLarge, fmt.Sprintf("JSON body over %d bytes", MaxJSON))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.BadRequest, "malformed JSON body: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.BadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

// The archive media types POST /v1/apps takes as a body.
var archiveTypes = map[string]bool{
	"application/octet-stream": true,
	"application/x-tar":        true,
	"application/gzip":         true,
	"application/x-gzip":       true,
	"application/x-gtar":       true,
}

func (s *Server) install(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return apperr.New(apperr.BadRequest, "POST /v1/apps needs a Content-Type: application/json, or an archive type (application/octet-stream, application/x-tar, application/gzip)")
	}
	var req apitypes.InstallRequest
	if mt == "application/json" {
		if err := noQuery(r); err != nil {
			return err
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		if req.URL == "" {
			return apperr.New(apperr.BadRequest, `install: "url" is required in a JSON body (or send the archive as the body)`)
		}
		app, err := s.cfg.Apps.Install(r.Context(), req, nil)
		return reply(w, http.StatusCreated, app, err)
	}
	if !archiveTypes[mt] {
		return apperr.New(apperr.BadRequest, fmt.Sprintf("Content-Type %q: want application/json or an archive type (application/octet-stream, application/x-tar, application/gzip)", clip(mt)))
	}
	q, err := query(r, "sha256", "force")
	if err != nil {
		return err
	}
	if req.Force, err = flag(q, "force"); err != nil {
		return err
	}
	req.SHA256 = q.Get("sha256")
	if r.ContentLength > s.cfg.MaxArchive {
		return apperr.New(apperr.TooLarge, fmt.Sprintf("package: %d bytes, over the cap of %d", r.ContentLength, s.cfg.MaxArchive))
	}
	if r.ContentLength == 0 {
		return apperr.New(apperr.BadRequest, "install: empty body (no archive)")
	}
	body := &capReader{r: r.Body, left: s.cfg.MaxArchive}
	app, err := s.cfg.Apps.Install(r.Context(), req, body)
	if err != nil && body.over {
		err = apperr.New(apperr.TooLarge, fmt.Sprintf("package: over %d bytes (the cap)", s.cfg.MaxArchive))
	}
	return reply(w, http.StatusCreated, app, err)
}

// capReader fails a body that goes over the cap, and remembers it did.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 || c.over {
		return 0, apperr.New(apperr.TooLarge, "body over the cap")
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		c.over = true
		return 0, apperr.New(apperr.TooLarge, "body over the cap")
	}
	return n, err
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	id, err := appID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "n", "follow")
	if err != nil {
		return err
	}
	n := DefaultLogLines
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxLogLines {
			return apperr.New(apperr.BadRequest, fmt.Sprintf("n=%q: want 0 to %d lines", clip(v), MaxLogLines))
		}
	}
	follow, err := flag(q, "follow")
	if err != nil {
		return err
	}
	ctx := r.Context()
	rc, err := s.cfg.Apps.Logs(ctx, id, n, follow)
	if err != nil {
		return err
	}
	var once sync.Once
	closeRC := func() { once.Do(func() { rc.Close() }) }
	stop := context.AfterFunc(ctx, closeRC)
	defer func() { stop(); closeRC() }()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rcw := http.NewResponseController(w)
	_ = rcw.Flush()
	buf := make([]byte, 32<<10)
	for {
		m, rerr := rc.Read(buf)
		if m > 0 {
			_ = rcw.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := w.Write(buf[:m]); err != nil {
				return nil
			}
			if err := rcw.Flush(); err != nil {
				return nil
			}
		}
		if rerr != nil {
			if rerr != io.EOF && ctx.Err() == nil {
				return apperr.Wrap(apperr.Internal, "read logs of "+id, rerr)
			}
			return nil
		}
	}
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ctx := r.Context()
	ch := s.cfg.Apps.Subscribe(ctx, s.cfg.EventBuffer)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rcw := http.NewResponseController(w)
	_ = rcw.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				if ctx.Err() == nil {
					s.log.Warn("api events reader dropped: too far behind", "buffer", s.cfg.EventBuffer)
				}
				return nil
			}
			_ = rcw.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err := enc.Encode(ev); err != nil {
				s.log.Warn("api events reader dropped", "err", err)
				return nil
			}
			if err := rcw.Flush(); err != nil {
				return nil
			}
		}
	}
}

func reply(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeErrorStatus(w, http.StatusInternalServerError, apperr.Internal, "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	writeErrorStatus(w, code.HTTPStatus(), code, err.Error())
}

func writeErrorStatus(w http.ResponseWriter, status int, code apperr.Code, msg string) {
	body, _ := json.Marshal(apitypes.ErrorBody{Error: apitypes.ErrorDetail{Code: string(code), Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// statusWriter remembers whether the answer has begun.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// list serves a listing: no query, and an empty list as [] (never null).
func list[T any](get func(context.Context) ([]T, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := noQuery(r); err != nil {
			return err
		}
		v, err := get(r.Context())
		if v == nil {
			v = []T{}
		}
		return reply(w, http.StatusOK, v, err)
	}
}

// StatsSource is the optional part of Apps that serves GET /v1/stats
// (the app manager with its monitor). id is "" for every app, an app id,
// or a runid.
type StatsSource interface {
	Stats(ctx context.Context, id string) (apitypes.Stats, error)
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	src, ok := s.cfg.Apps.(StatsSource)
	if !ok {
		return apperr.New(apperr.NotFound, "no stats: this agent has no monitor")
	}
	q, err := query(r, "id")
	if err != nil {
		return err
	}
	id := q.Get("id")
	if id != "" && !pack.ValidID(id) {
		return apperr.New(apperr.BadRequest, fmt.Sprintf("bad id %q: an app id or a runid", clip(id)))
	}
	st, err := src.Stats(r.Context(), id)
	return reply(w, http.StatusOK, st, err)
}
