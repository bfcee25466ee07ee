package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"osmanager/agent/sysroot"
)

// Logs: a run writes its stdout and stderr into a named pipe (Spec.Pipe),
// which it holds open for reading and writing both: so a write never
// fails with EPIPE while the agent restarts (it waits, once the pipe's
// 1 MiB are full, until the next agent reads again). The agent reads the
// pipe and appends to the log file, rotating it at the cap, so the cap
// holds whatever the run writes.

const (
	pipeSize     = 1 << 20
	logMode      = 0o640
	logDirMode   = 0o750
	maxTailBytes = 4 << 20 // Tail reads no more than this of the files' ends
)

// sink copies one run's pipe into its log file.
type sink struct {
	sys  *sysroot.Root
	name string
	max  int64
	keep int
	log  *slog.Logger

	pipe *os.File // O_RDWR: the agent's read end, and what the run gets
	wg   sync.WaitGroup

	mu     sync.Mutex
	file   *os.File
	size   int64
	gen    int           // rotations so far
	notify chan struct{} // closed at the next write
	err    error
}

// openSink makes (or reopens, on adoption) the run's pipe and log file
// and starts copying.
func openSink(sys *sysroot.Root, name, pipe string, max int64, keep int, log *slog.Logger) (*sink, error) {
	if err := sys.MakeFIFO(pipe, 0o600, logDirMode); err != nil {
		return nil, err
	}
	p, err := sys.OpenFIFO(pipe, unix.O_RDWR|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	unix.FcntlInt(p.Fd(), unix.F_SETPIPE_SZ, pipeSize) // best effort: the system's limit may be lower
	f, err := sys.OpenLog(name, logMode, logDirMode)
	if err != nil {
		p.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		p.Close()
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	s := &sink{sys: sys, name: name, max: max, keep: keep, log: log, pipe: p, file: f, size: st.Size(), notify: make(chan struct{})}
	s.wg.Add(1)
	go s.copy()
	return s, nil
}

// copyBufs holds the buffers the sinks copy through. A sink takes one
// only while its pipe has bytes to read, so an idle run holds none: with
// a buffer of its own (32 kB, on the goroutine's stack), each run cost
// the agent 64 kB of stack, most of what 10 more apps cost its RSS.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copy reads the pipe until close stops it.
func (s *sink) copy() {
	defer s.wg.Done()
	rc, err := s.pipe.SyscallConn()
	if err != nil {
		s.log.Warn("cannot read the run's pipe", "log", s.name, "err", err)
		return
	}
	for {
		var (
			bp   *[]byte
			n    int
			rerr error
		)
		// rc.Read calls the func when the pipe may be readable and
		// waits in the poller, holding no buffer, while it returns false.
		err := rc.Read(func(fd uintptr) bool {
			bp = copyBufs.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *bp)
			if rerr == unix.EAGAIN {
				copyBufs.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if bp != nil {
			if n > 0 {
				s.write((*bp)[:n])
			}
			copyBufs.Put(bp)
		}
		if err != nil || rerr != nil || n == 0 {
			return // deadline set by close, closed, or no writer (cannot happen: we hold one)
		}
	}
}

// write appends b, rotating first when the file would pass the cap.
func (s *sink) write(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(b) > 0 {
		if s.size >= s.max {
			s.rotate()
		}
		n := min(int64(len(b)), s.max-s.size)
		if s.file != nil {
			if _, err := s.file.Write(b[:n]); err != nil && s.err == nil {
				s.err = err
				s.log.Warn("cannot write the run's log", "log", s.name, "err", err)
			}
		}
		s.size += n
		b = b[n:]
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

func (s *sink) rotate() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	if err := s.sys.RotateLog(s.name, s.keep); err != nil {
		s.log.Warn("cannot rotate the run's log", "log", s.name, "err", err)
	}
	f, err := s.sys.OpenLog(s.name, logMode, logDirMode)
	if err != nil {
		s.log.Warn("cannot open the run's log", "log", s.name, "err", err)
	}
	s.file, s.size = f, 0
	s.gen++
}

// waiter returns the channel closed at the next write, and the rotation
// count.
func (s *sink) waiter() (<-chan struct{}, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify, s.gen
}

// close drains what the pipe holds and stops. remove drops the pipe too
// (the run ends; else it is left for the next agent to reopen).
func (s *sink) close(remove bool, pipe string) {
	s.pipe.SetReadDeadline(time.Now())
	s.wg.Wait()
	if remove {
		// Nobody writes any more: read what is left, without waiting.
		bp := copyBufs.Get().(*[]byte)
		for {
			n, err := unix.Read(int(s.pipe.Fd()), *bp)
			if n <= 0 || err != nil {
				break
			}
			s.write((*bp)[:n])
		}
		copyBufs.Put(bp)
	}
	s.pipe.Close()
	s.mu.Lock()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	close(s.notify)
	s.notify = nil
	s.mu.Unlock()
	if remove {
		if err := s.sys.RemoveLog(pipe); err != nil {
			s.log.Warn("cannot remove the run's pipe", "err", err)
		}
	}
}

// Tail returns the last n lines (n <= 0: all of them, up to 4 MiB) of
// the log file name and its rotated predecessors, oldest first.
func Tail(sys *sysroot.Root, name string, keep, n int) ([]string, error) {
	var data []byte
	for i := keep; i >= 0; i-- {
		f := name
		if i > 0 {
			f = fmt.Sprintf("%s.%d", name, i)
		}
		b, err := readEnd(sys, f, maxTailBytes)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		data = append(data, b...)
	}
	if len(data) > maxTailBytes {
		data = data[len(data)-maxTailBytes:]
	}
	return lastLines(data, n), nil
}

func readEnd(sys *sysroot.Root, name string, limit int64) ([]byte, error) {
	f, err := sys.OpenLogReader(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, st.Size()-limit)
	return io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
}

func lastLines(data []byte, n int) []string {
	data = bytes.TrimSuffix(data, []byte("\n"))
	if len(data) == 0 {
		return nil
	}
	lines := bytes.Split(data, []byte("\n"))
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out
}

// follow writes what is appended to the sink's log file from now on to
// w, until ctx ends or the sink closes.
func (s *sink) follow(ctx context.Context, w io.Writer) error {
	notify, gen := s.waiter()
	if notify == nil {
		return nil
	}
	f, err := s.sys.OpenLogReader(s.name)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-notify:
		}
		var g int
		notify, g = s.waiter()
		if notify == nil {
			_, err := io.Copy(w, f)
			return err
		}
		if g != gen { // rotated: finish the old file, go on with the new
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			f.Close()
			if f, err = s.sys.OpenLogReader(s.name); err != nil {
				return err
			}
			gen = g
		}
	}
}
