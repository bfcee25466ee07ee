// Package packtest builds application packages in tests (of pack, store,
// the runner and the API): tar or tar.gz archives from a list of entries,
// and a ready-made app whose exec is a shell script.
package packtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"time"
)

// Entry is one archive entry. Type defaults to a regular file; Mode to
// 0644 for files (0755 for Exec), 0755 for dirs.
type Entry struct {
	Name string
	Body string
	Mode int64
	Type byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, …
	Link string // target of a symlink or hard link
	Size int64  // overrides len(Body) in the header when non-zero (lying headers)
}

// Tar returns the entries as a tar archive, gzip-compressed when gz.
func Tar(gz bool, entries ...Entry) []byte {
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Typeflag: e.Type, Linkname: e.Link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if e.Size != 0 {
			h.Size = e.Size
		}
		if err := w.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("packtest: header %q: %v", e.Name, err))
		}
		if h.Typeflag == tar.TypeReg && e.Body != "" {
			w.Write([]byte(e.Body))
		}
	}
	w.Flush()
	w.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// Manifest returns a manifest.json entry for id and version running
// bin/hello, with extra JSON members (`"user": "x"`) added verbatim.
func Manifest(id, version string, extra ...string) Entry {
	body := fmt.Sprintf(`{"id": %q, "version": %q, "exec": "bin/hello", "args": [], "env": {}, "restart": "on-failure"`, id, version)
	for _, e := range extra {
		body += ", " + e
	}
	return Entry{Name: "manifest.json", Body: body + "}\n"}
}

// Hello returns the entries of a working app: the manifest and
// bin/hello, a shell script printing "hello <version>".
func Hello(id, version string) []Entry {
	return []Entry{
		Manifest(id, version),
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/hello", Mode: 0o755, Body: "#!/bin/sh\necho hello " + version + "\n"},
	}
}
