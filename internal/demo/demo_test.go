package demo

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the demo's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoSampleApp: the demo installs and starts its sample app through
// the local API and shows osmctl commands with the scratch socket.
func TestDemoSampleApp(t *testing.T) {
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Dir: t.TempDir(), Out: out}) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "events\n") {
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("no sample app:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo = %v", err)
	}
	for _, want := range []string{"sample app:   hello 1.0.0 installed and running as run 1", "sysroot/run/osmanager.sock list"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
