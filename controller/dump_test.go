package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// failures counts h1's reconciles that failed and wait for a retry.
func failures(l *lab, host string) int {
	return l.logs.FilterMessage("reconcile failed; retrying").FilterField(zap.String("host", host)).Len()
}

// A restarted controller finds the switches holding (nearly) what they
// should. Their dumps start with the host's first reconcile, in the
// background, before its OVSDB is even connected; no flow is sent without
// the OVSDB facts; the dump of a connection that was replaced meanwhile is
// not used, and once the OVSDB is up each switch gets only the difference
// to its one dump, valid learned flows left alone.
func TestRestartDiffsAgainstTheDumpStartedAhead(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "h1", "h2")
	stop := l.start(Options{})
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	l.settle()
	wantTun, wantInt := sw[bridgeRef{"h1", BrTun}].flows(), sw[bridgeRef{"h1", BrInt}].flows()
	require.NotEmpty(t, wantTun)
	require.NotEmpty(t, wantInt)
	stop()

	a1, err := l.store.GetPort(ctx, "blue", "a1")
	require.NoError(t, err)
	learned := flow(flows.TableUnicast, 4242, flows.LearnedCookie(topology.VXLAN, 5001, a1.LocalVLAN))
	stray := flow(2, 100, 0)

	l.ovs["h1"].Proxy().Down()
	// Short enough that reconciles fail fast while the OVSDB is down, long
	// enough for the first monitor of every table under -race on a busy
	// machine once it is back (300 ms was not).
	l.start(Options{OVSDBTimeout: 1500 * time.Millisecond})
	gate := make(chan struct{})
	first := newTestSwitch(ovsdb.DatapathID("h1", BrTun), wantTun)
	integ := newTestSwitch(ovsdb.DatapathID("h1", BrInt), wantInt)
	first.gate, integ.gate = gate, gate
	l.ctrl.AddSwitch(first)
	l.ctrl.AddSwitch(integ)
	for _, s := range []*testSwitch{first, integ} {
		select {
		case <-s.dumping:
		case <-time.After(10 * time.Second):
			t.Fatal("no dump started while the OVSDB is down")
		}
	}
	require.Eventually(t, func() bool { return failures(l, "h1") >= 2 }, 10*time.Second, 10*time.Millisecond,
		"h1's reconciles go on while the dumps wait for the switches: they run in the background")
	close(gate)

	// br-tun reconnects while the OVSDB is still down.
	tun := l.connect("h1", BrTun, append([]flows.Flow{learned, stray}, wantTun[1:]...)...)
	<-first.Done() // the newer connection replaces it
	seen := failures(l, "h1")
	require.Eventually(t, func() bool { return failures(l, "h1") >= seen+2 && tun.count("dump") > 0 }, 10*time.Second, 10*time.Millisecond,
		"h1's reconciles go on, and the new connection is dumped")
	for _, s := range []*testSwitch{first, integ, tun} {
		assert.Equal(t, []string{"dump"}, s.history(), "no flow is sent without the OVSDB facts; one dump serves every reconcile")
	}

	l.ovs["h1"].Proxy().Up()
	require.Eventually(t, func() bool { return tun.count("apply") == 1 }, 20*time.Second, 10*time.Millisecond)
	l.settle()
	assert.Equal(t, []string{"dump"}, first.history(), "the replaced connection is not programmed")
	assert.Equal(t, []string{"dump"}, integ.history(), "br-int holds what it should")
	assert.Equal(t, []string{"dump", "apply"}, tun.history(), "the dump taken ahead is the one the sync uses")
	assert.Equal(t, [][]Change{{{Op: OpDeleteStrict, Flow: stray}, {Op: OpAdd, Flow: wantTun[0]}}}, tun.applied,
		"only the difference to the new connection's dump is sent; the valid learned flow stays")
	want := append(slices.Clone(wantTun), learned)
	slices.SortFunc(want, func(a, b flows.Flow) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	assert.Equal(t, want, tun.flows())
	assert.Equal(t, 1.0, l.metric("brtun_learned_macs", map[string]string{"host": "h1", "network": "blue"}),
		"learned flows are counted from the dump")
}

