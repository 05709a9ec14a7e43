package trace_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/trace"
)

// The test topology: hosts h1 and h2, each with patch-int on br-tun port 1,
// patch-tun on br-int port 1, and a VXLAN (2) and a GRE (3) tunnel to the
// other. Network blue (VXLAN 5001, local VLAN 1 on both) has a1 and a3 on
// h1 and a2 on h2; network red (GRE 7, VLAN 2) has only r1 on h1, so its
// frames have nowhere to go but r1's own host.
var ports = []topology.Port{
	{Network: "blue", Name: "a1", Host: "h1", Interface: "tap-a1", MAC: "02:00:00:00:0a:01", IPs: []string{"198.18.0.1", "2001:db8:100::1"}},
	{Network: "blue", Name: "a2", Host: "h2", Interface: "tap-a2", MAC: "02:00:00:00:0a:02", IPs: []string{"198.18.0.2"}},
	{Network: "blue", Name: "a3", Host: "h1", Interface: "tap-a3", MAC: "02:00:00:00:0a:03", IPs: []string{"198.18.0.3"}},
	{Network: "red", Name: "r1", Host: "h1", Interface: "tap-r1", MAC: "02:00:00:00:0b:01", IPs: []string{"198.18.0.1"}},
}

var ofports = map[string]uint32{"a1": 5, "a3": 6, "r1": 7, "a2": 5}

func vlanOf(network string) uint16 {
	if network == "red" {
		return 2
	}
	return 1
}

func other(h string) string {
	if h == "h1" {
		return "h2"
	}
	return "h1"
}

// host compiles h's flows as brtun would and lists its ports as OVSDB would.
func host(t *testing.T, h string, down ...string) trace.Host {
	t.Helper()
	return hostIn(t, topology.PerPeerTunnels, h, down...)
}

// tunnelIPs are the hosts' tunnel IPs with flow-based tunnel ports.
var tunnelIPs = map[string]string{"h1": "192.0.2.1", "h2": "192.0.2.2"}

// hostIn is host with the given tunnel-port mode: flow-based, br-tun's
// VXLAN (2) and GRE (3) ports are flow ports towards every peer.
func hostIn(t *testing.T, mode topology.TunnelPortMode, h string, down ...string) trace.Host {
	t.Helper()
	peer := other(h)
	view := flows.View{Host: h, TunnelPorts: mode, PatchIntOfport: 1, PatchTunOfport: 1, Tunnels: []flows.TunnelPort{
		{Ofport: 2, PeerHost: peer, RemoteIP: "192.0.2.9", Type: topology.VXLAN},
		{Ofport: 3, PeerHost: peer, RemoteIP: "192.0.2.9", Type: topology.GRE},
	}}
	if mode.Flow() {
		for i := range view.Tunnels {
			view.Tunnels[i].RemoteIP = tunnelIPs[peer]
		}
	}
	view.Networks = append(view.Networks, flows.NetworkView{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, LocalVLAN: 1, MACLearning: true, Peers: []string{peer}})
	if h == "h1" {
		view.Networks = append(view.Networks, flows.NetworkView{Name: "red", Type: topology.GRE, SegmentID: 7, LocalVLAN: 2, MACLearning: true})
	}
	out := trace.Host{
		Int: trace.Bridge{Ports: []trace.Port{
			{OFPort: flows.PortLocal, Name: "br-int", Kind: trace.PortLocal},
			{OFPort: 1, Name: "patch-tun", Kind: trace.PortPatch},
		}},
		Tun: trace.Bridge{Ports: []trace.Port{
			{OFPort: flows.PortLocal, Name: "br-tun", Kind: trace.PortLocal},
			{OFPort: 1, Name: "patch-int", Kind: trace.PortPatch},
			{OFPort: 2, Name: "vxlan-" + peer, Kind: trace.PortTunnel, Peer: peer, Type: topology.VXLAN},
			{OFPort: 3, Name: "gre-" + peer, Kind: trace.PortTunnel, Peer: peer, Type: topology.GRE},
		}},
	}
	for _, p := range ports {
		if p.Host != h {
			view.RemotePorts = append(view.RemotePorts, flows.RemotePort{Network: p.Network, Name: p.Name, Host: p.Host, MAC: p.MAC, IPs: p.IPs})
			continue
		}
		mac, err := flows.ParseMAC(p.MAC)
		require.NoError(t, err)
		vlan := vlanOf(p.Network)
		if slices.Contains(down, p.Name) {
			view.DownPorts = append(view.DownPorts, flows.DownPort{Network: p.Network, Name: p.Name, Ofport: ofports[p.Name]})
			vlan = 4095
		} else {
			view.LocalPorts = append(view.LocalPorts, flows.LocalPort{Network: p.Network, Name: p.Name, Ofport: ofports[p.Name],
				LocalVLAN: vlan, MAC: p.MAC, IPs: p.IPs, PortSecurity: true})
		}
		out.Int.Ports = append(out.Int.Ports, trace.Port{OFPort: ofports[p.Name], Name: p.Interface, Kind: trace.PortVM,
			Network: p.Network, Port: p.Name, MAC: mac, VLAN: vlan})
	}
	if mode.Flow() {
		out.Tun.Ports[2] = trace.Port{OFPort: 2, Name: "vxlan-flow", Kind: trace.PortTunnel, Type: topology.VXLAN, Flow: true}
		out.Tun.Ports[3] = trace.Port{OFPort: 3, Name: "gre-flow", Kind: trace.PortTunnel, Type: topology.GRE, Flow: true}
	}
	set := flows.Compile(view)
	require.NoError(t, flows.Validate(set))
	out.Int.Flows, out.Tun.Flows = set.BrInt, set.BrTun
	return out
}

