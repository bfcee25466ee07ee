package floppy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"osmanager/agent/internal/testlog"
)

func TestReader(t *testing.T) {
	errModprobe := errors.New("modprobe floppy: exit status 1: modprobe: FATAL: Module floppy not found")
	img := NodeImage([]byte(sampleINI))

	tests := []struct {
		name string
		// present puts the image at the path before Read.
		present bool
		// outside puts the path outside DevPrefix.
		outside bool
		// load is the fake LoadModule; dev is the device path.
		load      func(ctx context.Context, cancel context.CancelFunc, dev string, wg *sync.WaitGroup) error
		wait      time.Duration
		wantCalls int
		want      error // nil: want the body
		wantMsg   string
	}{
		{
			name:      "device present",
			present:   true,
			wantCalls: 0,
		},
		{
			name: "driver creates the device",
			load: func(_ context.Context, _ context.CancelFunc, dev string, _ *sync.WaitGroup) error {
				return os.WriteFile(dev, img, 0o600)
			},
			wantCalls: 1,
		},
		{
			name: "device appears while waiting",
			load: func(_ context.Context, _ context.CancelFunc, dev string, wg *sync.WaitGroup) error {
				// The write lands before or during the wait; the device must
				// be read whole either way, so write it under another name
				// and rename it into place.
				wg.Go(func() {
					tmp := dev + ".tmp"
					if err := os.WriteFile(tmp, img, 0o600); err == nil {
						os.Rename(tmp, dev)
					}
				})
				return nil
			},
			wait:      time.Minute,
			wantCalls: 1,
		},
		{
			name: "loading the driver fails",
			load: func(context.Context, context.CancelFunc, string, *sync.WaitGroup) error {
				return errModprobe
			},
			wantCalls: 1,
			want:      ErrNoDevice,
			wantMsg:   "loading the driver failed: modprobe floppy: exit status 1",
		},
		{
			name: "device never appears",
			load: func(context.Context, context.CancelFunc, string, *sync.WaitGroup) error {
				return nil
			},
			wait:      30 * time.Millisecond,
			wantCalls: 1,
			want:      ErrNoDevice,
			wantMsg:   "not there 30ms after loading the driver",
		},
		{
			name: "context canceled while waiting",
			load: func(_ context.Context, cancel context.CancelFunc, _ string, _ *sync.WaitGroup) error {
				cancel()
				return nil
			},
			wait:      time.Hour,
			wantCalls: 1,
			want:      context.Canceled,
			wantMsg:   "gave up waiting for it: context canceled",
		},
		{
			name:    "path outside the device dir",
			outside: true,
			load: func(context.Context, context.CancelFunc, string, *sync.WaitGroup) error {
				return errors.New("must not be called")
			},
			wantCalls: 0,
			want:      ErrNoDevice,
			wantMsg:   "no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devDir := t.TempDir()
			dev := filepath.Join(devDir, "fd0")
			if tt.outside {
				dev = filepath.Join(t.TempDir(), "fd0")
			}
			if tt.present {
				if err := os.WriteFile(dev, img, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var wg sync.WaitGroup
			defer wg.Wait()
			log, logged := testlog.New(t)

			calls := 0
			r := &Reader{
				Path:      dev,
				Wait:      tt.wait,
				DevPrefix: devDir + "/",
				Log:       log,
				LoadModule: func(ctx context.Context) error {
					calls++
					if tt.load == nil {
						t.Error("LoadModule called")
						return nil
					}
					return tt.load(ctx, cancel, dev, &wg)
				},
			}
			got, err := r.Read(ctx)
			if calls != tt.wantCalls {
				t.Errorf("LoadModule called %d times, want %d", calls, tt.wantCalls)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if string(got) != sampleINI {
					t.Errorf("got %q, want %q", got, sampleINI)
				}
				if tt.wantCalls > 0 && !strings.Contains(logged.String(), "floppy device appeared") {
					t.Errorf("log %q does not tell the device appeared", logged.String())
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrNoDevice) {
				t.Errorf("Read = %v, want it to wrap ErrNoDevice too", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "read floppy "+dev+": ") || !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting %q saying %q", msg, "read floppy "+dev+": ", tt.wantMsg)
			}
		})
	}
}

func TestReaderDefaults(t *testing.T) {
	var r Reader
	// Only what Read resolves without touching the system: /dev/fd0 is
	// outside a temp DevPrefix, so no module is loaded.
	r.DevPrefix = t.TempDir() + "/"
	_, err := r.Read(t.Context())
	if err == nil {
		t.Skip("this machine has a readable /dev/fd0")
	}
	if !strings.HasPrefix(err.Error(), "read floppy "+DefaultPath+": ") {
		t.Errorf("error %q does not name %s", err, DefaultPath)
	}
}
