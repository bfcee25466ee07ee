package web

import (
	"bytes"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"osmanager/agent/state"
)

// The metrics are written in the Prometheus text exposition format
// (version 0.0.4) by the small writer below instead of a client library:
// the agent has a fixed, small set of families, and the library (with
// protobuf and procfs behind it) was 2.4 MB of the binary and most of its
// start-up work. Each scrape reads the agent's state and the process's
// /proc files afresh; the only state kept between scrapes is the request
// counters and histograms.

// metricsContentType is what Prometheus expects of the text format.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// maxScrapes bounds the scrapes served at once (each one reads /proc and
// the state); more get 503.
const maxScrapes = 4

// durationBuckets are the upper bounds of osmanager_http_request_duration_seconds.
var durationBuckets = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1}

// metrics is the server's own instruments, private to one server: the
// request counters by handler and code and a duration histogram by
// handler. The agent's state is read at scrape time, so no other service
// needs to know about metrics.
type metrics struct {
	s       *Server
	handler http.Handler
	scrapes chan struct{} // a slot per scrape in flight

	// The counters and histograms in use, so that a request costs a read
	// lock and atomic adds.
	mu        sync.RWMutex
	counters  map[counterKey]*atomic.Uint64
	durations map[string]*histogram
}

type counterKey struct {
	handler string
	code    int
}

// histogram counts observations per bucket (not cumulated: the writer
// adds them up), their sum (float64 bits) and their count.
type histogram struct {
	buckets [len(durationBuckets)]atomic.Uint64
	count   atomic.Uint64
	sumBits atomic.Uint64
}

func (h *histogram) observe(v float64) {
	if i, _ := slices.BinarySearch(durationBuckets[:], v); i < len(durationBuckets) {
		h.buckets[i].Add(1)
	}
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	h.count.Add(1) // last: a scrape never sees more in count than in the buckets' sum
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		s:         s,
		scrapes:   make(chan struct{}, maxScrapes),
		counters:  map[counterKey]*atomic.Uint64{},
		durations: map[string]*histogram{},
	}
	m.handler = http.HandlerFunc(m.serve)
	return m
}

