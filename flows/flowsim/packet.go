package flowsim

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/brtun/brtun/flows"
)

// Packet is the part of a frame (and its metadata) the pipeline looks at.
// VLANTCI is 0 for an untagged frame, else VLANCFI|vid as OVS holds it.
type Packet struct {
	InPort uint32
	TunID  uint64
	// TunSrc and TunDst are the outer IPv4 addresses of a tunnel packet:
	// on arrival the sender's and this host's, and what a flow-based
	// tunnel port sends to once a flow set tun_dst.
	TunSrc  flows.IPv4
	TunDst  flows.IPv4
	Reg0    uint32
	EthSrc  flows.MAC
	EthDst  flows.MAC
	VLANTCI uint16
	EthType uint16

	ARPOp  uint16
	ARPSHA flows.MAC
	ARPTHA flows.MAC
	ARPSPA flows.IPv4
	ARPTPA flows.IPv4

	IPProto       uint8
	IPv4Src       flows.IPv4
	UDPSrc        uint16
	UDPDst        uint16
	IPv6Src       flows.IPv6
	IPv6Dst       flows.IPv6
	ICMPv6Type    uint8
	NDTarget      flows.IPv6
	NDSLL         flows.MAC
	NDTLL         flows.MAC
	NDReserved    uint32
	NDOptionsType uint8
}

// VLAN returns the frame's VLAN id, and whether it is tagged.
func (p Packet) VLAN() (uint16, bool) { return p.VLANTCI & 0x0fff, p.VLANTCI&flows.VLANCFI != 0 }

// String summarises the packet for test failure messages.
func (p Packet) String() string {
	s := fmt.Sprintf("in_port=%d tun_id=%#x %s->%s", p.InPort, p.TunID, p.EthSrc, p.EthDst)
	if vid, ok := p.VLAN(); ok {
		s += fmt.Sprintf(" vlan=%d", vid)
	}
	return s + fmt.Sprintf(" type=%#04x", p.EthType)
}

// TraceFlow writes the packet in the flow syntax of
// `ovs-appctl ofproto/trace BRIDGE FLOW`, with the fields the pipeline
// looks at.
func (p Packet) TraceFlow() string {
	parts := []string{fmt.Sprintf("in_port=%d", p.InPort)}
	if p.TunID != 0 {
		parts = append(parts, fmt.Sprintf("tun_id=%#x", p.TunID))
	}
	if p.TunSrc != (flows.IPv4{}) {
		parts = append(parts, "tun_src="+p.TunSrc.String())
	}
	if vid, ok := p.VLAN(); ok {
		parts = append(parts, fmt.Sprintf("dl_vlan=%d", vid))
	}
	parts = append(parts, "dl_src="+p.EthSrc.String(), "dl_dst="+p.EthDst.String())
	switch {
	case p.EthType == flows.EthTypeARP:
		parts = append(parts, "arp", fmt.Sprintf("arp_op=%d", p.ARPOp), "arp_spa="+p.ARPSPA.String(),
			"arp_tpa="+p.ARPTPA.String(), "arp_sha="+p.ARPSHA.String(), "arp_tha="+p.ARPTHA.String())
	case p.EthType == flows.EthTypeIPv6 && p.IPProto == flows.IPProtoICMPv6:
		parts = append(parts, "icmp6", fmt.Sprintf("icmpv6_type=%d", p.ICMPv6Type), "ipv6_src="+p.IPv6Src.String(),
			"ipv6_dst="+p.IPv6Dst.String(), "nd_target="+p.NDTarget.String())
	case p.EthType == flows.EthTypeIPv4 && p.IPProto == flows.IPProtoUDP:
		// udp_src, not tp_src: ofproto/trace parses tp_src as tcp_src
		parts = append(parts, "udp", "nw_src="+p.IPv4Src.String(), fmt.Sprintf("udp_src=%d", p.UDPSrc), fmt.Sprintf("udp_dst=%d", p.UDPDst))
	case p.EthType == flows.EthTypeIPv4:
		parts = append(parts, "ip", "nw_src="+p.IPv4Src.String())
	case p.EthType == flows.EthTypeIPv6:
		parts = append(parts, "ipv6", "ipv6_src="+p.IPv6Src.String(), "ipv6_dst="+p.IPv6Dst.String())
	case p.EthType != 0:
		parts = append(parts, fmt.Sprintf("dl_type=%#06x", p.EthType))
	}
	return strings.Join(parts, ",")
}

