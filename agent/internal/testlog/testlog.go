// Package testlog gives tests a slog.Logger that writes to t.Log and keeps
// what it wrote, so tests can also check what was (and was not) logged.
package testlog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Buffer collects log output; safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   testing.TB
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Helper()
	b.t.Log(strings.TrimRight(string(p), "\n"))
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New returns a debug-level logger writing to t.Log, and its Buffer.
func New(t testing.TB) (*slog.Logger, *Buffer) {
	b := &Buffer{t: t}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
