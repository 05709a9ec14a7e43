package flows_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/flows/flowtest"
	"github.com/brtun/brtun/topology"
)

// Ports of the port-security scenario on h1's br-int (patch-tun is 1).
const (
	ofVM1   = 2 // blue, protected, with an allowed pair
	ofVM2   = 3 // blue, protected
	ofAppl  = 4 // blue, port security off
	ofRed   = 5 // red, protected
	ofNoMAC = 6 // blue, registered without a MAC
	ofNoIP  = 7 // blue, protected, registered without addresses
)

var (
	macVM1   = mustMAC("02:00:00:00:01:01")
	macVM2   = mustMAC("02:00:00:00:01:02")
	macAppl  = mustMAC("02:00:00:00:01:04")
	macRed   = mustMAC("02:00:00:00:02:01")
	macVIP   = mustMAC("02:00:00:00:01:99")
	macOther = mustMAC("02:00:00:00:09:09")
	macRemot = mustMAC("02:00:00:00:03:01")
	macNoIP  = mustMAC("02:00:00:00:01:07")
)

func mustMAC(s string) flows.MAC {
	m, err := flows.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func v4(s string) flows.IPv4 { return netip.MustParseAddr(s).As4() }
func v6(s string) flows.IPv6 { return netip.MustParseAddr(s).As16() }

// portSecurity: two networks on h1 and h2; h1 has protected ports, one
// with allowed address pairs, an appliance without port security and a
// port without a MAC; h2 has a registered remote port.
func portSecurity() cluster {
	return cluster{
		hosts: []string{"h1", "h2"},
		types: []topology.NetworkType{topology.VXLAN},
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: []string{"h1", "h2"}, learning: true},
			{name: "red", typ: topology.VXLAN, seg: 5002, hosts: []string{"h1", "h2"}, learning: true},
		},
		ports: []flows.RemotePort{
			{Network: "blue", Name: "vm3", Host: "h2", MAC: macRemot.String(), IPs: []string{"198.18.0.3"}},
		},
		locals: map[string][]flows.LocalPort{"h1": {
			{Network: "blue", Name: "vm1", Ofport: ofVM1, LocalVLAN: 1, MAC: macVM1.String(),
				IPs: []string{"198.18.0.1", "2001:db8:100::1"}, PortSecurity: true,
				AllowedAddressPairs: []topology.AddressPair{
					{IPAddress: "198.18.0.100"},
					{IPAddress: "198.18.1.0/24", MACAddress: macVIP.String()},
					{IPAddress: "2001:db8:100::100"},
				}},
			{Network: "blue", Name: "vm2", Ofport: ofVM2, LocalVLAN: 1, MAC: macVM2.String(),
				IPs: []string{"198.18.0.2"}, PortSecurity: true},
			{Network: "blue", Name: "appl", Ofport: ofAppl, LocalVLAN: 1, MAC: macAppl.String(),
				IPs: []string{"198.18.0.4"}, PortSecurity: false},
			{Network: "blue", Name: "nomac", Ofport: ofNoMAC, LocalVLAN: 1, PortSecurity: true},
			{Network: "blue", Name: "noip", Ofport: ofNoIP, LocalVLAN: 1, MAC: macNoIP.String(), PortSecurity: true},
			{Network: "red", Name: "r1", Ofport: ofRed, LocalVLAN: 2, MAC: macRed.String(),
				IPs: []string{"198.18.0.1"}, PortSecurity: true},
		}},
	}
}

func TestGoldenPortSecurity(t *testing.T) {
	set := portSecurity().compile(t, "h1")
	flowtest.Golden(t, "port_security_h1", flowtest.FormatSet(set))
}

// brIntSim is h1's br-int of the port-security scenario.
func brIntSim(t *testing.T) *flowsim.Sim {
	t.Helper()
	return flowsim.New(portSecurity().compile(t, "h1").BrInt)
}

