package dhcp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/stretchr/testify/require"
)

// Fixtures: one network with an IPv4 subnet, a SLAAC and a stateful IPv6
// subnet, and a port holding an address in each.
var (
	serverMAC = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 0xfe}
	portMAC   = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x0a}
	otherMAC  = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x0b}
)

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func testConfig() Config {
	return Config{LeaseTime: time.Hour, MTU: 1400, ServerMAC: serverMAC}
}

func v4Subnet() Subnet {
	return Subnet{
		CIDR:       mustPrefix("198.18.0.0/24"),
		Gateway:    mustAddr("198.18.0.1"),
		DNSServers: []netip.Addr{mustAddr("198.18.0.2"), mustAddr("198.18.0.3"), mustAddr("2001:db8:100::53")},
		HostRoutes: []Route{{Destination: mustPrefix("198.19.5.0/24"), NextHop: mustAddr("198.18.0.254")}},
		EnableDHCP: true,
	}
}

func slaacSubnet() Subnet {
	return Subnet{CIDR: mustPrefix("2001:db8:100:1::/64"), Gateway: mustAddr("2001:db8:100:1::1"),
		EnableDHCP: true, IPv6AddressMode: ModeSLAAC, DNSServers: []netip.Addr{mustAddr("2001:db8:100::53")}}
}

func statefulSubnet() Subnet {
	return Subnet{CIDR: mustPrefix("2001:db8:100:2::/64"), Gateway: mustAddr("2001:db8:100:2::1"),
		EnableDHCP: true, IPv6AddressMode: ModeStateful, DNSServers: []netip.Addr{mustAddr("2001:db8:100::53"), mustAddr("198.18.0.2")}}
}

func statelessSubnet() Subnet {
	return Subnet{CIDR: mustPrefix("2001:db8:100:3::/64"), EnableDHCP: true, IPv6AddressMode: ModeStateless,
		DNSServers: []netip.Addr{mustAddr("2001:db8:100::54")}}
}

func testSubnets() []Subnet { return []Subnet{v4Subnet(), slaacSubnet(), statefulSubnet()} }

func testPort() Port {
	return Port{MAC: portMAC, IPs: []netip.Addr{
		mustAddr("198.18.0.10"),
		mustAddr("2001:db8:100:1:aa:ff:fe00:a"), // EUI-64 of portMAC
		mustAddr("2001:db8:100:2::10"),
	}}
}

func serializeTest(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
	return buf.Bytes()
}

// v4Frame wraps a DHCPv4 message from the client as a VM would send it.
func v4Frame(t testing.TB, src net.HardwareAddr, srcIP, dstIP string, msg *dhcpv4.DHCPv4) []byte {
	t.Helper()
	dstMAC := layers.EthernetBroadcast
	if dstIP != "255.255.255.255" {
		dstMAC = serverMAC
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(srcIP).To4(), DstIP: net.ParseIP(dstIP).To4()}
	udp := &layers.UDP{SrcPort: 68, DstPort: 67}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
	return serializeTest(t, &layers.Ethernet{SrcMAC: src, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(msg.ToBytes()))
}

type v4Reply struct {
	eth *layers.Ethernet
	ip  *layers.IPv4
	udp *layers.UDP
	msg *dhcpv4.DHCPv4
}

// decodeV4 parses an answer and checks its checksums.
func decodeV4(t testing.TB, frame []byte) v4Reply {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "answer must decode")
	var r v4Reply
	r.eth = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	r.ip = pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	r.udp = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	checkChecksums(t, frame)
	msg, err := dhcpv4.FromBytes(r.udp.Payload)
	require.NoError(t, err)
	r.msg = msg
	return r
}

// checkChecksums re-serializes the decoded layers with computed checksums
// and expects the same bytes.
func checkChecksums(t testing.TB, frame []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
			ls = append(ls, l)
		case *layers.IPv6:
			nl = l
			ls = append(ls, l)
		case *layers.UDP:
			require.NoError(t, l.SetNetworkLayerForChecksum(nl))
			ls = append(ls, l, gopacket.Payload(l.Payload))
		case *layers.ICMPv6:
			require.NoError(t, l.SetNetworkLayerForChecksum(nl))
			ls = append(ls, l, gopacket.Payload(l.Payload))
		case *layers.Ethernet:
			ls = append(ls, l)
		}
		if _, ok := l.(*layers.UDP); ok {
			break
		}
		if _, ok := l.(*layers.ICMPv6); ok {
			break
		}
	}
	again := serializeTest(t, ls...)
	require.Equal(t, frame[:len(again)], again, "checksums and lengths")
}

// v6Frame wraps a DHCPv6 message from the client's link-local address.
func v6Frame(t testing.TB, src net.HardwareAddr, msg *dhcpv6.Message) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP,
		SrcIP: ipSlice(LinkLocal(src)), DstIP: net.ParseIP("ff02::1:2")}
	udp := &layers.UDP{SrcPort: 546, DstPort: 547}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
	return serializeTest(t, &layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x33, 0x33, 0, 1, 0, 2}, EthernetType: layers.EthernetTypeIPv6},
		ip, udp, gopacket.Payload(msg.ToBytes()))
}

type v6Reply struct {
	eth *layers.Ethernet
	ip  *layers.IPv6
	udp *layers.UDP
	msg *dhcpv6.Message
}

func decodeV6(t testing.TB, frame []byte) v6Reply {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "answer must decode")
	var r v6Reply
	r.eth = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	r.ip = pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	r.udp = pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	checkChecksums(t, frame)
	msg, err := dhcpv6.MessageFromBytes(r.udp.Payload)
	require.NoError(t, err)
	r.msg = msg
	return r
}

// rsFrame is a router solicitation from src's link-local address (or from ::
// when unspecified is set).
func rsFrame(t testing.TB, src net.HardwareAddr, hopLimit uint8, unspecified bool) []byte {
	t.Helper()
	srcIP := ipSlice(LinkLocal(src))
	rs := &layers.ICMPv6RouterSolicitation{}
	if unspecified {
		srcIP = net.IPv6unspecified
	} else {
		rs.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: src}}
	}
	ip := &layers.IPv6{Version: 6, HopLimit: hopLimit, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: srcIP, DstIP: net.ParseIP("ff02::2")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterSolicitation, 0)}
	require.NoError(t, icmp.SetNetworkLayerForChecksum(ip))
	return serializeTest(t, &layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6},
		ip, icmp, rs)
}

type raReply struct {
	eth *layers.Ethernet
	ip  *layers.IPv6
	ra  *layers.ICMPv6RouterAdvertisement
}

func decodeRA(t testing.TB, frame []byte) raReply {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	require.Nil(t, pkt.ErrorLayer(), "answer must decode")
	var r raReply
	r.eth = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	r.ip = pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	ra, ok := pkt.Layer(layers.LayerTypeICMPv6RouterAdvertisement).(*layers.ICMPv6RouterAdvertisement)
	require.True(t, ok, "router advertisement")
	r.ra = ra
	checkChecksums(t, frame)
	return r
}

func (r raReply) options(typ layers.ICMPv6Opt) [][]byte {
	var out [][]byte
	for _, o := range r.ra.Options {
		if o.Type == typ {
			out = append(out, o.Data)
		}
	}
	return out
}
