package flows_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
)

// With flow-based tunnel ports (--tunnel-ports flow) one port of a type
// takes frames from any underlay address: table 0 takes one only from the
// tun_src of a known host (or remote VTEP, which the view lists the same
// way) and drops the rest.
func TestFlowTunnelsTakeFramesOnlyFromKnownSources(t *testing.T) {
	c := sharedSegment().withMode(topology.FlowTunnels)
	f := newFabric(t, c)
	frame := broadcastARP(t, "02:00:00:00:02:01")
	frame.TunID = 5001
	frame.InPort = c.tunnelOfport("h1", "h2", topology.VXLAN)
	frame.TunDst = c.ip("h1")

	// Positive control: from h2's address the frame is blue's.
	frame.TunSrc = c.ip("h2")
	res, err := f.sims["h1"].Run(frame)
	require.NoError(t, err)
	require.Len(t, res.Outputs, 1, "trace:\n%s", strings.Join(res.Trace, "\n"))
	assert.Equal(t, uint32(patchInt), res.Outputs[0].Port)
	assert.Len(t, f.sims["h1"].Learned(), 1, "the frame's MAC was learned")

	// From an address that is no host's: dropped in table 0, nothing learned.
	stranger := broadcastARP(t, "02:00:00:00:09:09")
	stranger.TunID, stranger.InPort, stranger.TunDst = 5001, frame.InPort, frame.TunDst
	stranger.TunSrc = flows.IPv4{192, 0, 2, 99}
	res, err = f.sims["h1"].Run(stranger)
	require.NoError(t, err)
	assert.Empty(t, res.Outputs)
	require.Len(t, res.Steps, 1)
	assert.Equal(t, "cookie=0xb710000000000000, priority=0 actions=drop", res.Steps[0].Flow.String(), "dropped by table 0's miss flow")
	assert.Len(t, f.sims["h1"].Learned(), 1, "nothing learned from the stranger")

	// A known host's address on the port of another type is that type's
	// frame (GRE 5001 is red, not blue): the port still says the type.
	frame.InPort = c.tunnelOfport("h1", "h2", topology.GRE)
	res, err = f.sims["h1"].Run(frame)
	require.NoError(t, err)
	require.Len(t, res.Outputs, 1)
	vid, _ := res.Outputs[0].Packet.VLAN()
	assert.Equal(t, c.vlan("h1", "red"), vid)

	// A remote VTEP is a known source once the view lists it.
	v := c.view("h1")
	v.Tunnels = append(v.Tunnels, flows.TunnelPort{Ofport: c.tunnelOfport("h1", "h2", topology.VXLAN), PeerHost: "vtep:192.0.2.50",
		RemoteIP: "192.0.2.50", Type: topology.VXLAN})
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	vtep := stranger
	vtep.TunSrc = flows.IPv4{192, 0, 2, 50}
	res, err = flowsim.New(set.BrTun).Run(vtep)
	require.NoError(t, err)
	assert.Len(t, res.Outputs, 1, "a listed remote VTEP's frame is delivered")
	res, err = flowsim.New(set.BrTun).Run(stranger)
	require.NoError(t, err)
	assert.Empty(t, res.Outputs, "the stranger is still dropped")
}

// A flood sets tun_dst to each carrying host's address before each output
// of the one port, and reaches only the hosts carrying the network.
func TestFlowTunnelsFloodSetsTunDstPerCarrier(t *testing.T) {
	c := partialPeers().withMode(topology.FlowTunnels) // blue on h1, h2, h3; not h4
	f := newFabric(t, c)
	res := f.fromVM(t, "h1", "blue", broadcastARP(t, "02:00:00:00:01:01"))
	vxlan := c.tunnelOfport("h1", "h2", topology.VXLAN)
	require.Len(t, res.local, 2)
	for i, peer := range []string{"h2", "h3"} {
		assert.Equal(t, vxlan, res.local[i].Port, "the one VXLAN port")
		assert.Equal(t, c.ip(peer), res.local[i].Packet.TunDst, "copy %d goes to %s", i, peer)
	}
	assert.Equal(t, []string{"h2:1", "h3:1"}, res.deliveredTo())

	var flood string
	for _, fl := range c.compile(t, "h1").BrTun {
		if fl.Table == flows.TableFlood && fl.Priority == 1 && fl.Match.String() == "dl_vlan=1" {
			flood = fl.ActionsString()
		}
	}
	assert.Equal(t, "pop_vlan,set_field:0x64->tun_id,set_field:192.0.2.2->tun_dst,output:2,set_field:192.0.2.3->tun_dst,output:2", flood)
}