func input(t *testing.T) trace.Input {
	return trace.Input{Hosts: map[string]trace.Host{"h1": host(t, "h1"), "h2": host(t, "h2")}, Registered: ports}
}

func packet(t *testing.T, network, port string, req trace.Request) flowsim.Packet {
	t.Helper()
	i := slices.IndexFunc(ports, func(p topology.Port) bool { return p.Network == network && p.Name == port })
	require.GreaterOrEqual(t, i, 0)
	mac, err := flows.ParseMAC(ports[i].MAC)
	require.NoError(t, err)
	p, err := trace.NewPacket(req, ports[i], mac, ports)
	require.NoError(t, err)
	return p
}

func walk(t *testing.T, in trace.Input, network, port string, req trace.Request) trace.Result {
	t.Helper()
	res, err := trace.Walk(in, "h1", network, port, packet(t, network, port, req))
	require.NoError(t, err)
	return res
}

// path lists the hops as "host/bridge:t1,t2,...".
func path(res trace.Result) []string {
	var out []string
	for _, h := range res.Hops {
		var tables []string
		for _, l := range h.Lookups {
			tables = append(tables, fmt.Sprint(l.Table))
		}
		out = append(out, h.Host+"/"+h.Bridge+":"+strings.Join(tables, ","))
	}
	return out
}

func reached(res trace.Result) []string {
	var out []string
	for _, e := range res.Reached {
		out = append(out, e.Host+":"+e.Network+"/"+e.Port)
	}
	slices.Sort(out)
	return out
}

