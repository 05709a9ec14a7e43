package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/flows/flowtest"
	"github.com/brtun/brtun/topology"
)

// dhcpCluster: on h1, network blue has a DHCP-enabled subnet (gateway
// 198.18.0.254) with a protected port and one without port security; red
// has none and a protected port.
func dhcpCluster() cluster {
	return cluster{
		hosts: []string{"h1", "h2"},
		types: []topology.NetworkType{topology.VXLAN},
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: []string{"h1", "h2"}, learning: true, routers: []string{"198.18.0.254"}, nd: true},
			{name: "red", typ: topology.VXLAN, seg: 5002, hosts: []string{"h1"}, learning: true},
		},
		locals: map[string][]flows.LocalPort{"h1": {
			{Network: "blue", Name: "vm1", Ofport: ofVM1, LocalVLAN: 1, MAC: macVM1.String(),
				IPs: []string{"198.18.0.1", "2001:db8:100::1"}, PortSecurity: true, DHCP: true},
			{Network: "blue", Name: "appl", Ofport: ofAppl, LocalVLAN: 1, MAC: macAppl.String(), DHCP: true},
			{Network: "red", Name: "r1", Ofport: ofRed, LocalVLAN: 2, MAC: macRed.String(),
				IPs: []string{"198.18.0.1"}, PortSecurity: true},
		}},
	}
}

func TestGoldenDHCP(t *testing.T) {
	set := dhcpCluster().compile(t, "h1")
	flowtest.Golden(t, "dhcp_h1", flowtest.FormatSet(set))
}

// TestDHCPCatch: a DHCP network's ports send their DHCP, DHCPv6 and router
// solicitations to the controller, under their own cookie; the same frames
// from a port of a network without DHCP, and other traffic of the DHCP
// network's ports, are forwarded as before.
func TestDHCPCatch(t *testing.T) {
	sets := dhcpCluster().compile(t, "h1")
	s := flowsim.New(sets.BrInt)
	discover := func(in uint32, mac flows.MAC) flowsim.Packet {
		p := ipv4From(in, mac, "0.0.0.0")
		p.IPProto, p.UDPSrc, p.UDPDst = flows.IPProtoUDP, 68, 67
		return p
	}
	dhcp6 := func(in uint32, mac flows.MAC) flowsim.Packet {
		p := ipv6From(in, mac, "fe80::ff:fe00:101", flows.IPProtoUDP, 0)
		if mac != macVM1 {
			p.IPv6Src = v6("fe80::ff:fe00:201")
		}
		p.UDPSrc, p.UDPDst = 546, 547
		return p
	}
	rs := func(in uint32, mac flows.MAC) flowsim.Packet {
		p := ipv6From(in, mac, "fe80::ff:fe00:101", flows.IPProtoICMPv6, 133)
		if mac != macVM1 {
			p.IPv6Src = v6("fe80::ff:fe00:201")
		}
		return p
	}
	controller := "port " + itoa(flows.PortController)
	for name, mk := range map[string]func(uint32, flows.MAC) flowsim.Packet{"DHCP": discover, "DHCPv6": dhcp6, "RS": rs} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, controller, outcome(t, s, mk(ofVM1, macVM1)), "protected port of the DHCP network")
			assert.Equal(t, controller, outcome(t, s, mk(ofAppl, macAppl)), "port without security of the DHCP network")
			assert.Equal(t, "NORMAL", outcome(t, s, mk(ofRed, macRed)), "network without DHCP: no packet-in")
		})
	}
	res, err := s.Run(discover(ofVM1, macVM1))
	require.NoError(t, err)
	require.Len(t, res.Trace, 5)
	assert.Contains(t, res.Trace[len(res.Trace)-1], fmt.Sprintf("cookie=%#x", flows.PortCookie("blue", "vm1")), "the catch carries the port's cookie")
	// Other traffic of the DHCP network goes on.
	assert.Equal(t, "NORMAL", outcome(t, s, ipv4From(ofVM1, macVM1, "198.18.0.1")))
	// A DHCP server message is still dropped by port security.
	spoof := ipv4From(ofVM1, macVM1, "198.18.0.1")
	spoof.IPProto, spoof.UDPSrc, spoof.UDPDst = flows.IPProtoUDP, 67, 68
	assert.Equal(t, "drop", outcome(t, s, spoof))
	// From patch-tun nothing is caught.
	fromTun := discover(1, macRemot)
	assert.Equal(t, "NORMAL", outcome(t, s, fromTun))
}

