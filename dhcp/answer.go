package dhcp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// UDP ports of DHCPv4 and DHCPv6.
const (
	portBootpServer  = 67
	portBootpClient  = 68
	portDHCPv6Client = 546
	portDHCPv6Server = 547
)

// Answer returns the Ethernet frame to send back to port in answer to frame,
// an Ethernet frame received from port, or nil when nothing is to be sent.
// It answers DHCPv4 (DISCOVER, REQUEST, INFORM), DHCPv6 (SOLICIT, REQUEST,
// RENEW, REBIND, CONFIRM, RELEASE, DECLINE, INFORMATION-REQUEST) and router
// solicitations. subnets are the subnets of the port's network.
//
// It returns nil, nil for frames that are none of these (the caller's flows
// should not send them) and for messages that need no answer (DHCPRELEASE,
// DHCPDECLINE); an error wrapping one of the Err* reasons when the request
// gets no answer for a reason worth counting. It never panics.
func Answer(frame []byte, port Port, subnets []Subnet, cfg Config) ([]byte, error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
	eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		return nil, nil
	}
	switch eth.EthernetType {
	case layers.EthernetTypeIPv4:
		ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok || ip.Protocol != layers.IPProtocolUDP {
			return nil, nil
		}
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok || udp.DstPort != portBootpServer {
			return nil, nil
		}
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			return nil, fmt.Errorf("dhcpv4: fragmented request: %w", ErrMalformed)
		}
		if err := checkConfig(cfg); err != nil {
			return nil, err
		}
		if !bytes.Equal(eth.SrcMAC, port.MAC) {
			return nil, fmt.Errorf("dhcpv4 from %s on port %s: %w", eth.SrcMAC, port.MAC, ErrUnknownMAC)
		}
		return answerDHCPv4(udp.Payload, port, subnets, cfg)
	case layers.EthernetTypeIPv6:
		ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			return nil, nil
		}
		if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			if udp.DstPort != portDHCPv6Server {
				return nil, nil
			}
			if err := checkConfig(cfg); err != nil {
				return nil, err
			}
			if !bytes.Equal(eth.SrcMAC, port.MAC) {
				return nil, fmt.Errorf("dhcpv6 from %s on port %s: %w", eth.SrcMAC, port.MAC, ErrUnknownMAC)
			}
			return answerDHCPv6(ip, udp.Payload, port, subnets, cfg)
		}
		if icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			if icmp.TypeCode.Type() != layers.ICMPv6TypeRouterSolicitation {
				return nil, nil
			}
			if err := checkConfig(cfg); err != nil {
				return nil, err
			}
			if !bytes.Equal(eth.SrcMAC, port.MAC) {
				return nil, fmt.Errorf("router solicitation from %s on port %s: %w", eth.SrcMAC, port.MAC, ErrUnknownMAC)
			}
			return answerRS(eth, ip, icmp, port, subnets, cfg)
		}
	}
	return nil, nil
}

func checkConfig(cfg Config) error {
	if cfg.LeaseTime <= 0 {
		return fmt.Errorf("lease time %s: %w", cfg.LeaseTime, ErrConfig)
	}
	if len(cfg.ServerMAC) != 6 {
		return fmt.Errorf("server MAC %q: %w", cfg.ServerMAC, ErrConfig)
	}
	// 68 is the least MTU DHCPv4 option 26 allows (RFC 2132 5.1).
	if cfg.MTU != 0 && (cfg.MTU < 68 || cfg.MTU > 65535) {
		return fmt.Errorf("MTU %d: %w", cfg.MTU, ErrConfig)
	}
	return nil
}

// portAddress returns the first of port's addresses that lies in one of
// subnets accepted by ok, with that subnet.
func portAddress(port Port, subnets []Subnet, ok func(Subnet) bool) (netip.Addr, Subnet, bool) {
	for _, a := range port.IPs {
		a = a.Unmap()
		for _, s := range subnets {
			if s.EnableDHCP && ok(s) && s.CIDR.Contains(a) {
				return a, s, true
			}
		}
	}
	return netip.Addr{}, Subnet{}, false
}

// LinkLocal returns the IPv6 link-local address derived from mac by modified
// EUI-64 (RFC 4291 appendix A): the source of brtun's RAs and DHCPv6 answers.
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	a := [16]byte{0: 0xfe, 1: 0x80}
	if len(mac) == 6 {
		copy(a[8:], []byte{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	}
	return netip.AddrFrom16(a)
}

// serialize builds a frame from layers, filling in lengths and checksums.
func serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("serialize answer: %w", err)
	}
	return buf.Bytes(), nil
}

func ipSlice(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func ipSlices(as []netip.Addr, v4 bool) []net.IP {
	var out []net.IP
	for _, a := range as {
		a = a.Unmap()
		if a.Is4() == v4 {
			out = append(out, ipSlice(a))
		}
	}
	return out
}
