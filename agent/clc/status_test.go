package clc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
	"osmanager/agent/internal/testlog"
	"osmanager/agent/script"
	"osmanager/agent/state"
)

func writeScript(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAppCode runs real status scripts and maps how they end.
func TestAppCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		mode    os.FileMode
		timeout time.Duration
		want    int32
		meaning string
	}{
		{"exit 0", "#!/bin/sh\nexit 0\n", 0o755, 0, 2000, "running"},
		{"exit 3", "#!/bin/sh\nexit 3\n", 0o755, 0, 2003, "not serving (exit 3)"},
		{"exit 127", "#!/bin/sh\nexit 127\n", 0o755, 0, 2127, "not serving (exit 127)"},
		{"exit 200", "#!/bin/sh\nexit 200\n", 0o755, 0, 2128, "unknown (exit 200)"},
		{"killed by a signal", "#!/bin/sh\nkill -9 $$\n", 0o755, 0, 2128, "killed by a signal"},
		{"hangs", "#!/bin/sh\nexec sleep 60\n", 0o755, 200 * time.Millisecond, 2128, "timed out"},
		{"floods stdout", "#!/bin/sh\nexec yes flood\n", 0o755, 300 * time.Millisecond, 2128, "timed out"},
		{"not executable", "#!/bin/sh\nexit 0\n", 0o644, 0, 2128, "no executable status script"},
		{"bad interpreter", "#!/nonexistent/sh\nexit 0\n", 0o755, 0, 2128, "status script failed"},
		{"missing", "", 0, 0, 2128, "no executable status script"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := testlog.New(t)
			p := filepath.Join(t.TempDir(), "missing")
			if tc.mode != 0 {
				p = writeScript(t, tc.body, tc.mode)
			}
			s := &script.Script{Path: p, Timeout: tc.timeout, MaxLog: 4 << 10, Log: log}
			if s.Timeout == 0 {
				s.Timeout = 10 * time.Second
			}
			res, err := s.Run(context.Background())
			code, meaning := appCode(res, err)
			if code != tc.want || !strings.Contains(meaning, tc.meaning) {
				t.Errorf("appCode = %d %q, want %d %q (result %+v, err %v)", code, meaning, tc.want, tc.meaning, res, err)
			}
			// Output is logged up to MaxLog bytes, then drained unlogged.
			if n := strings.Count(buf.String(), "script output"); n > (4<<10)/len("flood\n")+2 { // and the "truncated" line
				t.Errorf("a flooding script got %d log lines", n)
			}
		})
	}
}

// TestReports: REPORT after registration, on every change, not when
// unchanged, at least hourly, and again on reconnect.
func TestReports(t *testing.T) {
	codeFile := filepath.Join(t.TempDir(), "code")
	os.WriteFile(codeFile, []byte("0"), 0o644)
	h := newHarness(t)
	h.link.StatusScript = writeScript(t, "#!/bin/sh\nexit $(cat "+codeFile+")\n", 0o755)
	h.link.StatusPeriod = 30 * time.Second
	h.link.Heartbeat = 1000 * time.Hour
	h.start()
	checked := func(after time.Time) state.AppHealth {
		t.Helper()
		return waitFor(t, "a status check", func() (state.AppHealth, bool) {
			a := h.link.State.AppHealth()
			return a, a.Checked.After(after)
		})
	}
	first := checked(time.Time{})
	f := h.accept()
	f.handshake()
	report := func(want int32) {
		t.Helper()
		r, err := wire.ParseReport(f.next(wire.TypeReport).Data)
		if err != nil || r.Status != want {
			t.Fatalf("REPORT %d (%v), want %d", r.Status, err, want)
		}
	}
	report(2000)

	os.WriteFile(codeFile, []byte("3"), 0o644)
	h.clk.Advance(30 * time.Second)
	report(2003)
	if a := h.link.State.AppHealth(); a.Code != 2003 || a.Meaning != "not serving (exit 3)" {
		t.Errorf("app state %+v", a)
	}

	// Unchanged: the script runs, nothing is sent.
	last := checked(first.Checked)
	h.clk.Advance(30 * time.Second)
	checked(last.Checked)
	f.barrier()
	select {
	case p := <-f.packets:
		t.Fatalf("agent sent %s for an unchanged status", p.Type)
	default:
	}

	// Hourly, even unchanged.
	h.clk.Advance(time.Hour)
	report(2003)
	if l := h.link.State.Link(); l.LastReport == nil || l.LastReport.Value != 2003 {
		t.Errorf("last report %+v", l.LastReport)
	}

	// On reconnect.
	f.conn.Close()
	h.backingOff("controller closed the connection")
	h.clk.Advance(time.Second)
	f = h.accept()
	f.handshake()
	report(2003)
}

// TestHangingStatusScript: a status script that never ends blocks nothing:
// the link registers, answers queries and echoes, and stops promptly.
func TestHangingStatusScript(t *testing.T) {
	h := newHarness(t)
	h.link.StatusScript = writeScript(t, "#!/bin/sh\nexec sleep 3600\n", 0o755)
	h.link.StatusTimeout = time.Hour
	h.start()
	f := h.accept()
	f.handshake()
	f.send(wire.QueryRequest{JobID: 5})
	q, _ := wire.ParseQueryReply(f.next(wire.TypeQueryReply).Data)
	if q.Status != wire.StateAppUnknown {
		t.Errorf("query status %d, want %d (unknown)", q.Status, wire.StateAppUnknown)
	}
	f.barrier()
	select {
	case p := <-f.packets:
		t.Errorf("agent sent %s with no status known", p.Type)
	default:
	}
	start := time.Now()
	h.stop()
	h.stop = nil
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s with a hanging status script", d)
	}
}
