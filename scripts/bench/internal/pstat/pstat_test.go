package pstat

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	m, err := ReadMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.Anon+m.File > m.RSS+1<<20 {
		t.Errorf("mem = %+v: want a non-zero RSS of about anon + file", m)
	}
	c0, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged this process 50 ms more CPU (by
	// getrusage, not by the wall clock: on a loaded machine 50 ms of wall
	// time may bring no CPU at all), then /proc must show more too.
	used := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	for deadline := time.Now().Add(20 * time.Second); used()-start < 50*time.Millisecond && time.Now().Before(deadline); {
	}
	c1, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c1 <= c0 {
		t.Errorf("CPU after %s of spinning (getrusage): %s → %s, want more", used()-start, c0, c1)
	}
}

func TestNoProcess(t *testing.T) {
	if _, err := ReadMem(-1); err == nil {
		t.Error("ReadMem(-1): no error")
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1): no error")
	}
}
