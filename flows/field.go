package flows

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// Field names a packet or metadata field that set_field, load, move and learn
// address. Each maps 1:1 to one OXM/NXM field.
type Field uint8

// The fields brtun uses. The zero value is not a field.
const (
	FieldInPort Field = iota + 1
	FieldReg0
	FieldTunID
	FieldVLANTCI
	FieldVLANVID
	FieldEthSrc
	FieldEthDst
	FieldARPOp
	FieldARPSPA
	FieldARPTPA
	FieldARPSHA
	FieldARPTHA
	FieldIPv6Src
	FieldIPv6Dst
	FieldICMPv6Type
	FieldNDTarget
	FieldNDSLL
	FieldNDTLL
	FieldNDReserved
	FieldNDOptionsType
	fieldEnd
)

// valueFormat says how OVS prints a field's value.
type valueFormat uint8

const (
	formatDecimal valueFormat = iota
	formatHex
	formatMAC
	formatIPv4
	formatIPv6
)

// fieldInfo describes a field the way OVS 3.1 names and prints it.
type fieldInfo struct {
	name    string // OVS field name, used by set_field ("tun_id")
	nxmName string // NXM/OXM name, used by move, load and learn ("NXM_NX_TUN_ID")
	bits    uint16 // width of the field in bits
	format  valueFormat
}

// info returns the description of f; f must be Valid.
func (f Field) info() fieldInfo {
	switch f {
	case FieldInPort:
		return fieldInfo{"in_port", "NXM_OF_IN_PORT", 16, formatDecimal}
	case FieldReg0:
		return fieldInfo{"reg0", "NXM_NX_REG0", 32, formatHex}
	case FieldTunID:
		return fieldInfo{"tun_id", "NXM_NX_TUN_ID", 64, formatHex}
	case FieldVLANTCI:
		return fieldInfo{"vlan_tci", "NXM_OF_VLAN_TCI", 16, formatHex}
	case FieldVLANVID:
		return fieldInfo{"vlan_vid", "OXM_OF_VLAN_VID", 13, formatDecimal}
	case FieldEthSrc:
		return fieldInfo{"eth_src", "NXM_OF_ETH_SRC", 48, formatMAC}
	case FieldEthDst:
		return fieldInfo{"eth_dst", "NXM_OF_ETH_DST", 48, formatMAC}
	case FieldARPOp:
		return fieldInfo{"arp_op", "NXM_OF_ARP_OP", 16, formatDecimal}
	case FieldARPSPA:
		return fieldInfo{"arp_spa", "NXM_OF_ARP_SPA", 32, formatIPv4}
	case FieldARPTPA:
		return fieldInfo{"arp_tpa", "NXM_OF_ARP_TPA", 32, formatIPv4}
	case FieldARPSHA:
		return fieldInfo{"arp_sha", "NXM_NX_ARP_SHA", 48, formatMAC}
	case FieldARPTHA:
		return fieldInfo{"arp_tha", "NXM_NX_ARP_THA", 48, formatMAC}
	case FieldIPv6Src:
		return fieldInfo{"ipv6_src", "NXM_NX_IPV6_SRC", 128, formatIPv6}
	case FieldIPv6Dst:
		return fieldInfo{"ipv6_dst", "NXM_NX_IPV6_DST", 128, formatIPv6}
	case FieldICMPv6Type:
		return fieldInfo{"icmpv6_type", "NXM_NX_ICMPV6_TYPE", 8, formatDecimal}
	case FieldNDTarget:
		return fieldInfo{"nd_target", "NXM_NX_ND_TARGET", 128, formatIPv6}
	case FieldNDSLL:
		return fieldInfo{"nd_sll", "NXM_NX_ND_SLL", 48, formatMAC}
	case FieldNDTLL:
		return fieldInfo{"nd_tll", "NXM_NX_ND_TLL", 48, formatMAC}
	case FieldNDReserved:
		return fieldInfo{"nd_reserved", "ERICOXM_OF_ICMPV6_ND_RESERVED", 32, formatDecimal}
	case FieldNDOptionsType:
		return fieldInfo{"nd_options_type", "ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE", 8, formatDecimal}
	}
	return fieldInfo{}
}

// Valid reports whether f is one of the declared fields.
func (f Field) Valid() bool { return f > 0 && f < fieldEnd }

// Name is the OVS field name as set_field prints it, e.g. "tun_id".
func (f Field) Name() string {
	if !f.Valid() {
		return "field" + strconv.Itoa(int(f))
	}
	return f.info().name
}

// NXMName is the name move, load and learn print, e.g. "NXM_NX_TUN_ID".
func (f Field) NXMName() string {
	if !f.Valid() {
		return "FIELD" + strconv.Itoa(int(f))
	}
	return f.info().nxmName
}

