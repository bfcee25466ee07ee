package web

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"osmanager/agent/state"
)

// metrics is the server's private registry and its own instruments. The
// agent's state is read by stateCollector at scrape time, so no other
// service needs to know about Prometheus.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // by handler and code
	duration *prometheus.HistogramVec // by handler
	handler  http.Handler

	// The counters and observers in use, so that a request costs no label
	// lookup.
	mu        sync.RWMutex
	counters  map[counterKey]prometheus.Counter
	observers map[string]prometheus.Observer
}

type counterKey struct {
	handler string
	code    int
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osmanager_http_requests_total",
			Help: "HTTP requests served by the status web server, by handler (page, api, metrics) and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "osmanager_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request of the status web server, by handler.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1},
		}, []string{"handler"}),
		counters:  map[counterKey]prometheus.Counter{},
		observers: map[string]prometheus.Observer{},
	}
	m.reg.MustRegister(
		m.requests, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{s: s, d: newDescs()},
		&statsCollector{s: s, d: newStatsDescs()},
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		ErrorLog:            promLogger{s},
		MaxRequestsInFlight: 4,
	})
	return m
}

// observe counts a finished request.
func (m *metrics) observe(handler string, code int, d time.Duration) {
	k := counterKey{handler, code}
	m.mu.RLock()
	c, o := m.counters[k], m.observers[handler]
	m.mu.RUnlock()
	if c == nil || o == nil {
		c, o = m.requests.WithLabelValues(handler, strconv.Itoa(code)), m.duration.WithLabelValues(handler)
		m.mu.Lock()
		if len(m.counters) < 256 { // codes are few; bound it anyway
			m.counters[k] = c
		}
		m.observers[handler] = o
		m.mu.Unlock()
	}
	c.Inc()
	o.Observe(d.Seconds())
}

type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("metrics", "err", v) }

// descs are the state metrics' descriptions, made per server so that
// nothing is shared between servers.
type descs struct {
	stepDuration, stepStatus, linkState, linkSince, reconnects, appCode, appChecked,
	serviceState, serviceRestarts, termActive, termSessions, termFailures, info,
	appsInstalled, appState, appRestarts *prometheus.Desc
}

// runStates are the states of an application's run (agent/state.RunView),
// each a sample of osmanager_app_state.
var runStates = [...]string{"starting", "running", "paused", "stopping", "exited", "failed"}

func newDescs() descs {
	return descs{
		stepDuration: prometheus.NewDesc("osmanager_boot_step_duration_seconds",
			"How long each boot step took at this start.", []string{"step"}, nil),
		stepStatus: prometheus.NewDesc("osmanager_boot_step_status",
			"Outcome of each boot step: 1 for its status (ok, failed, skipped), 0 for the others.", []string{"step", "status"}, nil),
		linkState: prometheus.NewDesc("osmanager_controller_link_state",
			"Cloud-controller link: 1 for the current state, 0 for the others.", []string{"state"}, nil),
		linkSince: prometheus.NewDesc("osmanager_controller_link_state_since_timestamp_seconds",
			"When the controller link entered its current state (Unix time).", nil, nil),
		reconnects: prometheus.NewDesc("osmanager_controller_reconnects_total",
			"Times the controller link has been re-established.", nil, nil),
		appCode: prometheus.NewDesc("osmanager_app_status_code",
			"Application status as reported to the controller: from custom/scripts/status (2000 + exit code; 2128 unknown), or without one from the apps (2000 every app meant to run runs, 2129 one does not, 2130 one failed).", nil, nil),
		appChecked: prometheus.NewDesc("osmanager_app_status_checked_timestamp_seconds",
			"When the application status was last checked: custom/scripts/status ran, or the apps changed (Unix time).", nil, nil),
		serviceState: prometheus.NewDesc("osmanager_service_state",
			"Agent services: 1 for each service's current state, 0 for the others.", []string{"service", "state"}, nil),
		serviceRestarts: prometheus.NewDesc("osmanager_service_restarts_total",
			"Times each agent service has been restarted after a failure.", []string{"service"}, nil),
		termActive: prometheus.NewDesc("osmanager_terminal_sessions_active",
			"Web-terminal sessions open now.", nil, nil),
		termSessions: prometheus.NewDesc("osmanager_terminal_sessions_total",
			"Web-terminal sessions started since the agent started.", nil, nil),
		termFailures: prometheus.NewDesc("osmanager_terminal_login_failures_total",
			"Failed web-terminal logins since the agent started.", nil, nil),
		appsInstalled: prometheus.NewDesc("osmanager_apps_installed",
			"Applications installed by the app manager.", nil, nil),
		appState: prometheus.NewDesc("osmanager_app_state",
			"Each installed application's latest run: 1 for its state (starting, running, paused, stopping, exited, failed), 0 for the others; all 0 before its first run.",
			[]string{"app", "state"}, nil),
		appRestarts: prometheus.NewDesc("osmanager_app_restarts_total",
			"Times each application's runs have been restarted by their restart policy.", []string{"app"}, nil),
		info: prometheus.NewDesc("osmanager_info",
			"Constant 1, labelled with the agent's and the appliance's versions (build/VERSION).",
			[]string{"version", "name", "version1", "application", "version2"}, nil),
	}
}

