package agent

import (
	"cmp"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"

	"osmanager/agent/api"
	"osmanager/agent/apps"
	"osmanager/agent/apps/monitor"
	"osmanager/agent/apps/oci"
	"osmanager/agent/apps/runner"
	"osmanager/agent/apps/store"
	"osmanager/agent/proc"
	"osmanager/agent/supervisor"
	"osmanager/agent/sysroot"
)

// appsServices builds the app manager (agent/apps: store, runner,
// manager) and the local API server (agent/api) that serves it, unless
// Options.NoApps.
func (a *Agent) appsServices() []supervisor.Spec {
	if a.opts.NoApps {
		return nil
	}
	m := a.newApps()
	specs := []supervisor.Spec{{Name: "apps", Service: supervisor.ServiceFunc(m.Serve)}}
	srv, err := a.newAPI(m)
	if err != nil {
		return append(specs, failed("api", err))
	}
	return append(specs, supervisor.Spec{Name: "api", Service: srv})
}

func (a *Agent) newApps() *apps.Manager {
	log := a.sup.Logger("apps")
	cg := &runner.Cgroups{Mode: runner.CgroupNone}
	slice := "osmanager.slice"
	if !a.sys.IsHost() {
		// A scratch root's runs get a slice of their own at the top of
		// the v2 tree (never the agent's delegated cgroup, which the
		// host agent may use), so neither agent sweeps the other's.
		slice = fmt.Sprintf("osmanager-%08x.slice", crc32.ChecksumIEEE([]byte(a.ly.Dir())))
	}
	if on, why := a.allowed(a.opts.AppCgroups, "--app-cgroups"); on {
		cc := runner.CgroupConfig{FS: a.paths.Cgroup, Log: log}
		if !a.sys.IsHost() {
			mount := a.paths.Cgroup
			if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
				mount = filepath.Join(mount, "unified") // hybrid
			}
			cc.Base = filepath.Join(mount, slice)
		}
		cg = runner.SetupCgroups(cc)
	} else {
		log.Info("app runs are process groups only, and stop with the agent", "cgroup_mode", runner.CgroupNone, "why", why)
	}
	table := proc.Table{Dir: a.paths.Proc}
	return apps.New(apps.Config{
		Root:  a.ly,
		Files: storeFiles(a.paths),
		Runs:  a.paths.AppsRuns(),
		Logs:  a.paths.AppsLogs(),
		Store: store.Options{Users: store.PasswdUsers(a.sys, a.paths.Passwd)},
		Runner: runner.Config{
			Runtime: &runner.Mux{
				Process: &runner.Process{Cgroups: cg, Table: table, Log: log},
				OCI:     a.newOCI(cg, slice, table, log),
			},
			PATH: a.paths.PATH,
		},
		State:  a.state,
		Log:    log,
		BootID: filepath.Join(a.paths.Proc, "sys/kernel/random/boot_id"),
		AppsD:  a.paths.AppsD,
		Sys:    a.sys,
		Reload: a.opts.Reload,
		Monitor: monitor.Config{
			Interval: a.opts.StatsInterval, Window: a.opts.StatsWindow,
			Proc: a.paths.Proc, Disk: a.monitorDisk(),
		},
		AlertFile: a.paths.AlertsFile,
	})
}

// monitorDisk is the file system of the monitor's system disk figures:
// the LuoYun dir's (where the apps live).
func (a *Agent) monitorDisk() string {
	if p, err := a.ly.Path("/"); err == nil {
		return p
	}
	return "/"
}

// newOCI is the runtime of OCI bundle apps: --oci-runtime's, if installed;
// without one, bundles install but cannot start (cant_start says what to
// install).
func (a *Agent) newOCI(cg *runner.Cgroups, slice string, table proc.Table, log *slog.Logger) *oci.Runtime {
	kind, bin, err := oci.Find(a.opts.OCIRuntime, a.paths.PATH)
	if err != nil {
		log.Error("no OCI runtime", "err", err)
	}
	state, _ := a.sys.Path(a.paths.OCIState())
	if kind == "" {
		log.Info("no OCI runtime installed: bundle apps cannot start", "oci_runtime", cmp.Or(a.opts.OCIRuntime, oci.Auto), "install", oci.Install)
	} else {
		if _, err := a.sys.MkdirAll(a.paths.OCIState(), 0o700, 0o755, sysroot.Keep); err != nil {
			log.Warn("OCI runtime state dir", "err", err)
		}
		log.Info("OCI runtime for bundle apps", "oci_runtime", kind, "binary", bin, "state", state)
	}
	return &oci.Runtime{
		Kind: kind, Binary: bin, Cgroups: cg, CgroupFS: a.paths.Cgroup, Slice: slice,
		Sys: a.ly, Dir: a.paths.AppsOCI(), State: state, PATH: a.paths.PATH, Table: table, Log: log,
	}
}

// apiSocket is the local API's socket: --api-socket, else the path
// table's in the system root (whose directory is made).
func (a *Agent) apiSocket() (string, error) {
	if a.opts.APISocket != "" {
		return filepath.Abs(a.opts.APISocket)
	}
	if _, err := a.sys.MkdirAll(filepath.Dir(a.paths.APISocket), 0o755, 0o755, sysroot.Keep); err != nil {
		return "", fmt.Errorf("api: socket dir: %w", err)
	}
	return a.sys.Path(a.paths.APISocket)
}

func (a *Agent) newAPI(m *apps.Manager) (*api.Server, error) {
	sock, err := a.apiSocket()
	if err != nil {
		return nil, err
	}
	cfg := api.Config{
		Socket: sock, Group: a.opts.APIGroup, Sys: a.sys, GroupFile: a.paths.Group,
		Apps: m, Log: a.sup.Logger("api"), ProcDir: a.paths.Proc,
	}
	if src, err := a.statusSource(); err == nil {
		cfg.Status = src
	} else {
		a.log.Warn("api: no status document", "err", err)
	}
	return api.New(cfg)
}
