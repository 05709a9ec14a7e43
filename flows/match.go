package flows

import (
	"net/netip"
	"strconv"
	"strings"
)

// Ethernet types and IP protocols the pipeline matches.
const (
	EthTypeIPv4 uint16 = 0x0800
	EthTypeARP  uint16 = 0x0806
	EthTypeIPv6 uint16 = 0x86dd
	EthTypeVLAN uint16 = 0x8100

	IPProtoICMP   uint8 = 1
	IPProtoTCP    uint8 = 6
	IPProtoUDP    uint8 = 17
	IPProtoICMPv6 uint8 = 58

	ipProtoSCTP uint8 = 132 // printed as the sctp/sctp6 shorthand
)

// VLANCFI is the "VLAN present" bit of a TCI as OVS and OXM vlan_vid use it.
const VLANCFI uint16 = 0x1000

// MaskedU16 is a 16-bit value under a mask. Canonical form: Mask != 0 and
// Value&^Mask == 0; an exact match has Mask 0xffff.
type MaskedU16 struct{ Value, Mask uint16 }

// MaskedU32 is a 32-bit value under a mask (canonical as MaskedU16).
type MaskedU32 struct{ Value, Mask uint32 }

// MaskedU64 is a 64-bit value under a mask (canonical as MaskedU16).
type MaskedU64 struct{ Value, Mask uint64 }

// MaskedMAC is an Ethernet address under a mask (canonical as MaskedU16).
type MaskedMAC struct{ Value, Mask MAC }

// MaskedIPv4 is an IPv4 address under a mask (canonical as MaskedU16).
type MaskedIPv4 struct{ Value, Mask IPv4 }

// Match is a flow's match, one typed field per OXM/NXM field brtun uses. A nil
// field is wildcarded. Canonical form (checked by Validate, produced by the
// constructors below): a masked value has no bits outside its mask and a
// non-zero mask; an exact match carries the all-ones mask. Matches that OVS
// prints identically have the same String, so compare with Equal (or use
// Flow.Key); reflect.DeepEqual agrees for canonical values.
type Match struct {
	EthType    *uint16     // dl_type; printed as arp/ip/ipv6 shorthand
	IPProto    *uint8      // nw_proto; with EthType printed as icmp6, tcp, ...
	Reg0       *MaskedU32  // NXM_NX_REG0
	TunID      *MaskedU64  // tun_id
	TunSrc     *IPv4       // tun_src, exact: the outer source of a tunnel packet
	InPort     *uint32     // in_port (OpenFlow 1.3 port number)
	VLANTCI    *MaskedU16  // vlan_tci; dl_vlan=V is {VLANCFI|V, 0x1fff}
	EthSrc     *MaskedMAC  // dl_src
	EthDst     *MaskedMAC  // dl_dst
	ARPSPA     *MaskedIPv4 // arp_spa (needs EthType ARP)
	ARPTPA     *MaskedIPv4 // arp_tpa (needs EthType ARP)
	ARPOp      *uint16     // arp_op (needs EthType ARP)
	ICMPv6Type *uint8      // icmp_type (needs icmp6)
	NDTarget   *IPv6       // nd_target (needs icmp6 type 135 or 136)
	IPv4Src    *MaskedIPv4 // nw_src (needs ip)
	IPv6Src    *IPv6       // ipv6_src, exact (needs ipv6)
	ARPSHA     *MAC        // arp_sha, exact (needs arp)
	UDPSrc     *uint16     // tp_src (needs udp or udp6)
	UDPDst     *uint16     // tp_dst (needs udp or udp6)
	// Raw holds match bytes a decoder could not interpret. Desired flows never
	// have it; String shows it as hex so such a flow never equals a desired one.
	Raw []byte
}

// Exact16 returns an exact 16-bit match.
func Exact16(v uint16) *MaskedU16 { return &MaskedU16{Value: v, Mask: 0xffff} }

// Exact32 returns an exact 32-bit match.
func Exact32(v uint32) *MaskedU32 { return &MaskedU32{Value: v, Mask: 0xffffffff} }

// Exact64 returns an exact 64-bit match.
func Exact64(v uint64) *MaskedU64 { return &MaskedU64{Value: v, Mask: ^uint64(0)} }

// Masked32 returns value/mask in canonical form.
func Masked32(v, mask uint32) *MaskedU32 { return &MaskedU32{Value: v & mask, Mask: mask} }

