package flows

import "net/netip"

// UDP ports and ICMPv6 type of what table 20 catches.
const (
	udpDHCPv6Client  uint16 = 546
	icmp6RouterSolic uint8  = 133
)

// DHCPMeter is the OpenFlow meter every br-int's catch flows go through:
// it bounds what one bridge sends brtun (the controller reconciles it, see
// controller.DHCPOptions). MeterMax is the highest meter id OpenFlow allows.
const (
	DHCPMeter uint32 = 1
	MeterMax  uint32 = 0xffff0000
)

// sourceMeterBase is where the per-port source meters' ids start: port
// ofport's is sourceMeterBase+ofport, above the DHCP meter.
// sourceMeterPorts bounds the ofports that have one: OVS numbers its
// ports below 0xff00 (its port numbers are 16 bits).
const (
	sourceMeterBase  uint32 = 0x10000
	sourceMeterPorts uint32 = 0xff00
)

// SourceMeterID is the OpenFlow meter of br-int's port ofport that frames
// the port sends from a source MAC not its own go through when it has no
// port security (View.SourceMeter): one meter per port, so one appliance's
// flood of new source MACs uses up its own budget, not another's.
func SourceMeterID(ofport uint32) uint32 { return sourceMeterBase + ofport }

// IsSourceMeter reports whether id is a source meter's, and whose ofport.
func IsSourceMeter(id uint32) (uint32, bool) {
	if id <= sourceMeterBase || id-sourceMeterBase >= sourceMeterPorts {
		return 0, false
	}
	return id - sourceMeterBase, true
}

// Priorities of br-int table 20.
const (
	dhcpCatchPrio  uint16 = 2
	dhcpRouterPrio uint16 = 1
)

// intDHCP emits br-int table 20: from a VM port of a network with a
// DHCP-enabled subnet, DHCP and DHCPv6 client messages and router
// solicitations go through the bridge's DHCP meter to the controller under
// the port's cookie, which with
// in_port names the port (priority 2); ARP requests from the network's VM
// ports (reg0 = its local VLAN) for its DHCP server identifiers are answered
// with the network's router MAC, in the datapath, so that clients renewing
// by unicast find the server (priority 1). Everything else goes on to
// forwarding. Frames from patch-tun never come here.
func (c *compiler) intDHCP() []Flow {
	var out []Flow
	for _, p := range c.local {
		if !p.dhcp {
			continue
		}
		out = append(out,
			p.flow(TableIntDHCP, dhcpCatchPrio, Match{EthType: Ptr(EthTypeIPv4), IPProto: Ptr(IPProtoUDP),
				UDPSrc: Ptr(udpDHCPClient), UDPDst: Ptr(udpDHCPServer)}, Meter{ID: DHCPMeter}, ToController{}),
			p.flow(TableIntDHCP, dhcpCatchPrio, Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoUDP),
				UDPSrc: Ptr(udpDHCPv6Client), UDPDst: Ptr(udpDHCPv6Server)}, Meter{ID: DHCPMeter}, ToController{}),
			p.flow(TableIntDHCP, dhcpCatchPrio, Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6),
				ICMPv6Type: Ptr(icmp6RouterSolic)}, Meter{ID: DHCPMeter}, ToController{}))
	}
	for _, n := range c.networks {
		if !c.hasDHCPPort(n.Name) {
			continue
		}
		for _, s := range n.RouterIPs {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				c.skip("network %s: router address %q is not IPv4: no ARP answer", n.Name, s)
				continue
			}
			out = append(out, routerARP(n, a.As4()))
		}
		if n.RouterND {
			out = append(out, routerNS(n))
		}
	}
	return append(out, c.miss(BrInt, TableIntDHCP)...)
}

// intRouterND emits br-int table 21: the advertisement table 20 built for
// the router's link-local address gets the router MAC as target link-layer
// address (which OVS allows only once the lookup sees an NA) and goes back
// to the asking port.
func (c *compiler) intRouterND() []Flow {
	var out []Flow
	for _, n := range c.networks {
		if !n.RouterND || !c.hasDHCPPort(n.Name) {
			continue
		}
		mac := RouterMAC(n.Name)
		out = append(out, Flow{
			Table: TableIntRouterND, Priority: 1, Cookie: NetworkCookie(n.Type, n.SegmentID),
			Match: Match{
				EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6), Reg0: Exact32(uint32(n.LocalVLAN)),
				ICMPv6Type: Ptr(icmp6NeighAdvert), NDTarget: Ptr(linkLocal(mac)),
			},
			Actions: []Action{SetMAC(FieldNDTLL, mac), InPort{}},
		})
	}
	return append(out, c.miss(BrInt, TableIntRouterND)...)
}

// routerNS turns a neighbour solicitation from a VM port of n for the
// router's link-local address into the advertisement the router would send;
// table 21 completes it.
func routerNS(n NetworkView) Flow {
	mac := RouterMAC(n.Name)
	ll := linkLocal(mac)
	return Flow{
		Table: TableIntDHCP, Priority: dhcpRouterPrio, Cookie: NetworkCookie(n.Type, n.SegmentID),
		Match: Match{
			EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6), Reg0: Exact32(uint32(n.LocalVLAN)),
			ICMPv6Type: Ptr(icmp6NeighSolicit), NDTarget: Ptr(ll),
		},
		Actions: []Action{
			SetUint(FieldICMPv6Type, uint64(icmp6NeighAdvert)),
			SetUint(FieldNDOptionsType, 2),
			SetUint(FieldNDReserved, ndReservedSolicitedOverride),
			Move{Src: Whole(FieldEthSrc), Dst: Whole(FieldEthDst)},
			SetMAC(FieldEthSrc, mac),
			Move{Src: Whole(FieldIPv6Src), Dst: Whole(FieldIPv6Dst)},
			SetIPv6(FieldIPv6Src, ll),
			GotoTable{Table: TableIntRouterND},
		},
	}
}

// hasDHCPPort reports whether a local port of network has its requests
// caught.
func (c *compiler) hasDHCPPort(network string) bool {
	for _, p := range c.local {
		if p.network == network && p.dhcp {
			return true
		}
	}
	return false
}

// routerARP answers an ARP request for ip from a VM port of n with the
// network's router MAC, back out of the asking port.
func routerARP(n NetworkView, ip IPv4) Flow {
	mac := RouterMAC(n.Name)
	return Flow{
		Table: TableIntDHCP, Priority: dhcpRouterPrio, Cookie: NetworkCookie(n.Type, n.SegmentID),
		Match: Match{
			EthType: Ptr(EthTypeARP),
			Reg0:    Exact32(uint32(n.LocalVLAN)),
			ARPTPA:  ExactIPv4(ip),
			ARPOp:   Ptr(uint16(1)),
		},
		Actions: []Action{
			SetUint(FieldARPOp, 2),
			Move{Src: Whole(FieldARPSHA), Dst: Whole(FieldARPTHA)},
			Move{Src: Whole(FieldARPSPA), Dst: Whole(FieldARPTPA)},
			SetMAC(FieldARPSHA, mac),
			SetIPv4(FieldARPSPA, ip),
			Move{Src: Whole(FieldEthSrc), Dst: Whole(FieldEthDst)},
			SetMAC(FieldEthSrc, mac),
			InPort{},
		},
	}
}
