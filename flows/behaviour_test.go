package flows_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
)

func broadcastARP(t *testing.T, src string) flowsim.Packet {
	return flowsim.Packet{
		EthSrc: mac(t, src), EthDst: mac(t, "ff:ff:ff:ff:ff:ff"), EthType: flows.EthTypeARP,
		ARPOp: 1, ARPSHA: mac(t, src),
		ARPSPA: flows.IPv4{198, 18, 0, 1}, ARPTPA: flows.IPv4{198, 18, 0, 99},
	}
}

func unicast(t *testing.T, src, dst string) flowsim.Packet {
	return flowsim.Packet{EthSrc: mac(t, src), EthDst: mac(t, dst), EthType: flows.EthTypeIPv4}
}

func TestBroadcastFloodsOnlyToPeersWithTheNetwork(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		f := newFabric(t, partialPeers().withMode(mode))

		// blue is on h1, h2, h3: a broadcast from h1 reaches h2 and h3, not h4.
		res := f.fromVM(t, "h1", "blue", broadcastARP(t, "02:00:00:00:01:01"))
		assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)
		assert.Equal(t, []string{"h2:1", "h3:1"}, res.deliveredTo(), "delivered on blue's local VLAN of each host")
		for _, d := range res.deliveries {
			assert.Equal(t, mac(t, "02:00:00:00:01:01"), d.packet.EthSrc)
			assert.Equal(t, uint64(100), d.packet.TunID)
		}

		// green is on h1 and h4 only: it reaches h4 and nobody else.
		res = f.fromVM(t, "h1", "green", broadcastARP(t, "02:00:00:00:01:02"))
		assert.Equal(t, []string{"h4/vxlan"}, res.tunnels)
		assert.Equal(t, []string{"h4:1"}, res.deliveredTo())

		// solo has no peer: the broadcast stays on h1.
		res = f.fromVM(t, "h1", "solo", broadcastARP(t, "02:00:00:00:01:03"))
		assert.Empty(t, res.local)
	})
}

func TestGREKeyNeverReachesVXLANNetworkWithSameSegment(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := sharedSegment().withMode(mode) // blue VXLAN 5001 on VLAN 1, red GRE 5001 on VLAN 2, on every host
		f := newFabric(t, c)
		blue, red := c.vlan("h1", "blue"), c.vlan("h1", "red")
		require.NotEqual(t, blue, red)

		frame := broadcastARP(t, "02:00:00:00:02:01")
		frame.TunID = 5001

		// From a GRE tunnel with key 5001: red only.
		res := f.fromTunnel(t, "h1", "h2", topology.GRE, frame)
		require.Len(t, res.deliveries, 1)
		assert.Equal(t, red, res.deliveries[0].vlan)

		// Positive control: the same frame from the VXLAN tunnel is blue's.
		res = f.fromTunnel(t, "h1", "h2", topology.VXLAN, frame)
		require.Len(t, res.deliveries, 1)
		assert.Equal(t, blue, res.deliveries[0].vlan)

		// End to end: a broadcast on red from h2 arrives on red at h1 and h3,
		// never on blue.
		res = f.fromVM(t, "h2", "red", broadcastARP(t, "02:00:00:00:02:02"))
		assert.ElementsMatch(t, []string{"h1/gre", "h3/gre"}, res.tunnels)
		for _, d := range res.deliveries {
			assert.Equal(t, c.vlan(d.host, "red"), d.vlan, "on %s", d.host)
			assert.NotEqual(t, c.vlan(d.host, "blue"), d.vlan, "on %s", d.host)
		}
		assert.Len(t, res.deliveries, 2)

		// A GRE network alone on a host is not reachable with its key over VXLAN.
		only := cluster{hosts: []string{"h1", "h2"}, nets: []testNet{
			{name: "red", typ: topology.GRE, seg: 42, hosts: []string{"h1", "h2"}, learning: true},
		}, mode: mode}
		g := newFabric(t, only)
		frame.TunID = 42
		assert.Empty(t, g.fromTunnel(t, "h1", "h2", topology.VXLAN, frame).deliveries)
		assert.Len(t, g.fromTunnel(t, "h1", "h2", topology.GRE, frame).deliveries, 1)
	})
}