func TestUnicastToARemotePortCrossesTheTunnel(t *testing.T) {
	res := walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Empty(t, res.Missing)
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, path(res),
		"br-int's port security (10, 11, 12) and forwarding (30) tables, br-tun's unicast (20), the remote tunnel-in (3) and learn (10)")
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))

	first := res.Hops[0]
	assert.Equal(t, "tap-a1", first.InPort)
	assert.Equal(t, "in_port=5,dl_src=02:00:00:00:0a:01,dl_dst=02:00:00:00:0a:02,ip,nw_src=198.18.0.1", first.Packet)
	assert.Equal(t, -1, first.From)
	require.Len(t, first.Outputs, 1)
	assert.Equal(t, "patch-tun", first.Outputs[0].Port)
	assert.Empty(t, first.Outputs[0].Note, "table 30 sends it by flow, not NORMAL")
	assert.Equal(t, fmt.Sprintf("port:0x%08x", flows.PortID("blue", "a1")), first.Lookups[1].Owner, "a1's port security")
	assert.Equal(t, fmt.Sprintf("port:0x%08x", flows.PortID("blue", "a2")), first.Lookups[5].Owner, "a2's forwarding flow")

	tun := res.Hops[1]
	assert.Equal(t, "patch-int", tun.InPort)
	assert.Equal(t, "in_port=1,dl_vlan=1,dl_src=02:00:00:00:0a:01,dl_dst=02:00:00:00:0a:02,ip,nw_src=198.18.0.1", tun.Packet)
	unicast := tun.Lookups[2]
	assert.Equal(t, fmt.Sprintf("port:0x%08x", flows.PortID("blue", "a2")), unicast.Owner)
	assert.Equal(t, fmt.Sprintf("cookie=%#x, table=20, priority=2,dl_vlan=1,dl_dst=02:00:00:00:0a:02 actions=pop_vlan,set_field:0x1389->tun_id,output:2",
		flows.PortCookie("blue", "a2")), unicast.Flow)
	require.Len(t, tun.Outputs, 1)
	assert.Equal(t, "vxlan-h2", tun.Outputs[0].Port)
	assert.Equal(t, 2, tun.Outputs[0].Next)

	remote := res.Hops[2]
	assert.Equal(t, "vxlan-h1", remote.InPort, "the copy enters h2 on h2's tunnel back to h1 of the same type")
	assert.Equal(t, "in_port=2,tun_id=0x1389,dl_src=02:00:00:00:0a:01,dl_dst=02:00:00:00:0a:02,ip,nw_src=198.18.0.1", remote.Packet)
	assert.Equal(t, "network:vxlan:5001", remote.Lookups[1].Owner)
	assert.Equal(t, 1, remote.From)

	last := res.Hops[3]
	require.Len(t, last.Outputs, 1)
	assert.Equal(t, "tap-a2", last.Outputs[0].Port)
	assert.Equal(t, &trace.Endpoint{Host: "h2", Network: "blue", Port: "a2", Interface: "tap-a2"}, last.Outputs[0].Reached)
	for _, h := range res.Hops {
		assert.Empty(t, h.Dropped, "%s/%s", h.Host, h.Bridge)
	}
}

func TestARPRequestIsAnsweredOnTheSendersHost(t *testing.T) {
	res := walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.ARP, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,21", "h1/br-int:0,30"}, path(res), "nothing crosses a tunnel")
	assert.Equal(t, []string{"h1:blue/a1", "h1:blue/a3"}, reached(res), "br-int floods the request to a3; the answer comes back to a1")
	responder := res.Hops[1].Lookups[2]
	assert.Contains(t, responder.Flow, "arp_tpa=198.18.0.2,arp_op=1")
	assert.Equal(t, fmt.Sprintf("port:0x%08x", flows.PortID("blue", "a2")), responder.Owner)
	require.Len(t, res.Hops[1].Outputs, 1)
	assert.Equal(t, "patch-int", res.Hops[1].Outputs[0].Port, "IN_PORT sends the answer back")
	answer := res.Hops[2]
	assert.Contains(t, answer.Packet, "dl_src=02:00:00:00:0a:02,dl_dst=02:00:00:00:0a:01,arp,arp_op=2,arp_spa=198.18.0.2,arp_tpa=198.18.0.1,arp_sha=02:00:00:00:0a:02,arp_tha=02:00:00:00:0a:01")
	assert.Equal(t, "tap-a1", answer.Outputs[0].Port)
	var flood []string
	for _, o := range res.Hops[0].Outputs {
		flood = append(flood, o.Port)
		assert.Contains(t, o.Note, "NORMAL floods VLAN 1", "the hop says NORMAL did it")
	}
	assert.Equal(t, []string{"br-int", "patch-tun", "tap-a3"}, flood, "VLAN 1's ports and the trunks, not the sender, not red's r1")
	assert.Contains(t, res.Hops[0].Outputs[0].Note, "the bridge's internal port")

	// Control: an address nobody has is flooded to the peer instead.
	res = walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.ARP, DstIP: "198.18.0.99"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,21", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, path(res))
	assert.Equal(t, []string{"h1:blue/a3", "h2:blue/a2"}, reached(res))
}

