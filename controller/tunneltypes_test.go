package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// Every host tunnels to every other with each type some network uses, in
// the tunnel-type table's order, whatever that type is.
func TestTunnelTypesInUseFollowTheTable(t *testing.T) {
	snap := testSnapshot()
	h1, ok := snap.Host("h1")
	require.True(t, ok)
	assert.Equal(t, []topology.NetworkType{topology.VXLAN}, newDesiredState(snap, topology.PerPeerTunnels).inputs(h1).tunnels().Peers[0].Types)

	snap.Networks = append(snap.Networks,
		topology.Network{Name: "yellow", Type: topology.Geneve, SegmentID: 5001},
		topology.Network{Name: "zinc", Type: topology.GRE, SegmentID: 5001})
	before := newDesiredState(testSnapshot(), topology.PerPeerTunnels).digest(h1)
	in := newDesiredState(snap, topology.PerPeerTunnels).inputs(h1)
	spec := in.tunnels()
	require.Len(t, spec.Peers, 2)
	for _, p := range spec.Peers {
		assert.Equal(t, []topology.NetworkType{topology.VXLAN, topology.GRE, topology.Geneve}, p.Types, p.Name)
	}
	assert.NotEqual(t, before.brTun, newDesiredState(snap, topology.PerPeerTunnels).digest(h1).brTun, "new tunnel types change br-tun's digest")

	// Only Geneve networks: only Geneve tunnels.
	snap.Networks = []topology.Network{{Name: "yellow", Type: topology.Geneve, SegmentID: 1}}
	snap.Ports = nil
	assert.Equal(t, []topology.NetworkType{topology.Geneve}, newDesiredState(snap, topology.PerPeerTunnels).inputs(h1).tunnels().Peers[0].Types)
}
