// Package metrics is Pulpo's Prometheus instrumentation: one registry per
// process holding every collector, the /metrics handler, and the methods the
// instrumented packages call through interfaces they define themselves
// (api.RequestObserver, tasks.Observer, download.Meter, plugin.CallObserver),
// so only this package and the server wiring import Prometheus.
//
// Every label has a bounded set of values: HTTP routes are the API's route
// patterns or a fixed family name ("content", "registry", "metrics"), never
// raw paths; methods outside the standard set count as "OTHER"; task names,
// plugin names and exports come from what the process registered or loaded.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric Pulpo defines.
const Namespace = "pulpo"

// Metrics holds the process's collectors. Its methods are safe for
// concurrent use; a nil *Metrics records nothing, so wiring may leave it out.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	reqSeries    sync.Map // reqKey -> reqSeries

	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	taskWait     *prometheus.HistogramVec

	downloadBytes prometheus.Counter

	pluginCalls    *prometheus.CounterVec
	pluginErrors   *prometheus.CounterVec
	pluginDuration *prometheus.HistogramVec
}

// New builds the collectors, including the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests served, by route (API route pattern or handler family), method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to serve an HTTP request, until the handler returned (the whole body for content).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method"})
	m.tasks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "tasks", Name: "finished_total",
		Help: "Tasks this process ran to a final state, by task name and state.",
	}, []string{"name", "state"})
	m.taskDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "tasks", Name: "duration_seconds",
		Help:    "Run time of the tasks this process ran, by task name and final state.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10 ms .. ~44 min
	}, []string{"name", "state"})
	m.taskWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "tasks", Name: "wait_seconds",
		Help:    "Time the tasks this process started waited in the queue, from dispatch to start, by task name.",
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 10), // 5 ms .. ~22 min
	}, []string{"name"})
	m.downloadBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "download", Name: "bytes_total",
		Help: "Bytes received from remotes (syncs, on-demand content, repairs), retried attempts included.",
	})
	m.pluginCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "plugin", Name: "calls_total",
		Help: "Calls into plugin exports, by plugin and export.",
	}, []string{"plugin", "export"})
	m.pluginErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "plugin", Name: "call_errors_total",
		Help: "Plugin calls that failed (plugin error, trap, timeout, cancellation), by plugin and export.",
	}, []string{"plugin", "export"})
	m.pluginDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "plugin", Name: "call_duration_seconds",
		Help:    "Duration of plugin calls, by plugin and export.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 4, 12), // 10 us .. ~42 s
	}, []string{"plugin", "export"})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.tasks, m.taskDuration, m.taskWait, m.downloadBytes,
		m.pluginCalls, m.pluginErrors, m.pluginDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where further collectors go (tests gather from it too).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one served request; the API calls it with its
// route pattern.
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	k := reqKey{route, normalMethod(method), status}
	s, ok := m.reqSeries.Load(k)
	if !ok {
		s, _ = m.reqSeries.LoadOrStore(k, reqSeries{
			count: m.httpRequests.WithLabelValues(k.route, k.method, statusText(status)),
			time:  m.httpDuration.WithLabelValues(k.route, k.method),
		})
	}
	rs := s.(reqSeries)
	rs.count.Inc()
	rs.time.Observe(elapsed.Seconds())
}

// reqKey and reqSeries cache the label lookups of a request's series: a
// lookup hashes and checks every label value, several times the cost of
// the increment.
type reqKey struct {
	route, method string
	status        int
}

type reqSeries struct {
	count prometheus.Counter
	time  prometheus.Observer
}

// TaskStarted records how long a task this process claimed waited.
func (m *Metrics) TaskStarted(name string, waited time.Duration) {
	if m == nil {
		return
	}
	m.taskWait.WithLabelValues(name).Observe(max(waited, 0).Seconds())
}

// TaskFinished records a task that reached its final state.
func (m *Metrics) TaskFinished(name, state string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(name, state).Inc()
	m.taskDuration.WithLabelValues(name, state).Observe(elapsed.Seconds())
}

// AddDownloadBytes counts bytes received from a remote.
func (m *Metrics) AddDownloadBytes(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.downloadBytes.Add(float64(n))
}

// PluginCall records one call into a plugin export.
func (m *Metrics) PluginCall(plugin, export string, elapsed time.Duration, err error) {
	if m == nil {
		return
	}
	m.pluginCalls.WithLabelValues(plugin, export).Inc()
	m.pluginDuration.WithLabelValues(plugin, export).Observe(elapsed.Seconds())
	if err != nil {
		m.pluginErrors.WithLabelValues(plugin, export).Inc()
	}
}

// normalMethod keeps the label bounded: any method a client invents is OTHER.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// statusText avoids strconv's allocation for the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 202:
		return "202"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 500:
		return "500"
	}
	if code < 100 || code > 999 {
		return "000"
	}
	return strconv.Itoa(code)
}