// observe counts a finished request.
func (m *metrics) observe(handler string, code int, d time.Duration) {
	k := counterKey{handler, code}
	m.mu.RLock()
	c, h := m.counters[k], m.durations[handler]
	m.mu.RUnlock()
	if c == nil || h == nil {
		m.mu.Lock()
		if c = m.counters[k]; c == nil {
			c = new(atomic.Uint64)
			if len(m.counters) < 256 { // codes are few; bound it anyway
				m.counters[k] = c
			}
		}
		if h = m.durations[handler]; h == nil {
			h = new(histogram)
			m.durations[handler] = h
		}
		m.mu.Unlock()
	}
	c.Add(1)
	h.observe(d.Seconds())
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) {
	select {
	case m.scrapes <- struct{}{}:
		defer func() { <-m.scrapes }()
	default:
		http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
		return
	}
	body := m.expose()
	h := w.Header()
	h.Set("Content-Type", metricsContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// runStates are the states of an application's run (agent/state.RunView),
// each a sample of osmanager_app_state.
var runStates = [...]string{"starting", "running", "paused", "stopping", "exited", "failed"}

// expose writes every family.
func (m *metrics) expose() []byte {
	e := &expo{b: make([]byte, 0, 8<<10)}
	m.exposeState(e)
	m.exposeStats(e)
	m.exposeRequests(e)
	exposeProcess(e)
	return e.b
}

// exposeState turns a snapshot of the agent's state into metrics.
func (m *metrics) exposeState(e *expo) {
	st := m.s.state
	oneHot := func(cur bool) float64 {
		if cur {
			return 1
		}
		return 0
	}
	stepStatuses := [...]state.StepStatus{state.StepOK, state.StepFailed, state.StepSkipped}
	linkStates := [...]state.LinkStatus{state.LinkDisconnected, state.LinkDiscovering, state.LinkConnecting, state.LinkAuthenticating, state.LinkRegistered}
	serviceStatuses := [...]state.ServiceStatus{state.ServiceStarting, state.ServiceRunning, state.ServiceBackoff, state.ServiceFailed, state.ServiceStopped}

	steps := st.Steps()
	e.family("osmanager_boot_step_duration_seconds", "gauge", "How long each boot step took at this start.")
	for _, step := range steps {
		e.sample("", step.Duration.Seconds(), "step", step.Name)
	}
	e.family("osmanager_boot_step_status", "gauge", "Outcome of each boot step: 1 for its status (ok, failed, skipped), 0 for the others.")
	for _, step := range steps {
		for _, x := range stepStatuses {
			e.sample("", oneHot(step.Status == x), "status", string(x), "step", step.Name)
		}
	}

	link := st.Link()
	if link.Status == "" {
		link.Status = state.LinkDisconnected
	}
	e.family("osmanager_controller_link_state", "gauge", "Cloud-controller link: 1 for the current state, 0 for the others.")
	for _, x := range linkStates {
		e.sample("", oneHot(link.Status == x), "state", string(x))
	}
	if !link.Since.IsZero() {
		e.family("osmanager_controller_link_state_since_timestamp_seconds", "gauge", "When the controller link entered its current state (Unix time).")
		e.sample("", float64(link.Since.UnixMilli())/1e3)
	}
	e.family("osmanager_controller_reconnects_total", "counter", "Times the controller link has been re-established.")
	e.sample("", float64(link.Reconnects))

	if app := st.AppHealth(); !app.Checked.IsZero() {
		e.family("osmanager_app_status_code", "gauge", "Application status as reported to the controller: from custom/scripts/status (2000 + exit code; 2128 unknown), or without one from the apps (2000 every app meant to run runs, 2129 one does not, 2130 one failed).")
		e.sample("", float64(app.Code))
		e.family("osmanager_app_status_checked_timestamp_seconds", "gauge", "When the application status was last checked: custom/scripts/status ran, or the apps changed (Unix time).")
		e.sample("", float64(app.Checked.UnixMilli())/1e3)
	}

	services := st.Services()
	e.family("osmanager_service_state", "gauge", "Agent services: 1 for each service's current state, 0 for the others.")
	for _, sv := range services {
		for _, x := range serviceStatuses {
			e.sample("", oneHot(sv.Status == x), "service", sv.Name, "state", string(x))
		}
	}
	e.family("osmanager_service_restarts_total", "counter", "Times each agent service has been restarted after a failure.")
	for _, sv := range services {
		e.sample("", float64(sv.Restarts), "service", sv.Name)
	}

	apps := st.Apps()
	e.family("osmanager_apps_installed", "gauge", "Applications installed by the app manager.")
	e.sample("", float64(len(apps.Apps)))
	type appSample struct {
		id, cur  string
		restarts int
	}
	var latest []appSample
	seen := make(map[string]bool, len(apps.Apps))
	for _, app := range apps.Apps {
		if seen[app.ID] { // ids are unique; a repeat would make a duplicate sample
			continue
		}
		seen[app.ID] = true
		// Labelled by app only: a runid label would grow without bound.
		a := appSample{id: app.ID}
		var last uint64
		for i, r := range app.Runs {
			a.restarts += r.Restarts
			if i == 0 || r.RunID > last {
				last, a.cur = r.RunID, r.State
			}
		}
		latest = append(latest, a)
	}
	e.family("osmanager_app_state", "gauge", "Each installed application's latest run: 1 for its state (starting, running, paused, stopping, exited, failed), 0 for the others; all 0 before its first run.")
	for _, a := range latest {
		known := false
		for _, x := range runStates {
			known = known || x == a.cur
			e.sample("", oneHot(a.cur == x), "app", a.id, "state", x)
		}
		if a.cur != "" && !known { // a state this page does not know yet still shows
			e.sample("", 1, "app", a.id, "state", a.cur)
		}
	}
	e.family("osmanager_app_restarts_total", "counter", "Times each application's runs have been restarted by their restart policy.")
	for _, a := range latest {
		e.sample("", float64(a.restarts), "app", a.id)
	}

	t := st.Terminal()
	e.family("osmanager_terminal_sessions_active", "gauge", "Web-terminal sessions open now.")
	e.sample("", float64(t.Active))
	e.family("osmanager_terminal_sessions_total", "counter", "Web-terminal sessions started since the agent started.")
	e.sample("", float64(t.Sessions))
	e.family("osmanager_terminal_login_failures_total", "counter", "Failed web-terminal logins since the agent started.")
	e.sample("", float64(t.LoginFailures))

	v := m.s.status.Identity(m.s.clock.Now()).Version
	e.family("osmanager_info", "gauge", "Constant 1, labelled with the agent's and the appliance's versions (build/VERSION).")
	e.sample("", 1, "application", v.Application, "name", v.Name, "version", m.s.status.AgentVersion(), "version1", v.Version1, "version2", v.Version2)
}

// exposeRequests writes the request counters and histograms, sorted by
// their labels so that scrapes compare line by line.
func (m *metrics) exposeRequests(e *expo) {
	type count struct {
		k counterKey
		n uint64
	}
	m.mu.RLock()
	counts := make([]count, 0, len(m.counters))
	for k, c := range m.counters {
		counts = append(counts, count{k, c.Load()})
	}
	handlers := make([]string, 0, len(m.durations))
	for h := range m.durations {
		handlers = append(handlers, h)
	}
	m.mu.RUnlock()
	slices.SortFunc(counts, func(a, b count) int {
		if c := strings.Compare(a.k.handler, b.k.handler); c != 0 {
			return c
		}
		return a.k.code - b.k.code
	})
	slices.Sort(handlers)

	e.family("osmanager_http_requests_total", "counter", "HTTP requests served by the status web server, by handler (page, api, metrics) and status code.")
	for _, c := range counts {
		e.sample("", float64(c.n), "code", strconv.Itoa(c.k.code), "handler", c.k.handler)
	}
	const hist = "osmanager_http_request_duration_seconds"
	e.family(hist, "histogram", "Time to serve an HTTP request of the status web server, by handler.")
	for _, name := range handlers {
		m.mu.RLock()
		h := m.durations[name]
		m.mu.RUnlock()
		// count first: an observation in flight shows in the buckets and
		// the sum at most, so the buckets never add up to less than count.
		n := h.count.Load()
		var cum uint64
		for i, le := range durationBuckets {
			cum += h.buckets[i].Load()
			e.sample(hist+"_bucket", float64(min(cum, n)), "handler", name, "le", formatFloat(le))
		}
		e.sample(hist+"_bucket", float64(n), "handler", name, "le", "+Inf")
		e.sample(hist+"_sum", math.Float64frombits(h.sumBits.Load()), "handler", name)
		e.sample(hist+"_count", float64(n), "handler", name)
	}
}

// exposeProcess writes the go_ and process_ families Prometheus users
// expect of any Go program, read from the runtime and /proc/self.
func exposeProcess(e *expo) {
	ms := readMemStats()
	e.family("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	e.sample("", float64(runtime.NumGoroutine()))
	e.family("go_info", "gauge", "Information about the Go environment.")
	e.sample("", 1, "version", runtime.Version())
	for _, g := range []struct {
		name, typ, help string
		v               uint64
	}{
		{"go_memstats_alloc_bytes", "gauge", "Number of bytes allocated in heap and currently in use.", ms.Alloc},
		{"go_memstats_alloc_bytes_total", "counter", "Total number of bytes allocated in heap until now, even if released already.", ms.TotalAlloc},
		{"go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", ms.HeapAlloc},
		{"go_memstats_heap_idle_bytes", "gauge", "Number of heap bytes waiting to be used.", ms.HeapIdle},
		{"go_memstats_heap_inuse_bytes", "gauge", "Number of heap bytes that are in use.", ms.HeapInuse},
		{"go_memstats_frees_total", "counter", "Total number of heap objects frees.", ms.Frees},
		{"go_memstats_gc_sys_bytes", "gauge", "Number of bytes used for garbage collection system metadata.", ms.GCSys},
		{"go_memstats_heap_objects", "gauge", "Number of currently allocated objects.", ms.HeapObjects},
		{"go_memstats_heap_released_bytes", "gauge", "Number of heap bytes released to OS.", ms.HeapReleased},
		{"go_memstats_heap_sys_bytes", "gauge", "Number of heap bytes obtained from system.", ms.HeapSys},
		{"go_memstats_mallocs_total", "counter", "Total number of heap objects allocated.", ms.Mallocs},
		{"go_memstats_next_gc_bytes", "gauge", "Number of heap bytes when next garbage collection will take place.", ms.NextGC},
		{"go_memstats_other_sys_bytes", "gauge", "Number of bytes used for other system allocations.", ms.OtherSys},
		{"go_memstats_stack_inuse_bytes", "gauge", "Number of bytes in use by the stack allocator.", ms.StackInuse},
		{"go_memstats_stack_sys_bytes", "gauge", "Number of bytes obtained from system for stack allocator.", ms.StackSys},
		{"go_memstats_sys_bytes", "gauge", "Number of bytes obtained from system.", ms.Sys},
		{"go_sched_gomaxprocs_threads", "gauge", "The current runtime.GOMAXPROCS setting.", uint64(runtime.GOMAXPROCS(0))},
	} {
		e.family(g.name, g.typ, g.help)
		e.sample("", float64(g.v))
	}
	e.family("go_memstats_last_gc_time_seconds", "gauge", "Number of seconds since 1970 of last garbage collection.")
	e.sample("", float64(ms.LastGC)/1e9)

	p, err := readProcStat()
	if err != nil {
		return // not Linux, or /proc not mounted: the go_ families alone
	}
	e.family("go_threads", "gauge", "Number of OS threads created.")
	e.sample("", float64(p.threads))
	e.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
	e.sample("", p.cpu)
	e.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
	e.sample("", float64(p.rss))
	e.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")
	e.sample("", float64(p.vsize))
	if p.start > 0 {
		e.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
		e.sample("", p.start)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.family("process_open_fds", "gauge", "Number of open file descriptors.")
		e.sample("", float64(len(fds)-1)) // less the one reading the dir
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.family("process_max_fds", "gauge", "Maximum number of open file descriptors.")
		e.sample("", float64(lim.Cur))
	}
}

// readMemStats fills the runtime.MemStats fields the go_memstats_
// families show from runtime/metrics, as client_golang does, and the last
// GC's time from debug.ReadGCStats. runtime.ReadMemStats would stop the
// world and flush every P's span cache into the span sets, which on an
// idle agent took 200 fresh pages (800 kB) of span-set blocks that the
// runtime never gives back: a scrape would cost that much resident memory
// for good.
func readMemStats() runtime.MemStats {
	var ms runtime.MemStats
	var tiny, frees, unused, free, stacks, osStacks uint64
	read := []struct {
		name string
		dst  *uint64
	}{
		{"/gc/heap/allocs:bytes", &ms.TotalAlloc},
		{"/gc/heap/allocs:objects", &ms.Mallocs},
		{"/gc/heap/frees:objects", &frees},
		{"/gc/heap/tiny/allocs:objects", &tiny},
		{"/memory/classes/heap/objects:bytes", &ms.HeapAlloc},
		{"/memory/classes/heap/unused:bytes", &unused},
		{"/memory/classes/heap/free:bytes", &free},
		{"/memory/classes/heap/released:bytes", &ms.HeapReleased},
		{"/gc/heap/objects:objects", &ms.HeapObjects},
		{"/gc/heap/goal:bytes", &ms.NextGC},
		{"/memory/classes/metadata/other:bytes", &ms.GCSys},
		{"/memory/classes/other:bytes", &ms.OtherSys},
		{"/memory/classes/heap/stacks:bytes", &stacks},
		{"/memory/classes/os-stacks:bytes", &osStacks},
		{"/memory/classes/total:bytes", &ms.Sys},
	}
	samples := make([]rtmetrics.Sample, len(read))
	for i, r := range read {
		samples[i].Name = r.name
	}
	rtmetrics.Read(samples)
	for i, r := range read {
		if samples[i].Value.Kind() == rtmetrics.KindUint64 { // else not in this Go version: 0
			*r.dst = samples[i].Value.Uint64()
		}
	}
	ms.Mallocs += tiny // runtime/metrics counts tiny allocations apart; MemStats in both
	ms.Frees = frees + tiny
	ms.Alloc = ms.HeapAlloc
	ms.HeapInuse = ms.HeapAlloc + unused
	ms.HeapIdle = free + ms.HeapReleased
	ms.HeapSys = ms.HeapInuse + ms.HeapIdle
	ms.StackInuse = stacks
	ms.StackSys = stacks + osStacks
	var gc debug.GCStats
	debug.ReadGCStats(&gc)
	if !gc.LastGC.IsZero() {
		ms.LastGC = uint64(gc.LastGC.UnixNano())
	}
	return ms
}

// procStat is what the process families take from /proc/self/stat.
type procStat struct {
	threads    int
	cpu        float64 // seconds
	rss, vsize uint64  // bytes
	start      float64 // Unix seconds; 0 if unknown
}

// userHZ is the unit of the times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture).
const userHZ = 100

func readProcStat() (procStat, error) {
	var p procStat
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return p, err
	}
	// The command name is in parentheses and may hold anything: the
	// fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return p, os.ErrInvalid
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 24-3+1 {
		return p, os.ErrInvalid
	}
	num := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
	p.cpu = float64(num(14)+num(15)) / userHZ
	p.threads = int(num(20))
	p.vsize = num(23)
	p.rss = num(24) * uint64(os.Getpagesize())
	if bt := bootTime(); bt > 0 {
		p.start = float64(bt) + float64(num(22))/userHZ
	}
	return p, nil
}

// bootTime is the btime line of /proc/stat, the boot's Unix time.
func bootTime() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return t
		}
	}
	return 0
}

