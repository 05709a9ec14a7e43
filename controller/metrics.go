package controller

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brtun/brtun/flows"
)

// Metrics are the controller's Prometheus measurements. A nil *Metrics
// records nothing, so tests need not create one.
type Metrics struct {
	reconciles  *prometheus.CounterVec
	skips       prometheus.Counter
	ovsdbSkips  prometheus.Counter
	invalid     *prometheus.CounterVec
	reconcileS  prometheus.Histogram
	flowMods    *prometheus.CounterVec
	bundles     *prometheus.CounterVec
	bundleS     prometheus.Histogram
	drift       *prometheus.CounterVec
	dumps       *prometheus.CounterVec
	switchesNow prometheus.Gauge
	connects    prometheus.Counter
	packetIns   prometheus.Counter
	answers     *prometheus.CounterVec
	pinDrops    *prometheus.CounterVec
	meterMods   prometheus.Counter
	monitors    *prometheus.CounterVec
	state       *stateCollector
}

// NewMetrics creates the controller's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "reconciles_total",
			Help: "Full host reconciles (OVSDB transaction, compile, diff), by result (ok, error).",
		}, []string{"result"}),
		skips: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "reconciles_skipped_total",
			Help: "Host reconciles that found nothing the host depends on changed since its last successful one and only recorded the new revision.",
		}),
		ovsdbSkips: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "ovsdb_transactions_skipped_total",
			Help: "Full host reconciles that left out the OVSDB transaction: its inputs and the host's OVSDB facts were those of the last successful one, and no drift check asked for it.",
		}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "invalid_flowsets_total",
			Help: "Compiled flow sets that failed validation against the declared pipeline and were not sent, by host.",
		}, []string{"host"}),
		reconcileS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "reconcile_duration_seconds",
			Help:    "Time one full host reconcile took (OVSDB and both bridges).",
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
			Help: "Flows the drift check (periodic, or at once on a flow monitor's report) found wrong on a switch and repaired, by host and bridge.",
		}, []string{"host", "bridge"}),
		dumps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "controller", Name: "flow_dumps_total",
			Help: "Dumps of a switch's flows read for a reconcile (a new connection, a drift check), by how they were read: decoded " +
				"(and diffed against the desired flows), or unchanged (the flows brtun knew the switch to hold, from its last dump and " +
				"its own bundles since: neither decoded nor diffed).",
		}, []string{"read"}),
		switchesNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "switches_connected",
			Help: "OpenFlow connections to switches currently open.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "connections_total",
			Help: "OpenFlow connections from switches that completed the handshake.",
		}),
		packetIns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "dhcp", Name: "packet_ins_total",
			Help: "Packet-ins received from br-int (DHCP, DHCPv6, router solicitations of VM ports).",
		}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "dhcp", Name: "answers_total",
			Help: "Answers sent to VM ports as packet-outs, by kind (dhcp4, dhcp6, ra for solicited, ra_periodic).",
		}, []string{"kind"}),
		pinDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "dhcp", Name: "dropped_total",
			Help: "Packet-ins not answered, by reason (malformed, unknown_port, not_master, rate_limited, queue_full, " +
				"unknown_mac, no_address, not_for_us, config, no_answer, panic, send_failed).",
		}, []string{"reason"}),
		meterMods: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "meter_mods_total",
			Help: "Meter modifications sent (br-int's DHCP meter and appliance ports' source meters, added or changed); a restart that finds them right sends none.",
		}),
		monitors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "openflow", Name: "flow_monitor_events_total",
			Help: "Flow monitor events, by event: changed (a flow changed by someone else: the host's drift check runs at once), " +
				"paused and resumed (the switch paused the monitor; the resume runs the drift check), refused (a switch connection " +
				"refused the monitor and gets the periodic drift check only), unanswered (a busy switch did not answer the " +
				"request within 10 s; the monitor counts as running).",
		}, []string{"event"}),
		state: newStateCollector(),
	}
	reg.MustRegister(m.reconciles, m.skips, m.ovsdbSkips, m.invalid, m.reconcileS, m.flowMods, m.bundles, m.bundleS, m.drift, m.dumps, m.switchesNow, m.connects,
		m.packetIns, m.answers, m.pinDrops, m.meterMods, m.monitors, m.state)
	return m
}

func (m *Metrics) meterMod() {
	if m != nil {
		m.meterMods.Inc()
	}
}

func (m *Metrics) flowMonitor(event string) {
	if m != nil {
		m.monitors.WithLabelValues(event).Inc()
	}
}