func TestLearnedMACGetsReplyOnItsTunnelOnly(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := sharedSegment().withMode(mode)
		f := newFabric(t, c)
		vm1, vm2 := "02:00:00:00:01:01", "02:00:00:00:02:01"

		// Before anything is learned, unicast to vm2 floods to h2 and h3.
		res := f.fromVM(t, "h1", "blue", unicast(t, vm1, vm2))
		assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)

		// vm2 on h2 broadcasts; h1 learns vm2 behind its tunnel to h2.
		res = f.fromVM(t, "h2", "blue", broadcastARP(t, vm2))
		assert.Equal(t, []string{"h1:1", "h3:1"}, res.deliveredTo())
		learned := f.sims["h1"].Learned()
		require.Len(t, learned, 1)
		toH2 := c.tunnelOfport("h1", "h2", topology.VXLAN)
		want := "cookie=0xb751001000001389, table=20, hard_timeout=300, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=02:00:00:00:02:01 " +
			"actions=load:0->NXM_OF_VLAN_TCI[],load:0x1389->NXM_NX_TUN_ID[],output:2"
		if mode.Flow() { // the cookie's flow bit; tun_dst is where vm2's frame came from (tun_src)
			want = "cookie=0xb751001100001389, table=20, hard_timeout=300, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=02:00:00:00:02:01 " +
				"actions=load:0->NXM_OF_VLAN_TCI[],load:0x1389->NXM_NX_TUN_ID[],load:0xc0000202->NXM_NX_TUN_IPV4_DST[],output:2"
		}
		assert.Equal(t, want, learned[0].String(), "the learned entry as OVS prints it")

		// The reply goes to h2's tunnel only, untagged with blue's VNI.
		res = f.fromVM(t, "h1", "blue", unicast(t, vm1, vm2))
		require.Len(t, res.local, 1)
		assert.Equal(t, toH2, res.local[0].Port)
		assert.Equal(t, uint64(5001), res.local[0].Packet.TunID)
		assert.Equal(t, []string{"h2:1"}, res.deliveredTo())

		// The entry is per VLAN: the same MAC on red still floods.
		res = f.fromVM(t, "h1", "red", unicast(t, vm1, vm2))
		assert.ElementsMatch(t, []string{"h2/gre", "h3/gre"}, res.tunnels)
	})
}

func TestUnknownTunnelIDIsDropped(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := oneNetwork().withMode(mode)
		f := newFabric(t, c)
		frame := broadcastARP(t, "02:00:00:00:02:01")

		frame.TunID = 5002
		res := f.fromTunnel(t, "h1", "h2", topology.VXLAN, frame)
		assert.Empty(t, res.local)
		assert.Empty(t, f.sims["h1"].Learned(), "nothing is learned from a dropped frame")

		// Positive control: the network's own VNI is delivered.
		frame.TunID = 5001
		res = f.fromTunnel(t, "h1", "h2", topology.VXLAN, frame)
		assert.Equal(t, []string{"h1:1"}, res.deliveredTo())

		// A frame from a port that is neither patch-int nor a tunnel is dropped.
		frame.InPort = 77
		out, err := f.sims["h1"].Run(frame)
		require.NoError(t, err)
		assert.Empty(t, out.Outputs)
	})
}

func TestKnownRemotePortIsUnicastWithoutFlooding(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := remotePorts().withMode(mode)
		f := newFabric(t, c)
		res := f.fromVM(t, "h1", "blue", unicast(t, "02:00:00:00:01:01", "02:00:00:00:02:01"))
		assert.Equal(t, []string{"h2/vxlan"}, res.tunnels)
		assert.Equal(t, []string{"h2:1"}, res.deliveredTo())

		// Positive control: an unknown MAC floods.
		res = f.fromVM(t, "h1", "blue", unicast(t, "02:00:00:00:01:01", "02:00:00:00:09:09"))
		assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)
	})
}

