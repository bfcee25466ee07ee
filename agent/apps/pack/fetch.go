package pack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/sysroot"
)

// Source says where a package comes from: exactly one of Path, URL and
// Body.
type Source struct {
	Path string    // a file on the agent's host, read by the agent
	URL  string    // http or https; needs SHA256
	Body io.Reader // an archive streamed in (the local API's request body)
	// SHA256 is the archive's hex SHA-256; required with URL, checked
	// when given with Path or Body.
	SHA256 string
}

// Describe names the source for logs and errors, without a URL's user
// info or query (which may hold a token).
func (s Source) Describe() string {
	switch {
	case s.URL != "":
		return redact(s.URL)
	case s.Path != "":
		return s.Path
	}
	return "request body"
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}

// Fetched is an archive copied into the staging area.
type Fetched struct {
	File   *os.File // open for reading, at offset 0; the caller closes it
	Size   int64
	SHA256 string // hex
}

// Fetch copies the archive from src into the new file name of root (in
// the caller's staging dir), under lim.MaxArchive bytes and, for a URL,
// within lim.FetchTimeout. The SHA-256 is computed on the way and checked
// against src.SHA256 before Fetch returns, so nothing is unpacked from
// unverified bytes. A download is never resumed: on any error the file is
// removed and the next try starts again. Errors are apperr.Errors:
// bad_request (no sha256 for a URL, bad URL, HTTP error, time limit),
// too_large, integrity (sha256 mismatch, cut short), no_space.
func Fetch(ctx context.Context, src Source, root *sysroot.Root, name string, lim Limits, client *http.Client) (_ *Fetched, err error) {
	lim = lim.WithDefaults()
	want := strings.ToLower(src.SHA256)
	if want != "" {
		if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
			return nil, apperr.New(apperr.BadRequest, "sha256: want 64 hex digits")
		}
	}
	n := 0
	for _, s := range []bool{src.Path != "", src.URL != "", src.Body != nil} {
		if s {
			n++
		}
	}
	if n != 1 {
		return nil, apperr.New(apperr.BadRequest, "install: give one of a path, a URL or an archive")
	}
	f, err := root.Create(name, 0o600)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, "create download file", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			root.RemoveAll(name)
		}
	}()
	var r io.Reader
	var expect int64 = -1 // announced length
	switch {
	case src.URL != "":
		if want == "" {
			return nil, apperr.New(apperr.BadRequest, "install from a URL needs its sha256")
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.FetchTimeout)
		defer cancel()
		body, length, err := get(ctx, src.URL, client, lim)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		r, expect = body, length
	case src.Path != "":
		in, err := os.Open(src.Path)
		if err != nil {
			return nil, apperr.Wrap(apperr.BadRequest, "open package", err)
		}
		defer in.Close()
		if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, apperr.New(apperr.BadRequest, fmt.Sprintf("open package %s: not a regular file", src.Path))
		}
		r = in
	default:
		r = src.Body
	}
	h := sha256.New()
	got, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx, io.LimitReader(r, lim.MaxArchive+1)})
	if err != nil {
		return nil, copyError(ctx, src, err, got, expect, lim)
	}
	if got > lim.MaxArchive {
		return nil, apperr.New(apperr.TooLarge, fmt.Sprintf("package: over %d bytes (the cap)", lim.MaxArchive))
	}
	if expect >= 0 && got != expect {
		return nil, apperr.New(apperr.Integrity, fmt.Sprintf("fetch %s: cut short after %d of %d bytes", src.Describe(), got, expect))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return nil, apperr.New(apperr.Integrity, fmt.Sprintf("package %s: sha256 is %s, want %s", src.Describe(), sum, want))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, apperr.Wrap(apperr.Internal, "rewind download", err)
	}
	return &Fetched{File: f, Size: got, SHA256: sum}, nil
}

func get(ctx context.Context, raw string, client *http.Client, lim Limits) (io.ReadCloser, int64, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, apperr.New(apperr.BadRequest, fmt.Sprintf("fetch %s: want an http or https URL", redact(raw)))
	}
	if client == nil {
		client = &http.Client{}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, 0, apperr.New(apperr.BadRequest, fmt.Sprintf("fetch %s: bad URL", redact(raw)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, netError(ctx, raw, err, lim)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, apperr.New(apperr.BadRequest, fmt.Sprintf("fetch %s: %s", redact(raw), resp.Status))
	}
	if resp.ContentLength > lim.MaxArchive {
		resp.Body.Close()
		return nil, 0, apperr.New(apperr.TooLarge, fmt.Sprintf("fetch %s: %d bytes announced, over the cap of %d", redact(raw), resp.ContentLength, lim.MaxArchive))
	}
	return resp.Body, resp.ContentLength, nil
}

// netError words a transport failure without the URL's secrets (url.Error
// quotes the whole URL).
func netError(ctx context.Context, raw string, err error, lim Limits) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return apperr.New(apperr.BadRequest, fmt.Sprintf("fetch %s: over the time limit of %v", redact(raw), lim.FetchTimeout))
	}
	if ctx.Err() != nil {
		return apperr.Wrap(apperr.BadRequest, "fetch "+redact(raw), ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return apperr.Wrap(apperr.BadRequest, "fetch "+redact(raw), err)
}

func copyError(ctx context.Context, src Source, err error, got, expect int64, lim Limits) error {
	switch {
	case apperr.CodeOf(err) == apperr.NoSpace:
		return apperr.Wrap(apperr.NoSpace, "write package", err)
	case src.URL != "" && ctx.Err() != nil:
		return netError(ctx, src.URL, err, lim)
	case ctx.Err() != nil:
		return apperr.Wrap(apperr.BadRequest, "read package", ctx.Err())
	case src.URL != "" && (errors.Is(err, io.ErrUnexpectedEOF) || expect >= 0 && got < expect):
		return apperr.New(apperr.Integrity, fmt.Sprintf("fetch %s: cut short after %d of %d bytes", src.Describe(), got, expect))
	case src.URL != "":
		return netError(ctx, src.URL, err, lim)
	}
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "write" {
		return apperr.Wrap(apperr.Internal, "write package", err)
	}
	return apperr.Wrap(apperr.BadRequest, "read package", err)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
