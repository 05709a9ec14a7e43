package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// fakeSwitch is a connected switch that holds nothing and accepts all.
type fakeSwitch struct {
	dpid uint64
	done chan struct{}
}

func newFakeSwitch(dpid uint64) *fakeSwitch {
	return &fakeSwitch{dpid: dpid, done: make(chan struct{})}
}

func (f *fakeSwitch) DatapathID() uint64                              { return f.dpid }
func (f *fakeSwitch) Done() <-chan struct{}                           { return f.done }
func (f *fakeSwitch) Close() error                                    { return nil }
func (f *fakeSwitch) DumpFlows(context.Context) ([]FlowStats, error)  { return nil, nil }
func (f *fakeSwitch) Apply(context.Context, []Change, []uint64) error { return nil }

// fakeMastership places bridges by a map; Changes and applied reports are
// not needed by cleanLocked.
type fakeMastership struct {
	master map[string]bool
	gen    uint64
}

func (m *fakeMastership) SetBridges([]string)             {}
func (m *fakeMastership) Role(ref string) (bool, uint64)  { return m.master[ref], m.gen }
func (m *fakeMastership) Changes() <-chan struct{}        { return nil }
func (m *fakeMastership) Master(string) string            { return "" }
func (m *fakeMastership) ReportApplied(string, uint64)    {}
func (m *fakeMastership) Applied(string) uint64           { return 0 }
func (m *fakeMastership) AppliedChanges() <-chan struct{} { return nil }
func (m *fakeMastership) set(ref bridgeRef, master bool, gen uint64) {
	m.master[ref.String()], m.gen = master, gen
}

// syncedHost is h1 of testSnapshot as a successful full reconcile leaves
// it: both bridges connected and holding what it installed.
func syncedHost(t *testing.T, mastership Mastership) (*Controller, *hostState, hostDigest, ovsdb.Facts) {
	t.Helper()
	c, err := New(Options{Store: topology.NewMemoryStore(), Mastership: mastership})
	require.NoError(t, err)
	c.setSnapshot(testSnapshot())
	hs := c.hosts["h1"]
	require.NotNil(t, hs)
	sum := h1Inputs(t, testSnapshot()).digest()
	facts := ovsdb.Facts{
		Connected: true,
		Bridges:   map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}},
		Tunnels:   []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
	}
	hs.synced = &syncedState{digest: sum.all, facts: facts, ownsOVSDB: true}
	for _, bs := range hs.bridges {
		sw := newFakeSwitch(bs.dpid)
		c.switches[bs.dpid] = sw
		bs.conn, bs.installed = sw, map[flows.Key]flows.Flow{}
		if m, ok := mastership.(*fakeMastership); ok {
			m.set(bs.ref, true, 1)
			bs.role = roleState{conn: sw, master: true, generation: 1}
		}
	}
	return c, hs, sum, facts
}

func TestCleanHostNeedsNothingChanged(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *Controller, hs *hostState, sum *hostDigest, facts *ovsdb.Facts)
	}{
		{"the last full reconcile failed", func(_ *Controller, hs *hostState, _ *hostDigest, _ *ovsdb.Facts) { hs.synced = nil }},
		{"the drift check is due", func(_ *Controller, hs *hostState, _ *hostDigest, _ *ovsdb.Facts) { hs.driftDue = true }},
		{"the inputs changed", func(_ *Controller, _ *hostState, sum *hostDigest, _ *ovsdb.Facts) { sum.all[0] ^= 1 }},
		{"a tunnel ofport changed", func(_ *Controller, _ *hostState, _ *hostDigest, f *ovsdb.Facts) {
			f.Tunnels = []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 7}}
		}},
		{"the OVSDB session dropped", func(_ *Controller, _ *hostState, _ *hostDigest, f *ovsdb.Facts) { f.Connected = false }},
		{"br-tun wants a dump", func(_ *Controller, hs *hostState, _ *hostDigest, _ *ovsdb.Facts) { hs.bridges[BrTun].needDump = true }},
		{"br-int holds what is unknown", func(_ *Controller, hs *hostState, _ *hostDigest, _ *ovsdb.Facts) {
			hs.bridges[BrInt].installed = nil
		}},
		{"br-tun reconnected", func(c *Controller, hs *hostState, _ *hostDigest, _ *ovsdb.Facts) {
			bs := hs.bridges[BrTun]
			c.switches[bs.dpid] = newFakeSwitch(bs.dpid)
		}},
	}
	c, hs, sum, facts := syncedHost(t, nil)
	require.True(t, c.cleanLocked(hs, sum, facts), "control: nothing changed")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, hs, sum, facts := syncedHost(t, nil)
			tc.change(c, hs, &sum, &facts)
			require.False(t, c.cleanLocked(hs, sum, facts))
		})
	}
}

func TestCleanHostIgnoresADisconnectedBridge(t *testing.T) {
	c, hs, sum, facts := syncedHost(t, nil)
	bs := hs.bridges[BrTun]
	delete(c.switches, bs.dpid)
	bs.needDump = true // the drift check marks every bridge, connected or not
	require.True(t, c.cleanLocked(hs, sum, facts), "a bridge without a switch is reconciled when it connects")
}

func TestCleanHostNeedsTheSameRoles(t *testing.T) {
	m := &fakeMastership{master: map[string]bool{}}
	c, hs, sum, facts := syncedHost(t, m)
	require.True(t, c.cleanLocked(hs, sum, facts), "control: roles as given")

	m.set(hs.bridges[BrInt].ref, true, 2)
	require.False(t, c.cleanLocked(hs, sum, facts), "a new generation must be given to the switch")

	c, hs, sum, facts = syncedHost(t, m)
	m.set(hs.bridges[BrTun].ref, false, 1)
	require.False(t, c.cleanLocked(hs, sum, facts), "br-tun's master does the host's OVSDB work: it moved")

	// A bridge this replica holds as slave has nothing installed to check.
	c, hs, sum, facts = syncedHost(t, m)
	bs := hs.bridges[BrInt]
	m.set(bs.ref, false, 1)
	bs.role.master, bs.installed = false, nil
	require.True(t, c.cleanLocked(hs, sum, facts))
}
