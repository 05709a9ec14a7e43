package flows

// Bridge names the two bridges brtun owns on every host.
type Bridge string

// The bridges.
const (
	BrTun Bridge = "br-tun"
	BrInt Bridge = "br-int"
)

// Table numbers of br-tun (fixed, as docs/pipeline.md lays them out) and br-int.
const (
	TableDispatch uint8 = 0  // br-tun: by in_port
	TableOutbound uint8 = 1  // br-tun: unicast vs multicast from br-int
	TableUnused   uint8 = 2  // br-tun: a single drop
	TableTunnelIn uint8 = 3  // br-tun: (tunnel type, tun_id) -> local VLAN
	TableLearn    uint8 = 10 // br-tun: MAC learning, then to br-int
	TableUnicast  uint8 = 20 // br-tun: known and learned MACs -> one tunnel
	TableFlood    uint8 = 21 // br-tun: ARP/ND responders, flood to the network's peers
	TableNDReply  uint8 = 22 // br-tun: completes the ND responder's answer

	TableIntClassify uint8 = 0  // br-int: by in_port; VM ports: untagged only, reg0=local VLAN
	TableIntPortMAC  uint8 = 10 // br-int: port security, source MAC
	TableIntPortIP   uint8 = 11 // br-int: port security, ARP/IPv4/IPv6 sources, server messages
	TableIntPortND   uint8 = 12 // br-int: port security, neighbour advertisement targets
	TableIntDHCP     uint8 = 20 // br-int: DHCP, DHCPv6, router solicitations to the controller; the router's ARP answered
	TableIntRouterND uint8 = 21 // br-int: completes table 20's neighbour advertisement for the router
	TableIntForward  uint8 = 30 // br-int: registered MACs by flow, else NORMAL
)

// IntVLANReg is where br-int's table 0 keeps the local VLAN of a frame from
// a VM port (whose frames are untagged until NORMAL outputs them): all of
// NXM_NX_REG0. Frames from patch-tun keep 0 there and carry their VLAN tag.
func IntVLANReg() Subfield { return Whole(FieldReg0) }

// MACLearnTimeout is the hard timeout, in seconds, of learned MAC entries.
const MACLearnTimeout uint16 = 300

// learnedPriority is the priority of learned entries in table 20.
const learnedPriority uint16 = 1

// MatchField names a Match field, for table declarations.
type MatchField uint8

// The match fields, in Match's order.
const (
	MatchEthType MatchField = iota + 1
	MatchIPProto
	MatchReg0
	MatchTunID
	MatchInPort
	MatchVLAN
	MatchEthSrc
	MatchEthDst
	MatchARPSPA
	MatchARPTPA
	MatchARPOp
	MatchICMPv6Type
	MatchNDTarget
	MatchIPv4Src
	MatchIPv6Src
	MatchARPSHA
	MatchUDPSrc
	MatchUDPDst
	MatchTunSrc
)

// String names the field as OVS prints it in a match.
func (f MatchField) String() string {
	switch f {
	case MatchEthType:
		return "dl_type"
	case MatchIPProto:
		return "nw_proto"
	case MatchReg0:
		return "reg0"
	case MatchTunID:
		return "tun_id"
	case MatchInPort:
		return "in_port"
	case MatchVLAN:
		return "vlan_tci"
	case MatchEthSrc:
		return "dl_src"
	case MatchEthDst:
		return "dl_dst"
	case MatchARPSPA:
		return "arp_spa"
	case MatchARPTPA:
		return "arp_tpa"
	case MatchARPOp:
		return "arp_op"
	case MatchICMPv6Type:
		return "icmp_type"
	case MatchNDTarget:
		return "nd_target"
	case MatchIPv4Src:
		return "nw_src"
	case MatchIPv6Src:
		return "ipv6_src"
	case MatchARPSHA:
		return "arp_sha"
	case MatchUDPSrc:
		return "tp_src"
	case MatchUDPDst:
		return "tp_dst"
	case MatchTunSrc:
		return "tun_src"
	}
	return "unknown"
}

