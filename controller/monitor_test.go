package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// monitoredSwitch is a testSwitch with a flow monitor: the test reports
// updates through it as the switch's reader would.
type monitoredSwitch struct {
	*testSwitch
	refuse     error
	unanswered bool // the request times out, and the switch starts the monitor later

	mu       sync.Mutex
	onUpdate func([]ofswitch.FlowUpdate)
	ids      map[uint32]bool // monitor ids asked for, never reused
	watches  int
	cancels  int
}

func (s *monitoredSwitch) WatchFlows(_ context.Context, id uint32, onUpdate func([]ofswitch.FlowUpdate)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches++
	if s.ids[id] {
		return errors.New("id in use")
	}
	if s.ids == nil {
		s.ids = map[uint32]bool{}
	}
	s.ids[id] = true
	if s.refuse != nil {
		return s.refuse
	}
	s.onUpdate = onUpdate
	if s.unanswered {
		return fmt.Errorf("flow monitor: %w", context.DeadlineExceeded)
	}
	return nil
}

func (s *monitoredSwitch) UnwatchFlows(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels++
	if !s.ids[id] {
		return errors.New("unknown monitor")
	}
	s.onUpdate = nil
	return nil
}

// report delivers updates to the monitor, which must be running.
func (s *monitoredSwitch) report(t *testing.T, updates ...ofswitch.FlowUpdate) {
	t.Helper()
	s.mu.Lock()
	fn := s.onUpdate
	s.mu.Unlock()
	require.NotNil(t, fn, "the flow monitor runs")
	fn(updates)
}

func (s *monitoredSwitch) counts() (watches, cancels int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watches, s.cancels
}

// connectMonitored connects both bridges of host as monitored switches.
func (l *lab) connectMonitored(host string, refuse error) map[string]*monitoredSwitch {
	out := map[string]*monitoredSwitch{}
	for _, b := range bridgeNames {
		sw := &monitoredSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID(host, b), nil), refuse: refuse}
		l.ctrl.AddSwitch(sw)
		out[b] = sw
	}
	return out
}

// monitoredPair runs a controller over h1, whose switches have flow
// monitors, and h2, with a port of blue on each, applied and settled. It
// returns h1's switches (its br-tun holds flows) and the revision of the
// last port.
func monitoredPair(t *testing.T) (*lab, map[string]*monitoredSwitch, uint64) {
	t.Helper()
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	sw := l.connectMonitored("h1", nil)
	l.connect("h2", BrInt)
	l.connect("h2", BrTun)
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	rev := l.addPort("h2", "a2", "02:00:00:00:01:02")
	l.waitApplied(rev)
	l.settle()
	require.NotEmpty(t, sw[BrTun].flows())
	return l, sw, rev
}