// outcome runs p and says where it went: "drop", "NORMAL", "port N",
// "port N vlan V" (several joined by a space).
func outcome(t *testing.T, s *flowsim.Sim, p flowsim.Packet) string {
	t.Helper()
	res, err := s.Run(p)
	require.NoError(t, err, "%s", p)
	if len(res.Outputs) == 0 {
		return "drop"
	}
	var parts []string
	for _, o := range res.Outputs {
		switch {
		case o.Port == flows.PortNormal:
			parts = append(parts, "NORMAL")
		case o.Packet.VLANTCI != 0:
			parts = append(parts, "port "+itoa(o.Port)+" vlan "+itoa(uint32(o.Packet.VLANTCI&0xfff)))
		default:
			parts = append(parts, "port "+itoa(o.Port))
		}
	}
	return strings.Join(parts, " ")
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// Frames from a port of h1's br-int.
func ipv4From(in uint32, src flows.MAC, ip string) flowsim.Packet {
	return flowsim.Packet{InPort: in, EthSrc: src, EthDst: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		EthType: flows.EthTypeIPv4, IPProto: flows.IPProtoICMP, IPv4Src: v4(ip)}
}

func arpFrom(in uint32, src flows.MAC, sha flows.MAC, spa string) flowsim.Packet {
	return flowsim.Packet{InPort: in, EthSrc: src, EthDst: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		EthType: flows.EthTypeARP, ARPOp: 1, ARPSHA: sha, ARPSPA: v4(spa), ARPTPA: v4("198.18.0.2")}
}

func ipv6From(in uint32, src flows.MAC, ip string, proto, icmpType uint8) flowsim.Packet {
	return flowsim.Packet{InPort: in, EthSrc: src, EthDst: flows.MAC{0x33, 0x33, 0, 0, 0, 1},
		EthType: flows.EthTypeIPv6, IPProto: proto, IPv6Src: v6(ip), ICMPv6Type: icmpType}
}

func TestPortSecurityDropsEachSpoofBesideItsControl(t *testing.T) {
	s := brIntSim(t)
	udp := func(p flowsim.Packet, sport, dport uint16) flowsim.Packet {
		p.IPProto, p.UDPSrc, p.UDPDst = flows.IPProtoUDP, sport, dport
		return p
	}
	na := func(src flows.MAC, ip, target string) flowsim.Packet {
		p := ipv6From(ofVM1, src, ip, flows.IPProtoICMPv6, 136)
		p.NDTarget = v6(target)
		return p
	}
	tagged := ipv4From(ofVM1, macVM1, "198.18.0.1")
	tagged.VLANTCI = flows.VLANCFI | 1
	prioTagged := ipv4From(ofVM1, macVM1, "198.18.0.1")
	prioTagged.VLANTCI = flows.VLANCFI

	cases := []struct {
		name       string
		spoof, own flowsim.Packet
	}{
		{"source MAC", ipv4From(ofVM1, macVM2, "198.18.0.1"), ipv4From(ofVM1, macVM1, "198.18.0.1")},
		{"IPv4 source", ipv4From(ofVM1, macVM1, "198.18.0.2"), ipv4From(ofVM1, macVM1, "198.18.0.1")},
		{"IPv4 0.0.0.0 other than DHCP", ipv4From(ofVM1, macVM1, "0.0.0.0"), udp(ipv4From(ofVM1, macVM1, "0.0.0.0"), 68, 67)},
		{"ARP sender MAC", arpFrom(ofVM1, macVM1, macVM2, "198.18.0.1"), arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")},
		{"ARP sender IP", arpFrom(ofVM1, macVM1, macVM1, "198.18.0.2"), arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")},
		{"IPv6 source", ipv6From(ofVM1, macVM1, "2001:db8:100::2", flows.IPProtoUDP, 0), ipv6From(ofVM1, macVM1, "2001:db8:100::1", flows.IPProtoUDP, 0)},
		{"IPv6 link-local of another MAC", ipv6From(ofVM1, macVM1, "fe80::ff:fe00:102", flows.IPProtoUDP, 0), ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoUDP, 0)},
		{"IPv6 :: other than DAD", ipv6From(ofVM1, macVM1, "::", flows.IPProtoUDP, 0), ipv6From(ofVM1, macVM1, "::", flows.IPProtoICMPv6, 135)},
		{"NA for another target", na(macVM1, "2001:db8:100::1", "2001:db8:100::2"), na(macVM1, "2001:db8:100::1", "2001:db8:100::1")},
		{"DHCP server reply", udp(ipv4From(ofVM1, macVM1, "198.18.0.1"), 67, 68), udp(ipv4From(ofVM1, macVM1, "198.18.0.1"), 68, 67)},
		{"DHCPv6 server reply", udp(ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoUDP, 0), 547, 546), udp(ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoUDP, 0), 546, 547)},
		{"router advertisement", ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoICMPv6, 134), ipv6From(ofVM1, macVM1, "fe80::ff:fe00:101", flows.IPProtoICMPv6, 133)},
		{"802.1Q tagged", tagged, ipv4From(ofVM1, macVM1, "198.18.0.1")},
		{"priority tagged", prioTagged, ipv4From(ofVM1, macVM1, "198.18.0.1")},
		{"pair IP with the wrong MAC", ipv4From(ofVM1, macVM1, "198.18.1.7"), ipv4From(ofVM1, macVIP, "198.18.1.7")},
		{"pair GARP from the wrong MAC", arpFrom(ofVM1, macVM1, macVM1, "198.18.1.7"), arpFrom(ofVM1, macVIP, macVIP, "198.18.1.7")},
		{"pair prefix, outside it", ipv4From(ofVM1, macVIP, "198.18.2.7"), ipv4From(ofVM1, macVIP, "198.18.1.200")},
		{"another port's pair", arpFrom(ofVM2, macVM2, macVM2, "198.18.0.100"), arpFrom(ofVM1, macVM1, macVM1, "198.18.0.100")},
		{"IPv6 pair NA from another port", func() flowsim.Packet {
			p := na(macVM2, "fe80::ff:fe00:102", "2001:db8:100::100")
			p.InPort = ofVM2
			return p
		}(), na(macVM1, "fe80::ff:fe00:101", "2001:db8:100::100")},
		{"port without a MAC, tagged (its security is off)", func() flowsim.Packet {
			p := ipv4From(ofNoMAC, macOther, "203.0.113.9")
			p.VLANTCI = flows.VLANCFI | 1
			return p
		}(), ipv4From(ofNoMAC, macOther, "203.0.113.9")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, "drop", outcome(t, s, tc.spoof), "spoof %s", tc.spoof)
			assert.Equal(t, "NORMAL", outcome(t, s, tc.own), "own %s", tc.own)
		})
	}
}