// stateCollector turns a snapshot of the agent's state into metrics at
// each scrape.
type stateCollector struct {
	s *Server
	d descs
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.d.stepDuration, c.d.stepStatus, c.d.linkState, c.d.linkSince, c.d.reconnects,
		c.d.appCode, c.d.appChecked, c.d.serviceState, c.d.serviceRestarts, c.d.termActive, c.d.termSessions, c.d.termFailures, c.d.info,
		c.d.appsInstalled, c.d.appState, c.d.appRestarts} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.state
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	oneHot := func(cur bool) float64 {
		if cur {
			return 1
		}
		return 0
	}
	stepStatuses := [...]state.StepStatus{state.StepOK, state.StepFailed, state.StepSkipped}
	linkStates := [...]state.LinkStatus{state.LinkDisconnected, state.LinkDiscovering, state.LinkConnecting, state.LinkAuthenticating, state.LinkRegistered}
	serviceStatuses := [...]state.ServiceStatus{state.ServiceStarting, state.ServiceRunning, state.ServiceBackoff, state.ServiceFailed, state.ServiceStopped}
	for _, step := range st.Steps() {
		gauge(c.d.stepDuration, step.Duration.Seconds(), step.Name)
		for _, x := range stepStatuses {
			gauge(c.d.stepStatus, oneHot(step.Status == x), step.Name, string(x))
		}
	}
	link := st.Link()
	if link.Status == "" {
		link.Status = state.LinkDisconnected
	}
	for _, x := range linkStates {
		gauge(c.d.linkState, oneHot(link.Status == x), string(x))
	}
	if !link.Since.IsZero() {
		gauge(c.d.linkSince, float64(link.Since.UnixMilli())/1e3)
	}
	counter(c.d.reconnects, float64(link.Reconnects))
	if app := st.AppHealth(); !app.Checked.IsZero() {
		gauge(c.d.appCode, float64(app.Code))
		gauge(c.d.appChecked, float64(app.Checked.UnixMilli())/1e3)
	}
	for _, sv := range st.Services() {
		for _, x := range serviceStatuses {
			gauge(c.d.serviceState, oneHot(sv.Status == x), sv.Name, string(x))
		}
		counter(c.d.serviceRestarts, float64(sv.Restarts), sv.Name)
	}
	apps := st.Apps()
	gauge(c.d.appsInstalled, float64(len(apps.Apps)))
	seen := make(map[string]bool, len(apps.Apps))
	for _, app := range apps.Apps {
		if seen[app.ID] { // ids are unique; a repeat would fail the whole scrape
			continue
		}
		seen[app.ID] = true
		// Labelled by app only: a runid label would grow without bound.
		var latest *state.RunView
		restarts := 0
		for i, r := range app.Runs {
			restarts += r.Restarts
			if latest == nil || r.RunID > latest.RunID {
				latest = &app.Runs[i]
			}
		}
		cur, known := "", false
		if latest != nil {
			cur = latest.State
		}
		for _, x := range runStates {
			known = known || x == cur
			gauge(c.d.appState, oneHot(cur == x), app.ID, x)
		}
		if cur != "" && !known { // a state this page does not know yet still shows
			gauge(c.d.appState, 1, app.ID, cur)
		}
		counter(c.d.appRestarts, float64(restarts), app.ID)
	}
	t := st.Terminal()
	gauge(c.d.termActive, float64(t.Active))
	counter(c.d.termSessions, float64(t.Sessions))
	counter(c.d.termFailures, float64(t.LoginFailures))
	v := c.s.status.Identity(c.s.clock.Now()).Version
	gauge(c.d.info, 1, c.s.status.AgentVersion(), v.Name, v.Version1, v.Application, v.Version2)
}
