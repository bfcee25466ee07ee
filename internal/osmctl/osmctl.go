// Package osmctl is the command-line client of a running osmanager: one
// verb per local API call (agent/api), with the aliases AGL's afm-util and
// RDK DSM users know. It links only the API's client and wire types,
// apperr and internal/version: no service, no part of the agent.
//
// Output is for people by default (aligned tables); --json prints the
// API's JSON as it was sent. Exit status: 0 on success, 1 when the agent
// refused or failed the call (or cannot be reached), 2 for bad usage.
package osmctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"osmanager/agent/api/apitypes"
	"osmanager/agent/api/client"
	"osmanager/agent/apps/apperr"
	"osmanager/internal/version"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitFail  = 1 // the call failed: an API error, no agent, a local file
	ExitUsage = 2
)

// SocketEnv names the socket when --socket does not.
const SocketEnv = "OSMANAGER_SOCKET"

// usageError is bad usage: exit status 2, with a pointer to help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// cmd is one invocation.
type cmd struct {
	ctx    context.Context
	c      *client.Client
	json   bool
	args   []string
	stdout io.Writer
	stderr io.Writer
	// verb flags
	sha256 string
	force  bool
	purge  bool
	lines  int
	follow bool
	watch  bool
}

type verb struct {
	name    string
	aliases []string
	args    string // for the usage
	help    string
	min     int // positional arguments
	max     int
	flags   func(fs *flag.FlagSet, c *cmd)
	run     func(c *cmd) error
}

var verbs = []verb{
	{"install", nil, "PATH|URL [--sha256 H] [--force]", "install a package (a URL needs --sha256)", 1, 1, func(fs *flag.FlagSet, c *cmd) {
		fs.StringVar(&c.sha256, "sha256", "", "the archive's hex SHA-256")
		fs.BoolVar(&c.force, "force", false, "install the same or an older version again")
	}, (*cmd).install},
	{"uninstall", []string{"du.uninstall"}, "ID [--purge]", "stop every run and remove an app (--purge: its data too)", 1, 1, func(fs *flag.FlagSet, c *cmd) {
		fs.BoolVar(&c.purge, "purge", false, "remove the app's data dir too")
	}, (*cmd).uninstall},
	{"list", []string{"runnables", "du.list"}, "", "list the installed apps", 0, 0, nil, (*cmd).list},
	{"detail", []string{"du.detail"}, "ID", "describe an app and its runs", 1, 1, nil, (*cmd).detail},
	{"start", []string{"eu.start"}, "ID", "start an app; prints its runid", 1, 1, nil, (*cmd).start},
	{"once", nil, "ID", "the app's running instance, or start one", 1, 1, nil, (*cmd).once},
	{"terminate", []string{"eu.stop"}, "RUNID|ID", "stop a run, or every run of an app", 1, 1, nil, (*cmd).terminate},
	{"pause", nil, "RUNID", "freeze a run", 1, 1, nil, runVerb("pause")},
	{"resume", nil, "RUNID", "thaw a paused run", 1, 1, nil, runVerb("resume")},
	{"runners", []string{"eu.list"}, "", "list the runs", 0, 0, nil, (*cmd).runners},
	{"state", []string{"eu.detail"}, "RUNID", "a run's state and pids (leader first)", 1, 1, nil, (*cmd).state},
	{"logs", nil, "ID [-n N] [-f]", "an app's output: the last N lines (default 100), -f to follow", 1, 1, func(fs *flag.FlagSet, c *cmd) {
		fs.IntVar(&c.lines, "n", -1, "lines to show")
		fs.BoolVar(&c.follow, "f", false, "follow the output")
		fs.BoolVar(&c.follow, "follow", false, "follow the output")
	}, (*cmd).logs},
	{"rollback", nil, "ID", "go back to the previous version", 1, 1, nil, appVerb("rollback")},
	{"enable", nil, "ID", "start the app at boot", 1, 1, nil, appVerb("enable")},
	{"disable", nil, "ID", "do not start the app at boot", 1, 1, nil, appVerb("disable")},
	{"events", nil, "", "print events as they happen (until interrupted)", 0, 0, nil, (*cmd).events},
	{"services", nil, "", "list the declared services (apps.d) and refused entries", 0, 0, nil, (*cmd).services},
	{"reload", nil, "", "read the declared services (apps.d) again and apply them", 0, 0, nil, (*cmd).reload},
	{"stats", nil, "[ID|RUNID] [--watch]", "CPU, memory, pids, I/O and disk of the apps (or one) and the system, and raised alerts", 0, 1, func(fs *flag.FlagSet, c *cmd) {
		fs.BoolVar(&c.watch, "watch", false, "show them again every sample (until interrupted)")
		fs.BoolVar(&c.watch, "w", false, "show them again every sample")
	}, (*cmd).stats},
	{"status", nil, "", "the agent's status document", 0, 0, nil, (*cmd).status},
	{"version", nil, "", "print the version of osmctl and of the agent", 0, 0, nil, (*cmd).version},
	{"help", nil, "", "print this help", 0, 0, nil, nil},
}

