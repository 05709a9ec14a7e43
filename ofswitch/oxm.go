package ofswitch

import (
	"encoding/binary"
	"fmt"

	"github.com/brtun/brtun/flows"
)

// OXM/NXM classes (the upper 16 bits of a field header).
const (
	classNXM0     = 0x0000 // NXM_OF_*
	classNXM1     = 0x0001 // NXM_NX_*
	classEricsson = 0x1000 // ERICOXM_OF_*
	classOXM      = 0x8000 // OXM_OF_* (OpenFlow basic)
	classExp      = 0xffff // experimenter: a 4-byte experimenter id follows
)

// oxmHeader identifies a field on the wire: the 32-bit OXM/NXM header of its
// exact (unmasked) form, class << 16 | field << 9 | value length in bytes.
// The masked form of the same field sets bit 8 and doubles the length
// (value then mask). The zero header means "none".
type oxmHeader uint32

// The field headers: the one table of the OXM/NXM fields brtun writes or
// reads, named after OVS's names for them (OXM_OF_IN_PORT is oxmInPort,
// NXM_OF_IN_PORT nxmInPort). The encoder writes matches with the OXM header
// where OpenFlow 1.3 has one, as OVS reports them in flow stats; the decoder
// also accepts the NXM alternatives; fieldHeaders picks the ones actions use.
const (
	// OpenFlow basic: class, field, value bytes.
	oxmInPort     oxmHeader = classOXM<<16 | 0<<9 | 4
	oxmEthDst     oxmHeader = classOXM<<16 | 3<<9 | 6
	oxmEthSrc     oxmHeader = classOXM<<16 | 4<<9 | 6
	oxmEthType    oxmHeader = classOXM<<16 | 5<<9 | 2
	oxmVLANVID    oxmHeader = classOXM<<16 | 6<<9 | 2
	oxmVLANPCP    oxmHeader = classOXM<<16 | 7<<9 | 1
	oxmIPProto    oxmHeader = classOXM<<16 | 10<<9 | 1
	oxmIPv4Src    oxmHeader = classOXM<<16 | 11<<9 | 4
	oxmUDPSrc     oxmHeader = classOXM<<16 | 15<<9 | 2
	oxmUDPDst     oxmHeader = classOXM<<16 | 16<<9 | 2
	oxmARPOp      oxmHeader = classOXM<<16 | 21<<9 | 2
	oxmARPSPA     oxmHeader = classOXM<<16 | 22<<9 | 4
	oxmARPTPA     oxmHeader = classOXM<<16 | 23<<9 | 4
	oxmARPSHA     oxmHeader = classOXM<<16 | 24<<9 | 6
	oxmARPTHA     oxmHeader = classOXM<<16 | 25<<9 | 6
	oxmIPv6Src    oxmHeader = classOXM<<16 | 26<<9 | 16
	oxmIPv6Dst    oxmHeader = classOXM<<16 | 27<<9 | 16
	oxmICMPv6Type oxmHeader = classOXM<<16 | 29<<9 | 1
	oxmNDTarget   oxmHeader = classOXM<<16 | 31<<9 | 16
	oxmNDSLL      oxmHeader = classOXM<<16 | 32<<9 | 6
	oxmNDTLL      oxmHeader = classOXM<<16 | 33<<9 | 6
	oxmTunID      oxmHeader = classOXM<<16 | 38<<9 | 8

	// NXM_OF_*.
	nxmInPort  oxmHeader = classNXM0<<16 | 0<<9 | 2 // OpenFlow 1.0 port numbers
	nxmEthDst  oxmHeader = classNXM0<<16 | 1<<9 | 6
	nxmEthSrc  oxmHeader = classNXM0<<16 | 2<<9 | 6
	nxmEthType oxmHeader = classNXM0<<16 | 3<<9 | 2
	nxmVLANTCI oxmHeader = classNXM0<<16 | 4<<9 | 2
	nxmIPProto oxmHeader = classNXM0<<16 | 6<<9 | 1
	nxmIPv4Src oxmHeader = classNXM0<<16 | 7<<9 | 4
	nxmUDPSrc  oxmHeader = classNXM0<<16 | 11<<9 | 2
	nxmUDPDst  oxmHeader = classNXM0<<16 | 12<<9 | 2
	nxmARPOp   oxmHeader = classNXM0<<16 | 15<<9 | 2
	nxmARPSPA  oxmHeader = classNXM0<<16 | 16<<9 | 4
	nxmARPTPA  oxmHeader = classNXM0<<16 | 17<<9 | 4

	// NXM_NX_*.
	nxmReg0       oxmHeader = classNXM1<<16 | 0<<9 | 4
	nxmTunID      oxmHeader = classNXM1<<16 | 16<<9 | 8
	nxmARPSHA     oxmHeader = classNXM1<<16 | 17<<9 | 6
	nxmARPTHA     oxmHeader = classNXM1<<16 | 18<<9 | 6
	nxmIPv6Src    oxmHeader = classNXM1<<16 | 19<<9 | 16
	nxmIPv6Dst    oxmHeader = classNXM1<<16 | 20<<9 | 16
	nxmICMPv6Type oxmHeader = classNXM1<<16 | 21<<9 | 1
	nxmNDTarget   oxmHeader = classNXM1<<16 | 23<<9 | 16
	nxmNDSLL      oxmHeader = classNXM1<<16 | 24<<9 | 6
	nxmNDTLL      oxmHeader = classNXM1<<16 | 25<<9 | 6
	nxmTunIPv4Src oxmHeader = classNXM1<<16 | 31<<9 | 4
	nxmTunIPv4Dst oxmHeader = classNXM1<<16 | 32<<9 | 4

	// ERICOXM_OF_*.
	ericNDReserved    oxmHeader = classEricsson<<16 | 1<<9 | 4
	ericNDOptionsType oxmHeader = classEricsson<<16 | 2<<9 | 1
)