func TestBroadcastAndDHCPFloodTheNetworkOnly(t *testing.T) {
	for _, kind := range []trace.Kind{trace.Broadcast, trace.DHCP} {
		res := walk(t, input(t), "blue", "a1", trace.Request{Kind: kind})
		assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,21", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, path(res), kind)
		assert.Equal(t, []string{"h1:blue/a3", "h2:blue/a2"}, reached(res), "red's r1 on the same br-int gets nothing (%s)", kind)
		assert.Contains(t, res.Hops[0].Outputs[0].Note, "NORMAL floods VLAN 1")
	}
	res := walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.DHCP})
	assert.Contains(t, res.Hops[0].Packet, "dl_dst=ff:ff:ff:ff:ff:ff,udp,nw_src=0.0.0.0,udp_src=68,udp_dst=67")
	assert.Contains(t, res.Hops[0].Lookups[2].Flow, "udp,in_port=5,dl_src=02:00:00:00:0a:01,nw_src=0.0.0.0,tp_src=68,tp_dst=67", "port security lets the discover through")
}

func TestIsolatedNetworkDropsAnotherNetworksMAC(t *testing.T) {
	res := walk(t, input(t), "red", "r1", trace.Request{Kind: trace.Unicast, DstMAC: "02:00:00:00:0a:02"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20,21"}, path(res))
	assert.Empty(t, reached(res), "a2's MAC is blue's: red has nobody to deliver to")
	drop := res.Hops[1]
	assert.Equal(t, "table 21 drops it", drop.Dropped)
	assert.Equal(t, "cookie=0xb710000000000000, table=21, priority=0 actions=drop", drop.Lookups[3].Flow)
	assert.Contains(t, res.Hops[0].Outputs[0].Note, "no port brtun knows has 02:00:00:00:0a:02")

	// Control: the same MAC from a blue port arrives.
	res = walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.Unicast, DstMAC: "02:00:00:00:0a:02"})
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))
}

func TestDownPortIsDroppedAtItsFirstFlow(t *testing.T) {
	in := input(t)
	in.Hosts["h1"] = host(t, "h1", "a1")
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Broadcast})
	require.Len(t, res.Hops, 1)
	assert.Equal(t, "table 0 drops it", res.Hops[0].Dropped)
	assert.Equal(t, fmt.Sprintf("port:0x%08x", flows.PortID("blue", "a1")), res.Hops[0].Lookups[0].Owner)
	assert.Contains(t, res.Hops[0].Lookups[0].Flow, "priority=3,in_port=5 actions=drop")
	assert.Empty(t, res.Reached)
	// Control: a3, up on the same host, floods.
	res = walk(t, in, "blue", "a3", trace.Request{Kind: trace.Broadcast})
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res), "a1 is down: on VLAN 4095, it gets nothing")
}

// TestDriftShows: the walk reads what the bridges hold, so a flow deleted
// behind brtun's back changes the path.
func TestDriftShows(t *testing.T) {
	in := input(t)
	h1 := in.Hosts["h1"]
	gone := func(f flows.Flow) bool { return f.Cookie == flows.PortCookie("blue", "a2") } // a2's entries on h1
	h1.Int.Flows = slices.DeleteFunc(slices.Clone(h1.Int.Flows), gone)
	h1.Tun.Flows = slices.DeleteFunc(slices.Clone(h1.Tun.Flows), gone)
	in.Hosts["h1"] = h1
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20,21", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, path(res), "the miss floods")
	assert.Equal(t, "cookie=0xb710000000000000, table=30, priority=0 actions=NORMAL", res.Hops[0].Lookups[5].Flow)
	require.Len(t, res.Hops[0].Outputs, 1)
	note := res.Hops[0].Outputs[0].Note
	assert.Contains(t, note, "02:00:00:00:0a:02 is port blue/a2 on h2", "NORMAL is stood in for by brtun's ports")
	assert.Contains(t, note, "MAC table is not visible", "and the hop says so")
	assert.Equal(t, "cookie=0xb710000000000000, table=20, priority=0 actions=goto_table:21", res.Hops[1].Lookups[2].Flow)
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.ARP, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h1:blue/a3", "h2:blue/a2"}, reached(res), "nobody answers on h1: the request crosses the tunnel")
}

func TestMissingHostsAreListed(t *testing.T) {
	in := input(t)
	delete(in.Hosts, "h2")
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h2"}, res.Missing)
	assert.Equal(t, -1, res.Hops[1].Outputs[0].Next)

	in.Hosts["h2"] = trace.Host{Err: "br-tun: switch not connected"}
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Empty(t, res.Missing)
	assert.Equal(t, "the host's switches could not be read: br-tun: switch not connected", res.Hops[2].Dropped)
	assert.Empty(t, res.Reached)
}

