package flows

import (
	"net/netip"
	"slices"
	"sort"
)

// DHCP and DHCPv6 UDP ports, and the ICMPv6 types port security looks at.
const (
	udpDHCPServer   uint16 = 67
	udpDHCPClient   uint16 = 68
	udpDHCPv6Server uint16 = 547

	icmp6MLDv1Report  uint8 = 131
	icmp6RouterAdvert uint8 = 134
	icmp6NeighSolicit uint8 = 135
	icmp6NeighAdvert  uint8 = 136
	icmp6MLDv2Report  uint8 = 143
)

// Priorities of br-int's port-security tables (see their declarations).
const (
	classifyDown       uint16 = 3
	classifyUntagged   uint16 = 2
	classifyOther      uint16 = 1
	portSecServerPrio  uint16 = 4
	portSecAllowedPrio uint16 = 3
	portSecEthTypePrio uint16 = 2
	portSecOtherPrio   uint16 = 1
	portSecNDAllowPrio uint16 = 2
	portSecNDDropPrio  uint16 = 1
	forwardPrio        uint16 = 1
)

// localPort is a LocalPort with parsed addresses and a usable ofport.
type localPort struct {
	network string
	name    string
	ofport  uint32
	vlan    uint16
	hasMAC  bool
	mac     MAC
	secure  bool
	dhcp    bool // its network has a DHCP-enabled subnet: table 20 catches its requests
	// macOnly: a protected port with no addresses at all (no IPs, no
	// pairs) is held to its MACs only, like OVN's MAC-only port security:
	// until brtun knows a port's addresses it cannot check them.
	macOnly bool
	// sources are the (MAC, address) pairs the port may send from: its own
	// addresses with its MAC, then the allowed address pairs.
	sources []source
}

// source is one (MAC, IP prefix) a protected port may send from.
type source struct {
	mac    MAC
	prefix netip.Prefix
}

// indexLocalPorts keeps the local ports with a usable ofport and a local
// VLAN, sorted by network then name. A port whose MAC or addresses do not
// parse loses port security's allowances, not its protection: what it
// sends from an address that did not parse is dropped.
func (c *compiler) indexLocalPorts(in []LocalPort) {
	ps := slices.Clone(in)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Network != ps[j].Network {
			return ps[i].Network < ps[j].Network
		}
		return ps[i].Name < ps[j].Name
	})
	seen := map[uint32]string{}
	for _, p := range c.downPorts {
		seen[p.Ofport] = p.Network + "/" + p.Name + " (down)"
	}
	for _, p := range ps {
		switch {
		case p.Ofport == 0 || p.Ofport >= PortMax:
			c.skip("local port %s/%s: no usable ofport (%d) yet", p.Network, p.Name, p.Ofport)
			continue
		case p.Ofport == c.intPatch:
			c.skip("local port %s/%s: ofport %d is patch-tun's", p.Network, p.Name, p.Ofport)
			continue
		case seen[p.Ofport] != "":
			c.skip("local port %s/%s: ofport %d already used by %s", p.Network, p.Name, p.Ofport, seen[p.Ofport])
			continue
		case p.LocalVLAN < 1 || p.LocalVLAN > 4094:
			c.skip("local port %s/%s: local VLAN %d out of 1..4094", p.Network, p.Name, p.LocalVLAN)
			continue
		}
		seen[p.Ofport] = p.Network + "/" + p.Name
		lp := localPort{network: p.Network, name: p.Name, ofport: p.Ofport, vlan: p.LocalVLAN, dhcp: p.DHCP}
		if p.MAC != "" {
			mac, err := ParseMAC(p.MAC)
			if err != nil || mac.IsMulticast() || mac == (MAC{}) {
				c.skip("local port %s/%s: MAC %q is not a unicast Ethernet address: no forwarding flow", p.Network, p.Name, p.MAC)
			} else {
				lp.hasMAC, lp.mac = true, mac
			}
		}
		// Security needs the MAC; a port whose MAC did not parse stays
		// protected and may send nothing.
		lp.secure = p.PortSecurity && p.MAC != ""
		if lp.secure && lp.hasMAC {
			lp.sources = c.portSources(p, lp.mac)
			lp.macOnly = len(p.IPs) == 0 && len(p.AllowedAddressPairs) == 0
		}
		if !lp.secure && lp.hasMAC && c.sourceMeter {
			lp.sources = c.portSources(p, lp.mac) // only their MACs are used
		}
		c.local = append(c.local, lp)
	}
}

