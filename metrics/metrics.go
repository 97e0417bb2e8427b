// Package metrics holds the agent's Prometheus metrics, all in one place so
// an operator finds every name in one file and other parts of mcp (the
// certificate engine, the trust checks, the rollout) plug into the same
// registry through the setters below.
//
// The registry is private (no prometheus.DefaultRegisterer): two agents in
// one test binary never collide, and nothing imported by accident shows up
// on /metrics. Every method is safe on a nil *Metrics, so code that runs
// without metrics (tools, tests) needs no checks.
//
// Names follow Prometheus conventions: the mcp_ prefix, base units
// (seconds, bytes), _total on counters, and timestamps as
// _timestamp_seconds (so an alert computes age with time() - x).
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Agent loop states reported by mcp_agent_state.
const (
	StateIdle        = "idle"        // waiting for the watcher, the poll timer or a request
	StateReconciling = "reconciling" // a reconcile is running
	StateBackoff     = "backoff"     // the remote failed; waiting out the retry backoff
)

// States lists every loop state, so the gauge always has all of them (one
// is 1, the others 0) and a dashboard never sees a series vanish.
var States = []string{StateIdle, StateReconciling, StateBackoff}

// reconcileBuckets span a no-change poll (milliseconds) to a cold pull of
// several images (minutes).
var reconcileBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// fetchBuckets span a local ls-remote (sub-millisecond) to a slow remote.
var fetchBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics is one agent's set of metrics.
type Metrics struct {
	reg *prometheus.Registry

	reconciles        *prometheus.CounterVec
	reconcileDuration *prometheus.HistogramVec
	planSteps         *prometheus.CounterVec
	fetchDuration     prometheus.Histogram
	fetchFailures     prometheus.Counter
	appliedCommitTime prometheus.Gauge
	lastReconcileTime *prometheus.GaugeVec
	services          *prometheus.GaugeVec
	restarts          *prometheus.CounterVec
	certExpiry        *prometheus.GaugeVec
	driftRepairs      *prometheus.CounterVec
	quarantined       *prometheus.CounterVec
	quarantinedNow    prometheus.Gauge
	events            *prometheus.CounterVec
	state             *prometheus.GaugeVec
	waiting           prometheus.Gauge
	backoff           prometheus.Gauge

	mu       sync.Mutex
	onScrape []func(context.Context)
}

// New creates the metrics and registers them, with the Go runtime and
// process collectors and mcp_build_info, on a private registry.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_reconciles_total",
			Help: "Reconciles run, by result (ok, partial, failed).",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcp_reconcile_duration_seconds",
			Help:    "Wall time of one reconcile (sync, plan, apply, converge), by result.",
			Buckets: reconcileBuckets,
		}, []string{"result"}),
		planSteps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_plan_steps_total",
			Help: "Plan steps by kind (port, image, container, ...), action (create, update, remove, ...) and result (done, failed, skipped: not run because an earlier step of its service failed).",
		}, []string{"kind", "action", "result"}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcp_sync_fetch_duration_seconds",
			Help:    "Time to ask the remote for the branch head and fetch it when it moved, failures included.",
			Buckets: fetchBuckets,
		}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcp_sync_fetch_failures_total",
			Help: "Fetches of the desired-state repository that failed (the node keeps running what it has).",
		}),
		appliedCommitTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_applied_commit_timestamp_seconds",
			Help: "Committer time of the desired-state commit last applied (0 before the first); time() - this is how old the node's desired state is.",
		}),
		lastReconcileTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcp_last_reconcile_timestamp_seconds",
			Help: "When the last reconcile with this result finished.",
		}, []string{"result"}),
		services: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcp_services",
			Help: "Services on this node by state (running, degraded, failed, invalid, stopped, ...), as mcp status reports them.",
		}, []string{"state"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_container_restarts_total",
			Help: "Containers restarted by their restart policy after their task exited.",
		}, []string{"service", "component"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcp_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of each certificate mcp manages; alert on (this - time()) < 14*86400.",
		}, []string{"service", "name"}),
		driftRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_drift_repairs_total",
			Help: "Things the converge pass fixed because the runtime drifted from the registry, by resource (container, lease).",
		}, []string{"service", "resource"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_quarantined_commits_total",
			Help: "Commits or service versions put in quarantine (refused: untrusted, or reverted after failing), by reason.",
		}, []string{"reason"}),
		quarantinedNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_quarantined",
			Help: "Entries currently in quarantine.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_events_total",
			Help: "Events recorded in the node's event history (mcp events), by kind.",
		}, []string{"kind"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcp_agent_state",
			Help: "What the agent's loop is doing: 1 for the current state (idle, reconciling, backoff), 0 for the others.",
		}, []string{"state"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_sync_requests_waiting",
			Help: "mcp sync requests waiting for a reconcile to finish.",
		}),
		backoff: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_sync_backoff_seconds",
			Help: "The retry delay the agent is waiting out after a failed fetch (0 when the remote is fine).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mcp_build_info",
		Help:        "The mcp build running the agent; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(
		m.reconciles, m.reconcileDuration, m.planSteps, m.fetchDuration, m.fetchFailures,
		m.appliedCommitTime, m.lastReconcileTime, m.services, m.restarts, m.certExpiry,
		m.driftRepairs, m.quarantined, m.quarantinedNow, m.events, m.state, m.waiting, m.backoff,
		build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Series that exist from the start, so rate() and absent() alerts work
	// before the first failure ever happened.
	for _, r := range []string{"ok", "partial", "failed"} {
		m.reconciles.WithLabelValues(r)
	}
	m.SetState(StateIdle)
	return m
}