// header builds the exact-form header of a field read from the wire, to
// compare with the table.
func header(class uint16, field uint8, size uint8) oxmHeader {
	return oxmHeader(uint32(class)<<16 | uint32(field)<<9 | uint32(size))
}

func (h oxmHeader) class() uint16 { return uint16(h >> 16) }
func (h oxmHeader) field() uint8  { return uint8(h>>9) & 0x7f }
func (h oxmHeader) size() uint8   { return uint8(h) }

// fieldHeaders says how f is written on the wire. nxm is what reg_load,
// reg_move and learn use (OVS sends those back with the same NXM headers);
// oxm is what set_field uses in OpenFlow 1.3. A zero header means the field
// has no such encoding and the other one is used.
func fieldHeaders(f flows.Field) (nxm, oxm oxmHeader, ok bool) {
	switch f {
	case flows.FieldInPort:
		return nxmInPort, 0, true
	case flows.FieldReg0:
		return nxmReg0, 0, true
	case flows.FieldTunID:
		return nxmTunID, oxmTunID, true
	case flows.FieldVLANTCI:
		return nxmVLANTCI, 0, true
	case flows.FieldVLANVID:
		return 0, oxmVLANVID, true
	case flows.FieldEthSrc:
		return nxmEthSrc, oxmEthSrc, true
	case flows.FieldEthDst:
		return nxmEthDst, oxmEthDst, true
	case flows.FieldARPOp:
		return nxmARPOp, oxmARPOp, true
	case flows.FieldARPSPA:
		return nxmARPSPA, oxmARPSPA, true
	case flows.FieldARPTPA:
		return nxmARPTPA, oxmARPTPA, true
	case flows.FieldARPSHA:
		return nxmARPSHA, oxmARPSHA, true
	case flows.FieldARPTHA:
		return nxmARPTHA, oxmARPTHA, true
	case flows.FieldIPv6Src:
		return nxmIPv6Src, oxmIPv6Src, true
	case flows.FieldIPv6Dst:
		return nxmIPv6Dst, oxmIPv6Dst, true
	case flows.FieldICMPv6Type:
		return nxmICMPv6Type, oxmICMPv6Type, true
	case flows.FieldNDTarget:
		return nxmNDTarget, oxmNDTarget, true
	case flows.FieldNDSLL:
		return nxmNDSLL, oxmNDSLL, true
	case flows.FieldNDTLL:
		return nxmNDTLL, oxmNDTLL, true
	case flows.FieldNDReserved:
		return 0, ericNDReserved, true
	case flows.FieldNDOptionsType:
		return 0, ericNDOptionsType, true
	case flows.FieldTunIPv4Src:
		return nxmTunIPv4Src, 0, true
	case flows.FieldTunIPv4Dst:
		return nxmTunIPv4Dst, 0, true
	}
	return 0, 0, false
}