// TestPortSecurityWithoutAddressesChecksTheMAC: a protected port registered
// without IPs or pairs (an autobound one, say) may send IP from any source,
// but only with its MAC, ARP only with its MAC as sender, and no DHCP server
// message or router advertisement.
func TestPortSecurityWithoutAddressesChecksTheMAC(t *testing.T) {
	s := brIntSim(t)
	arpOwn := arpFrom(ofNoIP, macNoIP, macNoIP, "198.18.0.77")
	for _, p := range []flowsim.Packet{
		ipv4From(ofNoIP, macNoIP, "198.18.0.77"),
		ipv6From(ofNoIP, macNoIP, "2001:db8:100::77", flows.IPProtoUDP, 0),
		arpOwn,
	} {
		assert.Equal(t, "NORMAL", outcome(t, s, p), "%s", p)
	}
	dhcpServer := ipv4From(ofNoIP, macNoIP, "198.18.0.77")
	dhcpServer.IPProto, dhcpServer.UDPSrc, dhcpServer.UDPDst = flows.IPProtoUDP, 67, 68
	for _, p := range []flowsim.Packet{
		ipv4From(ofNoIP, macOther, "198.18.0.77"),
		arpFrom(ofNoIP, macNoIP, macOther, "198.18.0.77"),
		ipv6From(ofNoIP, macNoIP, "fe80::1", flows.IPProtoICMPv6, 134),
		dhcpServer,
	} {
		assert.Equal(t, "drop", outcome(t, s, p), "%s", p)
	}
}

func TestPortSecurityOffSendsFromAnySource(t *testing.T) {
	s := brIntSim(t)
	for _, p := range []flowsim.Packet{
		ipv4From(ofAppl, macOther, "203.0.113.9"),
		arpFrom(ofAppl, macOther, macVM1, "198.18.0.1"),
		ipv6From(ofAppl, macOther, "2001:db8:100::1", flows.IPProtoICMPv6, 134),
	} {
		assert.Equal(t, "NORMAL", outcome(t, s, p), "%s", p)
	}
	// The same frames from a protected port are dropped.
	assert.Equal(t, "drop", outcome(t, s, ipv4From(ofVM2, macOther, "203.0.113.9")))
	// An unknown port sends nothing.
	assert.Equal(t, "drop", outcome(t, s, ipv4From(9, macOther, "198.18.0.9")))
}

