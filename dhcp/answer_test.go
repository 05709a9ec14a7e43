package dhcp

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Frames that are no DHCP or router solicitation are not Answer's business:
// nil, nil, whatever the port.
func TestNotOurs(t *testing.T) {
	arp := serializeTest(t, &layers.Ethernet{SrcMAC: portMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: portMAC, SourceProtAddress: ip4("198.18.0.10"),
			DstHwAddress: make([]byte, 6), DstProtAddress: ip4("198.18.0.1")})
	udpTo := func(port layers.UDPPort) []byte {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4("198.18.0.10"), DstIP: ip4("198.18.0.1")}
		udp := &layers.UDP{SrcPort: 68, DstPort: port}
		require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
		return serializeTest(t, &layers.Ethernet{SrcMAC: portMAC, DstMAC: serverMAC, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("hello"))
	}
	ns := func() []byte {
		ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: ipSlice(LinkLocal(portMAC)), DstIP: net.ParseIP("ff02::1:ff00:fe")}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
		require.NoError(t, icmp.SetNetworkLayerForChecksum(ip))
		return serializeTest(t, &layers.Ethernet{SrcMAC: portMAC, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0xfe}, EthernetType: layers.EthernetTypeIPv6},
			ip, icmp, &layers.ICMPv6NeighborSolicitation{TargetAddress: ipSlice(LinkLocal(serverMAC))})
	}()
	for name, frame := range map[string][]byte{
		"empty": nil, "short": {1, 2, 3}, "arp": arp, "udp 53": udpTo(53), "neighbor solicitation": ns,
	} {
		out, err := Answer(frame, testPort(), testSubnets(), testConfig())
		assert.NoError(t, err, name)
		assert.Nil(t, out, name)
	}
}

func TestMalformedDHCPv4(t *testing.T) {
	good := v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC))
	// Cut inside the DHCP message: the frame is DHCP but does not parse.
	cut := append([]byte(nil), good[:14+20+8+100]...)
	out, err := Answer(cut, testPort(), testSubnets(), testConfig())
	assert.Nil(t, out)
	assert.ErrorIs(t, err, ErrMalformed)

	// A broken magic cookie.
	msg := discover(t, portMAC).ToBytes()
	msg[236] = 0
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4("0.0.0.0"), DstIP: ip4("255.255.255.255")}
	udp := &layers.UDP{SrcPort: 68, DstPort: 67}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
	frame := serializeTest(t, &layers.Ethernet{SrcMAC: portMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(msg))
	out, err = Answer(frame, testPort(), testSubnets(), testConfig())
	assert.Nil(t, out)
	assert.ErrorIs(t, err, ErrMalformed)
}

// FuzzAnswer feeds arbitrary frames: Answer never panics, and whatever it
// answers is a well-formed frame from the server to the port (or to all
// hosts on it).
func FuzzAnswer(f *testing.F) {
	inform, err := dhcpv4.NewInform(portMAC, ip4("198.18.0.10"))
	require.NoError(f, err)
	seeds := [][]byte{
		v4Frame(f, portMAC, "0.0.0.0", "255.255.255.255", discover(f, portMAC)),
		v4Frame(f, portMAC, "0.0.0.0", "255.255.255.255", request(f, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.10"))))),
		v4Frame(f, portMAC, "198.18.0.10", "198.18.0.1", request(f, dhcpv4.WithClientIP(ip4("198.18.0.10")))),
		v4Frame(f, portMAC, "198.18.0.10", "255.255.255.255", inform),
		v6Frame(f, portMAC, solicit(f)),
		v6Frame(f, portMAC, v6Message(f, 3 /* REQUEST */, []string{"2001:db8:100:2::10"}, ourServerID())),
		v6Frame(f, portMAC, v6Message(f, 11 /* INFORMATION-REQUEST */, nil)),
		rsFrame(f, portMAC, 255, false),
		rsFrame(f, portMAC, 255, true),
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		subnets := append(testSubnets(), statelessSubnet())
		out, err := Answer(frame, testPort(), subnets, testConfig())
		if out == nil {
			return
		}
		require.NoError(t, err)
		pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
		require.Nil(t, pkt.ErrorLayer())
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		require.Equal(t, serverMAC, eth.SrcMAC)
		if eth.DstMAC[0]&1 == 0 {
			require.Equal(t, portMAC, eth.DstMAC)
		}
	})
}
