package osmctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
)

// The declared services' verbs.

func (c *cmd) services() error {
	raw, err := c.call(client.ServicesRequest)
	if err != nil {
		return err
	}
	return printAs(c, raw, func(l apitypes.ServiceList) { serviceTable(c.stdout, l) })
}

// reload fails (exit 1) when the declaration has refused entries or
// failed services, after printing them, so a script that deploys an
// apps.d file sees it.
func (c *cmd) reload() error {
	raw, err := c.call(client.ReloadRequest)
	if err != nil {
		return err
	}
	var rep apitypes.Reloaded
	err = printAs(c, raw, func(r apitypes.Reloaded) {
		fmt.Fprintf(c.stdout, "reloaded %s: added %s; removed %s; changed %s; unchanged %s\n\n",
			dash(r.Dir), names(r.Added), names(r.Removed), names(r.Changed), names(r.Unchanged))
		serviceTable(c.stdout, r.ServiceList)
	})
	if err != nil {
		return err
	}
	if jerr := json.Unmarshal(raw, &rep); jerr != nil {
		return nil
	}
	if n := len(rep.Problems) + failedUnits(rep.Services); n > 0 {
		return fmt.Errorf("reload: %d declared entries refused or failed", n)
	}
	return nil
}

func names(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func failedUnits(ss []apitypes.Service) int {
	n := 0
	for _, s := range ss {
		if s.State == apitypes.Failed {
			n++
		}
	}
	return n
}

func serviceTable(w io.Writer, l apitypes.ServiceList) {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tAPP\tSTART\tSOCKETS\tSTATE\tRUNID\tSTARTS\tFILE")
	for _, s := range l.Services {
		app := strings.Join(append([]string{s.App}, s.Args...), " ")
		runid := "-"
		if s.RunID != 0 {
			runid = strconv.FormatUint(s.RunID, 10)
		}
		sockets := "-"
		if len(s.Sockets) > 0 {
			sockets = strings.Join(s.Sockets, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", dash(s.Name), app, s.Start, sockets, s.State, runid, s.Starts, s.File)
	}
	tw.Flush()
	var errs []string
	for _, s := range l.Services {
		if s.Error != "" {
			errs = append(errs, s.Error)
		}
	}
	for _, p := range l.Problems {
		if p.Key == "" {
			errs = append(errs, p.File+": "+p.Message)
		} else {
			errs = append(errs, p.File+": "+p.Key+": "+p.Message)
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(w, "\nrefused or failed:")
		for _, e := range errs {
			fmt.Fprintln(w, "  "+e)
		}
	}
}