func (m *Metrics) packetIn() {
	if m != nil {
		m.packetIns.Inc()
	}
}

func (m *Metrics) answered(kind string) {
	if m != nil {
		m.answers.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) packetDropped(reason string) {
	if m != nil {
		m.pinDrops.WithLabelValues(reason).Inc()
	}
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

func (m *Metrics) skipped() {
	if m == nil {
		return
	}
	m.skips.Inc()
}

func (m *Metrics) ovsdbSkipped() {
	if m == nil {
		return
	}
	m.ovsdbSkips.Inc()
}

func (m *Metrics) invalidFlowSet(host string) {
	if m == nil {
		return
	}
	m.invalid.WithLabelValues(host).Inc()
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

func (m *Metrics) dumpRead(unchanged bool) {
	if m == nil {
		return
	}
	if unchanged {
		m.dumps.WithLabelValues("unchanged").Inc()
	} else {
		m.dumps.WithLabelValues("decoded").Inc()
	}
}

func (m *Metrics) switchConnected(delta float64) {
	if m == nil {
		return
	}
	m.switchesNow.Add(delta)
	if delta > 0 {
		m.connects.Inc()
	}
}

// stateCollector reports, at scrape time, what the controller holds right
// now: connection state of every host's OVSDB session and bridges, the flows
// brtun installed per table, and the MACs learn() taught each network (as of
// the bridge's last dump: a switch connecting or the drift check).
type stateCollector struct {
	ctrl       atomic.Pointer[Controller]
	ovsdbUp    *prometheus.Desc
	openflowUp *prometheus.Desc
	flowsDesc  *prometheus.Desc
	learned    *prometheus.Desc
	portDrops  *prometheus.Desc
	srcDrops   *prometheus.Desc
	macTable   *prometheus.Desc
	refused    *prometheus.Desc
	macLimit   *prometheus.Desc
}

// dropsHelp is the help of brtun_port_security_dropped_packets_total.
const dropsHelp = "Packets br-int dropped from a port (port security, 802.1Q-tagged frames), from the packet counts of the port's drop flows " +
	"as of br-int's last dump (on connect and at each drift check); it restarts from 0 when the port's flows are re-added. " +
	"A port that is administratively down has none: its frames are all dropped, and not counted here."

func newStateCollector() *stateCollector {
	return &stateCollector{
		ovsdbUp: prometheus.NewDesc("brtun_ovsdb_connected",
			"1 when the host's OVSDB session is connected, else 0.", []string{"host"}, nil),
		openflowUp: prometheus.NewDesc("brtun_openflow_connected",
			"1 when the bridge's OpenFlow connection is open, else 0.", []string{"host", "bridge"}, nil),
		flowsDesc: prometheus.NewDesc("brtun_openflow_flows",
			"Flows brtun installed on the bridge, by table (learned flows not included).", []string{"host", "bridge", "table"}, nil),
		learned: prometheus.NewDesc("brtun_learned_macs",
			"MACs learned in table 20 for a network on a host, as of the bridge's last dump.", []string{"host", "network"}, nil),
		portDrops: prometheus.NewDesc("brtun_port_security_dropped_packets_total", dropsHelp,
			[]string{"host", "network", "port"}, nil),
		srcDrops: prometheus.NewDesc("brtun_appliance_source_dropped_packets_total",
			"Packets a port without port security sent from other source MACs than its own and its pairs' that its source meter dropped "+
				"(--appliance-source-rate), as of br-int's last dump (on connect and at each drift check); it restarts from 0 when the meter is re-added.",
			[]string{"host", "network", "port"}, nil),
		macTable: prometheus.NewDesc("brtun_mac_table_flows",
			"Flows in br-tun table 20 of a host (registered remote ports, learned MACs, the miss flow), as of the bridge's last dump; OVS evicts learned MACs when it reaches brtun_mac_table_limit.", []string{"host"}, nil),
		refused: prometheus.NewDesc("brtun_refused_bindings",
			"Port bindings the host's OVSDB cannot take (an interface on another bridge, say), left out of its last OVSDB transaction; each such port answers status error with a message.", []string{"host"}, nil),
		macLimit: prometheus.NewDesc("brtun_mac_table_limit",
			"The flow limit of br-tun table 20 and the size of br-int's MAC table on every host (--mac-learn-limit; 0: unbounded).", nil, nil),
	}
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.ovsdbUp
	ch <- s.openflowUp
	ch <- s.flowsDesc
	ch <- s.learned
	ch <- s.portDrops
	ch <- s.srcDrops
	ch <- s.macTable
	ch <- s.refused
	ch <- s.macLimit
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c := s.ctrl.Load()
	if c == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(s.macLimit, prometheus.GaugeValue, float64(max(c.opts.MACLearnLimit, 0)))
	for _, h := range c.metricState() {
		ch <- prometheus.MustNewConstMetric(s.ovsdbUp, prometheus.GaugeValue, bool01(h.ovsdb), h.name)
		for _, b := range h.bridges {
			ch <- prometheus.MustNewConstMetric(s.openflowUp, prometheus.GaugeValue, bool01(b.connected), h.name, b.name)
			for table, n := range b.tables {
				ch <- prometheus.MustNewConstMetric(s.flowsDesc, prometheus.GaugeValue, float64(n), h.name, b.name, strconv.Itoa(int(table)))
			}
		}
		for network, n := range h.learned {
			ch <- prometheus.MustNewConstMetric(s.learned, prometheus.GaugeValue, float64(n), h.name, network)
		}
		for port, n := range h.portDrops {
			ch <- prometheus.MustNewConstMetric(s.portDrops, prometheus.CounterValue, float64(n), h.name, port.network, port.name)
		}
		for port, n := range h.sourceDrops {
			ch <- prometheus.MustNewConstMetric(s.srcDrops, prometheus.CounterValue, float64(n), h.name, port.network, port.name)
		}
		if h.macTable >= 0 {
			ch <- prometheus.MustNewConstMetric(s.macTable, prometheus.GaugeValue, float64(h.macTable), h.name)
		}
		ch <- prometheus.MustNewConstMetric(s.refused, prometheus.GaugeValue, float64(h.refused), h.name)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observe makes the state collector report c.
func (m *Metrics) observe(c *Controller) {
	if m == nil {
		return
	}
	m.state.ctrl.Store(c)
}

// hostMetrics is one host's state as the collector reports it.
type hostMetrics struct {
	name    string
	ovsdb   bool
	bridges []bridgeMetrics
	learned map[string]int // network -> learned MACs
	// portDrops are the packets br-int dropped per local port.
	portDrops map[portName]uint64
	// sourceDrops are the packets each port's source meter dropped.
	sourceDrops map[portName]uint64
	// macTable is the flows of br-tun table 20: installed plus learned at
	// the last dump (-1: br-tun holds nothing brtun knows of yet).
	macTable int
	refused  int // bindings the last OVSDB transaction left out
}

// portName names a port in metrics.
type portName struct{ network, name string }

type bridgeMetrics struct {
	name      string
	connected bool
	tables    map[uint8]int
}

// metricState copies what the state collector reports.
func (c *Controller) metricState() []hostMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	byCookie := map[uint64]string{} // learned cookie without VLAN -> network
	for _, n := range c.desired.snap.Networks {
		byCookie[flows.LearnedCookie(n.Type, n.SegmentID, 0)] = n.Name
	}
	out := make([]hostMetrics, 0, len(c.hosts))
	for name, hs := range c.hosts {
		h := hostMetrics{name: name, learned: map[string]int{}, macTable: -1, portDrops: map[portName]uint64{}, sourceDrops: map[portName]uint64{}, refused: len(hs.refused)}
		for ofport, n := range hs.bridges[BrInt].sourceDrops {
			if p, ok := hs.ofports[ofport]; ok {
				h.sourceDrops[portName(p)] = n
			}
		}
		if drops := hs.bridges[BrInt].portDrops; len(drops) > 0 {
			for _, p := range c.desired.byHost[name] {
				if n, ok := drops[flows.PortCookie(p.Network, p.Name)]; ok {
					h.portDrops[portName{p.Network, p.Name}] = n
				}
			}
		}
		if cl := hs.ovsdb.client(); cl != nil {
			h.ovsdb = cl.Connected()
		}
		for _, b := range bridgeNames {
			bs := hs.bridges[b]
			h.bridges = append(h.bridges, bridgeMetrics{name: b, connected: c.switches[bs.dpid] != nil, tables: bs.tableFlows})
			for cookie, n := range bs.learnedMACs {
				o, _ := flows.DecodeCookie(cookie)
				if network, ok := byCookie[flows.LearnedCookie(o.Type, o.Segment, 0)]; ok {
					h.learned[network] += n
				}
			}
			if b == BrTun && bs.tableFlows != nil {
				h.macTable = bs.tableFlows[flows.TableUnicast]
				for _, n := range bs.learnedMACs {
					h.macTable += n
				}
			}
		}
		out = append(out, h)
	}
	return out
}