// driftPair is h1 and h2 with a port each in blue and a drift check every
// 300 ms, once the revision it returns is applied.
func driftPair(t *testing.T) (*lab, map[bridgeRef]*testSwitch, uint64) {
	l := newLab(t, "h1", "h2")
	l.start(Options{DriftInterval: 300 * time.Millisecond})
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	rev := l.addPort("h2", "a2", "02:00:00:00:01:02")
	l.waitApplied(rev)
	return l, sw, rev
}

// The drift check reconciles a host in full with a fresh dump of each
// bridge although nothing changed, and puts back a flow removed behind
// brtun's back.
func TestDriftCheckDumpsAfreshAndRepairs(t *testing.T) {
	l, sw, rev := driftPair(t)
	tun := sw[bridgeRef{"h1", BrTun}]
	held := tun.flows()
	removed := held[len(held)/2]
	dumps := tun.count("dump")

	tun.edit(func(held map[flows.Key]flows.Flow) { delete(held, removed.Key()) })
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 10*time.Second, 10*time.Millisecond,
		"the drift check repairs %s", removed)
	assert.Equal(t, held, tun.flows())
	assert.Greater(t, tun.count("dump"), dumps, "the drift check dumps afresh")
	assert.Equal(t, rev, l.revision(), "no store write asked for it")
	assert.GreaterOrEqual(t, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}), 1.0, "the repair is counted")

	integ := sw[bridgeRef{"h1", BrInt}]
	dumps = integ.count("dump")
	require.Eventually(t, func() bool { return integ.count("dump") >= dumps+2 }, 10*time.Second, 10*time.Millisecond,
		"each drift check dumps again, even with nothing to repair")
}

// A drift check whose dump holds what brtun knows the switch holds (the
// digest of the installed flows and the learned ones) neither decodes nor
// diffs it, and still counts the port-security drops from its counters; a
// flow removed behind brtun's back changes the digest, and the check that
// follows decodes and repairs it; after brtun's own change the checks find
// the digest its bundle left.
func TestDriftCheckOfAnUnchangedSwitchIsNotDecoded(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "h1", "h2")
	l.start(Options{DriftInterval: 300 * time.Millisecond})
	sw := l.connectAll()
	require.Eventually(t, func() bool { return l.ovs["h1"].Bridge(t, BrInt) != nil }, 10*time.Second, 10*time.Millisecond)
	iface := "tap-a1"
	l.ovs["h1"].AddPort(t, BrInt, &vswitchd.Port{Name: iface}, &vswitchd.Interface{Name: iface})
	_, rev, err := l.store.CreatePort(ctx, topology.Port{Network: "blue", Name: "a1", Host: "h1", Interface: iface,
		MAC: "02:00:00:00:01:01", IPs: []string{"198.18.0.1"}, PortSecurityEnabled: true})
	require.NoError(t, err)
	l.waitApplied(rev)
	rev = l.addPort("h2", "a2", "02:00:00:00:01:02")
	l.waitApplied(rev)
	tun, integ := sw[bridgeRef{"h1", BrTun}], sw[bridgeRef{"h1", BrInt}]

	// Unchanged: the checks go on, undecoded, and repair nothing.
	skipped := tun.undecodedDumps()
	require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond,
		"drift checks of an unchanged br-tun are not decoded")
	held := tun.flows()
	assert.Zero(t, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}))

	// Counters are not part of the digest: the drops come from them.
	const drops = "brtun_port_security_dropped_packets_total"
	labels := map[string]string{"host": "h1", "network": "blue", "port": "a1"}
	skipped, decodedInt := integ.undecodedDumps(), integ.decodedDumps()
	integ.setPackets(5)
	require.Eventually(t, func() bool { return l.metric(drops, labels) == 5*9 }, 10*time.Second, 10*time.Millisecond,
		"a1's nine drop flows report 5 packets each")
	assert.Greater(t, integ.undecodedDumps(), skipped, "read from undecoded dumps")
	assert.Equal(t, decodedInt, integ.decodedDumps(), "and from no decoded one")

	// A change by someone else: decoded, repaired, then undecoded again.
	removed := held[len(held)/2]
	tun.edit(func(held map[flows.Key]flows.Flow) { delete(held, removed.Key()) })
	require.Eventually(t, func() bool { return slices.ContainsFunc(tun.flows(), removed.Equal) }, 10*time.Second, 10*time.Millisecond,
		"the drift check repairs %s", removed)
	assert.Equal(t, held, tun.flows())
	assert.Equal(t, 1.0, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}))
	skipped = tun.undecodedDumps()
	require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond,
		"once repaired, the checks are undecoded again")
	assert.Equal(t, 1.0, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}))

	// brtun's own change: the checks after it find the digest its apply
	// left, without a decode.
	decoded := tun.decodedDumps()
	rev = l.addPort("h2", "a3", "02:00:00:00:01:03")
	l.waitApplied(rev)
	require.NotEqual(t, held, tun.flows(), "a3 changed h1's br-tun")
	skipped = tun.undecodedDumps()
	require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond,
		"the checks after brtun's own change are undecoded")
	assert.Equal(t, decoded, tun.decodedDumps(), "no dump of h1's br-tun decoded since the change")
}