// indexDownPorts keeps the administratively down ports with a usable
// ofport, by ofport. Their ofports are checked before the local ports':
// a local port reported on a down port's ofport is left out, so that
// ofport's frames are dropped whichever of the two is stale.
func (c *compiler) indexDownPorts(in []DownPort) {
	for _, p := range in {
		switch {
		case p.Ofport == 0 || p.Ofport >= PortMax:
			c.skip("down port %s/%s has no usable ofport (%d): its frames are not dropped yet", p.Network, p.Name, p.Ofport)
			continue
		case p.Ofport == c.intPatch:
			c.skip("down port %s/%s: ofport %d is patch-tun's", p.Network, p.Name, p.Ofport)
			continue
		}
		c.downPorts = append(c.downPorts, p)
	}
	slices.SortFunc(c.downPorts, func(a, b DownPort) int { return int(a.Ofport) - int(b.Ofport) })
	c.downPorts = slices.CompactFunc(c.downPorts, func(a, b DownPort) bool { return a.Ofport == b.Ofport })
}

// portSources lists the (MAC, prefix) pairs a protected port may send from.
func (c *compiler) portSources(p LocalPort, mac MAC) []source {
	var out []source
	for _, s := range p.IPs {
		a, err := parseHostIP(s)
		if err != nil {
			c.skip("local port %s/%s: IP %q: %v", p.Network, p.Name, s, err)
			continue
		}
		out = append(out, source{mac: mac, prefix: netip.PrefixFrom(a, a.BitLen())})
	}
	for _, ap := range p.AllowedAddressPairs {
		pm := mac
		if ap.MACAddress != "" {
			m, err := ParseMAC(ap.MACAddress)
			if err != nil || m.IsMulticast() || m == (MAC{}) {
				c.skip("local port %s/%s: allowed pair MAC %q is not a unicast Ethernet address", p.Network, p.Name, ap.MACAddress)
				continue
			}
			pm = m
		}
		prefix, err := parsePairPrefix(ap.IPAddress)
		if err != nil {
			c.skip("local port %s/%s: allowed pair %q: %v", p.Network, p.Name, ap.IPAddress, err)
			continue
		}
		out = append(out, source{mac: pm, prefix: prefix})
	}
	return out
}