func TestARPResponderAnswersLocally(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := remotePorts().withMode(mode)
		f := newFabric(t, c)
		vm1 := mac(t, "02:00:00:00:01:01")
		req := broadcastARP(t, vm1.String())
		req.ARPTPA = flows.IPv4{198, 18, 0, 2}

		res := f.fromVM(t, "h1", "blue", req)
		assert.Empty(t, res.tunnels, "the request does not leave h1")
		require.Len(t, res.local, 1)
		reply := res.local[0]
		assert.Equal(t, uint32(patchInt), reply.Port, "answered back to br-int (IN_PORT)")
		p := reply.Packet
		vid, _ := p.VLAN()
		assert.Equal(t, c.vlan("h1", "blue"), vid)
		assert.Equal(t, uint16(2), p.ARPOp)
		assert.Equal(t, mac(t, "02:00:00:00:02:01"), p.EthSrc)
		assert.Equal(t, vm1, p.EthDst)
		assert.Equal(t, mac(t, "02:00:00:00:02:01"), p.ARPSHA)
		assert.Equal(t, flows.IPv4{198, 18, 0, 2}, p.ARPSPA)
		assert.Equal(t, vm1, p.ARPTHA)
		assert.Equal(t, flows.IPv4{198, 18, 0, 1}, p.ARPTPA)

		// An address given with a prefix length is answered too (vm3 on h3).
		req.ARPTPA = flows.IPv4{198, 18, 0, 3}
		res = f.fromVM(t, "h1", "blue", req)
		require.Len(t, res.local, 1)
		assert.Equal(t, mac(t, "02:00:00:00:03:01"), res.local[0].Packet.ARPSHA)

		// The same IP on another network answers with that network's port.
		res = f.fromVM(t, "h1", "quiet", req)
		require.Len(t, res.local, 1)
		assert.Equal(t, mac(t, "02:00:00:00:03:02"), res.local[0].Packet.ARPSHA)

		// Positive control: an unknown IP floods to the network's peers.
		req.ARPTPA = flows.IPv4{198, 18, 0, 99}
		res = f.fromVM(t, "h1", "blue", req)
		assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)
	})
}

func TestNDResponderAnswersLocally(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := remotePorts().withMode(mode)
		f := newFabric(t, c)
		vm1 := mac(t, "02:00:00:00:01:01")
		src := flows.IPv6(netip.MustParseAddr("2001:db8:100::1").As16())
		target := flows.IPv6(netip.MustParseAddr("2001:db8:100::2").As16())
		ns := flowsim.Packet{
			EthSrc: vm1, EthDst: mac(t, "33:33:ff:00:00:02"), EthType: flows.EthTypeIPv6,
			IPProto: flows.IPProtoICMPv6, ICMPv6Type: 135, NDTarget: target, NDSLL: vm1,
			IPv6Src: src, IPv6Dst: flows.IPv6(netip.MustParseAddr("ff02::1:ff00:2").As16()),
		}
		res := f.fromVM(t, "h1", "blue", ns)
		assert.Empty(t, res.tunnels)
		require.Len(t, res.local, 1)
		na := res.local[0]
		assert.Equal(t, uint32(patchInt), na.Port)
		p := na.Packet
		assert.Equal(t, uint8(136), p.ICMPv6Type)
		assert.Equal(t, uint8(2), p.NDOptionsType, "target link-layer address option")
		assert.Equal(t, uint32(0x60000000), p.NDReserved, "solicited and override")
		assert.Equal(t, mac(t, "02:00:00:00:02:01"), p.NDTLL)
		assert.Equal(t, mac(t, "02:00:00:00:02:01"), p.EthSrc)
		assert.Equal(t, vm1, p.EthDst)
		assert.Equal(t, target, p.IPv6Src)
		assert.Equal(t, src, p.IPv6Dst)

		// Positive control: a solicitation for an unknown target floods.
		ns.NDTarget = flows.IPv6(netip.MustParseAddr("2001:db8:100::99").As16())
		res = f.fromVM(t, "h1", "blue", ns)
		assert.ElementsMatch(t, []string{"h2/vxlan", "h3/vxlan"}, res.tunnels)
	})
}

func TestNetworkWithoutMACLearningLearnsNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		c := remotePorts().withMode(mode) // quiet: GRE 7 on h1 and h3, no MAC learning
		f := newFabric(t, c)
		res := f.fromVM(t, "h3", "quiet", broadcastARP(t, "02:00:00:00:03:09"))
		assert.Equal(t, []string{"h1:2"}, res.deliveredTo(), "delivered on quiet's VLAN at h1")
		assert.Empty(t, f.sims["h1"].Learned())
		// So unicast to that MAC keeps flooding (to h3 only, quiet's one peer).
		res = f.fromVM(t, "h1", "quiet", unicast(t, "02:00:00:00:01:09", "02:00:00:00:03:09"))
		assert.Equal(t, []string{"h3/gre"}, res.tunnels)

		// blue learns as before (positive control).
		f.fromVM(t, "h2", "blue", broadcastARP(t, "02:00:00:00:02:09"))
		assert.Len(t, f.sims["h1"].Learned(), 1)
	})
}

// forEachMode runs test once per tunnel-port mode, as a subtest named after it.
func forEachMode(t *testing.T, test func(t *testing.T, mode topology.TunnelPortMode)) {
	for _, m := range topology.TunnelPortModes() {
		t.Run(m.String(), func(t *testing.T) { test(t, m) })
	}
}
