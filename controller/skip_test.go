package controller

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// syncedLab is h1, h2 and h3 with their switches connected, a port of
// blue on h1 and on h2, everything applied and the controller idle.
func syncedLab(t *testing.T, opts Options) (*lab, map[bridgeRef]*testSwitch) {
	t.Helper()
	l := newLab(t, "h1", "h2", "h3")
	l.start(opts)
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	l.settle()
	for _, b := range bridgeNames {
		require.NotEmpty(t, sw[bridgeRef{"h1", b}].flows(), "control: h1's %s was programmed", b)
	}
	return l, sw
}

// skipped makes a write that does not touch h1 and reports whether h1 took
// that revision without a reconcile.
func skipped(t *testing.T, l *lab, name string) bool {
	t.Helper()
	rev := l.write("red", "h3", name) // red is h3's only
	at := func(msg string) int {
		return l.logs.FilterMessageSnippet(msg).FilterField(zap.String("host", "h1")).FilterField(zap.Uint64("revision", rev)).Len()
	}
	require.Eventually(t, func() bool { return at("revision taken without a reconcile")+at("reconciled") > 0 },
		10*time.Second, 10*time.Millisecond, "h1 takes revision %d", rev)
	l.settle()
	took := at("revision taken without a reconcile")
	require.LessOrEqual(t, took, 1)
	if took == 1 {
		require.Zero(t, at("reconciled"), "a revision taken without a reconcile is not reconciled too")
	}
	return took == 1
}

func TestRevisionThatLeavesAHostAloneIsTakenWithoutAReconcile(t *testing.T) {
	l, sw := syncedLab(t, Options{})
	h1tun, h1int := sw[bridgeRef{"h1", BrTun}], sw[bridgeRef{"h1", BrInt}]
	before := len(h1tun.history()) + len(h1int.history())
	skips := l.metric("brtun_controller_reconciles_skipped_total", nil)

	assert.True(t, skipped(t, l, "r1"), "nothing h1 depends on changed")
	for _, b := range bridgeNames {
		assert.Equal(t, l.revision(), l.ctrl.HostStatus("h1").Bridges[b].AppliedRevision, "h1/%s has the revision applied", b)
	}
	assert.Equal(t, before, len(h1tun.history())+len(h1int.history()), "h1's switches are neither dumped nor sent anything")
	assert.GreaterOrEqual(t, l.metric("brtun_controller_reconciles_skipped_total", nil)-skips, 1.0, "counted in /metrics")

	full, applies := l.fullReconciles("h1"), h1tun.count("apply")
	l.waitApplied(l.addPort("h2", "a3", "02:00:00:00:01:03"))
	l.settle()
	assert.Greater(t, l.fullReconciles("h1"), full, "a revision that touches h1 reconciles it")
	assert.Equal(t, applies+1, h1tun.count("apply"), "and sends br-tun the flows of a3, a port of blue h1 now reaches")
}

func TestFailedReconcileIsNotSkipped(t *testing.T) {
	l, sw := syncedLab(t, Options{})
	h1tun := sw[bridgeRef{"h1", BrTun}]
	dumps := h1tun.count("dump")

	h1tun.setApplyErr(errors.New("bundle rejected"))
	l.addPort("h2", "a3", "02:00:00:00:01:03") // a new remote port for h1's br-tun: an apply that fails
	require.Eventually(t, func() bool { return l.ctrl.HostStatus("h1").LastError != "" }, 10*time.Second, 10*time.Millisecond)
	assert.False(t, skipped(t, l, "r1"), "the last full reconcile failed: the next one is full")

	h1tun.setApplyErr(nil)
	require.Eventually(t, func() bool { return l.ctrl.HostStatus("h1").LastError == "" }, 20*time.Second, 20*time.Millisecond,
		"the retry succeeds")
	assert.Greater(t, h1tun.count("dump"), dumps, "what a switch holds after a failed apply is unknown: it is dumped again")
	l.settle()
	assert.True(t, skipped(t, l, "r2"), "control: skipped again once a full reconcile succeeded")
}