// parsePairPrefix parses an allowed pair's address: an IPv4 address or
// prefix, or an IPv6 address.
func parsePairPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is6() && p.Bits() != 128 {
			return netip.Prefix{}, errIPv6PairPrefix
		}
		return p.Masked(), nil
	}
	a, err := parseHostIP(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type flowsError string

func (e flowsError) Error() string { return string(e) }

const errIPv6PairPrefix flowsError = "an IPv6 pair is one address"

// macs returns the distinct MACs of a protected port: its own first.
func (p localPort) macs() []MAC {
	out := []MAC{p.mac}
	for _, s := range p.sources {
		if !slices.Contains(out, s.mac) {
			out = append(out, s.mac)
		}
	}
	return out
}

// linkLocal returns the EUI-64 IPv6 link-local address of mac.
func linkLocal(mac MAC) IPv6 {
	var a IPv6
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return a
}

// portFlow is a flow of a local port, with the port's cookie and in_port.
func (p localPort) flow(table uint8, prio uint16, m Match, actions ...Action) Flow {
	m.InPort = Ptr(p.ofport)
	return Flow{Table: table, Priority: prio, Cookie: PortCookie(p.network, p.name), Match: m, Actions: actions}
}

// brInt emits br-int's flows, table by table.
func (c *compiler) brInt() []Flow {
	var out []Flow
	out = append(out, c.intClassify()...)
	out = append(out, c.intPortMAC()...)
	out = append(out, c.intPortIP()...)
	out = append(out, c.intPortND()...)
	out = append(out, c.intDHCP()...)
	out = append(out, c.intRouterND()...)
	out = append(out, c.intForward()...)
	return out
}

// intClassify emits br-int table 0: every frame from an administratively
// down port is dropped (priority 3, the port's cookie); untagged frames
// from a VM port get the port's local VLAN in reg0 and go to port security
// (or straight to table 20 when it is off); frames from patch-tun go to
// forwarding; tagged frames from a VM port and frames from unknown ports
// are dropped.
func (c *compiler) intClassify() []Flow {
	out := make([]Flow, 0, len(c.downPorts)+2*len(c.local)+2)
	for _, p := range c.downPorts {
		out = append(out, Flow{
			Table: TableIntClassify, Priority: classifyDown, Cookie: PortCookie(p.Network, p.Name),
			Match: Match{InPort: Ptr(p.Ofport)},
		})
	}
	if c.intPatch != 0 {
		out = append(out, Flow{
			Table: TableIntClassify, Priority: classifyOther, Cookie: PipelineCookie(),
			Match:   Match{InPort: Ptr(c.intPatch)},
			Actions: []Action{GotoTable{Table: TableIntForward}},
		})
	}
	for _, p := range c.local {
		next := TableIntDHCP
		if p.secure || c.sourceMeter {
			next = TableIntPortMAC
		}
		out = append(out,
			p.flow(TableIntClassify, classifyUntagged, Match{VLANTCI: untagged()},
				Load{Dst: IntVLANReg(), Value: uint64(p.vlan)}, GotoTable{Table: next}),
			p.flow(TableIntClassify, classifyOther, Match{}))
	}
	return append(out, c.miss(BrInt, TableIntClassify)...)
}

// untagged matches frames without an 802.1Q header (vlan_tci=0x0000/0x1fff).
func untagged() *MaskedU16 { return &MaskedU16{Value: 0, Mask: 0x1fff} }

// intPortMAC emits br-int table 10: a protected port may send from its MAC
// and its allowed pairs' MACs only. With the source meter on, a port
// without port security (an appliance) sends from its MAC and its pairs'
// MACs freely; from any other source MAC through its own meter (the
// storm control of appliance ports, see SourceMeterID), in both cases on
// to table 20.
func (c *compiler) intPortMAC() []Flow {
	var out []Flow
	for _, p := range c.local {
		if !p.secure {
			if c.sourceMeter {
				out = append(out, c.applianceMAC(p)...)
			}
			continue
		}
		if p.hasMAC {
			for _, m := range p.macs() {
				out = append(out, p.flow(TableIntPortMAC, 2, Match{EthSrc: ExactMAC(m)}, GotoTable{Table: TableIntPortIP}))
			}
		}
		out = append(out, p.flow(TableIntPortMAC, 1, Match{}))
		// (A port whose MAC did not parse has only this drop.)
	}
	return append(out, c.miss(BrInt, TableIntPortMAC)...)
}

// applianceMAC emits table 10's flows of a port without port security
// when the source meter is on: its MACs -> 20 (priority 2); other sources
// through the port's meter -> 20 (priority 1).
func (c *compiler) applianceMAC(p localPort) []Flow {
	var out []Flow
	if p.hasMAC {
		for _, m := range p.macs() {
			out = append(out, p.flow(TableIntPortMAC, 2, Match{EthSrc: ExactMAC(m)}, GotoTable{Table: TableIntDHCP}))
		}
	}
	if p.ofport >= sourceMeterPorts {
		c.skip("local port %s/%s: ofport %d has no source meter: frames from other source MACs are dropped", p.network, p.name, p.ofport)
		return append(out, p.flow(TableIntPortMAC, 1, Match{}))
	}
	return append(out, p.flow(TableIntPortMAC, 1, Match{}, Meter{ID: SourceMeterID(p.ofport)}, GotoTable{Table: TableIntDHCP}))
}

// intPortIP emits br-int table 11: what a protected port may send as ARP,
// IPv4 and IPv6, by (MAC, source address); DHCP and DHCPv6 server messages
// and router advertisements never. A port without addresses (macOnly) may
// send ARP with its MACs as sender, and IP from any address.
func (c *compiler) intPortIP() []Flow {
	var out []Flow
	for _, p := range c.local {
		if !p.secure || !p.hasMAC {
			continue // security off, or a MAC that did not parse: table 10 drops all
		}
		udp4 := Match{EthType: Ptr(EthTypeIPv4), IPProto: Ptr(IPProtoUDP)}
		udp6 := Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoUDP)}
		icmp6 := Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6)}
		with := func(m Match, set func(*Match)) Match { set(&m); return m }
		out = append(out,
			p.flow(TableIntPortIP, portSecServerPrio, with(udp4, func(m *Match) { m.UDPSrc = Ptr(udpDHCPServer) })),
			p.flow(TableIntPortIP, portSecServerPrio, with(udp6, func(m *Match) { m.UDPSrc = Ptr(udpDHCPv6Server) })),
			p.flow(TableIntPortIP, portSecServerPrio, with(icmp6, func(m *Match) { m.ICMPv6Type = Ptr(icmp6RouterAdvert) })))
		allowed := p.allowedSources()
		if p.macOnly {
			allowed = nil
			for _, m := range p.macs() {
				allowed = append(allowed, Match{EthType: Ptr(EthTypeARP), ARPSHA: Ptr(m)})
			}
		}
		for _, m := range allowed {
			out = append(out, p.flow(TableIntPortIP, portSecAllowedPrio, m, GotoTable{Table: TableIntPortND}))
		}
		checked := []uint16{EthTypeARP, EthTypeIPv4, EthTypeIPv6}
		if p.macOnly {
			checked = checked[:1]
		}
		for _, et := range checked {
			out = append(out, p.flow(TableIntPortIP, portSecEthTypePrio, Match{EthType: Ptr(et)}))
		}
		out = append(out, p.flow(TableIntPortIP, portSecOtherPrio, Match{}, GotoTable{Table: TableIntPortND}))
	}
	return append(out, c.miss(BrInt, TableIntPortIP)...)
}

