package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// holdingSwitch is a connected switch that holds flows: it counts its
// dumps, records what it is sent, and fails its applies with applyErr.
// A dump waits for gate, when set, to be closed.
type holdingSwitch struct {
	*fakeSwitch
	gate <-chan struct{}

	mu       sync.Mutex
	flows    []flows.Flow
	dumps    int
	applied  [][]Change
	applyErr error
}

func newHoldingSwitch(dpid uint64, held []flows.Flow) *holdingSwitch {
	return &holdingSwitch{fakeSwitch: newFakeSwitch(dpid), flows: held}
}

func (s *holdingSwitch) DumpFlows(ctx context.Context) ([]FlowStats, error) {
	s.mu.Lock()
	s.dumps++
	stats := make([]FlowStats, len(s.flows))
	for i, f := range s.flows {
		stats[i] = FlowStats{Flow: f}
	}
	s.mu.Unlock()
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return stats, nil
}

func (s *holdingSwitch) Apply(_ context.Context, changes []Change, _ []uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, changes)
	return s.applyErr
}

// dumpCount is how many dumps the switch answered.
func (s *holdingSwitch) dumpCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dumps
}

// ended waits for a dump started in the background to end.
func ended(t *testing.T, d *flowDump) {
	t.Helper()
	require.NotNil(t, d)
	<-d.done
}

// dumpHost is h1 of testSnapshot, connected to nothing yet, and the flows
// compiled for it.
func dumpHost(t *testing.T, mastership Mastership) (*Controller, *hostState, flows.FlowSet) {
	t.Helper()
	c, err := New(Options{Store: topology.NewMemoryStore(), Mastership: mastership})
	require.NoError(t, err)
	c.setSnapshot(testSnapshot())
	hs := c.hosts["h1"]
	require.NotNil(t, hs)
	facts := ovsdb.Facts{
		Connected: true,
		Bridges:   map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}},
		Tunnels:   []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
	}
	set := flows.Compile(buildView(h1Inputs(t, testSnapshot()), facts))
	require.NotEmpty(t, set.BrTun)
	require.NotEmpty(t, set.LearnedCookies)
	return c, hs, set
}

// connect makes sw the connection of bridge b of hs.
func connect(c *Controller, hs *hostState, b string, sw Switch) {
	c.mu.Lock()
	c.switches[hs.bridges[b].dpid] = sw
	c.mu.Unlock()
}

func TestSyncDiffsAgainstTheDumpStartedAhead(t *testing.T) {
	c, hs, set := dumpHost(t, nil)
	learned := flow(flows.TableUnicast, 4242, set.LearnedCookies[0])
	stray := flow(2, 100, 0)
	gate := make(chan struct{})
	tun := newHoldingSwitch(hs.bridges[BrTun].dpid, append([]flows.Flow{learned, stray}, set.BrTun[1:]...))
	tun.gate = gate
	integ := newHoldingSwitch(hs.bridges[BrInt].dpid, set.BrInt)
	integ.gate = gate
	connect(c, hs, BrTun, tun)
	connect(c, hs, BrInt, integ)

	c.startDumps(context.Background(), hs)
	for _, b := range bridgeNames {
		d := hs.bridges[b].dump
		require.NotNil(t, d, "%s holds what is unknown: its dump starts with the reconcile", b)
		select {
		case <-d.done:
			t.Fatalf("the dump of %s ended before the switch answered: it did not run in the background", b)
		default:
		}
	}
	close(gate)

	require.NoError(t, c.syncBridge(context.Background(), hs.bridges[BrInt], integ, set, flows.BrInt))
	require.NoError(t, c.syncBridge(context.Background(), hs.bridges[BrTun], tun, set, flows.BrTun))
	assert.Empty(t, integ.applied, "br-int holds what it should")
	require.Len(t, tun.applied, 1)
	assert.Equal(t, []Change{{Op: OpDeleteStrict, Flow: stray}, {Op: OpAdd, Flow: set.BrTun[0]}}, tun.applied[0],
		"only the difference to the dump is sent; the valid learned flow stays")
	for _, sw := range []*holdingSwitch{integ, tun} {
		assert.Equal(t, 1, sw.dumpCount(), "the sync uses the dump started ahead")
	}
	bs := hs.bridges[BrTun]
	assert.Nil(t, bs.dump)
	assert.Equal(t, map[uint64]int{set.LearnedCookies[0]: 1}, bs.learnedMACs, "learned flows are counted from the dump")
	assert.Len(t, bs.installed, len(set.BrTun))
	assert.Equal(t, Switch(tun), bs.conn)
}

