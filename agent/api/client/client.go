// Package client speaks the agent's local API (agent/api) over its Unix
// socket. It links only the wire types (agent/api/apitypes) and
// agent/apps/apperr: API failures come back as *apperr.Error with the
// server's code and message, so a caller tests them with apperr.CodeOf.
//
// Each call has a raw form (Call, Stream: the API's bytes as sent, for
// `osmctl --json`) and typed helpers on top.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
)

// ErrNoAgent is wrapped by the error of a call when nothing listens at
// the socket (no file, or a stale one).
var ErrNoAgent = errors.New("no agent listening")

// DeniedMessage is the message of a call the agent or the socket's mode
// refused.
const DeniedMessage = "permission denied: run as root or as a member of the API group (--api-group)"

// DefaultSocket is where the agent listens unless told otherwise
// (agent/paths' APISocket, in the system root "/").
const DefaultSocket = "/run/osmanager.sock"

// MaxAnswer caps a non-stream answer's body.
const MaxAnswer = 64 << 20

// Client is a client of one socket. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the API at socket.
func New(socket string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:       2,
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket is the socket the client calls.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Request is one call.
type Request struct {
	Method      string
	Path        string // /v1/…, escaped
	Query       url.Values
	Body        io.Reader
	Length      int64 // of Body, when known (0: unknown, sent chunked)
	ContentType string
}

// Stream makes the call and returns the answer's body on success (the
// caller closes it); a failure is an *apperr.Error or wraps ErrNoAgent.
func (c *Client) Stream(ctx context.Context, r Request) (io.ReadCloser, error) {
	u := "http://osmanager" + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, r.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	if r.Length > 0 {
		req.ContentLength = r.Length
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb apitypes.ErrorBody
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		return nil, apperr.New(apperr.Internal, fmt.Sprintf("%s %s: HTTP %s: %s", r.Method, r.Path, resp.Status, bytes.TrimSpace(data)))
	}
	if eb.Error.Code == string(apperr.Forbidden) {
		return nil, apperr.New(apperr.Forbidden, DeniedMessage)
	}
	return nil, apperr.New(apperr.Code(eb.Error.Code), eb.Error.Message)
}

func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w at %s: is osmanager running (systemctl status osmanager)? set --socket or OSMANAGER_SOCKET", ErrNoAgent, c.socket)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return apperr.New(apperr.Forbidden, DeniedMessage)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("call the agent at %s: %w", c.socket, err)
}

// Call makes the call and returns the answer's body as sent.
func (c *Client) Call(ctx context.Context, r Request) ([]byte, error) {
	rc, err := c.Stream(ctx, r)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", r.Method, r.Path, err)
	}
	if len(data) > MaxAnswer {
		return nil, fmt.Errorf("%s %s: answer over %d bytes", r.Method, r.Path, MaxAnswer)
	}
	return data, nil
}

// JSONBody encodes v as a request body.
func JSONBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func call[T any](ctx context.Context, c *Client, r Request) (T, error) {
	var v T
	data, err := c.Call(ctx, r)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%s %s: bad answer: %w", r.Method, r.Path, err)
	}
	return v, nil
}

// AppPath is /v1/apps/{id}[/verb].
func AppPath(id, verb string) string {
	p := "/v1/apps/" + url.PathEscape(id)
	if verb != "" {
		p += "/" + verb
	}
	return p
}

// RunPath is /v1/runs/{runid}[/verb].
func RunPath(runid uint64, verb string) string {
	p := "/v1/runs/" + strconv.FormatUint(runid, 10)
	if verb != "" {
		p += "/" + verb
	}
	return p
}

// InstallRequest is the call that installs from a URL.
func InstallRequest(req apitypes.InstallRequest) Request {
	body, _ := JSONBody(req) // an InstallRequest always encodes
	return Request{Method: http.MethodPost, Path: "/v1/apps", Body: body, ContentType: "application/json"}
}

// InstallArchiveRequest is the call that streams an archive in.
func InstallArchiveRequest(archive io.Reader, sha256 string, force bool) Request {
	q := url.Values{}
	if sha256 != "" {
		q.Set("sha256", sha256)
	}
	if force {
		q.Set("force", "1")
	}
	return Request{Method: http.MethodPost, Path: "/v1/apps", Query: q, Body: archive, ContentType: "application/octet-stream"}
}

// Install installs from a URL.
func (c *Client) Install(ctx context.Context, req apitypes.InstallRequest) (apitypes.App, error) {
	return call[apitypes.App](ctx, c, InstallRequest(req))
}

// InstallArchive installs the archive read from r.
func (c *Client) InstallArchive(ctx context.Context, r io.Reader, sha256 string, force bool) (apitypes.App, error) {
	return call[apitypes.App](ctx, c, InstallArchiveRequest(r, sha256, force))
}

