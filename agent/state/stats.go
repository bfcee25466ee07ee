package state

import (
	"slices"
	"time"
)

// Stats is the app monitor's latest figures: the system's, each app's
// (summed over its live runs, with each run's), and the alerts raised
// now. The monitor rewrites it every sample (agent/apps/monitor); only a
// change of the raised alerts counts as a change of the store (Changed),
// so a page or the controller link is not woken every second.
type Stats struct {
	Time     time.Time   `json:"time,omitzero"`    // of the latest sample; zero before the first
	Interval float64     `json:"interval_seconds"` // between samples
	Window   float64     `json:"window_seconds"`   // of the *_avg figures
	System   SystemStats `json:"system"`
	Apps     []AppStats  `json:"apps"`   // by id, the apps with live runs
	Alerts   []AlertView `json:"alerts"` // raised now, by app id ("" first: the system) and metric
}

// Figures are a run's, or an app's summed over its runs.
type Figures struct {
	CPUPercent  float64 `json:"cpu_percent"`     // of one core, over the last interval
	CPUAvg      float64 `json:"cpu_percent_avg"` // over the window
	MemoryBytes uint64  `json:"memory_bytes"`
	MemoryAvg   uint64  `json:"memory_bytes_avg"`
	MemoryPeak  uint64  `json:"memory_peak_bytes"`
	Pids        uint64  `json:"pids"`
	IOBytes     uint64  `json:"io_bytes"`                // read and written, since the run started
	IORate      float64 `json:"io_bytes_per_second"`     // over the last interval
	IOAvg       float64 `json:"io_bytes_per_second_avg"` // over the window
}

// AppStats is one app's figures.
type AppStats struct {
	ID string `json:"id"`
	Figures
	DiskBytes   uint64     `json:"disk_bytes"`             // of its data dir, by a bounded walk
	DiskChecked time.Time  `json:"disk_checked,omitzero"`  // when the walk last ran
	DiskPartial bool       `json:"disk_partial,omitempty"` // the walk stopped at its bound
	Runs        []RunStats `json:"runs"`
}

// RunStats is one live run's figures.
type RunStats struct {
	RunID uint64 `json:"runid"`
	Figures
	Source string `json:"source"`          // where the figures come from: "cgroup", "cgroup+proc" or "proc"
	Error  string `json:"error,omitempty"` // why the last sample is missing ("cgroup gone")
}

// SystemStats is the machine's figures.
type SystemStats struct {
	CPUPercent    float64    `json:"cpu_percent"` // of all CPUs, over the last interval
	CPUAvg        float64    `json:"cpu_percent_avg"`
	MemoryTotal   uint64     `json:"memory_total_bytes"`
	MemoryUsed    uint64     `json:"memory_used_bytes"` // total less available
	MemoryPercent float64    `json:"memory_used_percent"`
	DiskPath      string     `json:"disk_path"`
	DiskTotal     uint64     `json:"disk_total_bytes"`
	DiskUsed      uint64     `json:"disk_used_bytes"`
	DiskPercent   float64    `json:"disk_used_percent"`
	Net           []NetStats `json:"net"` // by interface name, loopback left out
}

// NetStats is one network interface's traffic.
type NetStats struct {
	Name    string  `json:"name"`
	RxRate  float64 `json:"rx_bytes_per_second"`
	TxRate  float64 `json:"tx_bytes_per_second"`
	RxAvg   float64 `json:"rx_bytes_per_second_avg"`
	TxAvg   float64 `json:"tx_bytes_per_second_avg"`
	RxBytes uint64  `json:"rx_bytes"`
	TxBytes uint64  `json:"tx_bytes"`
}

// AlertView is a raised alert.
type AlertView struct {
	ID        string    `json:"id,omitempty"` // the app's id; "" for a system alert
	Metric    string    `json:"metric"`       // cpu, memory, pids, io, disk; system: cpu, memory, disk, net:<if>
	Value     float64   `json:"value"`        // when raised
	Threshold float64   `json:"threshold"`
	Since     time.Time `json:"since"`
}

// UpdateStats lets the monitor rewrite the figures in place, reusing the
// store's slices (a sample allocates nothing); f returns whether the
// raised alerts changed, the one change that wakes Changed's waiters.
func (s *Store) UpdateStats(f func(*Stats) (alertsChanged bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.note(f(&s.stats))
}

// Stats returns a copy of the figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats
	c.System.Net = slices.Clone(c.System.Net)
	c.Alerts = slices.Clone(c.Alerts)
	c.Apps = slices.Clone(c.Apps)
	for i := range c.Apps {
		c.Apps[i].Runs = slices.Clone(c.Apps[i].Runs)
	}
	return c
}