// With the periodic check an hour away, a flow someone else deletes is
// back as soon as the monitor reports it, through the drift check's full
// reconcile and fresh dump; brtun's own changes (abbreviated), learn()'s
// entries and anything reported while the monitor is paused do not dump
// the switch, and the resume after a pause does.
func TestFlowMonitorRepairsOthersChangesAtOnce(t *testing.T) {
	l, sw, rev := monitoredPair(t)
	tun := sw[BrTun]
	held := tun.flows()
	dumps := tun.count("dump")

	// Not drift: brtun's own bundle, learn()'s entries coming and going.
	learned := flows.Flow{Table: flows.TableUnicast, Priority: 1, Cookie: flows.LearnedCookie(topology.VXLAN, 5001, 1), HardTimeout: 300,
		Match: flows.Match{EthDst: &flows.MaskedMAC{Value: flows.MAC{2, 0, 0, 0, 9, 9}, Mask: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}}}
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowAbbrev, Xid: 12},
		ofswitch.FlowUpdate{Event: ofswitch.FlowAdded, Flow: learned},
		ofswitch.FlowUpdate{Event: ofswitch.FlowDeleted, Reason: 1, Flow: learned})
	l.settle()
	assert.Equal(t, dumps, tun.count("dump"), "own changes and learned flows ask for no drift check")

	// Drift: someone deletes one of brtun's flows.
	removed := held[len(held)/2]
	start := time.Now()
	tun.edit(func(h map[flows.Key]flows.Flow) { delete(h, removed.Key()) })
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowDeleted, Reason: 2, Flow: removed})
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 5*time.Second, 5*time.Millisecond,
		"the flow monitor's report repairs %s", removed)
	t.Logf("repaired %v after the report", time.Since(start))
	assert.Equal(t, held, tun.flows())
	assert.Equal(t, dumps+1, tun.count("dump"), "the repair dumps the switch afresh")
	assert.Equal(t, 1.0, l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "changed"}))
	assert.GreaterOrEqual(t, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}), 1.0)
	assert.Equal(t, rev, l.revision(), "no store write asked for it")

	// Paused: nothing is trusted until the resume, which asks for the check.
	l.settle()
	dumps = tun.count("dump")
	added := flows.Flow{Table: 3, Priority: 9, Cookie: 0x42}
	tun.edit(func(h map[flows.Key]flows.Flow) { h[added.Key()] = added })
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.MonitorPaused}, ofswitch.FlowUpdate{Event: ofswitch.FlowDeleted, Reason: 2, Flow: removed})
	l.settle()
	assert.Equal(t, dumps, tun.count("dump"), "no drift check while paused")
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowAdded, Flow: added}, ofswitch.FlowUpdate{Event: ofswitch.MonitorResumed})
	require.Eventually(t, func() bool { return !slices.ContainsFunc(tun.flows(), added.Equal) }, 5*time.Second, 5*time.Millisecond,
		"the resume's drift check removes the foreign %s", added)
	assert.Equal(t, held, tun.flows())
	assert.Equal(t, 1.0, l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "resumed"}))

	// br-int has its own monitor, asked for once per connection.
	integ := sw[BrInt]
	watches, cancels := integ.counts()
	assert.Equal(t, [2]int{1, 0}, [2]int{watches, cancels})
	intHeld := integ.flows()
	victim := intHeld[0]
	integ.edit(func(h map[flows.Key]flows.Flow) {
		v := h[victim.Key()]
		v.Actions = nil // modified behind brtun's back
		h[victim.Key()] = v
	})
	integ.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowModified, Flow: victim})
	require.Eventually(t, func() bool { return slices.EqualFunc(integ.flows(), intHeld, flows.Flow.Equal) }, 5*time.Second, 5*time.Millisecond,
		"the modified br-int flow is put back")
}

// A switch that refuses the flow monitor is logged once, counted, asked
// once per connection, and still programmed (the periodic check repairs
// its drift).
func TestFlowMonitorRefusedKeepsThePeriodicCheck(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{DriftInterval: 300 * time.Millisecond})
	refused := errors.New("OFPET_BAD_REQUEST")
	sw := l.connectMonitored("h1", refused)
	l.connectMonitored("h2", refused)
	rev := l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(rev)
	tun := sw[BrTun]
	held := tun.flows()
	require.NotEmpty(t, held, "a switch without a monitor is programmed")
	require.Eventually(t, func() bool {
		return l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "refused"}) == 4
	}, 5*time.Second, 5*time.Millisecond, "one per bridge")
	assert.Equal(t, 1, l.logs.FilterMessageSnippet("refused the flow monitor; its drift").Len(), "logged once")

	removed := held[0]
	tun.edit(func(h map[flows.Key]flows.Flow) { delete(h, removed.Key()) })
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 10*time.Second, 10*time.Millisecond,
		"the periodic drift check repairs %s", removed)
	watches, _ := tun.counts()
	assert.Equal(t, 1, watches, "asked once per connection, not at every reconcile")
}

// With several replicas, the monitor runs while this replica masters the
// bridge: cancelled when another replica takes it over (its changes are no
// drift), asked for again when the bridge comes back.
func TestFlowMonitorFollowsTheMasterRole(t *testing.T) {
	m := newTestMastership()
	for _, h := range []string{"h1", "h2"} {
		for _, b := range bridgeNames {
			m.set(bridgeRef{h, b}, true, 1)
		}
	}
	l := newLab(t, "h1", "h2")
	l.start(Options{Mastership: m})
	sw := l.connectMonitored("h1", nil)
	l.connect("h2", BrInt)
	l.connect("h2", BrTun)
	rev := l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(rev)
	integ := sw[BrInt]
	watches, cancels := integ.counts()
	require.Equal(t, [2]int{1, 0}, [2]int{watches, cancels}, "master: monitored")

	m.set(bridgeRef{"h1", BrInt}, false, 2)
	require.Eventually(t, func() bool { _, c := integ.counts(); return c == 1 }, 10*time.Second, 10*time.Millisecond,
		"the monitor is cancelled when another replica masters the bridge")
	watches, _ = integ.counts()
	assert.Equal(t, 1, watches)
	tunWatches, tunCancels := sw[BrTun].counts()
	assert.Equal(t, [2]int{1, 0}, [2]int{tunWatches, tunCancels}, "control: br-tun, still mastered here, keeps its monitor")

	m.set(bridgeRef{"h1", BrInt}, true, 3)
	require.Eventually(t, func() bool { w, _ := integ.counts(); return w == 2 }, 10*time.Second, 10*time.Millisecond,
		"mastered again: monitored again")
	l.settle()
	assert.Zero(t, l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "refused"}),
		"with a new id: OVS would garble its answer to an id still in use")
}