// expo writes the text exposition format. A family's HELP and TYPE lines
// are written with its first sample, so a family without samples does not
// appear at all (as the client libraries do).
type expo struct {
	b             []byte
	name          string // the current family
	typ, help     string
	headerWritten bool
}

// family starts a family; its samples follow.
func (e *expo) family(name, typ, help string) {
	e.name, e.typ, e.help, e.headerWritten = name, typ, help, false
}

// sample writes one sample of the current family: name is the family's
// name, or a histogram's _bucket, _sum or _count series; labels are name,
// value pairs, in the order given (callers give them sorted by name).
func (e *expo) sample(name string, v float64, labels ...string) {
	if !e.headerWritten {
		e.b = append(e.b, "# HELP "...)
		e.b = append(e.b, e.name...)
		e.b = append(e.b, ' ')
		e.b = appendEscaped(e.b, e.help, false)
		e.b = append(e.b, "\n# TYPE "...)
		e.b = append(e.b, e.name...)
		e.b = append(e.b, ' ')
		e.b = append(e.b, e.typ...)
		e.b = append(e.b, '\n')
		e.headerWritten = true
	}
	if name == "" {
		name = e.name
	}
	e.b = append(e.b, name...)
	if len(labels) > 0 {
		e.b = append(e.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, labels[i]...)
			e.b = append(e.b, `="`...)
			e.b = appendEscaped(e.b, labels[i+1], true)
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = append(e.b, formatFloat(v)...)
	e.b = append(e.b, '\n')
}

// appendEscaped escapes a HELP text (backslash, line feed) or a label
// value (also the double quote), as the format wants. Invalid UTF-8 is
// replaced, so that a parser never refuses the whole scrape for one odd
// byte in an app's name.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if utf8.ValidString(s) && !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// formatFloat writes a value as Prometheus' own clients do.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