// A learned entry sends to the address the MAC was last seen behind: learn
// copies the frame's tun_src into the entry's tun_dst.
func TestFlowTunnelsLearnedEntrySetsTunDstFromTunSrc(t *testing.T) {
	c := sharedSegment().withMode(topology.FlowTunnels)
	f := newFabric(t, c)
	vm1, vm2 := "02:00:00:00:01:01", "02:00:00:00:02:01"

	f.fromVM(t, "h3", "blue", broadcastARP(t, vm2)) // h1 learns vm2 behind h3
	res := f.fromVM(t, "h1", "blue", unicast(t, vm1, vm2))
	require.Len(t, res.local, 1)
	assert.Equal(t, c.ip("h3"), res.local[0].Packet.TunDst)
	assert.Equal(t, []string{"h3:1"}, res.deliveredTo())

	f.fromVM(t, "h2", "blue", broadcastARP(t, vm2)) // vm2 moved to h2: the entry follows
	res = f.fromVM(t, "h1", "blue", unicast(t, vm1, vm2))
	require.Len(t, res.local, 1)
	assert.Equal(t, c.ip("h2"), res.local[0].Packet.TunDst)
	assert.Equal(t, []string{"h2:1"}, res.deliveredTo())

	learned := f.sims["h1"].Learned()
	require.Len(t, learned, 1)
	o, ok := flows.DecodeCookie(learned[0].Cookie)
	require.True(t, ok)
	assert.True(t, o.FlowTunnels, "the learned cookie says flow-based: %s", o)
	set := c.compile(t, "h1")
	assert.False(t, set.StaleLearned(learned[0].Cookie), "valid in flow mode")
	perPeer := sharedSegment().compile(t, "h1")
	assert.True(t, perPeer.StaleLearned(learned[0].Cookie), "stale once the host runs per-peer ports")
	assert.False(t, perPeer.StaleLearned(flows.LearnedCookie(topology.VXLAN, 5001, 1)), "positive control: per-peer's own cookie")
}

// A registered remote port's entry sets tun_dst to its host's address.
func TestFlowTunnelsRegisteredPortSetsTunDst(t *testing.T) {
	c := remotePorts().withMode(topology.FlowTunnels)
	f := newFabric(t, c)
	res := f.fromVM(t, "h1", "blue", unicast(t, "02:00:00:00:01:01", "02:00:00:00:03:01"))
	require.Len(t, res.local, 1)
	assert.Equal(t, c.ip("h3"), res.local[0].Packet.TunDst)
	assert.Equal(t, []string{"h3/vxlan"}, res.tunnels)
	assert.Equal(t, []string{"h3:1"}, res.deliveredTo())

	// Positive control of the address: vm2's entry goes to h2.
	res = f.fromVM(t, "h1", "blue", unicast(t, "02:00:00:00:01:01", "02:00:00:00:02:01"))
	assert.Equal(t, []string{"h2:1"}, res.deliveredTo())
}

// Flow-based ports carry IPv4 tunnel IPs only: a tunnel with another
// address is left out and reported, the others compile.
func TestFlowTunnelsSkipNonIPv4Peers(t *testing.T) {
	c := oneNetwork().withMode(topology.FlowTunnels)
	v := c.view("h1")
	v.Tunnels = append(v.Tunnels, flows.TunnelPort{Ofport: 2, PeerHost: "h9", RemoteIP: "2001:db8::9", Type: topology.VXLAN})
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	assert.Contains(t, strings.Join(set.Skipped, "\n"), "tunnel to h9 (vxlan): remote IP 2001:db8::9: flow-based tunnel ports carry IPv4 tunnel IPs only")
	assert.Contains(t, strings.Join(flows.Strings(set.BrTun), "\n"), "tun_src=192.0.2.2,in_port=2", "positive control: h2 compiles")

	// One flow-based port is of one type: a GRE tunnel at the VXLAN port's
	// ofport is left out.
	v = c.view("h1")
	v.Tunnels = append(v.Tunnels, flows.TunnelPort{Ofport: 2, PeerHost: "h2", RemoteIP: "192.0.2.2", Type: topology.GRE})
	set = flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	assert.Contains(t, strings.Join(set.Skipped, "\n"), "tunnel to h2 (gre): ofport 2 is a vxlan port")
}
