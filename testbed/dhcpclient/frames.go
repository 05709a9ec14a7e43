package dhcpclient

import (
	"fmt"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// DiscoverFrame is a broadcast DHCPDISCOVER from mac with transaction id
// xid, as an Ethernet frame: what a client's first packet looks like to
// br-int, for tests that inject one (a packet-in, or a flood from a VM).
func DiscoverFrame(mac string, xid uint32) ([]byte, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("dhcpclient: discover from %q: %w", mac, err)
	}
	eth := &layers.Ethernet{SrcMAC: hw, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4zero, DstIP: net.IPv4bcast}
	udp := &layers.UDP{SrcPort: 68, DstPort: 67}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("dhcpclient: discover: %w", err)
	}
	d := &layers.DHCPv4{Operation: layers.DHCPOpRequest, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6,
		Xid: xid, ClientHWAddr: hw, Options: layers.DHCPOptions{
			layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(layers.DHCPMsgTypeDiscover)}),
		}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, d); err != nil {
		return nil, fmt.Errorf("dhcpclient: discover: %w", err)
	}
	return buf.Bytes(), nil
}