// allowedSources returns the matches (without in_port) of what a protected
// port may send as ARP, IPv4 and IPv6, without repeats.
func (p localPort) allowedSources() []Match {
	var out []Match
	seen := map[string]bool{}
	add := func(m Match) {
		if k := m.String(); !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	for _, s := range p.sources {
		if s.prefix.Addr().Is4() {
			add(Match{EthType: Ptr(EthTypeARP), ARPSHA: Ptr(s.mac), ARPSPA: PrefixIPv4(s.prefix)})
			add(Match{EthType: Ptr(EthTypeIPv4), EthSrc: ExactMAC(s.mac), IPv4Src: PrefixIPv4(s.prefix)})
		} else {
			add(Match{EthType: Ptr(EthTypeIPv6), EthSrc: ExactMAC(s.mac), IPv6Src: Ptr(IPv6(s.prefix.Addr().As16()))})
		}
	}
	for _, m := range p.macs() {
		// DHCP discover and request before the port has its address.
		add(Match{EthType: Ptr(EthTypeIPv4), IPProto: Ptr(IPProtoUDP), EthSrc: ExactMAC(m),
			IPv4Src: ExactIPv4(IPv4{}), UDPSrc: Ptr(udpDHCPClient), UDPDst: Ptr(udpDHCPServer)})
		add(Match{EthType: Ptr(EthTypeIPv6), EthSrc: ExactMAC(m), IPv6Src: Ptr(linkLocal(m))})
		// Duplicate address detection and its multicast listener reports
		// come from the unspecified address.
		for _, t := range []uint8{icmp6NeighSolicit, icmp6MLDv1Report, icmp6MLDv2Report} {
			add(Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6), EthSrc: ExactMAC(m),
				IPv6Src: Ptr(IPv6{}), ICMPv6Type: Ptr(t)})
		}
	}
	return out
}

