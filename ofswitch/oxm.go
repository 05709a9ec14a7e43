package ofswitch

import (
	"encoding/binary"
	"fmt"

	"github.com/brtun/brtun/flows"
)

// OXM/NXM classes (the upper 16 bits of a field header).
const (
	classNXM0     uint16 = 0x0000 // NXM_OF_*
	classNXM1     uint16 = 0x0001 // NXM_NX_*
	classEricsson uint16 = 0x1000 // ERICOXM_OF_*
	classOXM      uint16 = 0x8000 // OXM_OF_* (OpenFlow basic)
	classExp      uint16 = 0xffff // experimenter: a 4-byte experimenter id follows
)

// oxmHeader identifies a field on the wire: the 32-bit OXM/NXM header of its
// exact (unmasked) form, class << 16 | field << 9 | value length in bytes.
// The zero header means "none".
type oxmHeader uint32

// header builds an oxmHeader.
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
		return header(classNXM0, 0, 2), oxmHeader(0), true
	case flows.FieldReg0:
		return header(classNXM1, 0, 4), oxmHeader(0), true
	case flows.FieldTunID:
		return header(classNXM1, 16, 8), header(classOXM, 38, 8), true
	case flows.FieldVLANTCI:
		return header(classNXM0, 4, 2), oxmHeader(0), true
	case flows.FieldVLANVID:
		return oxmHeader(0), header(classOXM, 6, 2), true
	case flows.FieldEthSrc:
		return header(classNXM0, 2, 6), header(classOXM, 4, 6), true
	case flows.FieldEthDst:
		return header(classNXM0, 1, 6), header(classOXM, 3, 6), true
	case flows.FieldARPOp:
		return header(classNXM0, 15, 2), header(classOXM, 21, 2), true
	case flows.FieldARPSPA:
		return header(classNXM0, 16, 4), header(classOXM, 22, 4), true
	case flows.FieldARPTPA:
		return header(classNXM0, 17, 4), header(classOXM, 23, 4), true
	case flows.FieldARPSHA:
		return header(classNXM1, 17, 6), header(classOXM, 24, 6), true
	case flows.FieldARPTHA:
		return header(classNXM1, 18, 6), header(classOXM, 25, 6), true
	case flows.FieldIPv6Src:
		return header(classNXM1, 19, 16), header(classOXM, 26, 16), true
	case flows.FieldIPv6Dst:
		return header(classNXM1, 20, 16), header(classOXM, 27, 16), true
	case flows.FieldICMPv6Type:
		return header(classNXM1, 21, 1), header(classOXM, 29, 1), true
	case flows.FieldNDTarget:
		return header(classNXM1, 23, 16), header(classOXM, 31, 16), true
	case flows.FieldNDSLL:
		return header(classNXM1, 24, 6), header(classOXM, 32, 6), true
	case flows.FieldNDTLL:
		return header(classNXM1, 25, 6), header(classOXM, 33, 6), true
	case flows.FieldNDReserved:
		return oxmHeader(0), header(classEricsson, 1, 4), true
	case flows.FieldNDOptionsType:
		return oxmHeader(0), header(classEricsson, 2, 1), true
	}
	return oxmHeader(0), oxmHeader(0), false
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
	value  []byte // copy
	mask   []byte // copy, nil unless masked
	raw    []byte // the whole entry, copy
}

// readTLV reads one OXM/NXM entry (header, optional experimenter id, value,
// optional mask) from b and returns it with its total length.
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
		t.value = append([]byte(nil), body[:len(body)/2]...)
		t.mask = append([]byte(nil), body[len(body)/2:]...)
	} else {
		t.value = append([]byte(nil), body...)
	}
	t.raw = append([]byte(nil), b[:total]...)
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

// putBE writes v big-endian into n bytes.
func putBE(v uint64, n int) []byte {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}
