package instance

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osmanager/agent/sysroot"
)

// fakeStopping answers Stopping and counts the questions.
type fakeStopping struct {
	down  bool
	err   error
	asked int
}

func (f *fakeStopping) Stopping(context.Context) (bool, error) {
	f.asked++
	return f.down, f.err
}

const liveID = "0123456789abcdef0123456789abcdef\n"

// reopen gives e fresh roots, so Writes counts from zero (the next boot).
func (e *env) reopen(t *testing.T) {
	t.Helper()
	var err error
	if e.cfg.Sys, err = sysroot.New(e.sysDir); err != nil {
		t.Fatal(err)
	}
	if e.cfg.LY, err = sysroot.New(e.lyDir); err != nil {
		t.Fatal(err)
	}
}

func TestApplyMarksMachineIDReset(t *testing.T) {
	id := Identity(7, true, "k1")
	tests := []struct {
		name     string
		systemd  bool // Config.NewMachineID
		sys, ly  map[string]string
		wantMark bool
	}{
		{name: "new instance under systemd: marked", systemd: true, sys: map[string]string{"etc/machine-id": liveID}, wantMark: true},
		{name: "new TAG under systemd: marked", systemd: true, sys: map[string]string{"etc/machine-id": liveID},
			ly: map[string]string{"conf/instance-id": Identity(6, true, "k1") + "\n"}, wantMark: true},
		{name: "same instance: not marked", systemd: true, sys: map[string]string{"etc/machine-id": liveID},
			ly: map[string]string{"conf/instance-id": id + "\n"}},
		{name: "no systemd (or not the running system): not marked", sys: map[string]string{"etc/machine-id": liveID}},
		{name: "no machine-id", systemd: true, sys: map[string]string{"etc/": ""}},
		{name: "empty machine-id: systemd makes one anyway", systemd: true, sys: map[string]string{"etc/machine-id": ""}},
		{name: "uninitialized machine-id", systemd: true, sys: map[string]string{"etc/machine-id": "uninitialized\n"}},
		{name: "machine-id a symlink", systemd: true, sys: map[string]string{"etc/machine-id": "->/run/machine-id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.sys, tt.ly)
			e.cfg.NewMachineID = tt.systemd
			sysBefore := snapshot(t, e.sysDir)
			r, err := e.cfg.Apply(context.Background(), id)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			mark := snapshot(t, e.lyDir)["conf/machine-id-reset"]
			if got := mark != ""; got != tt.wantMark {
				t.Fatalf("mark recorded %v (%q), want %v", got, mark, tt.wantMark)
			}
			if tt.wantMark {
				if want := "-rw------- " + machineIDHash([]byte(liveID)) + "\n"; mark != want {
					t.Errorf("mark = %q, want %q", mark, want)
				}
				if strings.Contains(mark, strings.TrimSpace(liveID)) {
					t.Error("the mark holds the machine ID itself")
				}
				if !strings.Contains(r.Note, "new machine ID at the next boot") {
					t.Errorf("note %q does not say the machine ID is reset at the next boot", r.Note)
				}
			}
			if got := snapshot(t, e.sysDir)["etc/machine-id"]; got != sysBefore["etc/machine-id"] {
				t.Errorf("Apply changed the running system's machine-id: %q, want %q", got, sysBefore["etc/machine-id"])
			}
		})
	}
}