func findVerb(name string) *verb {
	for i := range verbs {
		v := &verbs[i]
		if v.name == name {
			return v
		}
		for _, a := range v.aliases {
			if a == name {
				return v
			}
		}
	}
	return nil
}

// Usage is the help text.
func Usage() string {
	var b strings.Builder
	b.WriteString("usage: osmctl [--socket PATH] [--json] <command> [args]\n\ncommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, v := range verbs {
		name := v.name
		if len(v.aliases) > 0 {
			name += " (" + strings.Join(v.aliases, ", ") + ")"
		}
		fmt.Fprintf(tw, "  %s %s\t%s\n", name, v.args, v.help)
	}
	tw.Flush()
	fmt.Fprintf(&b, `
options (anywhere on the line):
  --socket PATH  the agent's socket (default $%s, else %s)
  --json         print the API's JSON as sent

exit status: 0 success, 1 the call failed, 2 bad usage
`, SocketEnv, client.DefaultSocket)
	return b.String()
}

// Main runs osmctl with args (without the program name) and returns the
// exit status. getenv reads the environment.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := run(ctx, args, getenv, stdout, stderr)
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "osmctl: %s\nrun 'osmctl help' for the commands\n", ue.msg)
		return ExitUsage
	}
	msg := err.Error()
	if code := apperr.CodeOf(err); code != "" && code != apperr.Internal && code != apperr.Forbidden {
		msg += " (" + string(code) + ")"
	}
	fmt.Fprintln(stderr, "osmctl:", msg)
	return ExitFail
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &cmd{ctx: ctx, stdout: stdout, stderr: stderr}
	socket := getenv(SocketEnv)
	global := func(fs *flag.FlagSet) {
		fs.StringVar(&socket, "socket", socket, "")
		fs.BoolVar(&c.json, "json", c.json, "")
	}
	fs := flag.NewFlagSet("osmctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	global(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, Usage())
			return nil
		}
		return usagef("%v", err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, Usage())
		return usagef("no command")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	switch name {
	case "--version", "-version":
		name = "version"
	}
	v := findVerb(name)
	if v == nil {
		return usagef("unknown command %q", name)
	}
	if v.name == "help" {
		fmt.Fprint(stdout, Usage())
		return nil
	}
	vfs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	vfs.SetOutput(io.Discard)
	global(vfs)
	if v.flags != nil {
		v.flags(vfs, c)
	}
	// Flags and arguments may come in any order.
	for {
		if err := vfs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "usage: osmctl %s %s\n  %s\n", v.name, v.args, v.help)
				return nil
			}
			return usagef("%s: %v", v.name, err)
		}
		if vfs.NArg() == 0 {
			break
		}
		c.args = append(c.args, vfs.Arg(0))
		rest = vfs.Args()[1:]
	}
	if len(c.args) < v.min || len(c.args) > v.max {
		return usagef("usage: osmctl %s %s", v.name, v.args)
	}
	if socket == "" {
		socket = client.DefaultSocket
	}
	c.c = client.New(socket)
	defer c.c.Close()
	return v.run(c)
}