// NoFlowMonitor (serve --flow-monitor=false) asks no switch for a monitor;
// the same switch is asked with it on (the tests above).
func TestNoFlowMonitorAsksNone(t *testing.T) {
	l := newLab(t, "h1")
	l.start(Options{NoFlowMonitor: true})
	sw := l.connectMonitored("h1", nil)
	rev := l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(rev)
	require.NotEmpty(t, sw[BrTun].flows(), "control: the bridge is programmed")
	for _, b := range bridgeNames {
		watches, _ := sw[b].counts()
		assert.Zero(t, watches, b)
	}
}

// A switch too busy to answer the monitor request in time has not refused
// it: no refusal is counted or logged, and the monitor, started by the
// switch later, repairs a foreign change at once (the periodic check is an
// hour away). A refusing switch beside it is counted (positive control).
func TestFlowMonitorUnansweredIsNoRefusal(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	sw := map[string]*monitoredSwitch{}
	for _, b := range bridgeNames {
		sw[b] = &monitoredSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", b), nil), unanswered: true}
		l.ctrl.AddSwitch(sw[b])
	}
	l.connectMonitored("h2", errors.New("OFPET_BAD_REQUEST"))
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	require.Eventually(t, func() bool {
		return l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "unanswered"}) == 2
	}, 5*time.Second, 5*time.Millisecond, "one per bridge of h1")
	require.Eventually(t, func() bool {
		return l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "refused"}) == 2
	}, 5*time.Second, 5*time.Millisecond, "h2's two bridges refused")
	l.settle()
	assert.Equal(t, 2.0, l.metric("brtun_openflow_flow_monitor_events_total", map[string]string{"event": "refused"}), "h1's are not refusals")

	tun := sw[BrTun]
	held := tun.flows()
	require.NotEmpty(t, held)
	removed := held[len(held)/2]
	tun.edit(func(h map[flows.Key]flows.Flow) { delete(h, removed.Key()) })
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowDeleted, Reason: 2, Flow: removed})
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 5*time.Second, 5*time.Millisecond,
		"the monitor the switch started late repairs %s", removed)
}

// A drift check that runs for a revision that changed the bridge's flows
// counts as drift only what someone else changed (one deleted flow); the
// revision's own flows (a port on h2: entries on h1's br-tun) are applied,
// not repaired.
func TestDriftCountsOnlyOthersChanges(t *testing.T) {
	l, sw, _ := monitoredPair(t)
	tun := sw[BrTun]
	held := tun.flows()

	// A first check dumps the switch and waits for the gate ...
	gate := make(chan struct{})
	tun.mu.Lock()
	tun.gate = gate
	tun.mu.Unlock()
	dumps := tun.count("dump")
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowModified, Flow: held[0]})
	require.Eventually(t, func() bool { return tun.count("dump") > dumps }, 5*time.Second, 5*time.Millisecond)
	// ... while a revision changes h1's br-tun and someone deletes a flow:
	// the next check comes with the revision.
	rev := l.addPort("h2", "a3", "02:00:00:00:01:03")
	require.Eventually(t, func() bool {
		return l.logs.FilterMessage("reconciled").FilterField(zap.String("host", "h2")).FilterField(zap.Uint64("revision", rev)).Len() > 0
	}, 5*time.Second, 5*time.Millisecond, "the controller has the revision (h2 took it)")
	removed := held[len(held)/2]
	tun.edit(func(h map[flows.Key]flows.Flow) { delete(h, removed.Key()) })
	tun.report(t, ofswitch.FlowUpdate{Event: ofswitch.FlowDeleted, Reason: 2, Flow: removed})
	close(gate)
	l.waitApplied(rev)
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 5*time.Second, 5*time.Millisecond)
	l.settle()
	assert.Greater(t, len(tun.flows()), len(held), "the revision added flows (positive control)")
	assert.Equal(t, 1.0, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}),
		"one flow drifted")
}
