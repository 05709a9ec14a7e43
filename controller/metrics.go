package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus measurements. A nil *Metrics
// records nothing, so tests need not create one.
type Metrics struct {
	reconciles  *prometheus.CounterVec
	reconcileS  prometheus.Histogram
	flowMods    *prometheus.CounterVec
	bundles     *prometheus.CounterVec
	bundleS     prometheus.Histogram
	drift       *prometheus.CounterVec
	switchesNow prometheus.Gauge
}

// NewMetrics creates the controller's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "reconciles_total",
			Help: "Host reconciles, by result (ok, error).",
		}, []string{"result"}),
		reconcileS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "reconcile_duration_seconds",
			Help:    "Time one host reconcile took (OVSDB and both bridges).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		flowMods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "flow_mods_total",
			Help: "Flow modifications sent in committed bundles, by bridge and operation (add, modify, delete).",
		}, []string{"bridge", "op"}),
		bundles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "bundles_total",
			Help: "Bundles sent, by result (committed, failed).",
		}, []string{"result"}),
		bundleS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "bundle_duration_seconds",
			Help:    "Time from opening a bundle to its acknowledged commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "drift_repaired_flows_total",
			Help: "Flows the periodic drift check found wrong on a switch and repaired, by host and bridge.",
		}, []string{"host", "bridge"}),
		switchesNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "switches_connected",
			Help: "OpenFlow connections to switches currently open.",
		}),
	}
	reg.MustRegister(m.reconciles, m.reconcileS, m.flowMods, m.bundles, m.bundleS, m.drift, m.switchesNow)
	return m
}

func (m *Metrics) reconciled(err error, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.reconcileS.Observe(d.Seconds())
}

func (m *Metrics) applied(ref bridgeRef, changes []Change, err error, d time.Duration) {
	if m == nil {
		return
	}
	if err != nil {
		m.bundles.WithLabelValues("failed").Inc()
		return
	}
	m.bundles.WithLabelValues("committed").Inc()
	m.bundleS.Observe(d.Seconds())
	for _, ch := range changes {
		m.flowMods.WithLabelValues(ref.bridge, ch.Op.String()).Inc()
	}
}

func (m *Metrics) driftRepaired(ref bridgeRef, n int) {
	if m == nil || n == 0 {
		return
	}
	m.drift.WithLabelValues(ref.host, ref.bridge).Add(float64(n))
}

func (m *Metrics) switchConnected(delta float64) {
	if m == nil {
		return
	}
	m.switchesNow.Add(delta)
}