// print writes raw as is with --json, or decodes it into T for human.
func printAs[T any](c *cmd, raw []byte, human func(T)) error {
	if c.json {
		_, err := c.stdout.Write(raw)
		return err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("bad answer from the agent: %w", err)
	}
	human(v)
	return nil
}

func (c *cmd) call(r client.Request) ([]byte, error) { return c.c.Call(c.ctx, r) }

func (c *cmd) install() error {
	src := c.args[0]
	var r client.Request
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if c.sha256 == "" {
			return usagef("install %s: a URL needs --sha256", src)
		}
		r = client.InstallRequest(apitypes.InstallRequest{URL: src, SHA256: c.sha256, Force: c.force})
	} else {
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("install: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("install: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("install: %s is not a file", src)
		}
		r = client.InstallArchiveRequest(f, c.sha256, c.force)
		r.Length = fi.Size()
	}
	raw, err := c.call(r)
	if err != nil {
		return err
	}
	return printAs(c, raw, func(a apitypes.App) {
		fmt.Fprintf(c.stdout, "installed %s %s\n", a.ID, a.Version)
	})
}

func (c *cmd) uninstall() error {
	raw, err := c.call(client.UninstallRequest(c.args[0], c.purge))
	if err != nil {
		return err
	}
	return printAs(c, raw, func(r apitypes.Removed) {
		if r.Purged {
			fmt.Fprintf(c.stdout, "removed %s and its data\n", r.ID)
		} else {
			fmt.Fprintf(c.stdout, "removed %s (its data dir is kept; --purge removes it)\n", r.ID)
		}
	})
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runList(runs []apitypes.Run) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%d:%s", r.RunID, r.State))
	}
	if s == nil {
		return "-"
	}
	return strings.Join(s, ",")
}

func (c *cmd) list() error {
	raw, err := c.call(client.Request{Method: http.MethodGet, Path: "/v1/apps"})
	if err != nil {
		return err
	}
	return printAs(c, raw, func(apps []apitypes.App) {
		tw := table(c.stdout)
		fmt.Fprintln(tw, "ID\tVERSION\tDESIRED\tENABLED\tRESTARTS\tRUNS\tNAME")
		for _, a := range apps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Version, a.Desired, yesNo(a.Enabled), a.Restarts, runList(a.Runs), dash(a.Name))
		}
		tw.Flush()
	})
}