// fieldByHeader finds the field a header on the wire names, with its value
// size in bytes.
func fieldByHeader(class uint16, field uint8) (flows.Field, int, bool) {
	for f := flows.Field(1); f.Valid(); f++ {
		nxm, oxm, _ := fieldHeaders(f)
		for _, h := range []oxmHeader{nxm, oxm} {
			if h != 0 && h.class() == class && h.field() == field {
				return f, int(h.size()), true
			}
		}
	}
	return 0, 0, false
}

// nxmHeaderOf returns the header reg_load, reg_move and learn use for f.
func nxmHeaderOf(f flows.Field) (oxmHeader, error) {
	nxm, oxm, ok := fieldHeaders(f)
	switch {
	case !ok:
		return oxmHeader(0), fmt.Errorf("field %s has no wire encoding", f)
	case nxm != 0:
		return nxm, nil
	default:
		return oxm, nil
	}
}

// setFieldHeaderOf returns the header set_field uses for f in OpenFlow 1.3.
func setFieldHeaderOf(f flows.Field) (oxmHeader, error) {
	nxm, oxm, ok := fieldHeaders(f)
	switch {
	case !ok:
		return oxmHeader(0), fmt.Errorf("field %s has no wire encoding", f)
	case oxm != 0:
		return oxm, nil
	default:
		return nxm, nil
	}
}

// tlv is one OXM/NXM entry read from the wire.
type tlv struct {
	class  uint16
	field  uint8
	masked bool
	value  []byte // shares the input
	mask   []byte // shares the input, nil unless masked
	raw    []byte // the whole entry, shares the input
}

// readTLV reads one OXM/NXM entry (header, optional experimenter id, value,
// optional mask) from b and returns it with its total length. The entry's
// slices share b's memory: a caller that keeps one copies it.
func readTLV(b []byte) (tlv, int, error) {
	if len(b) < 4 {
		return tlv{}, 0, fmt.Errorf("%w: oxm header needs 4 bytes, %d left", ErrMalformed, len(b))
	}
	hdr := binary.BigEndian.Uint32(b[0:4])
	t := tlv{class: uint16(hdr >> 16), field: uint8(hdr>>9) & 0x7f, masked: hdr&(1<<8) != 0}
	payload := int(hdr & 0xff)
	total := 4 + payload
	if total > len(b) {
		return tlv{}, 0, fmt.Errorf("%w: oxm entry of %d bytes, %d left", ErrMalformed, total, len(b))
	}
	body := b[4:total]
	if t.class == classExp {
		if len(body) < 4 {
			return tlv{}, 0, fmt.Errorf("%w: experimenter oxm without experimenter id", ErrMalformed)
		}
		body = body[4:]
	}
	if t.masked {
		if len(body)%2 != 0 {
			return tlv{}, 0, fmt.Errorf("%w: masked oxm entry with odd length %d", ErrMalformed, len(body))
		}
		t.value, t.mask = body[:len(body)/2:len(body)/2], body[len(body)/2:]
	} else {
		t.value = body
	}
	t.raw = b[:total:total]
	return t, total, nil
}

// beUint reads a big-endian unsigned integer of up to 8 bytes.
func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}
