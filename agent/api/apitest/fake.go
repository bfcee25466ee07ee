// Package apitest has a fake api.Apps for tests of the local API, its
// client and osmctl: its answers follow the names it is given, so a test
// asks for an error by naming it.
package apitest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/apps/apperr"
)

// Fake is an api.Apps for tests, whose answers follow the names it is given: an app id
// that is an apperr code ("not_found", "cant_start", …) fails with that
// code, runid 404 is not found, runid 409 is in the wrong state.
type Fake struct {
	apitypes.Hub
	Mu       sync.Mutex // guards the fields below
	Installs []apitypes.InstallRequest
	Bodies   []string
	LogsFunc func(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error)
	LastArgs string
}

// Codes are the error codes, in the order of apperr.
var Codes = []apperr.Code{apperr.BadRequest, apperr.NotFound, apperr.Conflict, apperr.InvalidState, apperr.Integrity,
	apperr.TooLarge, apperr.NoSpace, apperr.CantStart, apperr.Forbidden, apperr.Internal}

// ByName is the error an app id names, or nil.
func ByName(id string) error {
	for _, c := range Codes {
		if id == string(c) {
			return apperr.New(c, "fake "+id)
		}
	}
	if id == "plain" {
		return fmt.Errorf("an error without a code")
	}
	return nil
}

// ByRunID is the error a runid names, or nil.
func ByRunID(id uint64) error {
	switch id {
	case 404:
		return apperr.New(apperr.NotFound, "no run 404")
	case 409:
		return apperr.New(apperr.InvalidState, "run 409 has exited")
	}
	return nil
}