func TestRegisteredMACsAreForwardedByFlow(t *testing.T) {
	s := brIntSim(t)
	unicast := func(in uint32, src, dst flows.MAC, ip string, vlan uint16) flowsim.Packet {
		p := ipv4From(in, src, ip)
		p.EthDst = dst
		if vlan != 0 {
			p.VLANTCI = flows.VLANCFI | vlan
		}
		return p
	}
	assert.Equal(t, "port 3", outcome(t, s, unicast(ofVM1, macVM1, macVM2, "198.18.0.1", 0)), "local port, same network")
	assert.Equal(t, "port 2", outcome(t, s, unicast(ofAppl, macOther, macVM1, "203.0.113.9", 0)), "from an appliance too")
	assert.Equal(t, "port 2", outcome(t, s, unicast(patchTun, macRemot, macVM1, "198.18.0.3", 1)), "from patch-tun: untagged to the access port")
	assert.Equal(t, "port 1 vlan 1", outcome(t, s, unicast(ofVM1, macVM1, macRemot, "198.18.0.1", 0)), "remote port: tagged to patch-tun")
	assert.Equal(t, "NORMAL", outcome(t, s, unicast(ofRed, macRed, macVM1, "198.18.0.1", 0)), "another network's MAC is not reachable by flow")
	assert.Equal(t, "NORMAL", outcome(t, s, unicast(patchTun, macRemot, macVM1, "198.18.0.3", 2)), "nor from patch-tun on another VLAN")
	assert.Equal(t, "NORMAL", outcome(t, s, unicast(ofVM1, macVM1, macOther, "198.18.0.1", 0)), "unknown MAC: NORMAL")
}

func TestPortSecurityDropFlowsCarryThePortCookie(t *testing.T) {
	set := portSecurity().compile(t, "h1")
	drops := map[uint64]int{}
	for _, f := range set.BrInt {
		if flows.IsPortSecurityDrop(f) {
			drops[f.Cookie]++
		}
	}
	assert.Greater(t, drops[flows.PortCookie("blue", "vm1")], 5)
	assert.Greater(t, drops[flows.PortCookie("red", "r1")], 5)
	assert.Equal(t, 1, drops[flows.PortCookie("blue", "appl")], "security off: only the tagged-frame drop")
	assert.Zero(t, drops[flows.PortCookie("blue", "vm3")], "a remote port has no drop flow here")
}