// Handler serves the metrics in the Prometheus exposition format, after
// running the OnScrape hooks.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Refresh(r.Context())
		h.ServeHTTP(w, r)
	})
}

// OnScrape adds a hook run before every scrape: for values that cost
// something to compute (a status read, a registry scan) and so are only
// computed when someone asks.
func (m *Metrics) OnScrape(fn func(ctx context.Context)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onScrape = append(m.onScrape, fn)
}

// Refresh runs the OnScrape hooks; Handler calls it, tests may too.
func (m *Metrics) Refresh(ctx context.Context) {
	if m == nil {
		return
	}
	m.mu.Lock()
	hooks := append([]func(context.Context){}, m.onScrape...)
	m.mu.Unlock()
	for _, fn := range hooks {
		fn(ctx)
	}
}

// Register adds a collector of another part of mcp (say, one that reads
// certificate expiry from the registry at scrape time) to the agent's
// registry.
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(c)
}

// Gatherer exposes the registry for tests and in-process scrapes.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return prometheus.NewRegistry()
	}
	return m.reg
}

// ObserveReconcile counts one finished reconcile.
func (m *Metrics) ObserveReconcile(result string, d time.Duration, finished time.Time) {
	if m == nil {
		return
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.reconcileDuration.WithLabelValues(result).Observe(d.Seconds())
	m.lastReconcileTime.WithLabelValues(result).Set(unix(finished))
}

// Step results for ObserveStep.
const (
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// ObserveStep counts one plan step.
func (m *Metrics) ObserveStep(kind, action, result string) {
	if m == nil {
		return
	}
	m.planSteps.WithLabelValues(kind, action, result).Inc()
}

// ObserveFetch records one fetch of the desired-state repository.
func (m *Metrics) ObserveFetch(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.fetchDuration.Observe(d.Seconds())
	if err != nil {
		m.fetchFailures.Inc()
	}
}

// SetAppliedCommitTime records the committer time of the applied commit.
func (m *Metrics) SetAppliedCommitTime(t time.Time) {
	if m == nil || t.IsZero() {
		return
	}
	m.appliedCommitTime.Set(unix(t))
}

// SetServices replaces the services-by-state gauge. States absent from
// counts are set to 0 rather than deleted, so their series stay continuous.
func (m *Metrics) SetServices(counts map[string]int, allStates []string) {
	if m == nil {
		return
	}
	for _, s := range allStates {
		m.services.WithLabelValues(s).Set(float64(counts[s]))
	}
	for s, n := range counts {
		m.services.WithLabelValues(s).Set(float64(n))
	}
}

// ContainerRestarted counts one restart done by the restart policy.
func (m *Metrics) ContainerRestarted(service, component string) {
	if m == nil {
		return
	}
	m.restarts.WithLabelValues(service, component).Inc()
}

// SetCertificateExpiry records when a managed certificate expires. The
// certificate engine calls it after every issue, renewal and at start.
func (m *Metrics) SetCertificateExpiry(service, name string, notAfter time.Time) {
	if m == nil {
		return
	}
	m.certExpiry.WithLabelValues(service, name).Set(unix(notAfter))
}

// DeleteCertificate drops the series of a certificate mcp no longer
// manages, so a removed service stops firing expiry alerts.
func (m *Metrics) DeleteCertificate(service, name string) {
	if m == nil {
		return
	}
	m.certExpiry.DeleteLabelValues(service, name)
}

// DriftRepaired counts one repair of the converge pass. resource is
// "container" or "lease" (see ResourceKind).
func (m *Metrics) DriftRepaired(service, resource string) {
	if m == nil {
		return
	}
	m.driftRepairs.WithLabelValues(service, resource).Inc()
}

// ResourceKind classifies a converge repair's resource: lease keys are
// "<service>/<component>/<route>/<slot>", container IDs use dots.
func ResourceKind(resource string) string {
	if strings.Contains(resource, "/") {
		return "lease"
	}
	return "container"
}

// CommitQuarantined counts one quarantine (the trust checks and the
// rollout call it) and sets the current number of entries.
func (m *Metrics) CommitQuarantined(reason string, current int) {
	if m == nil {
		return
	}
	m.quarantined.WithLabelValues(reason).Inc()
	m.quarantinedNow.Set(float64(current))
}

// SetQuarantined sets the number of entries currently in quarantine (after
// one is released, or at start).
func (m *Metrics) SetQuarantined(current int) {
	if m == nil {
		return
	}
	m.quarantinedNow.Set(float64(current))
}

// EventRecorded counts one event of the node's history.
func (m *Metrics) EventRecorded(kind string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(kind).Inc()
}

// SetState sets the loop's current state (one of States).
func (m *Metrics) SetState(state string) {
	if m == nil {
		return
	}
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(s).Set(v)
	}
}

// AddWaiting changes the number of sync requests waiting by delta.
func (m *Metrics) AddWaiting(delta int) {
	if m == nil {
		return
	}
	m.waiting.Add(float64(delta))
}

// SetBackoff records the retry delay being waited out (0: none).
func (m *Metrics) SetBackoff(d time.Duration) {
	if m == nil {
		return
	}
	m.backoff.Set(d.Seconds())
}

func unix(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