// TestFollowsWhateverTablesTheBridgeHolds: a br-int whose pipeline goes
// through other tables (as port security's does) and outputs to ports
// itself is walked as it is.
func TestFollowsWhateverTablesTheBridgeHolds(t *testing.T) {
	in := input(t)
	h2 := in.Hosts["h2"]
	h2.Int.Flows = []flows.Flow{
		{Table: 0, Priority: 1, Actions: []flows.Action{flows.GotoTable{Table: 10}}},
		{Table: 10, Priority: 5, Match: flows.Match{InPort: flows.Ptr(uint32(1))}, Actions: []flows.Action{flows.Resubmit{Table: 12}, flows.GotoTable{Table: 30}}},
		{Table: 12, Priority: 0},
		{Table: 30, Priority: 3, Cookie: flows.PortCookie("blue", "a2"), Match: flows.Match{EthDst: flows.ExactMAC(flows.MAC{2, 0, 0, 0, 0x0a, 2})},
			Actions: []flows.Action{flows.PopVLAN{}, flows.Output{Port: 5}}},
	}
	in.Hosts["h2"] = h2
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20", "h2/br-tun:0,3,10", "h2/br-int:0,10,12,30"}, path(res))
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))

	// A broadcast misses table 30: no flow matches there.
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.Broadcast})
	assert.Equal(t, "no flow of table 30 matches", res.Hops[len(res.Hops)-1].Dropped)
}

func TestNewPacketRefusesWhatDescribesNoPacket(t *testing.T) {
	src := ports[0]
	mac := flows.MAC{2, 0, 0, 0, 0x0a, 1}
	for _, c := range []struct {
		req   trace.Request
		field string
	}{
		{trace.Request{Kind: trace.Unicast}, "dst_mac"},
		{trace.Request{Kind: trace.Unicast, DstMAC: "nope"}, "dst_mac"},
		{trace.Request{Kind: trace.Unicast, DstMAC: "ff:ff:ff:ff:ff:ff"}, "dst_mac"},
		{trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.77"}, "dst_ip"},
		{trace.Request{Kind: trace.Unicast, DstIP: "fe80::1%eth0"}, "dst_ip"},
		{trace.Request{Kind: trace.ARP}, "dst_ip"},
		{trace.Request{Kind: trace.ARP, DstIP: "2001:db8::1"}, "dst_ip"},
		{trace.Request{Kind: trace.ARP, DstIP: "198.18.0.2", DstMAC: "02:00:00:00:0a:02"}, "dst_mac"},
		{trace.Request{Kind: trace.DHCP, DstIP: "198.18.0.2"}, "dst_ip"},
		{trace.Request{Kind: trace.Broadcast, DstMAC: "02:00:00:00:0a:02"}, "dst_mac"},
		{trace.Request{Kind: "multicast"}, "packet"},
	} {
		_, err := trace.NewPacket(c.req, src, mac, ports)
		var re *trace.RequestError
		if assert.ErrorAs(t, err, &re, "%+v", c.req) {
			assert.Equal(t, c.field, re.Field, "%+v", c.req)
		}
	}
	// Controls: the same kinds, well formed.
	p, err := trace.NewPacket(trace.Request{Kind: trace.Unicast, DstIP: "2001:db8:100::9", DstMAC: "02:00:00:00:0a:09"}, src, mac, ports)
	require.NoError(t, err)
	assert.Equal(t, "in_port=0,dl_src=02:00:00:00:0a:01,dl_dst=02:00:00:00:0a:09,ipv6,ipv6_src=2001:db8:100::1,ipv6_dst=2001:db8:100::9", p.TraceFlow())
	p, err = trace.NewPacket(trace.Request{Kind: trace.ARP, DstIP: "198.18.0.2"}, src, mac, ports)
	require.NoError(t, err)
	assert.Equal(t, "in_port=0,dl_src=02:00:00:00:0a:01,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=198.18.0.1,arp_tpa=198.18.0.2,arp_sha=02:00:00:00:0a:01,arp_tha=00:00:00:00:00:00", p.TraceFlow())
}

func TestWalkNeedsTheBoundSourcePort(t *testing.T) {
	_, err := trace.Walk(input(t), "h1", "blue", "a2", flowsim.Packet{})
	assert.ErrorIs(t, err, trace.ErrNotBound)
	_, err = trace.Walk(input(t), "h9", "blue", "a1", flowsim.Packet{})
	assert.ErrorContains(t, err, "h9")
	_, err = trace.Walk(input(t), "h1", "blue", "a1", flowsim.Packet{})
	assert.NoError(t, err, "control")
}

// TestLostCopiesSayWhy: a copy sent to a port the bridge lacks, or through
// a tunnel the peer has no port of, ends with the reason.
func TestLostCopiesSayWhy(t *testing.T) {
	in := input(t)
	h2 := in.Hosts["h2"]
	h2.Tun.Ports = slices.DeleteFunc(slices.Clone(h2.Tun.Ports), func(p trace.Port) bool { return p.Kind == trace.PortTunnel && p.Type == topology.VXLAN })
	in.Hosts["h2"] = h2
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	require.Len(t, res.Hops, 2)
	out := res.Hops[1].Outputs[0]
	assert.Equal(t, "vxlan-h2", out.Port)
	assert.Equal(t, -1, out.Next)
	assert.Equal(t, "h2 has no vxlan tunnel port towards h1: it drops the copy", out.Note)
	assert.Empty(t, res.Reached)

	in = input(t)
	h1 := in.Hosts["h1"]
	h1.Tun.Ports = slices.DeleteFunc(slices.Clone(h1.Tun.Ports), func(p trace.Port) bool { return p.OFPort == 2 })
	in.Hosts["h1"] = h1
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	require.Len(t, res.Hops, 2)
	assert.Equal(t, trace.Out{Port: "2", Next: -1, Note: "the bridge has no such port: the copy is lost"}, res.Hops[1].Outputs[0])

	// A frame to the sender's own MAC: table 30's output to it is the
	// input port, which OVS skips.
	res = walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.Unicast, DstMAC: "02:00:00:00:0a:01"})
	require.Len(t, res.Hops, 1)
	assert.Equal(t, "table 30: output:5 skipped: it is the input port (only IN_PORT sends back)", res.Hops[0].Dropped)
	assert.Empty(t, res.Reached)

	// Control: with both ports the copy arrives.
	res = walk(t, input(t), "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))
}

