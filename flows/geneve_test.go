package flows_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/flows/flowtest"
	"github.com/brtun/brtun/topology"
)

// threeTypes: a VXLAN, a GRE and a Geneve network with the same segment id
// on h1..h3, a Geneve network on h1 and h4 only, and registered Geneve
// ports. Every host has a tunnel port of each type to every other host.
func threeTypes() cluster {
	three := []string{"h1", "h2", "h3"}
	return cluster{
		hosts: []string{"h1", "h2", "h3", "h4"},
		types: []topology.NetworkType{topology.VXLAN, topology.GRE, topology.Geneve},
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: three, learning: true},
			{name: "red", typ: topology.GRE, seg: 5001, hosts: three, learning: true},
			{name: "green", typ: topology.Geneve, seg: 5001, hosts: three, learning: true},
			{name: "amber", typ: topology.Geneve, seg: 6000, hosts: []string{"h1", "h4"}, learning: false},
		},
		ports: []flows.RemotePort{
			{Network: "green", Name: "g2", Host: "h2", MAC: "02:00:00:00:02:03", IPs: []string{"198.18.0.2", "2001:db8:100::2"}},
			{Network: "green", Name: "g3", Host: "h3", MAC: "02:00:00:00:03:03", IPs: []string{"198.18.0.3"}},
		},
	}
}

func TestGoldenGenevePipelines(t *testing.T) {
	c := threeTypes()
	for _, h := range []string{"h1", "h4"} {
		t.Run(h, func(t *testing.T) {
			flowtest.Golden(t, "three_types_"+h, flowtest.FormatSet(c.compile(t, h)))
		})
	}
}

func TestGeneveIsolatedFromVXLANAndGREWithSameSegment(t *testing.T) {
	c := threeTypes()
	f := newFabric(t, c)
	vlans := map[topology.NetworkType]uint16{
		topology.VXLAN: c.vlan("h1", "blue"), topology.GRE: c.vlan("h1", "red"), topology.Geneve: c.vlan("h1", "green"),
	}
	frame := broadcastARP(t, "02:00:00:00:02:01")
	frame.TunID = 5001
	// The same tunnel id from each type's tunnel reaches that type's network only.
	for typ, vlan := range vlans {
		res := f.fromTunnel(t, "h1", "h2", typ, frame)
		require.Len(t, res.deliveries, 1, typ)
		assert.Equal(t, vlan, res.deliveries[0].vlan, typ)
	}

	// End to end: a broadcast on green from h2 goes over Geneve only and
	// arrives on green at h1 and h3, never on blue or red.
	res := f.fromVM(t, "h2", "green", broadcastARP(t, "02:00:00:00:02:02"))
	assert.ElementsMatch(t, []string{"h1/geneve", "h3/geneve"}, res.tunnels)
	require.Len(t, res.deliveries, 2)
	for _, d := range res.deliveries {
		assert.Equal(t, c.vlan(d.host, "green"), d.vlan, "on %s", d.host)
	}
	// Positive controls: blue and red flood over their own types.
	res = f.fromVM(t, "h2", "blue", broadcastARP(t, "02:00:00:00:02:04"))
	assert.ElementsMatch(t, []string{"h1/vxlan", "h3/vxlan"}, res.tunnels)
	res = f.fromVM(t, "h2", "red", broadcastARP(t, "02:00:00:00:02:05"))
	assert.ElementsMatch(t, []string{"h1/gre", "h3/gre"}, res.tunnels)

	// amber (Geneve 6000) is not reachable with its VNI over VXLAN or GRE.
	frame.TunID = 6000
	assert.Empty(t, f.fromTunnel(t, "h1", "h4", topology.VXLAN, frame).deliveries)
	assert.Empty(t, f.fromTunnel(t, "h1", "h4", topology.GRE, frame).deliveries)
	assert.Equal(t, []string{"h1:4"}, f.fromTunnel(t, "h1", "h4", topology.Geneve, frame).deliveredTo())
}