func TestOVSDBChangeIsNotSkipped(t *testing.T) {
	l, sw := syncedLab(t, Options{})
	h1tun := sw[bridgeRef{"h1", BrTun}]
	applies := h1tun.count("apply")

	// An operator's tunnel port ofport changes behind brtun's back: the
	// OVSDB facts differ from those of the last reconcile.
	s := l.ovs["h1"]
	var ifaces []vswitchd.Interface
	require.NoError(t, s.Raw().List(t.Context(), &ifaces))
	var tunnel *vswitchd.Interface
	for i := range ifaces {
		if ifaces[i].Type == "vxlan" && ifaces[i].Options["remote_ip"] == "192.0.2.2" {
			tunnel = &ifaces[i]
		}
	}
	require.NotNil(t, tunnel, "control: brtun made h1's tunnel to h2")
	ofport := 4000
	want := &vswitchd.Interface{UUID: tunnel.UUID, Ofport: &ofport}
	ops, err := s.Raw().Where(want).Update(want, &want.Ofport)
	require.NoError(t, err)
	s.Transact(t, ops...)
	require.Eventually(t, func() bool { return h1tun.count("apply") > applies }, 10*time.Second, 10*time.Millisecond,
		"the flows that output to the tunnel are rewritten")
	l.settle()
	assert.True(t, skipped(t, l, "r1"), "control: skipped again after the reconcile")

	// The OVSDB session drops: its facts say so, and the host is reconciled.
	s.Proxy().Down()
	require.Eventually(t, func() bool { return !l.ctrl.HostStatus("h1").OVSDBConnected }, 10*time.Second, 10*time.Millisecond)
	full := l.fullReconciles("h1")
	l.write("red", "h3", "r2")
	require.Eventually(t, func() bool { return l.fullReconciles("h1") > full }, 10*time.Second, 10*time.Millisecond,
		"a host whose OVSDB is down is not skipped")
	s.Proxy().Up()
	require.Eventually(t, func() bool { return l.ctrl.HostStatus("h1").LastError == "" && l.ctrl.HostStatus("h1").OVSDBConnected },
		20*time.Second, 20*time.Millisecond)
	l.settle()
	assert.True(t, skipped(t, l, "r3"), "control: skipped again once reconnected")
}

func TestSwitchConnectionsAndSkipping(t *testing.T) {
	l, sw := syncedLab(t, Options{})
	old := sw[bridgeRef{"h1", BrTun}]
	held := old.flows()

	// br-tun reconnects: what the new connection holds is unknown.
	fresh := l.connect("h1", BrTun, held...)
	require.Eventually(t, func() bool { return fresh.count("dump") == 1 }, 10*time.Second, 10*time.Millisecond,
		"a new connection is dumped")
	l.settle()
	assert.Zero(t, fresh.count("apply"), "it holds what it should: nothing is sent")
	assert.True(t, skipped(t, l, "r1"), "control: skipped again once the new connection is known")
	assert.Equal(t, []string{"dump"}, fresh.history())

	// br-tun disconnects: a bridge without a switch is reconciled when it
	// connects, and does not keep its host from skipping.
	require.NoError(t, fresh.Close())
	require.Eventually(t, func() bool { return !l.ctrl.HostStatus("h1").Bridges[BrTun].OpenFlowConnected }, 10*time.Second, 10*time.Millisecond)
	l.settle()
	assert.True(t, skipped(t, l, "r2"))
}

// testMastership places bridges by a map and tells the controller when it
// changed.
type testMastership struct {
	mu      chan struct{} // a one-slot lock
	master  map[string]bool
	gen     uint64
	changes chan struct{}
}

func newTestMastership() *testMastership {
	return &testMastership{mu: make(chan struct{}, 1), master: map[string]bool{}, changes: make(chan struct{}, 1)}
}

func (m *testMastership) SetBridges([]string) {}
func (m *testMastership) Role(ref string) (bool, uint64) {
	m.mu <- struct{}{}
	defer func() { <-m.mu }()
	return m.master[ref], m.gen
}
func (m *testMastership) Changes() <-chan struct{}        { return m.changes }
func (m *testMastership) Master(string) string            { return "" }
func (m *testMastership) ReportApplied(string, uint64)    {}
func (m *testMastership) Applied(string) uint64           { return 0 }
func (m *testMastership) AppliedChanges() <-chan struct{} { return nil }