// With flow-based tunnel ports a copy goes to the host at its tun_dst and
// arrives with the sender's tunnel IP as tun_src, which the peer's table 0
// checks.
func TestFlowTunnelPortsCrossToTheHostAtTunDst(t *testing.T) {
	in := trace.Input{Hosts: map[string]trace.Host{"h1": hostIn(t, topology.FlowTunnels, "h1"), "h2": hostIn(t, topology.FlowTunnels, "h2")},
		Registered: ports, TunnelIPs: tunnelIPs}
	res := walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Empty(t, res.Missing)
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, path(res))
	assert.Equal(t, []string{"h2:blue/a2"}, reached(res))
	require.Len(t, res.Hops[1].Outputs, 1)
	assert.Equal(t, "vxlan-flow", res.Hops[1].Outputs[0].Port)
	remote := res.Hops[2]
	assert.Equal(t, "vxlan-flow", remote.InPort)
	assert.Equal(t, "in_port=2,tun_id=0x1389,tun_src=192.0.2.1,dl_src=02:00:00:00:0a:01,dl_dst=02:00:00:00:0a:02,ip,nw_src=198.18.0.1", remote.Packet)

	// A sender whose tunnel IP h2 does not know is dropped in h2's table 0.
	in.TunnelIPs = map[string]string{"h1": "192.0.2.77", "h2": "192.0.2.2"}
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"h1/br-int:0,10,11,12,20,30", "h1/br-tun:0,1,20", "h2/br-tun:0"}, path(res))
	assert.Empty(t, reached(res))

	// A tun_dst no host has is a remote VTEP, which the walk asks for.
	in.TunnelIPs = map[string]string{"h1": "192.0.2.1"}
	delete(in.Hosts, "h2")
	res = walk(t, in, "blue", "a1", trace.Request{Kind: trace.Unicast, DstIP: "198.18.0.2"})
	assert.Equal(t, []string{"vtep:192.0.2.2"}, res.Missing)
}