func TestDumpStartedAheadIsKeptForItsConnectionOnly(t *testing.T) {
	c, hs, set := dumpHost(t, nil)
	bs := hs.bridges[BrTun]
	first := newHoldingSwitch(bs.dpid, set.BrTun)
	connect(c, hs, BrTun, first)
	ctx := context.Background()

	c.startDumps(ctx, hs)
	kept := bs.dump
	ended(t, kept)
	c.startDumps(ctx, hs) // as a reconcile without OVSDB facts leaves it
	assert.Same(t, kept, bs.dump, "a dump not used yet serves the next reconcile")
	assert.Equal(t, 1, first.dumpCount())

	c.mu.Lock()
	bs.needDump = true // the drift check
	c.mu.Unlock()
	c.startDumps(ctx, hs)
	ended(t, bs.dump)
	assert.NotSame(t, kept, bs.dump, "the drift check gets a fresh dump")
	assert.Equal(t, 2, first.dumpCount())
	assert.False(t, bs.needDump)

	second := newHoldingSwitch(bs.dpid, set.BrTun)
	connect(c, hs, BrTun, second)
	c.startDumps(ctx, hs)
	ended(t, bs.dump)
	assert.Equal(t, Switch(second), bs.dump.conn, "a dump of another connection is not used")
	assert.Equal(t, 1, second.dumpCount())

	c.mu.Lock()
	delete(c.switches, bs.dpid)
	c.mu.Unlock()
	c.startDumps(ctx, hs)
	assert.Nil(t, bs.dump, "a dump of a switch that left is dropped")

	connect(c, hs, BrTun, second)
	c.startDumps(ctx, hs)
	require.NoError(t, c.syncBridge(ctx, bs, second, set, flows.BrTun))
	c.startDumps(ctx, hs)
	assert.Nil(t, bs.dump, "what the last apply installed on this connection is known: no dump")
	assert.Equal(t, 2, second.dumpCount())
}

func TestDriftDuringTheReconcileGetsTheNextDump(t *testing.T) {
	c, hs, set := dumpHost(t, nil)
	bs := hs.bridges[BrTun]
	sw := newHoldingSwitch(bs.dpid, set.BrTun)
	connect(c, hs, BrTun, sw)
	ctx := context.Background()
	c.startDumps(ctx, hs)
	require.NoError(t, c.syncBridge(ctx, bs, sw, set, flows.BrTun))
	require.Equal(t, 1, sw.dumpCount())

	c.startDumps(ctx, hs)
	require.Nil(t, bs.dump)
	c.mu.Lock()
	bs.needDump = true // the drift check, after this reconcile's dumps started
	c.mu.Unlock()
	require.NoError(t, c.syncBridge(ctx, bs, sw, set, flows.BrTun))
	assert.Equal(t, 2, sw.dumpCount(), "the sync dumps for the drift check")
	assert.False(t, bs.needDump)

	c.mu.Lock()
	bs.needDump = true // the next drift check
	c.mu.Unlock()
	c.startDumps(ctx, hs)
	require.NotNil(t, bs.dump)
	c.mu.Lock()
	bs.needDump = true // and another, while that dump runs
	c.mu.Unlock()
	require.NoError(t, c.syncBridge(ctx, bs, sw, set, flows.BrTun))
	assert.Equal(t, 3, sw.dumpCount())
	assert.True(t, bs.needDump, "a dump older than the drift check does not answer it")
	c.startDumps(ctx, hs)
	ended(t, bs.dump) // the next reconcile dumps afresh
	assert.Equal(t, 4, sw.dumpCount())
}