// TestPortSecurityWithABadMACSendsNothing: a protected port whose MAC does
// not parse (the API never stores one) cannot be allowed anything: all it
// sends is dropped and the compile says why; another port (control) sends.
func TestPortSecurityWithABadMACSendsNothing(t *testing.T) {
	c := portSecurity()
	c.locals = map[string][]flows.LocalPort{"h1": {
		{Network: "blue", Name: "bad", Ofport: ofVM1, LocalVLAN: 1, MAC: "zz", IPs: []string{"198.18.0.1"}, PortSecurity: true},
		{Network: "blue", Name: "vm2", Ofport: ofVM2, LocalVLAN: 1, MAC: macVM2.String(), IPs: []string{"198.18.0.2"}, PortSecurity: true},
	}}
	set := c.compile(t, "h1")
	assert.Contains(t, strings.Join(set.Skipped, "\n"), `local port blue/bad: MAC "zz" is not a unicast Ethernet address`)
	s := flowsim.New(set.BrInt)
	assert.Equal(t, "drop", outcome(t, s, ipv4From(ofVM1, macVM1, "198.18.0.1")))
	assert.Equal(t, "drop", outcome(t, s, arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")))
	assert.Equal(t, "NORMAL", outcome(t, s, ipv4From(ofVM2, macVM2, "198.18.0.2")))
}

// portSecurityVM1Down is the port-security scenario with vm1 set down
// (admin_state_up false): the controller lists it among the down ports,
// not the local ones. vm8 is down too, and vm9 is down without an ofport.
func portSecurityVM1Down() cluster {
	c := portSecurity()
	var up []flows.LocalPort
	for _, p := range c.locals["h1"] {
		if p.Name != "vm1" {
			up = append(up, p)
		}
	}
	c.locals = map[string][]flows.LocalPort{"h1": up}
	c.downs = map[string][]flows.DownPort{"h1": {
		{Network: "blue", Name: "vm1", Ofport: ofVM1},
		{Network: "blue", Name: "vm8", Ofport: 8},
		{Network: "blue", Name: "vm9", Ofport: 0},
	}}
	return c
}

func TestDownPortFlows(t *testing.T) {
	set := portSecurityVM1Down().compile(t, "h1")
	byCookie := func(set flows.FlowSet, network, name string) []string {
		var out []string
		for _, f := range set.BrInt {
			if f.Cookie == flows.PortCookie(network, name) {
				out = append(out, f.String())
			}
		}
		return out
	}
	for _, name := range []string{"vm1", "vm8"} {
		of := map[string]int{"vm1": ofVM1, "vm8": 8}[name]
		assert.Equal(t, []string{fmt.Sprintf("cookie=%#x, priority=3,in_port=%d actions=drop", flows.PortCookie("blue", name), of)},
			byCookie(set, "blue", name), "%s: one drop in table 0, nothing else (no port security, no delivery)", name)
	}
	assert.Contains(t, set.Skipped, "down port blue/vm9 has no usable ofport (0): its frames are not dropped yet")
	assert.Empty(t, byCookie(set, "blue", "vm9"))

	// Control: vm1 up has its port-security and forwarding flows.
	up := portSecurity().compile(t, "h1")
	assert.Greater(t, len(byCookie(up, "blue", "vm1")), 10)
	assert.Equal(t, flows.Strings(up.BrTun), flows.Strings(set.BrTun), "br-tun does not change for a local down port")
}

func TestDownPortCountsNoPortSecurityDrop(t *testing.T) {
	drops := func(set flows.FlowSet, name string) (secDrops, downDrops int) {
		for _, f := range set.BrInt {
			if f.Cookie != flows.PortCookie("blue", name) {
				continue
			}
			if flows.IsPortSecurityDrop(f) {
				secDrops++
			}
			if flows.IsAdminDownDrop(f) {
				downDrops++
			}
		}
		return secDrops, downDrops
	}
	sec, down := drops(portSecurityVM1Down().compile(t, "h1"), "vm1")
	assert.Zero(t, sec, "a down port's drop is not a port-security drop")
	assert.Equal(t, 1, down)
	sec, down = drops(portSecurity().compile(t, "h1"), "vm1")
	assert.Greater(t, sec, 5, "control: up, vm1's drops are port security's")
	assert.Zero(t, down)
}

func TestDownPortSendsAndGetsNothing(t *testing.T) {
	set := portSecurityVM1Down().compile(t, "h1")
	s := flowsim.New(set.BrInt)
	up := brIntSim(t)
	own := ipv4From(ofVM1, macVM1, "198.18.0.1")
	assert.Equal(t, "NORMAL", outcome(t, up, own), "control: up, vm1 sends from its own addresses")
	assert.Equal(t, "drop", outcome(t, s, own), "down, it sends nothing")
	assert.Equal(t, "drop", outcome(t, s, arpFrom(ofVM1, macVM1, macVM1, "198.18.0.1")))
	assert.Equal(t, "drop", outcome(t, s, ipv4From(8, macOther, "198.18.0.8")), "vm8 (down)")
	assert.Equal(t, "NORMAL", outcome(t, s, ipv4From(ofVM2, macVM2, "198.18.0.2")), "control: vm2 (up) still sends")

	toVM1 := ipv4From(ofVM2, macVM2, "198.18.0.2")
	toVM1.EthDst = macVM1
	assert.Equal(t, "port 2", outcome(t, up, toVM1), "control: up, vm1 gets its frames by flow")
	// Down, no flow delivers to it: NORMAL does not either, since the port
	// is bound on the dead VLAN (checked end to end by TestAdminStateDown).
	assert.Equal(t, "NORMAL", outcome(t, s, toVM1))
	fromTun := ipv4From(patchTun, macRemot, "198.18.0.3")
	fromTun.EthDst, fromTun.VLANTCI = macVM1, flows.VLANCFI|1
	assert.Equal(t, "NORMAL", outcome(t, s, fromTun))
	for _, f := range set.BrInt {
		for _, a := range f.Actions {
			if o, ok := a.(flows.Output); ok {
				assert.NotEqual(t, uint32(ofVM1), o.Port, "no flow outputs to the down port: %s", f)
			}
		}
	}
}

// TestDownPortOfportWins: a local port reported on a down port's ofport
// (one of the two is stale) is left out, so what comes in there is dropped.
func TestDownPortOfportWins(t *testing.T) {
	c := portSecurity()
	c.downs = map[string][]flows.DownPort{"h1": {{Network: "blue", Name: "old", Ofport: ofVM2}}}
	set := c.compile(t, "h1")
	assert.Contains(t, set.Skipped, "local port blue/vm2: ofport 3 already used by blue/old (down)")
	s := flowsim.New(set.BrInt)
	assert.Equal(t, "drop", outcome(t, s, ipv4From(ofVM2, macVM2, "198.18.0.2")))
	assert.Equal(t, "NORMAL", outcome(t, s, ipv4From(ofVM1, macVM1, "198.18.0.1")), "control: vm1")

	c.downs = map[string][]flows.DownPort{"h1": {{Network: "blue", Name: "odd", Ofport: patchTun}}}
	set = c.compile(t, "h1")
	assert.Contains(t, set.Skipped, "down port blue/odd: ofport 1 is patch-tun's")
	fromTun := ipv4From(patchTun, macRemot, "198.18.0.3")
	fromTun.EthDst, fromTun.VLANTCI = macVM1, flows.VLANCFI|1
	assert.Equal(t, "port 2", outcome(t, flowsim.New(set.BrInt), fromTun), "patch-tun is never dropped as a down port")
}