// Fields lists the match fields m sets, in Match's order.
func (m Match) Fields() []MatchField {
	var out []MatchField
	add := func(set bool, f MatchField) {
		if set {
			out = append(out, f)
		}
	}
	add(m.EthType != nil, MatchEthType)
	add(m.IPProto != nil, MatchIPProto)
	add(m.Reg0 != nil, MatchReg0)
	add(m.TunID != nil, MatchTunID)
	add(m.TunSrc != nil, MatchTunSrc)
	add(m.InPort != nil, MatchInPort)
	add(m.VLANTCI != nil, MatchVLAN)
	add(m.EthSrc != nil, MatchEthSrc)
	add(m.EthDst != nil, MatchEthDst)
	add(m.ARPSPA != nil, MatchARPSPA)
	add(m.ARPTPA != nil, MatchARPTPA)
	add(m.ARPOp != nil, MatchARPOp)
	add(m.ICMPv6Type != nil, MatchICMPv6Type)
	add(m.NDTarget != nil, MatchNDTarget)
	add(m.IPv4Src != nil, MatchIPv4Src)
	add(m.IPv6Src != nil, MatchIPv6Src)
	add(m.ARPSHA != nil, MatchARPSHA)
	add(m.UDPSrc != nil, MatchUDPSrc)
	add(m.UDPDst != nil, MatchUDPDst)
	return out
}

// Miss is what a table does with a packet no other flow matches; the
// table's priority-0 catch-all flow implements it.
type Miss uint8

// The miss behaviours.
const (
	MissDrop   Miss = iota + 1 // priority=0 actions=drop
	MissGoto                   // priority=0 actions=goto_table:MissTable
	MissNormal                 // priority=0 actions=NORMAL
)

// Table declares one table: the only fields its flows may match, the only
// tables they may go to, the priorities they may use and what a miss does.
type Table struct {
	Bridge     Bridge
	ID         uint8
	Name       string // also Flow_Table.name in OVSDB
	Doc        string
	Matches    []MatchField
	Gotos      []uint8 // tables goto_table/resubmit may reach; all higher than ID
	LearnInto  []uint8 // tables a learn action of this table may write
	Priorities []uint16
	Miss       Miss
	MissTable  uint8 // for MissGoto
	// Learned is the priority of the flows learn() creates in this table (0:
	// none). Those flows are not compiled and not validated.
	Learned uint16
	// EvictionGroups group the learned flows for eviction when the table is
	// bounded (serve --mac-learn-limit, OVS Flow_Table groups): a full table
	// evicts from the group holding the most flows, so one network's flood
	// of new source MACs evicts that network's entries first.
	EvictionGroups []Subfield
}

// Pipeline is the declaration of every table brtun programs, per bridge,
// in table order.
type Pipeline struct {
	BrTun []Table
	BrInt []Table
}