// matches reports whether the packet satisfies every field of m.
func matches(m flows.Match, p Packet) bool {
	switch {
	case m.EthType != nil && *m.EthType != p.EthType,
		m.IPProto != nil && (*m.IPProto != p.IPProto || !isIP(p)),
		m.Reg0 != nil && p.Reg0&m.Reg0.Mask != m.Reg0.Value,
		m.TunID != nil && p.TunID&m.TunID.Mask != m.TunID.Value,
		m.TunSrc != nil && *m.TunSrc != p.TunSrc,
		m.InPort != nil && *m.InPort != p.InPort,
		m.VLANTCI != nil && p.VLANTCI&m.VLANTCI.Mask != m.VLANTCI.Value,
		m.EthSrc != nil && !macMatches(*m.EthSrc, p.EthSrc),
		m.EthDst != nil && !macMatches(*m.EthDst, p.EthDst),
		m.ARPSPA != nil && !ipv4Matches(*m.ARPSPA, p.ARPSPA),
		m.ARPTPA != nil && !ipv4Matches(*m.ARPTPA, p.ARPTPA),
		m.ARPOp != nil && *m.ARPOp != p.ARPOp,
		m.ICMPv6Type != nil && *m.ICMPv6Type != p.ICMPv6Type,
		m.NDTarget != nil && *m.NDTarget != p.NDTarget,
		m.IPv4Src != nil && !ipv4Matches(*m.IPv4Src, p.IPv4Src),
		m.IPv6Src != nil && *m.IPv6Src != p.IPv6Src,
		m.ARPSHA != nil && *m.ARPSHA != p.ARPSHA,
		m.UDPSrc != nil && *m.UDPSrc != p.UDPSrc,
		m.UDPDst != nil && *m.UDPDst != p.UDPDst,
		len(m.Raw) > 0:
		return false
	}
	return true
}

func isIP(p Packet) bool { return p.EthType == flows.EthTypeIPv4 || p.EthType == flows.EthTypeIPv6 }

func macMatches(m flows.MaskedMAC, a flows.MAC) bool {
	for i := range a {
		if a[i]&m.Mask[i] != m.Value[i] {
			return false
		}
	}
	return true
}

func ipv4Matches(m flows.MaskedIPv4, a flows.IPv4) bool {
	for i := range a {
		if a[i]&m.Mask[i] != m.Value[i] {
			return false
		}
	}
	return true
}

// get returns a field's value, big-endian, Field.Bytes() long.
func (p *Packet) get(f flows.Field) ([]byte, error) {
	switch f {
	case flows.FieldInPort:
		return binary.BigEndian.AppendUint16(nil, uint16(p.InPort)), nil
	case flows.FieldReg0:
		return binary.BigEndian.AppendUint32(nil, p.Reg0), nil
	case flows.FieldTunID:
		return binary.BigEndian.AppendUint64(nil, p.TunID), nil
	case flows.FieldVLANTCI:
		return binary.BigEndian.AppendUint16(nil, p.VLANTCI), nil
	case flows.FieldVLANVID:
		return binary.BigEndian.AppendUint16(nil, p.VLANTCI&0x1fff), nil
	case flows.FieldEthSrc:
		return clone(p.EthSrc[:]), nil
	case flows.FieldEthDst:
		return clone(p.EthDst[:]), nil
	case flows.FieldARPOp:
		return binary.BigEndian.AppendUint16(nil, p.ARPOp), nil
	case flows.FieldARPSPA:
		return clone(p.ARPSPA[:]), nil
	case flows.FieldARPTPA:
		return clone(p.ARPTPA[:]), nil
	case flows.FieldARPSHA:
		return clone(p.ARPSHA[:]), nil
	case flows.FieldARPTHA:
		return clone(p.ARPTHA[:]), nil
	case flows.FieldIPv6Src:
		return clone(p.IPv6Src[:]), nil
	case flows.FieldIPv6Dst:
		return clone(p.IPv6Dst[:]), nil
	case flows.FieldICMPv6Type:
		return []byte{p.ICMPv6Type}, nil
	case flows.FieldNDTarget:
		return clone(p.NDTarget[:]), nil
	case flows.FieldNDSLL:
		return clone(p.NDSLL[:]), nil
	case flows.FieldNDTLL:
		return clone(p.NDTLL[:]), nil
	case flows.FieldNDReserved:
		return binary.BigEndian.AppendUint32(nil, p.NDReserved), nil
	case flows.FieldNDOptionsType:
		return []byte{p.NDOptionsType}, nil
	case flows.FieldTunIPv4Src:
		return clone(p.TunSrc[:]), nil
	case flows.FieldTunIPv4Dst:
		return clone(p.TunDst[:]), nil
	}
	return nil, fmt.Errorf("field %v is not simulated", f)
}