// intPortND emits br-int table 12: a protected port may advertise only its
// own IPv6 addresses, its MACs' link-local ones and its IPv6 pairs.
func (c *compiler) intPortND() []Flow {
	var out []Flow
	for _, p := range c.local {
		if !p.secure || !p.hasMAC || p.macOnly {
			continue
		}
		na := Match{EthType: Ptr(EthTypeIPv6), IPProto: Ptr(IPProtoICMPv6), ICMPv6Type: Ptr(icmp6NeighAdvert)}
		var targets []IPv6
		for _, s := range p.sources {
			if s.prefix.Addr().Is6() {
				targets = append(targets, s.prefix.Addr().As16())
			}
		}
		for _, m := range p.macs() {
			targets = append(targets, linkLocal(m))
		}
		seen := map[IPv6]bool{}
		for _, t := range targets {
			if seen[t] {
				continue
			}
			seen[t] = true
			m := na
			m.NDTarget = Ptr(t)
			out = append(out, p.flow(TableIntPortND, portSecNDAllowPrio, m, GotoTable{Table: TableIntDHCP}))
		}
		out = append(out, p.flow(TableIntPortND, portSecNDDropPrio, na))
	}
	return append(out, c.miss(BrInt, TableIntPortND)...)
}

// intForward emits br-int table 30: frames to a registered port's MAC on
// its network go to that port by flow, so that what br-int's NORMAL learns
// cannot send them elsewhere: to a local port from a VM port of its network
// (reg0=VLAN, untagged) or from patch-tun (tagged: the tag is removed), and
// to a remote port from a VM port (tagged, to patch-tun). Anything else
// goes to NORMAL.
func (c *compiler) intForward() []Flow {
	var out []Flow
	local := map[netMACKey]bool{}
	for _, p := range c.local {
		if !p.hasMAC {
			continue
		}
		local[netMACKey{p.vlan, p.mac}] = true
		ck := PortCookie(p.network, p.name)
		out = append(out,
			Flow{Table: TableIntForward, Priority: forwardPrio, Cookie: ck,
				Match:   Match{Reg0: Exact32(uint32(p.vlan)), EthDst: ExactMAC(p.mac)},
				Actions: []Action{Output{Port: p.ofport}}},
			Flow{Table: TableIntForward, Priority: forwardPrio, Cookie: ck,
				Match:   Match{VLANTCI: VLANMatch(p.vlan), EthDst: ExactMAC(p.mac)},
				Actions: []Action{PopVLAN{}, Output{Port: p.ofport}}})
	}
	if c.intPatch != 0 {
		for _, rp := range c.ports {
			vlan := rp.network.LocalVLAN
			if local[netMACKey{vlan, rp.mac}] {
				continue // the local port wins: the MAC moved here
			}
			out = append(out, Flow{Table: TableIntForward, Priority: forwardPrio, Cookie: PortCookie(rp.network.Name, rp.name),
				Match:   Match{Reg0: Exact32(uint32(vlan)), EthDst: ExactMAC(rp.mac)},
				Actions: []Action{PushVLAN{EtherType: EthTypeVLAN}, SetVLANVID(vlan), Output{Port: c.intPatch}}})
		}
	}
	return append(out, c.miss(BrInt, TableIntForward)...)
}

// netMACKey is a MAC on a local VLAN.
type netMACKey struct {
	vlan uint16
	mac  MAC
}

// IsPortSecurityDrop reports whether f is one of a port's drop flows on
// br-int (tables 0 to 12, a port's cookie, no actions): the flows whose
// packet counts are that port's drops. The drop of an administratively
// down port (IsAdminDownDrop) is not one: a down port counts none.
func IsPortSecurityDrop(f Flow) bool {
	o, ok := DecodeCookie(f.Cookie)
	return ok && o.Kind == OwnerPort && len(f.Actions) == 0 && f.Table <= TableIntPortND && !IsAdminDownDrop(f)
}

// IsAdminDownDrop reports whether f is the drop br-int's table 0 holds for
// an administratively down port.
func IsAdminDownDrop(f Flow) bool {
	o, ok := DecodeCookie(f.Cookie)
	return ok && o.Kind == OwnerPort && len(f.Actions) == 0 && f.Table == TableIntClassify && f.Priority == classifyDown
}
