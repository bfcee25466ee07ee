package web

import (
	"github.com/prometheus/client_golang/prometheus"
)

// statsCollector turns the app monitor's figures (state.Stats) into
// metrics at each scrape: per app, labelled by app id only (a runid label
// would grow without bound), the system's, and the raised alerts.
type statsCollector struct {
	s *Server
	d statsDescs
}

type statsDescs struct {
	cpu, cpuAvg, mem, memPeak, pids, ioRate, io, disk, alert,
	sysCPU, sysMem, sysDisk, net *prometheus.Desc
}

func newStatsDescs() statsDescs {
	app := []string{"app"}
	return statsDescs{
		cpu:     prometheus.NewDesc("osmanager_app_cpu_percent", "CPU use of each app's live runs over the last sample, in percent of one core.", app, nil),
		cpuAvg:  prometheus.NewDesc("osmanager_app_cpu_percent_avg", "CPU use of each app's live runs averaged over the monitor's window, in percent of one core.", app, nil),
		mem:     prometheus.NewDesc("osmanager_app_memory_bytes", "Memory in use by each app's live runs.", app, nil),
		memPeak: prometheus.NewDesc("osmanager_app_memory_peak_bytes", "Peak memory of each app's live runs (the sum of their peaks).", app, nil),
		pids:    prometheus.NewDesc("osmanager_app_pids", "Processes (in unified cgroup mode: tasks) of each app's live runs.", app, nil),
		ioRate:  prometheus.NewDesc("osmanager_app_io_bytes_per_second", "Bytes read and written per second by each app's live runs over the last sample.", app, nil),
		io:      prometheus.NewDesc("osmanager_app_io_bytes", "Bytes read and written by each app's live runs since they started.", app, nil),
		disk:    prometheus.NewDesc("osmanager_app_disk_bytes", "Disk use of each app's data dir (a bounded walk, at most once a minute).", app, nil),
		alert: prometheus.NewDesc("osmanager_alert_raised", "1 for each alert raised now, by app (empty for a system alert) and metric.",
			[]string{"app", "metric"}, nil),
		sysCPU:  prometheus.NewDesc("osmanager_system_cpu_percent", "CPU use of the whole system over the last sample, in percent of all CPUs.", nil, nil),
		sysMem:  prometheus.NewDesc("osmanager_system_memory_used_bytes", "System memory in use (total less available).", nil, nil),
		sysDisk: prometheus.NewDesc("osmanager_system_disk_used_bytes", "Bytes used on the file system of the agent's root.", nil, nil),
		net: prometheus.NewDesc("osmanager_system_network_bytes_per_second", "Traffic of each network interface over the last sample.",
			[]string{"interface", "direction"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.d.cpu, c.d.cpuAvg, c.d.mem, c.d.memPeak, c.d.pids, c.d.ioRate, c.d.io, c.d.disk, c.d.alert, c.d.sysCPU, c.d.sysMem, c.d.sysDisk, c.d.net} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.state.Stats()
	if st.Time.IsZero() {
		return // no monitor, or no sample yet
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	seen := map[string]bool{}
	for _, a := range st.Apps {
		if seen[a.ID] {
			continue // ids are unique; a repeat would fail the whole scrape
		}
		seen[a.ID] = true
		gauge(c.d.cpu, a.CPUPercent, a.ID)
		gauge(c.d.cpuAvg, a.CPUAvg, a.ID)
		gauge(c.d.mem, float64(a.MemoryBytes), a.ID)
		gauge(c.d.memPeak, float64(a.MemoryPeak), a.ID)
		gauge(c.d.pids, float64(a.Pids), a.ID)
		gauge(c.d.ioRate, a.IORate, a.ID)
		gauge(c.d.io, float64(a.IOBytes), a.ID)
		if !a.DiskChecked.IsZero() {
			gauge(c.d.disk, float64(a.DiskBytes), a.ID)
		}
	}
	type key struct{ app, metric string }
	raised := map[key]bool{}
	for _, al := range st.Alerts {
		if k := (key{al.ID, al.Metric}); !raised[k] {
			raised[k] = true
			gauge(c.d.alert, 1, al.ID, al.Metric)
		}
	}
	sys := st.System
	gauge(c.d.sysCPU, sys.CPUPercent)
	gauge(c.d.sysMem, float64(sys.MemoryUsed))
	gauge(c.d.sysDisk, float64(sys.DiskUsed))
	for _, n := range sys.Net {
		gauge(c.d.net, n.RxRate, n.Name, "rx")
		gauge(c.d.net, n.TxRate, n.Name, "tx")
	}
}