func (c *cmd) detail() error {
	raw, err := c.call(client.Request{Method: http.MethodGet, Path: client.AppPath(c.args[0], "")})
	if err != nil {
		return err
	}
	return printAs(c, raw, func(a apitypes.App) {
		tw := table(c.stdout)
		for _, kv := range [][2]string{
			{"id", a.ID}, {"name", dash(a.Name)}, {"description", dash(a.Description)},
			{"version", a.Version}, {"previous", dash(a.Previous)}, {"installed", when(a.Installed)},
			{"sha256", dash(a.SHA256)}, {"size", strconv.FormatInt(a.Size, 10)},
			{"user", dash(a.User)}, {"instances", dash(a.Instances)}, {"restart", dash(a.Restart)},
			{"desired", string(a.Desired)}, {"enabled", yesNo(a.Enabled)}, {"restarts", strconv.FormatInt(a.Restarts, 10)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
		if a.Bundle {
			fmt.Fprintf(tw, "kind:\tOCI bundle\n")
		}
		if a.Problem != "" {
			fmt.Fprintf(tw, "problem:\t%s\n", a.Problem)
		}
		tw.Flush()
		if len(a.Runs) > 0 {
			fmt.Fprintln(c.stdout)
			runTable(c.stdout, a.Runs)
		}
	})
}

func (c *cmd) startLike(verb string) error {
	raw, err := c.call(client.Request{Method: http.MethodPost, Path: client.AppPath(c.args[0], verb)})
	if err != nil {
		return err
	}
	return printAs(c, raw, func(s apitypes.Started) {
		fmt.Fprintf(c.stdout, "%s: run %d %s", s.ID, s.RunID, s.State)
		if s.Note != "" {
			fmt.Fprintf(c.stdout, " (%s)", s.Note)
		}
		fmt.Fprintln(c.stdout)
	})
}

func (c *cmd) start() error { return c.startLike("start") }
func (c *cmd) once() error  { return c.startLike("once") }

func parseRunID(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usagef("bad runid %q: a positive integer", s)
	}
	return n, nil
}

func isRunID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func describeRun(w io.Writer, r apitypes.Run) {
	fmt.Fprintf(w, "run %d of %s: %s", r.RunID, r.ID, r.State)
	if r.LastExit != nil {
		fmt.Fprintf(w, " (%s)", r.LastExit)
	}
	if r.Reason != "" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintln(w)
}

func exitText(e *apitypes.Exit) string {
	if e == nil {
		return "-"
	}
	return e.String()
}

func runVerb(verb string) func(*cmd) error {
	return func(c *cmd) error {
		id, err := parseRunID(c.args[0])
		if err != nil {
			return err
		}
		raw, err := c.call(client.Request{Method: http.MethodPost, Path: client.RunPath(id, verb)})
		if err != nil {
			return err
		}
		return printAs(c, raw, func(r apitypes.Run) { describeRun(c.stdout, r) })
	}
}

// terminate takes a runid (all digits) or an app id, whose live runs it
// all terminates.
func (c *cmd) terminate() error {
	if isRunID(c.args[0]) {
		return runVerb("terminate")(c)
	}
	id := c.args[0]
	raw, err := c.call(client.Request{Method: http.MethodGet, Path: "/v1/runs"})
	if err != nil {
		return err
	}
	var runs []apitypes.Run
	if err := json.Unmarshal(raw, &runs); err != nil {
		return fmt.Errorf("bad answer from the agent: %w", err)
	}
	var out []json.RawMessage
	var errs []error
	for _, r := range runs {
		if r.ID != id || r.State.Done() {
			continue
		}
		raw, err := c.call(client.Request{Method: http.MethodPost, Path: client.RunPath(r.RunID, "terminate")})
		if err != nil {
			errs = append(errs, fmt.Errorf("run %d: %w", r.RunID, err))
			continue
		}
		out = append(out, raw)
		if !c.json {
			var t apitypes.Run
			if json.Unmarshal(raw, &t) == nil {
				describeRun(c.stdout, t)
			}
		}
	}
	if c.json {
		b, _ := json.MarshalIndent(append([]json.RawMessage{}, out...), "", "  ")
		fmt.Fprintf(c.stdout, "%s\n", b)
	}
	if len(out) == 0 && len(errs) == 0 {
		// Say whether the app exists at all.
		if _, err := c.call(client.Request{Method: http.MethodGet, Path: client.AppPath(id, "")}); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(c.stdout, "%s: no live run\n", id)
		}
	}
	return errors.Join(errs...)
}

func runTable(w io.Writer, runs []apitypes.Run) {
	tw := table(w)
	fmt.Fprintln(tw, "RUNID\tAPP\tVERSION\tSTATE\tPIDS\tSINCE\tRESTARTS\tEXIT")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.RunID, r.ID, r.Version, r.State, pids(r.PIDs), when(r.Since), r.Restarts, exitText(r.LastExit))
	}
	tw.Flush()
}