// App is the app the fake answers with.
func App(id string) apitypes.App {
	return apitypes.App{ID: id, Version: "1.0.0", Desired: apitypes.Running, Installed: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Run is the run the fake answers with.
func Run(runid uint64, state apitypes.RunState) apitypes.Run {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := apitypes.Run{RunID: runid, ID: "hello", Version: "1.0.0", State: state, PIDs: []int{100, 101}, Started: at, Since: at.Add(time.Minute)}
	if state.Done() {
		r.PIDs, r.LastExit = []int{}, &apitypes.Exit{Code: 0}
	}
	return r
}

func (f *Fake) note(s string) { f.Mu.Lock(); f.LastArgs = s; f.Mu.Unlock() }

func (f *Fake) Install(ctx context.Context, req apitypes.InstallRequest, body io.Reader) (apitypes.App, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = io.ReadAll(body); err != nil {
			return apitypes.App{}, apperr.Wrap(apperr.BadRequest, "read archive", err)
		}
	}
	f.Mu.Lock()
	f.Installs = append(f.Installs, req)
	f.Bodies = append(f.Bodies, string(b))
	f.Mu.Unlock()
	if err := ByName(string(b)); err != nil {
		return apitypes.App{}, err
	}
	return App("hello"), nil
}
func (f *Fake) List(ctx context.Context) ([]apitypes.App, error) {
	return []apitypes.App{App("hello"), App("web")}, nil
}
func (f *Fake) Detail(ctx context.Context, id string) (apitypes.App, error) {
	a := App(id)
	a.Runs = []apitypes.Run{Run(7, apitypes.Active)}
	return a, ByName(id)
}
func (f *Fake) Uninstall(ctx context.Context, id string, purge bool) error {
	f.note(fmt.Sprintf("uninstall %s %v", id, purge))
	return ByName(id)
}
func (f *Fake) Start(ctx context.Context, id string) (apitypes.Started, error) {
	if id == "single" {
		return apitypes.Started{Run: Run(7, apitypes.Active), Existing: true, Note: "already running"}, nil
	}
	return apitypes.Started{Run: Run(8, apitypes.Starting)}, ByName(id)
}
func (f *Fake) Once(ctx context.Context, id string) (apitypes.Started, error) {
	return f.Start(ctx, id)
}
func (f *Fake) Rollback(ctx context.Context, id string) (apitypes.App, error) {
	return App(id), ByName(id)
}
func (f *Fake) Enable(ctx context.Context, id string) (apitypes.App, error) {
	a := App(id)
	a.Enabled = true
	return a, ByName(id)
}
func (f *Fake) Disable(ctx context.Context, id string) (apitypes.App, error) {
	return App(id), ByName(id)
}
func (f *Fake) Runs(ctx context.Context) ([]apitypes.Run, error) {
	return []apitypes.Run{Run(7, apitypes.Active), Run(3, apitypes.Exited)}, nil
}
func (f *Fake) Run(ctx context.Context, id uint64) (apitypes.Run, error) {
	return Run(id, apitypes.Active), ByRunID(id)
}
func (f *Fake) Pause(ctx context.Context, id uint64) (apitypes.Run, error) {
	return Run(id, apitypes.Paused), ByRunID(id)
}
func (f *Fake) Resume(ctx context.Context, id uint64) (apitypes.Run, error) {
	return Run(id, apitypes.Active), ByRunID(id)
}
func (f *Fake) Terminate(ctx context.Context, id uint64) (apitypes.Run, error) {
	return Run(id, apitypes.Exited), ByRunID(id)
}
func (f *Fake) Logs(ctx context.Context, id string, n int, follow bool) (io.ReadCloser, error) {
	if err := ByName(id); err != nil {
		return nil, err
	}
	f.note(fmt.Sprintf("logs %s %d %v", id, n, follow))
	if f.LogsFunc != nil {
		return f.LogsFunc(ctx, id, n, follow)
	}
	return io.NopCloser(strings.NewReader("one\ntwo\n")), nil
}

// Stats answers GET /v1/stats: id names an error as ByName does, "404"
// an unknown run; else the figures of StatsDoc, filtered to id.
func (f *Fake) Stats(ctx context.Context, id string) (apitypes.Stats, error) {
	f.note("stats " + id)
	if err := ByName(id); err != nil {
		return apitypes.Stats{}, err
	}
	if id == "404" {
		return apitypes.Stats{}, apperr.New(apperr.NotFound, "no app 404 and no run 404")
	}
	st := StatsDoc()
	if id != "" {
		st.Apps = st.Apps[:1]
	}
	return st, nil
}

// StatsDoc is the figures the fake answers with.
func StatsDoc() apitypes.Stats {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fig := apitypes.Figures{CPUPercent: 12.5, CPUAvg: 10, MemoryBytes: 50 << 20, MemoryAvg: 48 << 20, MemoryPeak: 64 << 20, Pids: 3, IOBytes: 1 << 20, IORate: 2048, IOAvg: 1024}
	return apitypes.Stats{
		Time: at, Interval: 1, Window: 10,
		System: apitypes.SystemStats{CPUPercent: 25, CPUAvg: 20, MemoryTotal: 4 << 30, MemoryUsed: 1 << 30, MemoryPercent: 25,
			DiskPath: "/", DiskTotal: 100 << 30, DiskUsed: 40 << 30, DiskPercent: 40,
			Net: []apitypes.NetStats{{Name: "eth0", RxRate: 1500, TxRate: 300, RxAvg: 1000, TxAvg: 200, RxBytes: 1 << 30, TxBytes: 1 << 20}}},
		Apps: []apitypes.AppStats{
			{ID: "hello", Figures: fig, DiskBytes: 5 << 20, DiskChecked: at, Runs: []apitypes.RunStats{{RunID: 7, Figures: fig, Source: "cgroup"}}},
			{ID: "web", Runs: []apitypes.RunStats{{RunID: 8, Source: "cgroup", Error: "cgroup gone"}}},
		},
		Alerts: []apitypes.RaisedAlert{{ID: "hello", Metric: "memory", Value: 50 << 20, Threshold: 40 << 20, Since: at}, {Metric: "cpu", Value: 95, Threshold: 90, Since: at}},
	}
}