func TestFailedApplyDumpsAgain(t *testing.T) {
	c, hs, set := dumpHost(t, nil)
	bs := hs.bridges[BrTun]
	sw := newHoldingSwitch(bs.dpid, set.BrTun[1:])
	sw.applyErr = errors.New("bundle rejected")
	connect(c, hs, BrTun, sw)
	ctx := context.Background()

	c.startDumps(ctx, hs)
	require.Error(t, c.syncBridge(ctx, bs, sw, set, flows.BrTun))
	assert.Nil(t, bs.installed, "what the switch holds after a failed apply is unknown")
	c.startDumps(ctx, hs)
	ended(t, bs.dump) // so the next reconcile dumps it
	assert.Equal(t, 2, sw.dumpCount())
}

func TestDumpAheadOnlyWhereThisReplicaHoldsTheMasterRole(t *testing.T) {
	m := &fakeMastership{master: map[string]bool{}}
	c, hs, set := dumpHost(t, m)
	tunBS, intBS := hs.bridges[BrTun], hs.bridges[BrInt]
	m.set(tunBS.ref, true, 1)
	m.set(intBS.ref, false, 1)
	tun := newHoldingSwitch(tunBS.dpid, set.BrTun)
	integ := newHoldingSwitch(intBS.dpid, set.BrInt)
	connect(c, hs, BrTun, tun)
	connect(c, hs, BrInt, integ)
	ctx := context.Background()

	c.startDumps(ctx, hs)
	assert.Nil(t, tunBS.dump, "the switch does not hold this replica as master yet: another may still change it")
	assert.Nil(t, intBS.dump, "another replica programs br-int")

	tunBS.role = roleState{conn: tun, master: true, generation: 1} // as holdRole leaves it
	c.startDumps(ctx, hs)
	ended(t, tunBS.dump)
	assert.Nil(t, intBS.dump)
	assert.Equal(t, 0, integ.dumpCount())

	tunBS.role = roleState{conn: tun, master: true, generation: 2} // the role taken anew before the sync
	require.NoError(t, c.syncBridge(ctx, tunBS, tun, set, flows.BrTun))
	assert.Equal(t, 2, tun.dumpCount(), "a dump from before the role was taken is not used")
}

// Before the host's OVSDB is connected no flow is sent, but the dumps
// start and wait for the first reconcile with OVSDB facts.
func TestReconcileWithoutOVSDBKeepsItsDumps(t *testing.T) {
	c, err := New(Options{Store: topology.NewMemoryStore(), OVSDBTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	snap := testSnapshot()
	snap.Hosts[0].OVSDB = "tcp:127.0.0.1:1" // refused: the OVSDB stays down
	c.setSnapshot(snap)
	hs := c.hosts["h1"]
	held := flows.Compile(buildView(h1Inputs(t, snap), ovsdb.Facts{}))
	switches := map[string]*holdingSwitch{}
	for _, b := range bridgeNames {
		switches[b] = newHoldingSwitch(hs.bridges[b].dpid, held.Flows(flowsBridge(b)))
		connect(c, hs, b, switches[b])
	}
	in := h1Inputs(t, snap)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the background dial

	for range 2 {
		require.Error(t, c.reconcileFull(ctx, hs, in, in.digest(), snap), "the OVSDB is down")
		require.Nil(t, hs.ovsdb.client())
	}
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		require.NotNil(t, bs.dump, "%s: the dump waits for the OVSDB facts", b)
		assert.Equal(t, Switch(switches[b]), bs.dump.conn)
		stats, err := bs.dump.result()
		require.NoError(t, err)
		assert.Len(t, stats, len(held.Flows(flowsBridge(b))))
		assert.Equal(t, 1, switches[b].dumpCount(), "%s: one dump for both reconciles", b)
		assert.Empty(t, switches[b].applied, "%s: no flow is sent without the OVSDB facts", b)
		assert.Nil(t, bs.installed)
	}
}