// ExactMAC returns an exact Ethernet address match.
func ExactMAC(m MAC) *MaskedMAC {
	return &MaskedMAC{Value: m, Mask: MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
}

// MaskedMACOf returns value/mask in canonical form.
func MaskedMACOf(v, mask MAC) *MaskedMAC {
	for i := range v {
		v[i] &= mask[i]
	}
	return &MaskedMAC{Value: v, Mask: mask}
}

// PrefixIPv4 returns the match of an IPv4 prefix (a /32 is exact).
func PrefixIPv4(p netip.Prefix) *MaskedIPv4 {
	p = p.Masked()
	bits := uint32(0xffffffff) << (32 - p.Bits())
	if p.Bits() == 0 {
		bits = 0
	}
	return &MaskedIPv4{Value: p.Addr().As4(), Mask: IPv4{byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}}
}

// ExactIPv4 returns an exact IPv4 match.
func ExactIPv4(a IPv4) *MaskedIPv4 {
	return &MaskedIPv4{Value: a, Mask: IPv4{0xff, 0xff, 0xff, 0xff}}
}

// VLANMatch returns the vlan_tci match OVS prints as dl_vlan=vid.
func VLANMatch(vid uint16) *MaskedU16 {
	return &MaskedU16{Value: VLANCFI | vid&0x0fff, Mask: 0x1fff}
}

// VLANID returns the VLAN id of a dl_vlan match, if the match is one.
func (m Match) VLANID() (uint16, bool) {
	if m.VLANTCI == nil || m.VLANTCI.Mask != 0x1fff || m.VLANTCI.Value&VLANCFI == 0 {
		return 0, false
	}
	return m.VLANTCI.Value & 0x0fff, true
}

// Ptr returns a pointer to a copy of v, for filling Match fields.
func Ptr[T any](v T) *T { return &v }

// Equal reports whether two matches are the same value.
func (m Match) Equal(o Match) bool { return m.String() == o.String() }

// String prints the match fields as OVS 3.1's match_format does, in its
// order, without priority: "arp,dl_vlan=1,arp_tpa=198.18.0.2,arp_op=1".
func (m Match) String() string {
	var b strings.Builder
	m.format(&b)
	return strings.TrimSuffix(b.String(), ",")
}

// format appends the fields, each followed by a comma.
func (m Match) format(b *strings.Builder) {
	skipType, skipProto := m.formatShorthand(b)
	if m.Reg0 != nil {
		formatMaskedHex(b, "reg0", uint64(m.Reg0.Value), uint64(m.Reg0.Mask), 0xffffffff)
	}
	if m.TunID != nil {
		formatMaskedHex(b, "tun_id", m.TunID.Value, m.TunID.Mask, ^uint64(0))
	}
	if m.TunSrc != nil {
		b.WriteString("tun_src=")
		b.WriteString(m.TunSrc.String())
		b.WriteByte(',')
	}
	if m.InPort != nil {
		b.WriteString("in_port=")
		b.WriteString(formatPort(*m.InPort))
		b.WriteByte(',')
	}
	if m.VLANTCI != nil {
		formatVLAN(b, *m.VLANTCI)
	}
	if m.EthSrc != nil {
		formatMaskedMAC(b, "dl_src", *m.EthSrc)
	}
	if m.EthDst != nil {
		formatMaskedMAC(b, "dl_dst", *m.EthDst)
	}
	if m.EthType != nil && !skipType {
		b.WriteString("dl_type=0x")
		b.WriteString(leftPad(strconv.FormatUint(uint64(*m.EthType), 16), 4))
		b.WriteByte(',')
	}
	if m.IPv6Src != nil {
		b.WriteString("ipv6_src=")
		b.WriteString(m.IPv6Src.String())
		b.WriteByte(',')
	}
	if m.ARPSPA != nil {
		formatMaskedIPv4(b, "arp_spa", *m.ARPSPA)
	}
	if m.ARPTPA != nil {
		formatMaskedIPv4(b, "arp_tpa", *m.ARPTPA)
	}
	if m.IPv4Src != nil {
		formatMaskedIPv4(b, "nw_src", *m.IPv4Src)
	}
	if m.IPProto != nil && !skipProto {
		b.WriteString("nw_proto=")
		b.WriteString(strconv.Itoa(int(*m.IPProto)))
		b.WriteByte(',')
	}
	if m.ARPOp != nil {
		b.WriteString("arp_op=")
		b.WriteString(strconv.Itoa(int(*m.ARPOp)))
		b.WriteByte(',')
	}
	if m.ARPSHA != nil {
		b.WriteString("arp_sha=")
		b.WriteString(m.ARPSHA.String())
		b.WriteByte(',')
	}
	if m.ICMPv6Type != nil {
		b.WriteString("icmp_type=")
		b.WriteString(strconv.Itoa(int(*m.ICMPv6Type)))
		b.WriteByte(',')
	}
	if m.NDTarget != nil {
		b.WriteString("nd_target=")
		b.WriteString(m.NDTarget.String())
		b.WriteByte(',')
	}
	if m.UDPSrc != nil {
		b.WriteString("tp_src=")
		b.WriteString(strconv.Itoa(int(*m.UDPSrc)))
		b.WriteByte(',')
	}
	if m.UDPDst != nil {
		b.WriteString("tp_dst=")
		b.WriteString(strconv.Itoa(int(*m.UDPDst)))
		b.WriteByte(',')
	}
	if len(m.Raw) > 0 {
		b.WriteString("raw_match=")
		b.WriteString(hexBytes(m.Raw))
		b.WriteByte(',')
	}
}

// formatShorthand prints the dl_type/nw_proto shorthand OVS puts first and
// reports which of the two it consumed.
func (m Match) formatShorthand(b *strings.Builder) (skipType, skipProto bool) {
	if m.EthType == nil {
		return false, false
	}
	var name string
	switch *m.EthType {
	case EthTypeIPv4:
		name, skipProto = "ip", false
		if m.IPProto != nil {
			switch *m.IPProto {
			case IPProtoICMP:
				name, skipProto = "icmp", true
			case ipProtoSCTP:
				name, skipProto = "sctp", true
			case IPProtoTCP:
				name, skipProto = "tcp", true
			case IPProtoUDP:
				name, skipProto = "udp", true
			}
		}
	case EthTypeIPv6:
		name, skipProto = "ipv6", false
		if m.IPProto != nil {
			switch *m.IPProto {
			case IPProtoICMPv6:
				name, skipProto = "icmp6", true
			case ipProtoSCTP:
				name, skipProto = "sctp6", true
			case IPProtoTCP:
				name, skipProto = "tcp6", true
			case IPProtoUDP:
				name, skipProto = "udp6", true
			}
		}
	case EthTypeARP:
		name = "arp"
	default:
		return false, false
	}
	b.WriteString(name)
	b.WriteByte(',')
	return true, skipProto
}

// formatMaskedHex prints name=0xV[/0xM] like OVS's format_uintNN_masked.
func formatMaskedHex(b *strings.Builder, name string, v, mask, full uint64) {
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(hexU64(v))
	if mask != full {
		b.WriteByte('/')
		b.WriteString(hexU64(mask))
	}
	b.WriteByte(',')
}

// formatVLAN prints a vlan_tci match as OVS does (dl_vlan= when it can).
func formatVLAN(b *strings.Builder, t MaskedU16) {
	const vidMask, pcpMask = 0x0fff, 0xe000
	vid, pcp, cfi := t.Mask&vidMask, t.Mask&pcpMask, t.Mask&VLANCFI
	if cfi != 0 && t.Value&VLANCFI != 0 &&
		(vid == 0 || vid == vidMask) && (pcp == 0 || pcp == pcpMask) && (vid != 0 || pcp != 0) {
		if vid != 0 {
			b.WriteString("dl_vlan=")
			b.WriteString(strconv.Itoa(int(t.Value & vidMask)))
			b.WriteByte(',')
		}
		if pcp != 0 {
			b.WriteString("dl_vlan_pcp=")
			b.WriteString(strconv.Itoa(int(t.Value >> 13)))
			b.WriteByte(',')
		}
		return
	}
	b.WriteString("vlan_tci=0x")
	b.WriteString(leftPad(strconv.FormatUint(uint64(t.Value), 16), 4))
	if t.Mask != 0xffff {
		b.WriteString("/0x")
		b.WriteString(leftPad(strconv.FormatUint(uint64(t.Mask), 16), 4))
	}
	b.WriteByte(',')
}

// formatMaskedMAC prints name=MAC[/MASK].
func formatMaskedMAC(b *strings.Builder, name string, m MaskedMAC) {
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(m.Value.String())
	if m.Mask != (MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		b.WriteByte('/')
		b.WriteString(m.Mask.String())
	}
	b.WriteByte(',')
}

// formatMaskedIPv4 prints name=IP[/LEN or /MASK] like OVS's format_ip_netmask.
func formatMaskedIPv4(b *strings.Builder, name string, a MaskedIPv4) {
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(a.Value.String())
	mask := uint32(a.Mask[0])<<24 | uint32(a.Mask[1])<<16 | uint32(a.Mask[2])<<8 | uint32(a.Mask[3])
	if mask != 0xffffffff {
		b.WriteByte('/')
		if isCIDRMask(mask) {
			b.WriteString(strconv.Itoa(cidrLen(mask)))
		} else {
			b.WriteString(a.Mask.String())
		}
	}
	b.WriteByte(',')
}

// isCIDRMask reports whether mask is a run of ones followed by zeros.
func isCIDRMask(mask uint32) bool { inv := ^mask; return inv&(inv+1) == 0 }

// cidrLen counts the leading ones of a CIDR mask.
func cidrLen(mask uint32) int {
	n := 0
	for mask&0x80000000 != 0 {
		n++
		mask <<= 1
	}
	return n
}

// leftPad pads s with zeros to width.
func leftPad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// Reserved OpenFlow 1.3 port numbers.
const (
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff
	// PortMax is the highest ordinary port number.
	PortMax uint32 = 0xffffff00
)

// formatPort prints a port number, using OVS's names for reserved ports.
func formatPort(p uint32) string {
	switch p {
	case PortInPort:
		return "IN_PORT"
	case PortTable:
		return "TABLE"
	case PortNormal:
		return "NORMAL"
	case PortFlood:
		return "FLOOD"
	case PortAll:
		return "ALL"
	case PortController:
		return "CONTROLLER"
	case PortLocal:
		return "LOCAL"
	case PortAny:
		return "ANY"
	}
	return strconv.FormatUint(uint64(p), 10)
}
