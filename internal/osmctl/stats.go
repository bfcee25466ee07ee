package osmctl

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
)

// stats shows the monitor's figures once, or with --watch again after
// every sample until interrupted.
func (c *cmd) stats() error {
	id := ""
	if len(c.args) > 0 {
		id = c.args[0]
	}
	for {
		raw, err := c.call(client.StatsRequest(id))
		if err != nil {
			if c.watch && c.ctx.Err() != nil {
				return nil
			}
			return err
		}
		var every time.Duration
		err = printAs(c, raw, func(st apitypes.Stats) {
			statsText(c.stdout, st)
			every = time.Duration(st.Interval * float64(time.Second))
		})
		if err != nil || !c.watch {
			return err
		}
		if c.json {
			fmt.Fprintln(c.stdout)
			every = time.Second
		}
		t := time.NewTimer(max(every, 100*time.Millisecond))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if !c.json {
			fmt.Fprintln(c.stdout)
		}
	}
}

func statsText(w io.Writer, st apitypes.Stats) {
	sys := st.System
	fmt.Fprintf(w, "%s  system: cpu %s (avg %s), memory %s of %s (%s), disk %s %s of %s (%s)\n", when(st.Time),
		pct(sys.CPUPercent), pct(sys.CPUAvg), size(float64(sys.MemoryUsed)), size(float64(sys.MemoryTotal)), pct(sys.MemoryPercent),
		sys.DiskPath, size(float64(sys.DiskUsed)), size(float64(sys.DiskTotal)), pct(sys.DiskPercent))
	if len(sys.Net) > 0 {
		tw := table(w)
		fmt.Fprintln(tw, "INTERFACE\tRX/S\tTX/S\tRX/S AVG\tTX/S AVG")
		for _, n := range sys.Net {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, size(n.RxRate), size(n.TxRate), size(n.RxAvg), size(n.TxAvg))
		}
		tw.Flush()
	}
	tw := table(w)
	fmt.Fprintf(tw, "APP\tRUN\tCPU\tCPU AVG\tMEMORY\tPEAK\tPIDS\tIO/S\tIO/S AVG\tDISK\tFROM\n")
	for _, a := range st.Apps {
		disk := size(float64(a.DiskBytes))
		if a.DiskChecked.IsZero() {
			disk = "-"
		} else if a.DiskPartial {
			disk = ">" + disk
		}
		f := a.Figures
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, "all", pct(f.CPUPercent), pct(f.CPUAvg), size(float64(f.MemoryBytes)), size(float64(f.MemoryPeak)),
			f.Pids, size(f.IORate), size(f.IOAvg), disk)
		for _, r := range a.Runs {
			f := r.Figures
			from := r.Source
			if r.Error != "" {
				from += ": " + r.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\t%s\n", "", strconv.FormatUint(r.RunID, 10), pct(f.CPUPercent), pct(f.CPUAvg), size(float64(f.MemoryBytes)),
				size(float64(f.MemoryPeak)), f.Pids, size(f.IORate), size(f.IOAvg), from)
		}
	}
	tw.Flush()
	if len(st.Alerts) == 0 {
		fmt.Fprintln(w, "alerts: none raised")
		return
	}
	fmt.Fprintln(w, "alerts raised:")
	for _, a := range st.Alerts {
		who := dash(a.ID)
		if a.ID == "" {
			who = "system"
		}
		fmt.Fprintf(w, "  %s %s above %s since %s (value %s)\n", who, a.Metric, alertValue(a.Metric, a.Threshold), when(a.Since), alertValue(a.Metric, a.Value))
	}
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" }

// size writes a byte count (or bytes/s) with a binary unit.
func size(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// alertValue writes a threshold or value in the metric's unit.
func alertValue(metric string, v float64) string {
	switch metric {
	case "cpu":
		return pct(v)
	case "pids":
		return strconv.FormatFloat(v, 'f', 0, 64)
	case "memory", "disk":
		if v <= 100 {
			return strconv.FormatFloat(v, 'g', -1, 64) // a system percentage, or a few bytes
		}
		return size(v)
	}
	return size(v) + "/s" // io, net:<if>
}