// A switch that reports a flow with other bytes than brtun's encoding (a
// key FlowKey did not predict) costs one decoded check, which repairs
// nothing and learns the key; the checks after it are undecoded again.
func TestDriftCheckLearnsTheKeyASwitchReportsAFlowBy(t *testing.T) {
	l, sw, _ := driftPair(t)
	tun := sw[bridgeRef{"h1", BrTun}]
	skipped := tun.undecodedDumps()
	require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+1 }, 10*time.Second, 10*time.Millisecond)

	held := tun.flows()
	other := held[len(held)/2]
	applies := tun.count("apply")
	decoded := tun.decodedDumps()
	tun.reportKey(other.Key(), 0x5eed)
	require.Eventually(t, func() bool { return tun.decodedDumps() > decoded }, 10*time.Second, 10*time.Millisecond,
		"the first check after the switch reports %s otherwise decodes", other)
	skipped, decoded = tun.undecodedDumps(), tun.decodedDumps()
	require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond,
		"the checks after it know the key")
	assert.Equal(t, decoded, tun.decodedDumps(), "no more decoded checks")
	assert.Equal(t, applies, tun.count("apply"), "nothing was sent")
	assert.Equal(t, held, tun.flows())
	assert.Zero(t, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}))
}

// Hosts share a compiled flow (flowTable), but each switch has its own key
// for it: a switch that reports a flow otherwise than brtun's encoding
// (another OVS version) costs its own bridge one decoded check, after
// which neither its checks nor those of another host holding the same flow
// decode. (With the reported key kept on the shared flow, the two hosts'
// checks decoded in turn for ever.)
func TestDriftCheckKeepsEachSwitchsKey(t *testing.T) {
	l, sw, _ := driftPair(t)
	tun1, tun2 := sw[bridgeRef{"h1", BrTun}], sw[bridgeRef{"h2", BrTun}]
	settled := func(tuns ...*testSwitch) {
		t.Helper()
		for _, tun := range tuns {
			skipped := tun.undecodedDumps()
			require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond)
		}
	}
	settled(tun1, tun2)
	i := slices.IndexFunc(tun1.flows(), func(f flows.Flow) bool { return slices.ContainsFunc(tun2.flows(), f.Equal) })
	require.GreaterOrEqual(t, i, 0, "h1's and h2's br-tun have flows in common")
	shared := tun1.flows()[i]
	applies1, applies2 := tun1.count("apply"), tun2.count("apply")

	decoded1, decoded2 := tun1.decodedDumps(), tun2.decodedDumps()
	tun1.reportKey(shared.Key(), 0x5eed)
	require.Eventually(t, func() bool { return tun1.decodedDumps() > decoded1 }, 10*time.Second, 10*time.Millisecond,
		"control: h1's first check after its switch reports %s otherwise decodes", shared)
	decoded1 = tun1.decodedDumps()
	settled(tun1, tun2, tun1, tun2)
	assert.Equal(t, decoded1, tun1.decodedDumps(), "h1's checks know its key")
	assert.Equal(t, decoded2, tun2.decodedDumps(), "h2's checks keep their own key")
	assert.Equal(t, applies1, tun1.count("apply"), "nothing was sent to h1")
	assert.Equal(t, applies2, tun2.count("apply"), "nothing was sent to h2")
	assert.Zero(t, l.metric("brtun_controller_drift_repaired_flows_total", map[string]string{"host": "h1", "bridge": BrTun}))
}