// set gives ref to this replica or another, with generation gen for
// every bridge, and notifies the controller.
func (m *testMastership) set(ref bridgeRef, master bool, gen uint64) {
	m.mu <- struct{}{}
	m.master[ref.String()], m.gen = master, gen
	<-m.mu
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

func TestRolesAndSkipping(t *testing.T) {
	m := newTestMastership()
	for _, h := range []string{"h1", "h2", "h3"} {
		for _, b := range bridgeNames {
			m.set(bridgeRef{h, b}, true, 1)
		}
	}
	l, sw := syncedLab(t, Options{Mastership: m})
	h1int, h1tun := sw[bridgeRef{"h1", BrInt}], sw[bridgeRef{"h1", BrTun}]
	for _, s := range []*testSwitch{h1int, h1tun} {
		require.Equal(t, []string{"role master=true generation=1", "dump", "apply"}, s.history()[:3],
			"a switch is dumped once it holds this replica as its master, not before: another replica may still change it")
	}
	assert.True(t, skipped(t, l, "r1"), "control: roles as given")

	// A new generation must be given to the switch.
	m.set(bridgeRef{"h1", BrInt}, true, 2)
	require.Eventually(t, func() bool { return h1int.history()[len(h1int.history())-1] == "role master=true generation=2" },
		10*time.Second, 10*time.Millisecond)
	l.settle()

	// br-int moves to another replica: this one holds it as slave, with
	// nothing installed to check, so h1 is skipped again.
	m.set(bridgeRef{"h1", BrInt}, false, 3)
	require.Eventually(t, func() bool { return h1int.history()[len(h1int.history())-1] == "role master=false generation=3" },
		10*time.Second, 10*time.Millisecond)
	l.settle()
	applies, tunApplies := h1int.count("apply"), h1tun.count("apply")
	assert.True(t, skipped(t, l, "r2"))
	l.addPort("h2", "a3", "02:00:00:00:01:03") // a change of h1's br-tun
	l.settle()
	assert.Equal(t, applies, h1int.count("apply"), "another replica programs br-int")
	assert.Greater(t, h1tun.count("apply"), tunApplies, "control: this replica still programs br-tun")

	// br-tun's master does the host's OVSDB work: when it moves, h1 is
	// reconciled in full.
	full := l.fullReconciles("h1")
	m.set(bridgeRef{"h1", BrTun}, false, 4)
	require.Eventually(t, func() bool { return l.fullReconciles("h1") > full }, 10*time.Second, 10*time.Millisecond)
}

// TestOVSDBTransactionLeftOutWhenItsInputsStay: a revision that gives h1
// new flows (a remote port) but changes nothing h1's OVSDB transaction
// writes reconciles h1 without the transaction: h1's flows follow, and a
// fail_mode changed by hand (no OVSDB fact) stays as it is. The drift
// check runs the transaction, which puts fail_mode back, and so does a
// revision that binds a port on h1.
func TestOVSDBTransactionLeftOutWhenItsInputsStay(t *testing.T) {
	l, sw := syncedLab(t, Options{})
	s := l.ovs["h1"]
	failMode := func() string { return brTunFailMode(t, s) }
	breakFailMode := func() {
		standalone := vswitchd.BridgeFailModeStandalone
		br := &vswitchd.Bridge{UUID: s.Bridge(t, BrTun).UUID, FailMode: &standalone}
		ops, err := s.Raw().Where(br).Update(br, &br.FailMode)
		require.NoError(t, err)
		s.Transact(t, ops...)
		require.Eventually(t, func() bool { return failMode() == vswitchd.BridgeFailModeStandalone }, 10*time.Second, time.Millisecond)
	}
	require.Equal(t, vswitchd.BridgeFailModeSecure, failMode(), "control: brtun makes br-tun fail_mode=secure")
	breakFailMode()

	skips := l.metric("brtun_controller_ovsdb_transactions_skipped_total", nil)
	full, applies := l.fullReconciles("h1"), sw[bridgeRef{"h1", BrTun}].count("apply")
	l.waitApplied(l.addPort("h2", "a3", "02:00:00:00:01:03"))
	l.settle()
	assert.Greater(t, l.fullReconciles("h1"), full, "the revision touches h1")
	assert.Equal(t, applies+1, sw[bridgeRef{"h1", BrTun}].count("apply"), "h1's br-tun gets the flows of a3")
	assert.Greater(t, l.metric("brtun_controller_ovsdb_transactions_skipped_total", nil), skips, "h1's OVSDB transaction is left out")
	assert.Equal(t, vswitchd.BridgeFailModeStandalone, failMode(), "so nothing puts fail_mode back outside the drift check")

	l.ctrl.checkDrift(newDriftSchedule(time.Nanosecond), time.Now())
	require.Eventually(t, func() bool { return failMode() == vswitchd.BridgeFailModeSecure }, 10*time.Second, 10*time.Millisecond,
		"the drift check runs the transaction, which puts fail_mode back")
	l.settle()

	breakFailMode()
	l.waitApplied(l.addPort("h1", "a4", "02:00:00:00:01:04"))
	assert.True(t, l.ctrl.PortBound("h1", "tap-a4"), "a binding on h1 runs the transaction")
	assert.Equal(t, vswitchd.BridgeFailModeSecure, failMode(), "which puts fail_mode back too")
}

// A host that takes a revision it had seen already (setSnapshot found it
// untouched) wakes no WaitApplied: at 1000 hosts 999 of them do so on
// every revision. One that had not seen it wakes the waiters.
func TestTakingARevisionWakesWaitersOnlyWhenItChangesWhatTheyRead(t *testing.T) {
	l, _ := syncedLab(t, Options{})
	c := l.ctrl
	take := func() (took, woke bool) {
		c.mu.Lock()
		desired, hs, tick := c.desired, c.hosts["h1"], c.tick
		sum := hs.sum
		c.mu.Unlock()
		host, ok := desired.snap.Host("h1")
		require.True(t, ok)
		took = c.takeIfClean(hs, desired, host, sum)
		select {
		case <-tick:
			return took, true
		default:
			return took, false
		}
	}
	took, woke := take()
	require.True(t, took, "h1 is clean")
	assert.False(t, woke, "h1 had seen the revision: nothing a waiter reads changed")

	c.mu.Lock()
	c.hosts["h1"].seenRev--
	c.mu.Unlock()
	took, woke = take()
	require.True(t, took)
	assert.True(t, woke, "h1 had not seen the revision: the waiters are woken")
}