// TestDHCPRouterARP: an ARP request for the DHCP server identifier from a
// VM port of the network is answered with the router MAC, back to the
// port; one for another address, or from another network, is not.
func TestDHCPRouterARP(t *testing.T) {
	s := flowsim.New(dhcpCluster().compile(t, "h1").BrInt)
	req := arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")
	req.ARPTPA = v4("198.18.0.254")
	res, err := s.Run(req)
	require.NoError(t, err)
	require.Len(t, res.Outputs, 1)
	out := res.Outputs[0]
	router := flows.RouterMAC("blue")
	assert.Equal(t, uint32(ofVM1), out.Port)
	assert.Equal(t, uint16(2), out.Packet.ARPOp)
	assert.Equal(t, router, out.Packet.ARPSHA)
	assert.Equal(t, v4("198.18.0.254"), out.Packet.ARPSPA)
	assert.Equal(t, macVM1, out.Packet.ARPTHA)
	assert.Equal(t, v4("198.18.0.1"), out.Packet.ARPTPA)
	assert.Equal(t, router, out.Packet.EthSrc)
	assert.Equal(t, macVM1, out.Packet.EthDst)

	other := arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")
	other.ARPTPA = v4("198.18.0.253")
	assert.Equal(t, "NORMAL", outcome(t, s, other), "another address")
	red := arpFrom(ofRed, macRed, macRed, "198.18.0.1")
	red.ARPTPA = v4("198.18.0.254")
	assert.Equal(t, "NORMAL", outcome(t, s, red), "the same address on a network without DHCP")
}

func TestRouterMACIsLocalUnicastAndPerNetwork(t *testing.T) {
	a, b := flows.RouterMAC("blue"), flows.RouterMAC("red")
	assert.NotEqual(t, a, b)
	assert.False(t, a.IsMulticast())
	assert.Equal(t, byte(0x02), a[0]&0x02, "locally administered")
	assert.Equal(t, a, flows.RouterMAC("blue"))
}

// TestDHCPRouterND: a neighbour solicitation from a VM port of the network
// for the router's link-local address is answered with the router MAC;
// one for another target is not.
func TestDHCPRouterND(t *testing.T) {
	s := flowsim.New(dhcpCluster().compile(t, "h1").BrInt)
	router := flows.RouterMAC("blue")
	ll := v6(fmt.Sprintf("fe80::8b7:%x:%x:%x", uint16(router[2])<<8|0xff, 0xfe00|uint16(router[3]), uint16(router[4])<<8|uint16(router[5])))
	ns := ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoICMPv6, 135)
	ns.NDTarget = ll
	res, err := s.Run(ns)
	require.NoError(t, err)
	require.Len(t, res.Outputs, 1, "%v", res.Trace)
	out := res.Outputs[0]
	assert.Equal(t, uint32(ofVM1), out.Port)
	assert.Equal(t, uint8(136), out.Packet.ICMPv6Type)
	assert.Equal(t, router, out.Packet.NDTLL)
	assert.Equal(t, router, out.Packet.EthSrc)
	assert.Equal(t, macVM1, out.Packet.EthDst)
	assert.Equal(t, ll, out.Packet.IPv6Src)
	assert.Equal(t, v6("fe80::ff:fe00:101"), out.Packet.IPv6Dst)

	other := ns
	other.NDTarget = v6("fe80::1")
	assert.Equal(t, "NORMAL", outcome(t, s, other), "another target goes on")
}
