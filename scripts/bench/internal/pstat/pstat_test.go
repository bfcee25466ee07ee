package pstat

import (
	"os"
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
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	c1, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c1 <= c0 {
		t.Errorf("CPU after 50 ms of spinning: %s → %s, want more", c0, c1)
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
