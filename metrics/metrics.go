// Package metrics exposes the daemon's Prometheus metrics: what crosses
// the gateway (calls by upstream, method, tool and outcome; their latency),
// what the store does (append latency, events, bytes, checkpoint age),
// how the SIEM sinks keep up, detections fired and active sessions.
//
// Per-event counters are fed by Observe, which the daemon calls for every
// event it records (the gateway's sessions, wrap's sessions over the
// socket, and rollback's inverse calls alike); everything else is read
// from its source at scrape time, so the call path pays for a few atomic
// adds and nothing more. Every name has the mcptrail_ prefix; docs/metrics.md
// lists them.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// Namespace prefixes every metric name.
const Namespace = "mcptrail"

// Options choose what the metrics carry and where scrape-time values come
// from. Every source may be nil: its metrics are then left out.
type Options struct {
	Version string
	// ToolLabel keeps the tool label on mcptrail_calls_total. Turn it off
	// when upstreams expose many (or generated) tool names.
	ToolLabel bool

	StoreStats     func() store.Stats
	LastCheckpoint func() (*store.Checkpoint, error)
	Sinks          func() []siem.SinkStatus
	Alerts         func() uint64 // detections fired since start
	ActiveSessions func() int    // HTTP gateway sessions now open
	// Collector is the fleet collector's state; nil (or a nil result)
	// without one.
	Collector func() *collect.Status
	Now       func() time.Time
}

// Metrics is one daemon's registry and its per-event instruments.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry

	calls         *prometheus.CounterVec
	callDuration  *prometheus.HistogramVec
	events        *prometheus.CounterVec
	recordErrors  prometheus.Counter
	appendLatency *prometheus.HistogramVec
	sessions      *prometheus.CounterVec
	rollbackSteps *prometheus.CounterVec
	added         *prometheus.HistogramVec
	upstream      *prometheus.HistogramVec
	approvals     *prometheus.CounterVec
	decideTime    *prometheus.HistogramVec

	// What recording each open request cost, by its seq, until its
	// outcome splits the call's duration into gateway and upstream parts.
	mu    sync.Mutex
	costs map[uint64]time.Duration
}

// maxOpenRequests bounds costs: requests that never get an outcome (a
// crash of their session) must not grow it for ever.
const maxOpenRequests = 1 << 16

// Latency buckets from 100µs (a batched append) to 60s (a slow tool).
var (
	callBuckets   = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	appendBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// New builds the registry, with the Go runtime and process collectors.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{opts: o, reg: prometheus.NewRegistry(), costs: map[uint64]time.Duration{}}
	callLabels := []string{"upstream", "method", "outcome"}
	if o.ToolLabel {
		callLabels = []string{"upstream", "method", "tool", "outcome"}
	}
	m.calls = counterVec("calls_total",
		"Calls (JSON-RPC requests) that got an outcome, by upstream, method, tool and outcome.",
		callLabels...)
	m.callDuration = histogramVec("call_duration_seconds",
		"Time from a request reaching the gateway to its outcome being recorded, by upstream and method.",
		callBuckets, "upstream", "method")
	m.events = counterVec("events_recorded_total",
		"Events the daemon recorded, by kind (alerts are counted in mcptrail_detections_fired_total).",
		"kind")
	m.recordErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "record_errors_total",
		Help: "Events the daemon failed to record.",
	})
	m.appendLatency = histogramVec("store_append_duration_seconds",
		"Time to append one event to the store; durable=\"true\" appends wait for the commit and are what the gateway adds before forwarding a request.",
		appendBuckets, "durable")
	m.sessions = counterVec("sessions_started_total",
		"MCP sessions started, by upstream and transport.",
		"upstream", "transport")
	m.rollbackSteps = counterVec("rollback_steps_total",
		"Inverse calls run by rollback, by upstream and outcome.",
		"upstream", "outcome")
	m.added = histogramVec("gateway_added_seconds",
		"Time the gateway spent recording a request before forwarding it (the durable append), by upstream.",
		appendBuckets, "upstream")
	m.upstream = histogramVec("upstream_duration_seconds",
		"A call's duration less what recording its request cost: the upstream's share (and the network's), by upstream and method.",
		callBuckets, "upstream", "method")
	m.approvals = counterVec("approvals_total",
		"Calls held for approval (kind approval_requested) and their decisions (approved, denied, expired).",
		"kind")
	m.decideTime = histogramVec("approval_decision_seconds",
		"Time from a call being held for approval to its decision, by decision (approved, denied, expired).",
		[]float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 86400}, "decision")
	m.reg.MustRegister(m.calls, m.callDuration, m.events, m.recordErrors, m.appendLatency, m.sessions, m.rollbackSteps, m.added, m.upstream, m.approvals, m.decideTime)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help: "Always 1; the version label is the daemon's build.", ConstLabels: prometheus.Labels{"version": o.Version},
		}, func() float64 { return 1 }),
	)
	if o.Alerts != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "detections_fired_total",
			Help: "Alerts raised by the detection rules since the daemon started.",
		}, func() float64 { return float64(o.Alerts()) }))
	}
	if o.ActiveSessions != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "active_sessions",
			Help: "MCP sessions open on the HTTP gateway.",
		}, func() float64 { return float64(o.ActiveSessions()) }))
	}
	m.reg.MustRegister(&scrapeCollector{o: o})
	return m
}