func TestResetMachineID(t *testing.T) {
	mark := machineIDHash([]byte(liveID)) + "\n"
	tests := []struct {
		name      string
		sys, ly   map[string]string
		stopping  fakeStopping
		wantAsked int
		wantErr   bool
		want      map[string]string // files after (path in sys or "LY:" path), "" absent
	}{
		{
			name: "system shutdown: emptied, D-Bus copy removed, mark cleared",
			sys:  map[string]string{"etc/machine-id": liveID, "var/lib/dbus/machine-id": liveID},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{down: true}, wantAsked: 1,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- ", "var/lib/dbus/machine-id": "", "LY:conf/machine-id-reset": ""},
		},
		{
			name: "system shutdown, D-Bus's a symlink: kept",
			sys:  map[string]string{"etc/machine-id": liveID, "var/lib/dbus/machine-id": "->/etc/machine-id"},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{down: true}, wantAsked: 1,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- ", "var/lib/dbus/machine-id": "->/etc/machine-id", "LY:conf/machine-id-reset": ""},
		},
		{
			name: "agent restart, not a shutdown: left pending",
			sys:  map[string]string{"etc/machine-id": liveID, "var/lib/dbus/machine-id": liveID},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{}, wantAsked: 1,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- " + liveID, "var/lib/dbus/machine-id": "-rw-r--r-- " + liveID, "LY:conf/machine-id-reset": "-rw-r--r-- " + mark},
		},
		{
			name: "systemd not answering: left pending, an error",
			sys:  map[string]string{"etc/machine-id": liveID},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{err: errors.New("no bus")}, wantAsked: 1, wantErr: true,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- " + liveID, "LY:conf/machine-id-reset": "-rw-r--r-- " + mark},
		},
		{
			name: "no mark: nothing asked, nothing done",
			sys:  map[string]string{"etc/machine-id": liveID}, stopping: fakeStopping{down: true},
			want: map[string]string{"etc/machine-id": "-rw-r--r-- " + liveID},
		},
		{
			name: "reset done before a power cut, new ID since: only the mark cleared",
			sys:  map[string]string{"etc/machine-id": "fedcba9876543210fedcba9876543210\n"},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{down: true}, wantAsked: 1,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- fedcba9876543210fedcba9876543210\n", "LY:conf/machine-id-reset": ""},
		},
		{
			name: "machine-id emptied meanwhile: only the mark cleared",
			sys:  map[string]string{"etc/machine-id": ""},
			ly:   map[string]string{"conf/machine-id-reset": mark}, stopping: fakeStopping{down: true}, wantAsked: 1,
			want: map[string]string{"etc/machine-id": "-rw-r--r-- ", "LY:conf/machine-id-reset": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.sys, tt.ly)
			_, err := e.cfg.ResetMachineID(context.Background(), &tt.stopping)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ResetMachineID: %v, want error %v", err, tt.wantErr)
			}
			if tt.stopping.asked != tt.wantAsked {
				t.Errorf("asked whether the system stops %d times, want %d", tt.stopping.asked, tt.wantAsked)
			}
			sys, ly := snapshot(t, e.sysDir), snapshot(t, e.lyDir)
			for name, want := range tt.want {
				snap := sys
				if n, ok := strings.CutPrefix(name, "LY:"); ok {
					snap, name = ly, n
				}
				if got := snap[name]; got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			// Again, as at the next shutdown: nothing more (idempotent),
			// unless the reset is still pending.
			e.reopen(t)
			if _, err := e.cfg.ResetMachineID(context.Background(), &fakeStopping{down: true}); err != nil {
				t.Fatalf("second ResetMachineID: %v", err)
			}
			if pending := ly["conf/machine-id-reset"] != ""; !pending {
				if w := e.cfg.Sys.Writes() + e.cfg.LY.Writes(); w != 0 {
					t.Errorf("second ResetMachineID: %d writes, want none", w)
				}
			}
		})
	}
}

// TestMachineIDAcrossBoots follows a clone: first boot (new instance),
// an agent restart, the shutdown, the next boot on the same instance.
func TestMachineIDAcrossBoots(t *testing.T) {
	id := Identity(7, true, "k1")
	e := newEnv(t, map[string]string{"etc/machine-id": liveID}, nil)
	e.cfg.NewMachineID = true
	ctx := context.Background()
	if _, err := e.cfg.Apply(ctx, id); err != nil {
		t.Fatalf("boot 1: Apply: %v", err)
	}
	if _, err := e.cfg.ResetMachineID(ctx, &fakeStopping{}); err != nil {
		t.Fatalf("boot 1, restart: %v", err)
	}
	if got := snapshot(t, e.sysDir)["etc/machine-id"]; got != "-rw-r--r-- "+liveID {
		t.Fatalf("after an agent restart machine-id = %q, want it untouched", got)
	}
	if _, err := e.cfg.ResetMachineID(ctx, &fakeStopping{down: true}); err != nil {
		t.Fatalf("boot 1, shutdown: %v", err)
	}
	if got := snapshot(t, e.sysDir)["etc/machine-id"]; got != "-rw-r--r-- " {
		t.Fatalf("after the shutdown machine-id = %q, want it empty", got)
	}
	// Boot 2: systemd writes a new ID; the agent sees the same instance.
	tree(t, e.sysDir, map[string]string{"etc/machine-id": "fedcba9876543210fedcba9876543210\n"})
	e.reopen(t)
	r, err := e.cfg.Apply(ctx, id)
	if err != nil || r.New {
		t.Fatalf("boot 2: Apply = %+v, %v; want the same instance", r, err)
	}
	stop := &fakeStopping{down: true}
	if _, err := e.cfg.ResetMachineID(ctx, stop); err != nil {
		t.Fatalf("boot 2, shutdown: %v", err)
	}
	if w := e.cfg.Sys.Writes() + e.cfg.LY.Writes(); w != 0 || stop.asked != 0 {
		t.Errorf("boot 2: %d writes, asked %d times; want none", w, stop.asked)
	}
}

func TestSystemdStopping(t *testing.T) {
	exit1 := errors.New("exit status 1")
	tests := []struct {
		name    string
		out     string
		err     error
		want    bool
		wantErr bool
	}{
		{name: "shutdown queued", out: "stopping\n", err: exit1, want: true},
		{name: "running: a restart of the agent", out: "running\n"},
		{name: "degraded: a stop of the agent", out: "degraded\n", err: exit1},
		{name: "starting", out: "starting\n", err: exit1},
		{name: "no answer", err: exit1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			s := SystemdStopping{Systemctl: func(_ context.Context, a ...string) ([]byte, error) {
				args = a
				return []byte(tt.out), tt.err
			}}
			got, err := s.Stopping(context.Background())
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Stopping = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if strings.Join(args, " ") != "is-system-running" {
				t.Errorf("systemctl %q, want is-system-running", args)
			}
		})
	}
}