// List lists the installed apps.
func (c *Client) List(ctx context.Context) ([]apitypes.App, error) {
	return call[[]apitypes.App](ctx, c, Request{Method: http.MethodGet, Path: "/v1/apps"})
}

// Detail describes an app and its runs.
func (c *Client) Detail(ctx context.Context, id string) (apitypes.App, error) {
	return call[apitypes.App](ctx, c, Request{Method: http.MethodGet, Path: AppPath(id, "")})
}

// UninstallRequest is the call that removes an app.
func UninstallRequest(id string, purge bool) Request {
	r := Request{Method: http.MethodDelete, Path: AppPath(id, "")}
	if purge {
		r.Query = url.Values{"purge": {"1"}}
	}
	return r
}

// Uninstall removes an app (and its data with purge).
func (c *Client) Uninstall(ctx context.Context, id string, purge bool) (apitypes.Removed, error) {
	return call[apitypes.Removed](ctx, c, UninstallRequest(id, purge))
}

// Start starts an app (or finds its single instance).
func (c *Client) Start(ctx context.Context, id string) (apitypes.Started, error) {
	return call[apitypes.Started](ctx, c, Request{Method: http.MethodPost, Path: AppPath(id, "start")})
}

// Once returns the app's running instance, or starts one.
func (c *Client) Once(ctx context.Context, id string) (apitypes.Started, error) {
	return call[apitypes.Started](ctx, c, Request{Method: http.MethodPost, Path: AppPath(id, "once")})
}

// AppVerb calls POST /v1/apps/{id}/{verb} for rollback, enable, disable.
func (c *Client) AppVerb(ctx context.Context, id, verb string) (apitypes.App, error) {
	return call[apitypes.App](ctx, c, Request{Method: http.MethodPost, Path: AppPath(id, verb)})
}

// Runs lists the runs.
func (c *Client) Runs(ctx context.Context) ([]apitypes.Run, error) {
	return call[[]apitypes.Run](ctx, c, Request{Method: http.MethodGet, Path: "/v1/runs"})
}

// Run describes a run.
func (c *Client) Run(ctx context.Context, runid uint64) (apitypes.Run, error) {
	return call[apitypes.Run](ctx, c, Request{Method: http.MethodGet, Path: RunPath(runid, "")})
}

// RunVerb calls POST /v1/runs/{runid}/{verb} for pause, resume, terminate.
func (c *Client) RunVerb(ctx context.Context, runid uint64, verb string) (apitypes.Run, error) {
	return call[apitypes.Run](ctx, c, Request{Method: http.MethodPost, Path: RunPath(runid, verb)})
}

// LogsRequest is the call for an app's output.
func LogsRequest(id string, n int, follow bool) Request {
	q := url.Values{}
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if follow {
		q.Set("follow", "1")
	}
	return Request{Method: http.MethodGet, Path: AppPath(id, "logs"), Query: q}
}

// Logs streams an app's output (n < 0: the server's default lines).
func (c *Client) Logs(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error) {
	return c.Stream(ctx, LogsRequest(id, n, follow))
}

// StatsRequest is the call for the monitor's figures: of every app (id
// ""), of one app, or of one run (its runid).
func StatsRequest(id string) Request {
	q := url.Values{}
	if id != "" {
		q.Set("id", id)
	}
	return Request{Method: http.MethodGet, Path: "/v1/stats", Query: q}
}

// Stats returns the monitor's figures.
func (c *Client) Stats(ctx context.Context, id string) (apitypes.Stats, error) {
	return call[apitypes.Stats](ctx, c, StatsRequest(id))
}

// Status returns the status document as sent.
func (c *Client) Status(ctx context.Context) ([]byte, error) {
	return c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/status"})
}

// Events subscribes to the event stream; it ends when ctx ends or the
// agent drops the reader.
func (c *Client) Events(ctx context.Context) (*Events, error) {
	rc, err := c.Stream(ctx, Request{Method: http.MethodGet, Path: "/v1/events"})
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	return &Events{rc: rc, sc: sc}, nil
}

// Events reads an event stream.
type Events struct {
	rc io.ReadCloser
	sc *bufio.Scanner
}

// Next returns the next event and its line as sent; io.EOF at the end.
func (e *Events) Next() (apitypes.Event, []byte, error) {
	var ev apitypes.Event
	if !e.sc.Scan() {
		if err := e.sc.Err(); err != nil {
			return ev, nil, err
		}
		return ev, nil, io.EOF
	}
	line := e.sc.Bytes()
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, line, fmt.Errorf("bad event line: %w", err)
	}
	return ev, line, nil
}

// Close ends the subscription.
func (e *Events) Close() error { return e.rc.Close() }
