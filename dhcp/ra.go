package dhcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// RA flags (RFC 4861 4.2) and prefix information flags (RFC 4861 4.6.2).
const (
	raFlagManaged    = 0x80
	raFlagOther      = 0x40
	prefixOnLink     = 0x80
	prefixAutonomous = 0x40
	// ndpHopLimit is the hop limit of every valid ND message (RFC 4861).
	ndpHopLimit = 255
	// raCurHopLimit is the hop limit RAs tell hosts to use.
	raCurHopLimit = 64
)

// allNodes is ff02::1 and its multicast MAC.
func allNodes() (netip.Addr, net.HardwareAddr) {
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1}), net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
}

// RouterAdvertisement builds the periodic, unsolicited router advertisement
// of a network to all nodes (ff02::1, 33:33:00:00:00:01), to be sent to each
// of its VM ports at most every 600 s. It returns nil, nil when no subnet
// calls for one (no DHCP-enabled IPv6 subnet with an address mode).
func RouterAdvertisement(subnets []Subnet, cfg Config) ([]byte, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if len(raSubnets(subnets)) == 0 {
		return nil, nil
	}
	ip, mac := allNodes()
	return buildRA(mac, ip, subnets, cfg)
}

// answerRS answers a router solicitation (RFC 4861 6.2.6) with a
// router advertisement unicast to the soliciting host, or to all nodes when it
// has no address yet.
func answerRS(eth *layers.Ethernet, ip *layers.IPv6, icmp *layers.ICMPv6, port Port, subnets []Subnet, cfg Config) ([]byte, error) {
	// RFC 4861 6.1.1 validity checks.
	if ip.HopLimit != ndpHopLimit || icmp.TypeCode.Code() != 0 || len(icmp.Payload) < 4 {
		return nil, fmt.Errorf("router solicitation: hop limit %d code %d length %d: %w",
			ip.HopLimit, icmp.TypeCode.Code(), len(icmp.Payload), ErrMalformed)
	}
	if _, _, ok := portAddress(port, subnets, isRASubnet); !ok {
		return nil, fmt.Errorf("router solicitation from %s: %w", port.MAC, ErrNoAddress)
	}
	src, ok := netip.AddrFromSlice(ip.SrcIP)
	if !ok || src.IsUnspecified() {
		ip, _ := allNodes()
		return buildRA(port.MAC, ip, subnets, cfg)
	}
	return buildRA(eth.SrcMAC, src, subnets, cfg)
}

func isRASubnet(s Subnet) bool {
	return s.CIDR.Addr().Is6() && !s.CIDR.Addr().Is4In6() && s.IPv6AddressMode != ModeNone
}

func raSubnets(subnets []Subnet) []Subnet {
	var out []Subnet
	for _, s := range subnets {
		if s.EnableDHCP && isRASubnet(s) {
			out = append(out, s)
		}
	}
	return out
}

// buildRA builds the network's router advertisement from the router's
// link-local address (derived from cfg.ServerMAC) to dstIP at dstMAC.
func buildRA(dstMAC net.HardwareAddr, dstIP netip.Addr, subnets []Subnet, cfg Config) ([]byte, error) {
	ra := &layers.ICMPv6RouterAdvertisement{HopLimit: raCurHopLimit}
	// gopacket's ICMPv6Option holds raw option bodies and has no encoder
	// for source link-layer address, prefix information, MTU or RDNSS
	// options, so their bodies (RFC 4861 4.6, RFC 8106 5.1) are written here.
	ra.Options = append(ra.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptSourceAddress, Data: []byte(cfg.ServerMAC)})
	if cfg.MTU > 0 {
		body := make([]byte, 6)
		binary.BigEndian.PutUint32(body[2:], uint32(cfg.MTU))
		ra.Options = append(ra.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptMTU, Data: body})
	}
	var dns []netip.Addr
	for _, s := range raSubnets(subnets) {
		var flags byte = prefixOnLink
		switch s.IPv6AddressMode {
		case ModeSLAAC:
			flags |= prefixAutonomous
		case ModeStateless:
			flags |= prefixAutonomous
			ra.Flags |= raFlagOther
		case ModeStateful:
			ra.Flags |= raFlagManaged | raFlagOther
		}
		if s.Gateway.Is6() {
			ra.RouterLifetime = uint16(RouterLifetime.Seconds())
		}
		ra.Options = append(ra.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptPrefixInfo, Data: prefixInfo(s.CIDR.Masked(), flags)})
		for _, d := range s.DNSServers {
			if d.Is6() && !d.Is4In6() {
				dns = append(dns, d)
			}
		}
	}
	if len(dns) > 0 {
		body := make([]byte, 6, 6+16*len(dns))
		binary.BigEndian.PutUint32(body[2:], uint32(RouterLifetime.Seconds()))
		for _, d := range dns {
			b := d.As16()
			body = append(body, b[:]...)
		}
		ra.Options = append(ra.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptRecursiveDNSServer, Data: body})
	}

	ip := &layers.IPv6{Version: 6, HopLimit: ndpHopLimit, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: ipSlice(LinkLocal(cfg.ServerMAC)), DstIP: ipSlice(dstIP)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("router advertisement: %w", err)
	}
	return serialize(&layers.Ethernet{SrcMAC: cfg.ServerMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6}, ip, icmp, ra)
}

// prefixInfo is the body of a prefix information option (RFC 4861 4.6.2).
func prefixInfo(p netip.Prefix, flags byte) []byte {
	body := make([]byte, 30)
	body[0] = byte(p.Bits())
	body[1] = flags
	binary.BigEndian.PutUint32(body[2:], uint32(PrefixValidLifetime.Seconds()))
	binary.BigEndian.PutUint32(body[6:], uint32(PrefixPreferredLifetime.Seconds()))
	a := p.Addr().As16()
	copy(body[14:], a[:])
	return body
}