// A key a switch reports a flow by survives recompiles that leave the flow
// as it is. A flow whose key another host holds with other values (each
// host's flood flow: the same match, other tunnels) is a new object in
// every compile of the host whose flow the flow table does not keep; both
// switches report theirs by another key, then a port on each host makes
// both br-tuns recompile: after the bundles no check of either decodes.
func TestDriftCheckKeepsAReportedKeyAcrossRecompiles(t *testing.T) {
	l, sw, _ := driftPair(t)
	tuns := []*testSwitch{sw[bridgeRef{"h1", BrTun}], sw[bridgeRef{"h2", BrTun}]}
	settled := func() {
		t.Helper()
		for _, tun := range tuns {
			skipped := tun.undecodedDumps()
			require.Eventually(t, func() bool { return tun.undecodedDumps() >= skipped+2 }, 10*time.Second, 10*time.Millisecond)
		}
	}
	settled()
	for i, tun := range tuns {
		other := tuns[1-i].flows()
		j := slices.IndexFunc(tun.flows(), func(f flows.Flow) bool {
			return slices.ContainsFunc(other, func(o flows.Flow) bool { return o.Key() == f.Key() && !o.Equal(f) })
		})
		require.GreaterOrEqual(t, j, 0, "the br-tuns have a flow of the same key and other values")
		decoded := tun.decodedDumps()
		tun.reportKey(tun.flows()[j].Key(), 0x5eed+uint64(i))
		require.Eventually(t, func() bool { return tun.decodedDumps() > decoded }, 10*time.Second, 10*time.Millisecond,
			"control: the first check after the switch reports the flow otherwise decodes")
	}
	settled()
	applies := []int{tuns[0].count("apply"), tuns[1].count("apply")}
	l.addPort("h2", "a3", "02:00:00:00:01:03")
	rev := l.addPort("h1", "a4", "02:00:00:00:01:04")
	l.waitApplied(rev)
	decoded := []int{tuns[0].decodedDumps(), tuns[1].decodedDumps()}
	settled()
	settled()
	for i, tun := range tuns {
		assert.Greater(t, tun.count("apply"), applies[i], "control: h%d's br-tun was recompiled and sent its change", i+1)
		assert.Equal(t, decoded[i], tun.decodedDumps(), "h%d's checks after the change keep the reported key", i+1)
	}
}

// The drift check takes the full path even for a host without a connected
// switch, so an OVSDB change that no fact reports (and so enqueues
// nothing) is repaired within one drift interval.
func TestDriftCheckRepairsOVSDBWithoutAnySwitch(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{DriftInterval: 300 * time.Millisecond})
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	s := l.ovs["h1"]
	failMode := func() string { return brTunFailMode(t, s) }
	require.Eventually(t, func() bool { return failMode() == vswitchd.BridgeFailModeSecure }, 10*time.Second, 10*time.Millisecond,
		"control: brtun makes br-tun fail_mode=secure")
	// Let the reconciles that OVSDB changes asked for pass: a1 bound, then
	// two drift checks.
	require.Eventually(t, func() bool { return l.ctrl.PortBound("h1", "tap-a1") }, 10*time.Second, 10*time.Millisecond)
	full := l.fullReconciles("h1")
	require.Eventually(t, func() bool { return l.fullReconciles("h1") >= full+2 }, 10*time.Second, 10*time.Millisecond)

	standalone := vswitchd.BridgeFailModeStandalone
	br := &vswitchd.Bridge{UUID: s.Bridge(t, BrTun).UUID, FailMode: &standalone}
	ops, err := s.Raw().Where(br).Update(br, &br.FailMode)
	require.NoError(t, err)
	s.Transact(t, ops...)
	require.Eventually(t, func() bool { return failMode() == vswitchd.BridgeFailModeStandalone }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return failMode() == vswitchd.BridgeFailModeSecure }, 10*time.Second, 10*time.Millisecond,
		"the drift check puts fail_mode back")
}
