package flows

// ndReservedSolicitedOverride is the NA flags word: Solicited and Override.
const ndReservedSolicitedOverride = 0x60000000

// table21 emits br-tun table 21 (flood): ARP requests and neighbour
// solicitations for a known remote port's address are answered locally
// (priority 2); other multicast and broadcast of a local VLAN goes untagged
// with the network's tun_id to the tunnels of the peers carrying the network,
// and to no other host (priority 1; through a flow-based port, each output
// after setting tun_dst to its peer's address). Anything else is dropped.
func (c *compiler) table21() []Flow {
	out := make([]Flow, 0, 2*len(c.ports)+len(c.networks)+1)
	for _, p := range c.ports {
		for _, ip := range p.ipv4 {
			out = append(out, arpResponder(p, ip))
		}
		for _, ip := range p.ipv6 {
			out = append(out, ndResponder(p, ip))
		}
	}
	for _, n := range c.networks {
		tunnels := c.floodTunnels(n)
		if len(tunnels) == 0 {
			continue
		}
		actions := make([]Action, 0, 2*len(tunnels)+2)
		actions = append(actions, PopVLAN{}, SetTunID(uint64(n.SegmentID)))
		for _, t := range tunnels {
			actions = append(actions, c.send(t)...)
		}
		out = append(out, Flow{
			Table: TableFlood, Priority: 1, Cookie: NetworkCookie(n.Type, n.SegmentID),
			Match:   Match{VLANTCI: VLANMatch(n.LocalVLAN)},
			Actions: actions,
		})
	}
	return append(out, c.miss(BrTun, TableFlood)...)
}

// arpResponder turns an ARP request for ip on the port's VLAN into the reply
// the port would give and sends it back to br-int.
func arpResponder(p remotePort, ip IPv4) Flow {
	return Flow{
		Table: TableFlood, Priority: 2, Cookie: PortCookie(p.network.Name, p.name),
		Match: Match{
			EthType: Ptr(EthTypeARP),
			VLANTCI: VLANMatch(p.network.LocalVLAN),
			ARPTPA:  ExactIPv4(ip),
			ARPOp:   Ptr(uint16(1)),
		},
		Actions: []Action{
			SetUint(FieldARPOp, 2),
			Move{Src: Whole(FieldARPSHA), Dst: Whole(FieldARPTHA)},
			Move{Src: Whole(FieldARPSPA), Dst: Whole(FieldARPTPA)},
			SetMAC(FieldARPSHA, p.mac),
			SetIPv4(FieldARPSPA, ip),
			Move{Src: Whole(FieldEthSrc), Dst: Whole(FieldEthDst)},
			SetMAC(FieldEthSrc, p.mac),
			InPort{},
		},
	}
}

// ndResponder turns a neighbour solicitation for ip on the port's VLAN into
// an advertisement; table 22 sets the target link-layer address, which OVS
// only allows once the lookup sees an NA.
func ndResponder(p remotePort, ip IPv6) Flow {
	return Flow{
		Table: TableFlood, Priority: 2, Cookie: PortCookie(p.network.Name, p.name),
		Match: Match{
			EthType:    Ptr(EthTypeIPv6),
			IPProto:    Ptr(IPProtoICMPv6),
			VLANTCI:    VLANMatch(p.network.LocalVLAN),
			ICMPv6Type: Ptr(uint8(135)),
			NDTarget:   Ptr(ip),
		},
		Actions: []Action{
			SetUint(FieldICMPv6Type, 136),
			SetUint(FieldNDOptionsType, 2),
			SetUint(FieldNDReserved, ndReservedSolicitedOverride),
			Move{Src: Whole(FieldEthSrc), Dst: Whole(FieldEthDst)},
			SetMAC(FieldEthSrc, p.mac),
			Move{Src: Whole(FieldIPv6Src), Dst: Whole(FieldIPv6Dst)},
			SetIPv6(FieldIPv6Src, ip),
			GotoTable{Table: TableNDReply},
		},
	}
}