// set writes a field's whole value (big-endian, Field.Bytes() long).
func (p *Packet) set(f flows.Field, v []byte) error {
	if len(v) != f.Bytes() {
		return fmt.Errorf("set %v: %d bytes, want %d", f, len(v), f.Bytes())
	}
	switch f {
	case flows.FieldInPort:
		p.InPort = uint32(binary.BigEndian.Uint16(v))
	case flows.FieldReg0:
		p.Reg0 = binary.BigEndian.Uint32(v)
	case flows.FieldTunID:
		p.TunID = binary.BigEndian.Uint64(v)
	case flows.FieldVLANTCI:
		p.VLANTCI = binary.BigEndian.Uint16(v)
	case flows.FieldVLANVID:
		if p.VLANTCI&flows.VLANCFI == 0 {
			return fmt.Errorf("set vlan_vid on an untagged frame")
		}
		p.VLANTCI = p.VLANTCI&0xe000 | binary.BigEndian.Uint16(v)&0x1fff
	case flows.FieldEthSrc:
		copy(p.EthSrc[:], v)
	case flows.FieldEthDst:
		copy(p.EthDst[:], v)
	case flows.FieldARPOp:
		p.ARPOp = binary.BigEndian.Uint16(v)
	case flows.FieldARPSPA:
		copy(p.ARPSPA[:], v)
	case flows.FieldARPTPA:
		copy(p.ARPTPA[:], v)
	case flows.FieldARPSHA:
		copy(p.ARPSHA[:], v)
	case flows.FieldARPTHA:
		copy(p.ARPTHA[:], v)
	case flows.FieldIPv6Src:
		copy(p.IPv6Src[:], v)
	case flows.FieldIPv6Dst:
		copy(p.IPv6Dst[:], v)
	case flows.FieldICMPv6Type:
		p.ICMPv6Type = v[0]
	case flows.FieldNDTarget:
		copy(p.NDTarget[:], v)
	case flows.FieldNDSLL:
		copy(p.NDSLL[:], v)
	case flows.FieldNDTLL:
		copy(p.NDTLL[:], v)
	case flows.FieldNDReserved:
		p.NDReserved = binary.BigEndian.Uint32(v)
	case flows.FieldNDOptionsType:
		p.NDOptionsType = v[0]
	case flows.FieldTunIPv4Src:
		copy(p.TunSrc[:], v)
	case flows.FieldTunIPv4Dst:
		copy(p.TunDst[:], v)
	default:
		return fmt.Errorf("field %v is not simulated", f)
	}
	return nil
}

// readSub returns the bits of a subfield (at most 64 of them).
func (p *Packet) readSub(s flows.Subfield) (uint64, error) {
	if s.Bits == 0 || s.Bits > 64 {
		return 0, fmt.Errorf("subfield %v: only 1..64 bits are simulated", s)
	}
	v, err := p.get(s.Field)
	if err != nil {
		return 0, err
	}
	if len(v) > 8 {
		return 0, fmt.Errorf("subfield %v of a field wider than 64 bits", s)
	}
	n := toU64(v) >> s.Offset
	if s.Bits < 64 {
		n &= 1<<s.Bits - 1
	}
	return n, nil
}

// writeSub writes value into the bits of a subfield (at most 64 of them).
func (p *Packet) writeSub(s flows.Subfield, value uint64) error {
	if s.Bits == 0 || s.Bits > 64 {
		return fmt.Errorf("subfield %v: only 1..64 bits are simulated", s)
	}
	v, err := p.get(s.Field)
	if err != nil {
		return err
	}
	if len(v) > 8 {
		return fmt.Errorf("subfield %v of a field wider than 64 bits", s)
	}
	mask := ^uint64(0)
	if s.Bits < 64 {
		mask = 1<<s.Bits - 1
	}
	n := toU64(v)&^(mask<<s.Offset) | (value&mask)<<s.Offset
	return p.set(s.Field, fromU64(n, len(v)))
}

// move copies Src into Dst: whole fields of any width, or subfields of at
// most 64 bits.
func (p *Packet) move(src, dst flows.Subfield) error {
	whole := func(s flows.Subfield) bool { return s.Offset == 0 && s.Bits == s.Field.Bits() }
	if whole(src) && whole(dst) && src.Field.Bytes() == dst.Field.Bytes() {
		v, err := p.get(src.Field)
		if err != nil {
			return err
		}
		return p.set(dst.Field, v)
	}
	v, err := p.readSub(src)
	if err != nil {
		return err
	}
	return p.writeSub(dst, v)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func toU64(b []byte) uint64 {
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	return n
}

func fromU64(n uint64, size int) []byte {
	out := make([]byte, size)
	for i := size - 1; i >= 0; i-- {
		out[i] = byte(n)
		n >>= 8
	}
	return out
}