func pids(p []int) string {
	if len(p) == 0 {
		return "-"
	}
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func (c *cmd) runners() error {
	raw, err := c.call(client.Request{Method: http.MethodGet, Path: "/v1/runs"})
	if err != nil {
		return err
	}
	return printAs(c, raw, func(runs []apitypes.Run) { runTable(c.stdout, runs) })
}

func (c *cmd) state() error {
	id, err := parseRunID(c.args[0])
	if err != nil {
		return err
	}
	raw, err := c.call(client.Request{Method: http.MethodGet, Path: client.RunPath(id, "")})
	if err != nil {
		return err
	}
	return printAs(c, raw, func(r apitypes.Run) {
		tw := table(c.stdout)
		fmt.Fprintf(tw, "runid:\t%d\nid:\t%s\nversion:\t%s\nstate:\t%s\npids:\t%s\nstarted:\t%s\nsince:\t%s\nrestarts:\t%d\n",
			r.RunID, r.ID, r.Version, r.State, pids(r.PIDs), when(r.Started), when(r.Since), r.Restarts)
		if r.LastExit != nil {
			fmt.Fprintf(tw, "last exit:\t%s\n", r.LastExit)
		}
		if !r.NextStart.IsZero() {
			fmt.Fprintf(tw, "next start:\t%s\n", when(r.NextStart))
		}
		if r.Reason != "" {
			fmt.Fprintf(tw, "reason:\t%s\n", r.Reason)
		}
		if r.Cgroup != "" {
			fmt.Fprintf(tw, "cgroups:\t%s\n", r.Cgroup)
		}
		tw.Flush()
	})
}

func (c *cmd) logs() error {
	rc, err := c.c.Stream(c.ctx, client.LogsRequest(c.args[0], c.lines, c.follow))
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(c.stdout, rc); err != nil && c.ctx.Err() == nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

func appVerb(verb string) func(*cmd) error {
	return func(c *cmd) error {
		raw, err := c.call(client.Request{Method: http.MethodPost, Path: client.AppPath(c.args[0], verb)})
		if err != nil {
			return err
		}
		return printAs(c, raw, func(a apitypes.App) {
			switch verb {
			case "rollback":
				fmt.Fprintf(c.stdout, "%s: now at %s\n", a.ID, a.Version)
			case "enable":
				fmt.Fprintf(c.stdout, "%s: enabled (started at boot)\n", a.ID)
			default:
				fmt.Fprintf(c.stdout, "%s: disabled (not started at boot)\n", a.ID)
			}
		})
	}
}

func (c *cmd) events() error {
	ev, err := c.c.Events(c.ctx)
	if err != nil {
		return err
	}
	defer ev.Close()
	for {
		e, line, err := ev.Next()
		if err != nil {
			if c.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("events: the agent ended the stream (restarted, or this reader fell behind)")
			}
			return fmt.Errorf("events: %w", err)
		}
		if c.json {
			fmt.Fprintf(c.stdout, "%s\n", line)
			continue
		}
		fmt.Fprintln(c.stdout, eventText(e))
	}
}

func eventText(e apitypes.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-9s", when(e.Time), e.Type)
	if e.ID != "" {
		b.WriteString(" " + e.ID)
	}
	if e.Version != "" {
		b.WriteString(" " + e.Version)
	}
	if e.RunID != 0 {
		fmt.Fprintf(&b, " run %d", e.RunID)
	}
	if e.State != "" {
		b.WriteString(" " + string(e.State))
	}
	if e.Exit != nil {
		b.WriteString(" (" + e.Exit.String() + ")")
	}
	if a := e.Alert; a != nil {
		s := "cleared"
		if a.Raised {
			s = "raised"
		}
		fmt.Fprintf(&b, " %s %s (value %g, threshold %g)", a.Metric, s, a.Value, a.Threshold)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (c *cmd) status() error {
	raw, err := c.c.Status(c.ctx)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(raw)
	return err
}

// version prints osmctl's version, and the agent's when it answers
// within a second; it succeeds without an agent.
func (c *cmd) version() error {
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	defer cancel()
	agent := ""
	if raw, err := c.c.Status(ctx); err == nil {
		var doc struct {
			Agent struct {
				Version string `json:"version"`
			} `json:"agent"`
		}
		if json.Unmarshal(raw, &doc) == nil {
			agent = doc.Agent.Version
		}
	}
	if c.json {
		b, _ := json.Marshal(map[string]string{"osmctl": version.String(), "agent": agent})
		fmt.Fprintf(c.stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintln(c.stdout, "osmctl", version.String())
	if agent != "" {
		fmt.Fprintln(c.stdout, "agent ", agent)
	}
	return nil
}
