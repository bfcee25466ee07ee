//go:build ignore

// gengz writes the gzip copies of the vendored assets that the binary
// embeds instead of the files themselves: assets/vendor/X.gz for every
// .js and .css file there. The output is deterministic (no name, no
// modification time, the same level), so an unchanged source gives an
// unchanged .gz. Run by `go generate ./agent/webssh` (and web/term/rebuild);
// TestVendorGzip fails when a .gz does not match its source.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run("assets/vendor"); err != nil {
		fmt.Fprintln(os.Stderr, "gengz:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css")) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(src); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		out := filepath.Join(dir, name+".gz")
		if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, buf.Bytes()) {
			continue
		}
		tmp := out + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, out); err != nil {
			os.Remove(tmp)
			return err
		}
		fmt.Printf("gengz: %s: %d → %d bytes\n", out, len(src), buf.Len())
	}
	return nil
}
