package controller

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// TestDownPortIsDroppedAndWithdrawn: a port with admin_state_up false stays
// bound on its host, on the dead VLAN (NORMAL delivers it nothing), gets a
// drop on br-int there, and disappears from the other hosts' views (no
// table 20 entry, no ARP/ND answer).
func TestDownPortIsDroppedAndWithdrawn(t *testing.T) {
	snap := testSnapshot()
	down := snap
	down.Ports = append([]topology.Port(nil), snap.Ports...)
	for i := range down.Ports {
		if down.Ports[i].Name == "a1" || down.Ports[i].Name == "a2" {
			down.Ports[i].AdminStateUp = topology.Bool(false)
		}
	}

	// On its own host (h1, a1): still bound, its frames dropped.
	in := h1Inputs(t, down)
	require.Contains(t, in.bindings, ovsdb.Binding{Interface: "tap-a1", Port: "a1", Network: "blue", VLAN: ovsdb.DeadVLAN},
		"the port stays bound, on the dead VLAN")
	require.Contains(t, in.bindings, ovsdb.Binding{Interface: "tap-a3", Port: "a3", Network: "blue", VLAN: 1}, "control: a3 is up")
	require.Equal(t, []flows.DownPort{{Network: "blue", Name: "a1"}}, in.view.DownPorts)
	facts := ovsdb.Facts{Bindings: []ovsdb.BoundPort{
		{Interface: "tap-a1", Port: "a1", Network: "blue", VLAN: ovsdb.DeadVLAN, OFPort: 7},
		{Interface: "tap-a3", Port: "a3", Network: "blue", VLAN: 1, OFPort: 8},
	}}
	v := buildView(in, facts)
	require.Equal(t, []flows.DownPort{{Network: "blue", Name: "a1", Ofport: 7}}, v.DownPorts)
	require.Equal(t, uint32(0), in.view.DownPorts[0].Ofport, "the inputs stay without facts")
	// On h1, h2's a2 (down) is withdrawn; with a2 up it is there.
	require.Empty(t, in.view.RemotePorts, "a2 is down: no remote entry on h1")
	require.Equal(t, []flows.RemotePort{{Network: "blue", Name: "a2", Host: "h2", MAC: "02:00:00:00:01:02", IPs: []string{"10.0.0.2"}}},
		h1Inputs(t, snap).view.RemotePorts, "control: up, a2 is known on h1")

	// Taking a port down changes h1's br-int digest (its flows), and br-tun's
	// (the withdrawn remote port); the ofport is in the br-int fingerprint.
	up := h1Digest(t, snap)
	d := h1Digest(t, down)
	require.NotEqual(t, up.brInt, d.brInt)
	require.NotEqual(t, up.brTun, d.brTun)
	require.NotEqual(t, d.bridge(BrInt, v), d.bridge(BrInt, in.view))
}