// Declared returns brtun's pipeline: br-tun tables 0, 1, 2, 3, 10, 20, 21,
// 22 and br-int tables 0, 10, 11, 12, 20, 21, 30. It returns a fresh value each call.
func Declared() Pipeline {
	return Pipeline{
		BrTun: []Table{
			{
				Bridge: BrTun, ID: TableDispatch, Name: "dispatch",
				Doc: "from patch-int -> 1; from a tunnel port (with --tunnel-ports flow: and the tun_src of a known host or remote VTEP): " +
					"reg0[0..7]=tunnel type -> 3; else drop",
				Matches:    []MatchField{MatchInPort, MatchTunSrc},
				Gotos:      []uint8{TableOutbound, TableTunnelIn},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableOutbound, Name: "outbound",
				Doc:        "from br-int: unicast -> 20, multicast/broadcast -> 21",
				Matches:    []MatchField{MatchEthDst},
				Gotos:      []uint8{TableUnicast, TableFlood},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableUnused, Name: "unused",
				Doc:        "unused, as in the source design: a single drop",
				Priorities: []uint16{0},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableTunnelIn, Name: "tunnel-in",
				Doc:        "reg0[0..7]=tunnel type and tun_id=segment -> push local VLAN -> 10; else drop",
				Matches:    []MatchField{MatchReg0, MatchTunID},
				Gotos:      []uint8{TableLearn},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableLearn, Name: "learn",
				Doc:        "per local VLAN: learn the source MAC into 20 (if MAC learning), output to patch-int",
				Matches:    []MatchField{MatchVLAN},
				LearnInto:  []uint8{TableUnicast},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableUnicast, Name: "unicast",
				Doc:        "known remote ports (priority 2), learned MACs (priority 1) -> one tunnel; else -> 21",
				Matches:    []MatchField{MatchVLAN, MatchEthDst},
				Gotos:      []uint8{TableFlood},
				Priorities: []uint16{0, 2},
				Miss:       MissGoto, MissTable: TableFlood,
				Learned:        learnedPriority,
				EvictionGroups: []Subfield{Bitrange(FieldVLANTCI, 0, 12)}, // the local VLAN
			},
			{
				Bridge: BrTun, ID: TableFlood, Name: "flood",
				Doc:     "ARP/ND responders (priority 2); per local VLAN flood to the peers carrying it (priority 1); else drop",
				Matches: []MatchField{MatchEthType, MatchIPProto, MatchVLAN, MatchARPTPA, MatchARPOp, MatchICMPv6Type, MatchNDTarget},
				Gotos:   []uint8{TableNDReply},
				// priority 2 responders, 1 flood, 0 drop
				Priorities: []uint16{0, 1, 2},
				Miss:       MissDrop,
			},
			{
				Bridge: BrTun, ID: TableNDReply, Name: "nd-reply",
				Doc:        "neighbour advertisement built in 21: set the target link-layer address, back out of IN_PORT",
				Matches:    []MatchField{MatchEthType, MatchIPProto, MatchVLAN, MatchICMPv6Type, MatchNDTarget},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
		},
		BrInt: []Table{
			{
				Bridge: BrInt, ID: TableIntClassify, Name: "classify",
				Doc: "from an administratively down port: drop (priority 3); " +
					"untagged frames from a VM port: reg0=local VLAN -> 10 (port security, or the source meter on) or 20 (2); " +
					"from patch-tun -> 30 (1); tagged frames from a VM port (1) and unknown ports: drop",
				Matches:    []MatchField{MatchInPort, MatchVLAN},
				Gotos:      []uint8{TableIntPortMAC, TableIntDHCP, TableIntForward},
				Priorities: []uint16{0, 1, 2, 3},
				Miss:       MissDrop,
			},
			{
				Bridge: BrInt, ID: TableIntPortMAC, Name: "port-mac",
				Doc: "from a protected port: source MAC the port's or an allowed pair's -> 11 (priority 2); else drop (priority 1); " +
					"with the source meter on, from a port without port security: source MAC the port's or a pair's -> 20 (2); " +
					"else through the port's source meter -> 20 (1)",
				Matches:    []MatchField{MatchInPort, MatchEthSrc},
				Gotos:      []uint8{TableIntPortIP, TableIntDHCP},
				Priorities: []uint16{0, 1, 2},
				Miss:       MissDrop,
			},
			{
				Bridge: BrInt, ID: TableIntPortIP, Name: "port-ip",
				Doc: "from a protected port: DHCP server (udp 67, udp6 547) and router advertisements: drop (4); " +
					"ARP, IPv4, IPv6 from the port's or a pair's (MAC, address), DHCP discover from 0.0.0.0, DAD from :: -> 12 (3); " +
					"other ARP, IPv4, IPv6: drop (2); other ethertypes -> 12 (1); a port without addresses: ARP by sender MAC only, IP unchecked",
				Matches: []MatchField{MatchInPort, MatchEthSrc, MatchEthType, MatchIPProto, MatchARPSPA, MatchARPSHA,
					MatchIPv4Src, MatchIPv6Src, MatchUDPSrc, MatchUDPDst, MatchICMPv6Type},
				Gotos:      []uint8{TableIntPortND},
				Priorities: []uint16{0, 1, 2, 3, 4},
				Miss:       MissDrop,
			},
			{
				Bridge: BrInt, ID: TableIntPortND, Name: "port-nd",
				Doc:        "from a protected port: neighbour advertisements for the port's or a pair's addresses -> 20 (2), for others: drop (1); else -> 20",
				Matches:    []MatchField{MatchInPort, MatchEthType, MatchIPProto, MatchICMPv6Type, MatchNDTarget},
				Gotos:      []uint8{TableIntDHCP},
				Priorities: []uint16{0, 1, 2},
				Miss:       MissGoto, MissTable: TableIntDHCP,
			},
			{
				Bridge: BrInt, ID: TableIntDHCP, Name: "dhcp",
				Doc: "from a VM port of a network with a DHCP-enabled subnet: DHCP (udp 68->67), DHCPv6 (udp 546->547) and " +
					"router solicitations -> CONTROLLER with the port's cookie (2); ARP requests for the network's DHCP server " +
					"identifiers (gateways, or subnets' DHCP server addresses), from its VM ports: answered with the network's router MAC (1); neighbour solicitations " +
					"for the router's link-local address (networks with a DHCP-enabled IPv6 subnet): turned into an advertisement -> 21 (1); else -> 30",
				Matches: []MatchField{MatchReg0, MatchInPort, MatchEthType, MatchIPProto, MatchARPTPA, MatchARPOp,
					MatchUDPSrc, MatchUDPDst, MatchICMPv6Type, MatchNDTarget},
				Gotos:      []uint8{TableIntRouterND, TableIntForward},
				Priorities: []uint16{0, 1, 2},
				Miss:       MissGoto, MissTable: TableIntForward,
			},
			{
				Bridge: BrInt, ID: TableIntRouterND, Name: "router-nd",
				Doc:        "the router's neighbour advertisement built in 20: set the target link-layer address, back out of IN_PORT (1); else drop",
				Matches:    []MatchField{MatchReg0, MatchEthType, MatchIPProto, MatchICMPv6Type, MatchNDTarget},
				Priorities: []uint16{0, 1},
				Miss:       MissDrop,
			},
			{
				Bridge: BrInt, ID: TableIntForward, Name: "forward",
				Doc: "to a registered port's MAC on its network: a local port (reg0=VLAN from a VM port, dl_vlan=VLAN from patch-tun) " +
					"-> output to it; a remote port, from a VM port -> tagged to patch-tun; else NORMAL",
				Matches:    []MatchField{MatchReg0, MatchVLAN, MatchEthDst},
				Priorities: []uint16{0, 1},
				Miss:       MissNormal,
			},
		},
	}
}

// Tables returns the declarations of one bridge's tables.
func (p Pipeline) Tables(b Bridge) []Table {
	if b == BrInt {
		return p.BrInt
	}
	return p.BrTun
}

// Lookup returns the declaration of table id on bridge b.
func (p Pipeline) Lookup(b Bridge, id uint8) (Table, bool) {
	for _, t := range p.Tables(b) {
		if t.ID == id {
			return t, true
		}
	}
	return Table{}, false
}

// missFlow returns the table's priority-0 catch-all flow.
func (t Table) missFlow() Flow {
	f := Flow{Table: t.ID, Priority: 0, Cookie: PipelineCookie()}
	switch t.Miss {
	case MissGoto:
		f.Actions = []Action{GotoTable{Table: t.MissTable}}
	case MissNormal:
		f.Actions = []Action{Normal{}}
	}
	return f
}
