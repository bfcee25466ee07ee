package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"osmanager/agent/conf"
	"osmanager/agent/netconf"
	"osmanager/agent/osconfig"
	"osmanager/agent/script"
	"osmanager/agent/supervisor"
	"osmanager/agent/sysroot"
)

// boot carries what one boot's steps hand each other.
type boot struct {
	*Agent
	ini []byte       // luoyun.ini as read from the floppy; nil if unreadable
	cfg *conf.Config // the config in force: the floppy's, or the last good one
}

func (b *boot) steps() []supervisor.Step {
	return []supervisor.Step{
		{Name: "floppy", Run: b.floppy},
		{Name: "conf", Run: b.conf},
		{Name: "instance", Run: b.instance},
		{Name: "sshkeys", Run: b.sshkeys},
		{Name: "hostname", Run: b.hostname},
		{Name: "nameservers", Run: b.nameservers},
		// The last step that writes files: its write is made under the
		// shadow lock, whose release commits every staged write of the
		// boot, so a first boot's files cost two syncs in all (a locked
		// write ahead of others cost a third).
		{Name: "password", Run: b.password},
		{Name: "network", Run: b.network},
		{Name: "script", Run: b.script},
	}
}

// inSysroot names files changed inside a scratch sysroot as
// "<sysroot>/etc/shadow", so that a summary never reads as if the real /etc
// had been written; on the real root the paths are the real ones.
func (b *boot) inSysroot(changed []string) []string {
	if b.sys.IsHost() || len(changed) == 0 {
		return changed
	}
	out := make([]string, len(changed))
	for i, p := range changed {
		out[i] = "<sysroot>" + p
	}
	return out
}

func (b *boot) os() *osconfig.Config {
	return &osconfig.Config{Root: b.sys, Files: osFiles(b.paths), Log: b.log}
}

func (b *boot) floppy(ctx context.Context) ([]string, string, error) {
	data, err := b.floppyReader().Read(ctx)
	if err != nil {
		return nil, "", err
	}
	b.ini = data
	return nil, fmt.Sprintf("read %d bytes from %s", len(data), b.paths.Floppy), nil
}

// conf parses the floppy's luoyun.ini and keeps a copy as luoyun.conf.
// When the floppy gave nothing usable, the last good luoyun.conf stays in
// force and is what the later steps apply.
func (b *boot) conf(ctx context.Context) ([]string, string, error) {
	var refused error
	if b.ini != nil {
		cfg, err := conf.Parse(b.ini)
		if err == nil {
			b.cfg = cfg
			changed, err := b.ly.WriteFile(b.paths.Conf, b.ini, sysroot.WriteOptions{Mode: 0o600, Owner: sysroot.Keep, MkdirMode: 0o755})
			var out []string
			if changed {
				out = []string{b.opts.Root + b.paths.Conf}
			}
			return out, "", errors.Join(err, problems(cfg))
		}
		refused = fmt.Errorf("luoyun.ini refused: %w", err)
	}
	last, err := b.ly.ReadFile(b.paths.Conf, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		if refused != nil {
			return nil, "", fmt.Errorf("%w; no earlier luoyun.conf", refused)
		}
		return nil, "", errors.New("no luoyun.ini from the floppy and no earlier luoyun.conf")
	}
	if err == nil {
		b.cfg, err = conf.Parse(last)
	}
	if err != nil {
		return nil, "", errors.Join(refused, fmt.Errorf("last good luoyun.conf unusable: %w", err))
	}
	note := "floppy unreadable; using the last good luoyun.conf"
	if refused != nil {
		note = "using the last good luoyun.conf"
	}
	return nil, note, refused
}

