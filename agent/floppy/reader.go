package floppy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Defaults for Reader's fields.
const (
	DefaultWait      = 3 * time.Second
	DefaultDevPrefix = "/dev/"
	pollInterval     = 25 * time.Millisecond
)

// Reader reads luoyun.ini like ReadFile, and also copes with a floppy driver
// that is not loaded yet: when Path is missing and lies under DevPrefix, it
// loads the driver once and waits for the device node to appear. The zero
// value reads /dev/fd0.
type Reader struct {
	// Path is the device or image file; empty means DefaultPath.
	Path string
	// Wait bounds the wait for the device node after LoadModule; zero means
	// DefaultWait.
	Wait time.Duration
	// LoadModule loads the floppy driver; nil runs "Modprobe floppy".
	LoadModule func(ctx context.Context) error
	// Modprobe is the modprobe command; empty means "modprobe" from PATH.
	Modprobe string
	// NoLoad, when set, says why the driver must not be loaded (the agent
	// is configuring a scratch system root, not this host): a missing
	// device is then an error saying so.
	NoLoad string
	// DevPrefix marks the paths a driver can create, for which LoadModule is
	// worth a try; empty means DefaultDevPrefix. Tests point it at a temp dir.
	DevPrefix string
	// Log gets a line when the driver is loaded and when the device shows
	// up; nil discards. Errors are returned, not logged.
	Log *slog.Logger
}

// errWaited is the cause of the wait's context when Wait runs out.
var errWaited = errors.New("wait over")

// Read reads luoyun.ini from r.Path. Its errors are ReadFile's, and when it
// loaded the driver and the device did not appear, an error wrapping
// ErrNoDevice (and ctx's error, if ctx ended the wait).
func (r *Reader) Read(ctx context.Context) ([]byte, error) {
	path := cmp.Or(r.Path, DefaultPath)
	body, err := ReadFile(path)
	if !errors.Is(err, ErrNoDevice) || !strings.HasPrefix(path, cmp.Or(r.DevPrefix, DefaultDevPrefix)) {
		return body, err
	}
	if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
		return nil, err // there, but no drive behind it: a driver is loaded
	}

	if r.NoLoad != "" {
		return nil, fmt.Errorf("read floppy %s: %w; floppy driver not loaded: %s", path, ErrNoDevice, r.NoLoad)
	}
	log := cmp.Or(r.Log, slog.New(slog.DiscardHandler))
	load := r.LoadModule
	if load == nil {
		load = func(ctx context.Context) error { return modprobeFloppy(ctx, cmp.Or(r.Modprobe, "modprobe")) }
	}
	wait := cmp.Or(r.Wait, DefaultWait)

	log.Info("floppy device missing, loading the floppy driver", "path", path)
	if err := load(ctx); err != nil {
		return nil, fmt.Errorf("read floppy %s: %w, and loading the driver failed: %w", path, ErrNoDevice, err)
	}
	if err := waitForPath(ctx, path, wait); err != nil {
		if errors.Is(err, errWaited) {
			return nil, fmt.Errorf("read floppy %s: %w: not there %v after loading the driver", path, ErrNoDevice, wait)
		}
		return nil, fmt.Errorf("read floppy %s: %w: gave up waiting for it: %w", path, ErrNoDevice, err)
	}
	log.Info("floppy device appeared", "path", path)
	return ReadFile(path)
}

// waitForPath polls until path exists, wait passes (errWaited) or ctx ends.
func waitForPath(ctx context.Context, path string, wait time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, wait, errWaited)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// modprobeFloppy is Reader's default LoadModule.
func modprobeFloppy(ctx context.Context, modprobe string) error {
	out, err := exec.CommandContext(ctx, modprobe, "floppy").CombinedOutput()
	if err != nil {
		msg := strings.Join(strings.Fields(string(out)), " ")
		if msg == "" {
			return fmt.Errorf("modprobe floppy: %w", err)
		}
		return fmt.Errorf("modprobe floppy: %w: %s", err, msg)
	}
	return nil
}
