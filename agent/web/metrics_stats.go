package web

// exposeStats turns the app monitor's figures (state.Stats) into metrics
// at each scrape: per app, labelled by app id only (a runid label would
// grow without bound), the system's, and the raised alerts.
func (m *metrics) exposeStats(e *expo) {
	st := m.s.state.Stats()
	if st.Time.IsZero() {
		return // no monitor, or no sample yet
	}
	// Ids are unique; a repeat would make a scrape with duplicate series.
	apps := st.Apps[:0:0]
	seen := map[string]bool{}
	for _, a := range st.Apps {
		if !seen[a.ID] {
			seen[a.ID] = true
			apps = append(apps, a)
		}
	}
	perApp := func(name, help string, v func(i int) (float64, bool)) {
		e.family(name, "gauge", help)
		for i, a := range apps {
			if x, ok := v(i); ok {
				e.sample("", x, "app", a.ID)
			}
		}
	}
	perApp("osmanager_app_cpu_percent", "CPU use of each app's live runs over the last sample, in percent of one core.",
		func(i int) (float64, bool) { return apps[i].CPUPercent, true })
	perApp("osmanager_app_cpu_percent_avg", "CPU use of each app's live runs averaged over the monitor's window, in percent of one core.",
		func(i int) (float64, bool) { return apps[i].CPUAvg, true })
	perApp("osmanager_app_memory_bytes", "Memory in use by each app's live runs.",
		func(i int) (float64, bool) { return float64(apps[i].MemoryBytes), true })
	perApp("osmanager_app_memory_peak_bytes", "Peak memory of each app's live runs (the sum of their peaks).",
		func(i int) (float64, bool) { return float64(apps[i].MemoryPeak), true })
	perApp("osmanager_app_pids", "Processes (in unified cgroup mode: tasks) of each app's live runs.",
		func(i int) (float64, bool) { return float64(apps[i].Pids), true })
	perApp("osmanager_app_io_bytes_per_second", "Bytes read and written per second by each app's live runs over the last sample.",
		func(i int) (float64, bool) { return apps[i].IORate, true })
	perApp("osmanager_app_io_bytes", "Bytes read and written by each app's live runs since they started.",
		func(i int) (float64, bool) { return float64(apps[i].IOBytes), true })
	perApp("osmanager_app_disk_bytes", "Disk use of each app's data dir (a bounded walk, at most once a minute).",
		func(i int) (float64, bool) { return float64(apps[i].DiskBytes), !apps[i].DiskChecked.IsZero() })

	e.family("osmanager_alert_raised", "gauge", "1 for each alert raised now, by app (empty for a system alert) and metric.")
	type key struct{ app, metric string }
	raised := map[key]bool{}
	for _, al := range st.Alerts {
		if k := (key{al.ID, al.Metric}); !raised[k] {
			raised[k] = true
			e.sample("", 1, "app", al.ID, "metric", al.Metric)
		}
	}
	sys := st.System
	e.family("osmanager_system_cpu_percent", "gauge", "CPU use of the whole system over the last sample, in percent of all CPUs.")
	e.sample("", sys.CPUPercent)
	e.family("osmanager_system_memory_used_bytes", "gauge", "System memory in use (total less available).")
	e.sample("", float64(sys.MemoryUsed))
	e.family("osmanager_system_disk_used_bytes", "gauge", "Bytes used on the file system of the agent's root.")
	e.sample("", float64(sys.DiskUsed))
	e.family("osmanager_system_network_bytes_per_second", "gauge", "Traffic of each network interface over the last sample.")
	for _, n := range sys.Net {
		e.sample("", n.RxRate, "direction", "rx", "interface", n.Name)
		e.sample("", n.TxRate, "direction", "tx", "interface", n.Name)
	}
}