func TestGeneveFloodsOnlyToPeersWithTheNetwork(t *testing.T) {
	f := newFabric(t, threeTypes())
	res := f.fromVM(t, "h1", "amber", broadcastARP(t, "02:00:00:00:01:04"))
	assert.Equal(t, []string{"h4/geneve"}, res.tunnels)
	assert.Equal(t, []string{"h4:1"}, res.deliveredTo())
	assert.Empty(t, f.sims["h4"].Learned(), "amber learns nothing")

	res = f.fromVM(t, "h1", "green", broadcastARP(t, "02:00:00:00:01:03"))
	assert.ElementsMatch(t, []string{"h2/geneve", "h3/geneve"}, res.tunnels, "green is not on h4")
}

func TestGeneveLearnsAndPopulates(t *testing.T) {
	c := threeTypes()
	f := newFabric(t, c)
	vm1, vm9 := "02:00:00:00:01:03", "02:00:00:00:02:09"

	// A registered port is unicast over its host's Geneve tunnel at once.
	res := f.fromVM(t, "h1", "green", unicast(t, vm1, "02:00:00:00:02:03"))
	assert.Equal(t, []string{"h2/geneve"}, res.tunnels)
	assert.Equal(t, []string{"h2:3"}, res.deliveredTo())

	// An unregistered MAC floods until it is learned, then goes to its host only.
	res = f.fromVM(t, "h1", "green", unicast(t, vm1, vm9))
	assert.ElementsMatch(t, []string{"h2/geneve", "h3/geneve"}, res.tunnels)
	f.fromVM(t, "h2", "green", broadcastARP(t, vm9))
	require.Len(t, f.sims["h1"].Learned(), 1)
	res = f.fromVM(t, "h1", "green", unicast(t, vm1, vm9))
	require.Len(t, res.local, 1)
	assert.Equal(t, c.tunnelOfport("h1", "h2", topology.Geneve), res.local[0].Port)
	assert.Equal(t, uint64(5001), res.local[0].Packet.TunID)
	assert.Equal(t, []string{"h2:3"}, res.deliveredTo())
}

func TestGeneveARPAndNDResponders(t *testing.T) {
	c := threeTypes()
	f := newFabric(t, c)
	vm1 := mac(t, "02:00:00:00:01:03")
	req := broadcastARP(t, vm1.String())
	req.ARPTPA = flows.IPv4{198, 18, 0, 2}
	res := f.fromVM(t, "h1", "green", req)
	assert.Empty(t, res.tunnels, "the request does not leave h1")
	require.Len(t, res.local, 1)
	assert.Equal(t, uint32(patchInt), res.local[0].Port)
	assert.Equal(t, uint16(2), res.local[0].Packet.ARPOp)
	assert.Equal(t, mac(t, "02:00:00:00:02:03"), res.local[0].Packet.ARPSHA)
	// Positive control: the same IP on blue (no registered port) floods over VXLAN.
	res = f.fromVM(t, "h1", "blue", req)
	assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)

	target := flows.IPv6(netip.MustParseAddr("2001:db8:100::2").As16())
	ns := flowsim.Packet{
		EthSrc: vm1, EthDst: mac(t, "33:33:ff:00:00:02"), EthType: flows.EthTypeIPv6,
		IPProto: flows.IPProtoICMPv6, ICMPv6Type: 135, NDTarget: target, NDSLL: vm1,
		IPv6Src: flows.IPv6(netip.MustParseAddr("2001:db8:100::1").As16()),
		IPv6Dst: flows.IPv6(netip.MustParseAddr("ff02::1:ff00:2").As16()),
	}
	res = f.fromVM(t, "h1", "green", ns)
	assert.Empty(t, res.tunnels)
	require.Len(t, res.local, 1)
	assert.Equal(t, uint8(136), res.local[0].Packet.ICMPv6Type)
	assert.Equal(t, mac(t, "02:00:00:00:02:03"), res.local[0].Packet.NDTLL)
	// Positive control: an unknown target floods over Geneve.
	ns.NDTarget = flows.IPv6(netip.MustParseAddr("2001:db8:100::99").As16())
	res = f.fromVM(t, "h1", "green", ns)
	assert.ElementsMatch(t, []string{"h2/geneve", "h3/geneve"}, res.tunnels)
}