// counterVec is a counter of mcptrail's namespace, by labels.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

// histogramVec is a histogram of mcptrail's namespace, by labels.
func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

// Registry is the metrics' registry (tests gather from it directly).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Approval counts a hold (kind approval_requested) or a decision, with
// how long the call waited for it. A nil *Metrics ignores it.
func (m *Metrics) Approval(kind string, waited time.Duration) {
	if m == nil {
		return
	}
	m.approvals.WithLabelValues(kind).Inc()
	if kind != store.KindApprovalRequested {
		m.decideTime.WithLabelValues(kind).Observe(waited.Seconds())
	}
}

// Recorded counts one recorded event: began is when the append started,
// durable whether it waited for the commit, err the append's result. It is
// safe for concurrent use and cheap; a nil *Metrics ignores it.
func (m *Metrics) Recorded(ev *store.Event, began time.Time, durable bool, err error) {
	if m == nil {
		return
	}
	cost := time.Since(began)
	m.appendLatency.WithLabelValues(boolLabel(durable)).Observe(cost.Seconds())
	if err != nil {
		m.recordErrors.Inc()
		return
	}
	m.events.WithLabelValues(ev.Kind).Inc()
	switch ev.Kind {
	case store.KindRequest, store.KindRollbackStep:
		if durable && ev.Seq != 0 {
			m.added.WithLabelValues(ev.Upstream).Observe(cost.Seconds())
			m.mu.Lock()
			if len(m.costs) >= maxOpenRequests {
				clear(m.costs)
			}
			m.costs[ev.Seq] = cost
			m.mu.Unlock()
		}
	case store.KindCall:
		if ev.Call != 0 {
			m.mu.Lock()
			cost, ok := m.costs[ev.Call]
			delete(m.costs, ev.Call)
			m.mu.Unlock()
			if ok && ev.DurationNS > 0 {
				m.upstream.WithLabelValues(ev.Upstream, ev.Method).Observe(max(time.Duration(ev.DurationNS)-cost, 0).Seconds())
			}
		}
		if m.opts.ToolLabel {
			m.calls.WithLabelValues(ev.Upstream, ev.Method, ev.Tool, ev.Outcome).Inc()
		} else {
			m.calls.WithLabelValues(ev.Upstream, ev.Method, ev.Outcome).Inc()
		}
		if ev.DurationNS > 0 {
			m.callDuration.WithLabelValues(ev.Upstream, ev.Method).Observe(time.Duration(ev.DurationNS).Seconds())
		}
		if ev.Reverts != 0 {
			m.rollbackSteps.WithLabelValues(ev.Upstream, ev.Outcome).Inc()
		}
	case store.KindSessionStart:
		m.sessions.WithLabelValues(ev.Upstream, ev.Transport).Inc()
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// scrapeCollector reads the store, checkpoint and sink figures when
// Prometheus scrapes, so none of them costs anything between scrapes.
type scrapeCollector struct{ o Options }

var (
	descStoreEvents   = desc("store_events", "Events committed to the store.")
	descStoreBytes    = desc("store_file_bytes", "Size of the store file in bytes.")
	descStorePending  = desc("store_pending_events", "Events appended and not yet committed.")
	descStoreCommits  = desc("store_commits_total", "Store write transactions since the daemon started.")
	descStoreFailed   = desc("store_failed_events_total", "Events lost to failed store commits since the daemon started.")
	descCkptAge       = desc("checkpoint_age_seconds", "Seconds since the last signed checkpoint (absent before the first).")
	descCkptSize      = desc("checkpoint_size_events", "Events covered by the last signed checkpoint.")
	descSinkLag       = desc("sink_lag_events", "Committed events a SIEM sink has not accepted yet.", "sink", "kind")
	descSinkDelivered = desc("sink_delivered_events_total", "Events a SIEM sink accepted since the daemon started.", "sink", "kind")
	descSinkFailures  = desc("sink_errors_total", "Failed deliveries to a SIEM sink since the daemon started.", "sink", "kind")
	descSinkUp        = desc("sink_up", "1 unless the SIEM sink's last delivery failed.", "sink", "kind")
	descSinkLastOK    = desc("sink_last_delivery_timestamp_seconds", "Unix time of a SIEM sink's last successful delivery.", "sink", "kind")

	descCollectEvents  = desc("collector_merged_events_total", "Origin events the fleet collector merged since the daemon started.")
	descCollectCkpts   = desc("collector_merged_checkpoints_total", "Origin checkpoints the fleet collector merged since the daemon started.")
	descCollectDups    = desc("collector_duplicates_total", "Redelivered records the fleet collector dropped since the daemon started.")
	descCollectRefused = desc("collector_refused_total", "Records the fleet collector refused (each an alert) since the daemon started.")
	descCollectOrigins = desc("collector_origins", "Origins the fleet collector has seen.")
	descCollectUp      = desc("collector_up", "1 unless the fleet collector is failing.")
	descCollectSeq     = desc("collector_origin_seq", "The last seq of an origin's chain merged into this store.", "origin", "host")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreEvents, descStoreBytes, descStorePending, descStoreCommits, descStoreFailed,
		descCkptAge, descCkptSize, descSinkLag, descSinkDelivered, descSinkFailures, descSinkUp, descSinkLastOK,
		descCollectEvents, descCollectCkpts, descCollectDups, descCollectRefused, descCollectOrigins, descCollectUp, descCollectSeq} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.o
	if o.StoreStats != nil {
		st := o.StoreStats()
		ch <- prometheus.MustNewConstMetric(descStoreEvents, prometheus.GaugeValue, float64(st.Events))
		ch <- prometheus.MustNewConstMetric(descStoreBytes, prometheus.GaugeValue, float64(st.FileBytes))
		ch <- prometheus.MustNewConstMetric(descStorePending, prometheus.GaugeValue, float64(st.Pending))
		ch <- prometheus.MustNewConstMetric(descStoreCommits, prometheus.CounterValue, float64(st.Commits))
		ch <- prometheus.MustNewConstMetric(descStoreFailed, prometheus.CounterValue, float64(st.Failed))
	}
	if o.LastCheckpoint != nil {
		if cp, err := o.LastCheckpoint(); err == nil && cp != nil {
			ch <- prometheus.MustNewConstMetric(descCkptAge, prometheus.GaugeValue, o.Now().Sub(cp.Time).Seconds())
			ch <- prometheus.MustNewConstMetric(descCkptSize, prometheus.GaugeValue, float64(cp.Size))
		}
	}
	if o.Sinks != nil {
		for _, s := range o.Sinks() {
			name := s.Name
			if name == "" {
				name = s.URL
			}
			ch <- prometheus.MustNewConstMetric(descSinkLag, prometheus.GaugeValue, float64(s.Lag), name, s.Kind)
			ch <- prometheus.MustNewConstMetric(descSinkDelivered, prometheus.CounterValue, float64(s.Delivered), name, s.Kind)
			ch <- prometheus.MustNewConstMetric(descSinkFailures, prometheus.CounterValue, float64(s.Failures), name, s.Kind)
			up := 1.0
			if s.State == "failing" {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(descSinkUp, prometheus.GaugeValue, up, name, s.Kind)
			if s.LastDeliveryAt != nil {
				ch <- prometheus.MustNewConstMetric(descSinkLastOK, prometheus.GaugeValue, float64(s.LastDeliveryAt.UnixNano())/1e9, name, s.Kind)
			}
		}
	}
	if o.Collector != nil {
		if c := o.Collector(); c != nil {
			ch <- prometheus.MustNewConstMetric(descCollectEvents, prometheus.CounterValue, float64(c.Stats.Events))
			ch <- prometheus.MustNewConstMetric(descCollectCkpts, prometheus.CounterValue, float64(c.Stats.Checkpoints))
			ch <- prometheus.MustNewConstMetric(descCollectDups, prometheus.CounterValue, float64(c.Stats.Duplicates))
			ch <- prometheus.MustNewConstMetric(descCollectRefused, prometheus.CounterValue, float64(c.Stats.Alerts))
			ch <- prometheus.MustNewConstMetric(descCollectOrigins, prometheus.GaugeValue, float64(c.Stats.Origins))
			up := 1.0
			if c.State == "failing" {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(descCollectUp, prometheus.GaugeValue, up)
			for _, og := range c.Origins {
				ch <- prometheus.MustNewConstMetric(descCollectSeq, prometheus.GaugeValue, float64(og.Seq), og.Store, og.Host)
			}
		}
	}
}