// problems joins the items a good file refused, one line each.
func problems(c *conf.Config) error {
	if len(c.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("%d item(s) refused: %w", len(c.Problems), errors.Join(c.Problems...))
}

func (b *boot) noConfig() error { return supervisor.Skip("no instance config") }

func (b *boot) password(ctx context.Context) ([]string, string, error) {
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	if b.cfg.Payload.PasswdHash == nil {
		return nil, "", supervisor.Skip("no passwd_hash")
	}
	ch, err := b.os().SetRootHash(*b.cfg.Payload.PasswdHash)
	return b.inSysroot(ch), "", err
}

func (b *boot) sshkeys(ctx context.Context) ([]string, string, error) {
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	if b.cfg.Payload.PublicKey == nil {
		return nil, "", supervisor.Skip("no public_key")
	}
	ch, err := b.os().SetRootKeys(*b.cfg.Payload.PublicKey)
	if err != nil && errors.Is(err, fs.ErrPermission) && !b.sys.IsHost() && os.Geteuid() != 0 {
		// A scratch sysroot (demo, tests) run by a plain user: /root/.ssh
		// must belong to root, which only root can arrange.
		return b.inSysroot(ch), "", supervisor.Skip(fmt.Sprintf("needs root to give %s to root (running as uid %d)", b.inSysroot([]string{b.paths.SSHDir()})[0], os.Geteuid()))
	}
	return b.inSysroot(ch), "", err
}

func (b *boot) hostname(ctx context.Context) ([]string, string, error) {
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	d := b.cfg.Payload.Domain
	if d == nil || d.Name == "" {
		return nil, "", supervisor.Skip("no domain.name")
	}
	ch, err := b.os().SetHostname(d.Name, d.IP, b.opts.Kernel)
	return b.inSysroot(ch), "", err
}

func (b *boot) nameservers(ctx context.Context) ([]string, string, error) {
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	var lists []string
	if p := b.cfg.Payload.Nameservers; p != nil {
		lists = append(lists, *p)
	}
	for _, n := range b.cfg.Payload.Network {
		lists = append(lists, n.Nameservers)
	}
	servers, bad := osconfig.SplitNameservers(lists...)
	if len(servers) == 0 && bad == nil {
		return nil, "", supervisor.Skip("no name servers")
	}
	ch, note, err := b.os().SetNameservers(servers)
	return b.inSysroot(ch), note, errors.Join(bad, err)
}

func (b *boot) network(ctx context.Context) ([]string, string, error) {
	if on, why := b.allowed(b.opts.Network, "--network"); !on {
		return nil, "", supervisor.Skip(why)
	}
	if b.cfg == nil {
		return nil, "", b.noConfig()
	}
	var entries []netconf.Entry
	for i, n := range b.cfg.Payload.Network {
		if n.Err == nil { // malformed entries were reported by the conf step
			entries = append(entries, netconf.Entry{Index: i, MAC: n.MAC, IP: n.IP, Netmask: n.Netmask, Gateway: n.Gateway})
		}
	}
	if len(entries) == 0 {
		return nil, "", supervisor.Skip("no network entries")
	}
	nl, err := b.netlink()
	if err != nil {
		return nil, "", err
	}
	c := &netconf.Configurator{NL: nl, Log: b.log}
	missing, note := b.netWait(ctx, nl, entries)
	ch, err := c.Apply(ctx, entries)
	if len(missing) > 0 {
		err = netconf.Pending(err, entries, missing)
		b.netwatch = netconf.NewWatcher(b.opts.NetSubscriber, c, entries, missing)
	}
	return ch, note, err
}

// netWait waits (Options.NetWait) for the interfaces the entries name by
// MAC. It returns those still missing, for the watcher to configure when
// they appear, and a note saying so; none when it could not watch.
func (b *boot) netWait(ctx context.Context, nl netconf.Netlink, entries []netconf.Entry) ([]net.HardwareAddr, string) {
	if b.opts.NetSubscriber == nil {
		return nil, "" // a test's fake netlink and no fake updates
	}
	limit := max(b.opts.NetWait, 0)
	missing, err := netconf.Wait(ctx, b.opts.NetSubscriber, nl, netconf.MACs(entries), limit, nil)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("wait for interfaces", "step", "network", "err", err)
		}
		return nil, ""
	}
	if len(missing) == 0 {
		return nil, ""
	}
	them := "it"
	if len(missing) > 1 {
		them = "them"
	}
	return missing, fmt.Sprintf("waiting for %s: not there after %s; will configure %s when it appears", netconf.FormatMACs(missing), limit, them)
}

func (b *boot) script(ctx context.Context) ([]string, string, error) {
	// What the steps before wrote is durable before a script runs: it may
	// reboot at once (reboot -f syncs nothing).
	if err := sysroot.Flush(b.sys, b.ly); err != nil {
		return nil, "", fmt.Errorf("sync the files written: %w", err)
	}
	p, err := b.ly.Path(b.paths.ConfigScript)
	if err != nil {
		return nil, "", err
	}
	s := &script.Script{
		Path:    p,
		Timeout: b.opts.ScriptTimeout,
		Env:     b.scriptEnv(),
		Log:     b.log.With("step", "script"),
	}
	res, err := s.Run(ctx)
	if errors.Is(err, script.ErrNotExecutable) {
		return nil, "", supervisor.Skip("no executable " + strings.TrimPrefix(b.paths.ConfigScript, "/"))
	}
	if err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("%s ran, %d output lines", p, res.Lines)
	if res.ExitCode != 0 {
		return nil, note, fmt.Errorf("%s: exit status %d", p, res.ExitCode)
	}
	return nil, note, nil
}
