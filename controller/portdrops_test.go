package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
)

// packetSwitch is a holdingSwitch whose every flow reports packets packets.
type packetSwitch struct {
	*holdingSwitch
	packets uint64
}

func (s *packetSwitch) DumpFlows(ctx context.Context) ([]FlowStats, error) {
	stats, err := s.holdingSwitch.DumpFlows(ctx)
	for i := range stats {
		stats[i].Packets = s.packets
	}
	return stats, err
}

// TestPortDropsComeFromTheBrIntDump: a dump of br-int sums the packets of
// each port's drop flows into that port's drops, and nothing else (allowed
// flows, the pipeline's misses, br-tun).
func TestPortDropsComeFromTheBrIntDump(t *testing.T) {
	c, hs, _ := dumpHost(t, nil)
	snap := testSnapshot()
	snap.Ports[0].PortSecurityEnabled = true // blue/a1 on h1, with a MAC and an IP
	c.setSnapshot(snap)
	facts := ovsdb.Facts{
		Connected: true,
		Bridges:   map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}, BrInt: {Name: BrInt, PatchOFPort: 1}},
		Tunnels:   []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: "vxlan", PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
		Bindings: []ovsdb.BoundPort{
			{Interface: "tap-a1", Port: "a1", Network: "blue", VLAN: 1, OFPort: 2},
			{Interface: "tap-a3", Port: "a3", Network: "blue", VLAN: 1, OFPort: 3},
			{Interface: "tap-g1", Port: "g1", Network: "green", VLAN: 2, OFPort: 4},
		},
	}
	set := flows.Compile(buildView(h1Inputs(t, snap), facts))
	require.NoError(t, flows.Validate(set))

	integ := &packetSwitch{holdingSwitch: newHoldingSwitch(hs.bridges[BrInt].dpid, set.BrInt), packets: 3}
	tun := &packetSwitch{holdingSwitch: newHoldingSwitch(hs.bridges[BrTun].dpid, set.BrTun), packets: 3}
	connect(c, hs, BrInt, integ)
	connect(c, hs, BrTun, tun)
	require.NoError(t, c.syncBridge(context.Background(), hs.bridges[BrInt], integ, set, flows.BrInt))
	require.NoError(t, c.syncBridge(context.Background(), hs.bridges[BrTun], tun, set, flows.BrTun))

	var h1 hostMetrics
	for _, h := range c.metricState() {
		if h.name == "h1" {
			h1 = h
		}
	}
	// a1 is protected: a tagged-frame drop (table 0), a MAC drop (10),
	// three server-message drops and three ethertype drops (11), an ND
	// drop (12). a3 and g1 are not: the tagged-frame drop only.
	assert.Equal(t, map[portName]uint64{
		{"blue", "a1"}:  3 * 9,
		{"blue", "a3"}:  3 * 1,
		{"green", "g1"}: 3 * 1,
	}, h1.portDrops)
}