// Bits is the width of the field in bits (0 for an invalid field).
func (f Field) Bits() uint16 {
	if !f.Valid() {
		return 0
	}
	return f.info().bits
}

// Bytes is the width of the field's value in bytes, as set_field carries it.
func (f Field) Bytes() int { return int(f.Bits()+7) / 8 }

// String returns the field's OVS name.
func (f Field) String() string { return f.Name() }

// formatValue prints a big-endian value of this field the way OVS's
// mf_format does. It never panics: a value of the wrong length is shown as
// hex.
func (f Field) formatValue(v []byte) string {
	if !f.Valid() || len(v) != f.Bytes() {
		return hexBytes(v)
	}
	switch f.info().format {
	case formatMAC:
		var m MAC
		copy(m[:], v)
		return m.String()
	case formatIPv4:
		var a IPv4
		copy(a[:], v)
		return a.String()
	case formatIPv6:
		var a IPv6
		copy(a[:], v)
		return a.String()
	case formatHex:
		return hexBytes(v)
	default:
		var n uint64
		for _, b := range v {
			n = n<<8 | uint64(b)
		}
		return strconv.FormatUint(n, 10)
	}
}

// hexBytes prints big-endian bytes like OVS's ds_put_hex: "0x" and the value
// without leading zeros, or "0".
func hexBytes(v []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2+2*len(v))
	for _, b := range v {
		if len(out) == 0 {
			if b == 0 {
				continue
			}
			out = append(out, '0', 'x')
			if b >= 0x10 {
				out = append(out, digits[b>>4])
			}
			out = append(out, digits[b&0xf])
			continue
		}
		out = append(out, digits[b>>4], digits[b&0xf])
	}
	if len(out) == 0 {
		return "0"
	}
	return string(out)
}

// hexU64 prints like C's "%#x": "0" for zero, else "0x" and lower-case hex.
func hexU64(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// Subfield is a bit range of a field, as move, load and learn address it.
// Offset 0 and Bits equal to the field's width mean the whole field ("[]").
type Subfield struct {
	Field  Field
	Offset uint16
	Bits   uint16
}

// Whole returns the subfield covering all of f.
func Whole(f Field) Subfield { return Subfield{Field: f, Offset: 0, Bits: f.Bits()} }

// Bitrange returns bits [offset, offset+bits) of f.
func Bitrange(f Field, offset, bits uint16) Subfield {
	return Subfield{Field: f, Offset: offset, Bits: bits}
}

// String prints the subfield like OVS: NXM_OF_ETH_DST[], NXM_NX_REG0[0..7].
func (s Subfield) String() string {
	name := s.Field.NXMName()
	switch {
	case s.Offset == 0 && s.Bits == s.Field.Bits():
		return name + "[]"
	case s.Bits == 1:
		return fmt.Sprintf("%s[%d]", name, s.Offset)
	default:
		return fmt.Sprintf("%s[%d..%d]", name, s.Offset, int(s.Offset)+int(s.Bits)-1)
	}
}

// valid reports whether the range lies inside the field.
func (s Subfield) valid() bool {
	return s.Field.Valid() && s.Bits > 0 && int(s.Offset)+int(s.Bits) <= int(s.Field.Bits())
}

// MAC is an Ethernet address.
type MAC [6]byte

// String prints the address as OVS does: 02:00:00:00:00:01.
func (m MAC) String() string {
	// By hand: flow keys print every MAC of a compile (fmt showed in profiles).
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i], b[3*i+1] = hex[v>>4], hex[v&0xf]
	}
	return string(b[:])
}

// ParseMAC parses a colon-separated Ethernet address.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("parse MAC %q: want xx:xx:xx:xx:xx:xx", s)
	}
	for i := range 6 {
		if i > 0 && s[3*i-1] != ':' {
			return m, fmt.Errorf("parse MAC %q: want xx:xx:xx:xx:xx:xx", s)
		}
		b, err := strconv.ParseUint(s[3*i:3*i+2], 16, 8)
		if err != nil {
			return m, fmt.Errorf("parse MAC %q: %w", s, err)
		}
		m[i] = byte(b)
	}
	return m, nil
}

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IPv4 is an IPv4 address.
type IPv4 [4]byte

// String prints the dotted quad.
func (a IPv4) String() string { return netip.AddrFrom4(a).String() }

// IPv6 is an IPv6 address.
type IPv6 [16]byte

// String prints the address in RFC 5952 form, as OVS does.
func (a IPv6) String() string { return netip.AddrFrom16(a).String() }

// be16 returns v as 2 big-endian bytes.
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// be64 returns v as 8 big-endian bytes.
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
