package ofswitch

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/brtun/brtun/flows"
)

// This file is brtun's own decoder for what a switch reports about its flows.
// libOpenflow's decoder is not used: it panics or misaligns on actions it does
// not know (pop_vlan among them). Matches and the actions brtun and learn()
// produce decode into the same flows.Flow values the compiler makes; anything
// else is kept as raw bytes (Match.Raw, flows.Raw), so a foreign flow never
// equals a desired one. Only a structural error (a length that does not add
// up) is an error, and that closes the connection in DumpFlows.

// DumpFlows returns the flows the filter selects, decoded. A reply that
// cannot be decoded closes the connection (the switch is not to be trusted)
// and returns the error.
func (c *Conn) DumpFlows(ctx context.Context, filter FlowFilter) ([]flows.Flow, error) {
	stats, err := c.DumpFlowStats(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]flows.Flow, 0, len(stats))
	for i, s := range stats {
		f, err := DecodeFlow(s)
		if err != nil {
			err = fmt.Errorf("dump flows: entry #%d: %w", i, err)
			c.shutdown(err)
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// DecodeFlow turns one flow-stats entry into a flows.Flow. It never panics;
// an error wraps ErrMalformed.
func DecodeFlow(s FlowStats) (flows.Flow, error) {
	m, err := decodeMatch(s.Match)
	if err != nil {
		return flows.Flow{}, err
	}
	actions, err := decodeInstructions(s.Instructions)
	if err != nil {
		return flows.Flow{}, err
	}
	return flows.Flow{
		Table:       s.Table,
		Priority:    s.Priority,
		Cookie:      s.Cookie,
		IdleTimeout: s.IdleTimeout,
		HardTimeout: s.HardTimeout,
		Match:       m,
		Actions:     actions,
	}, nil
}

// decodeMatch decodes the OXM/NXM entries of a match. Entries brtun does not
// model (or models differently: masked where it expects exact, a duplicate,
// an unexpected length) go to Match.Raw verbatim.
func decodeMatch(b []byte) (flows.Match, error) {
	var m flows.Match
	var tci vlanMatch
	for off := 0; off < len(b); {
		t, n, err := readTLV(b[off:])
		if err != nil {
			return flows.Match{}, fmt.Errorf("match entry at offset %d: %w", off, err)
		}
		off += n
		keep := func(ok bool) {
			if !ok {
				m.Raw = append(m.Raw, t.raw...)
			}
		}
		h := header(t.class, t.field, uint8(len(t.value)))
		switch h {
		case oxmInPort:
			keep(setOnce(&m.InPort, uint32(beUint(t.value)), t.masked))
		case nxmInPort:
			keep(setOnce(&m.InPort, port16to32(uint16(beUint(t.value))), t.masked))
		case oxmEthType, nxmEthType:
			keep(setOnce(&m.EthType, uint16(beUint(t.value)), t.masked))
		case oxmIPProto, nxmIPProto:
			keep(setOnce(&m.IPProto, t.value[0], t.masked))
		case oxmARPOp, nxmARPOp:
			keep(setOnce(&m.ARPOp, uint16(beUint(t.value)), t.masked))
		case oxmICMPv6Type, nxmICMPv6Type:
			keep(setOnce(&m.ICMPv6Type, t.value[0], t.masked))
		case oxmNDTarget, nxmNDTarget:
			keep(setOnce(&m.NDTarget, flows.IPv6(t.value), t.masked))
		case oxmIPv4Src, nxmIPv4Src:
			keep(setIPv4(&m.IPv4Src, t))
		case oxmIPv6Src, nxmIPv6Src:
			keep(setOnce(&m.IPv6Src, flows.IPv6(t.value), t.masked))
		case oxmARPSHA, nxmARPSHA:
			keep(setOnce(&m.ARPSHA, flows.MAC(t.value), t.masked))
		case oxmUDPSrc, nxmUDPSrc:
			keep(setOnce(&m.UDPSrc, uint16(beUint(t.value)), t.masked))
		case oxmUDPDst, nxmUDPDst:
			keep(setOnce(&m.UDPDst, uint16(beUint(t.value)), t.masked))
		case oxmEthSrc, nxmEthSrc:
			keep(setMAC(&m.EthSrc, t))
		case oxmEthDst, nxmEthDst:
			keep(setMAC(&m.EthDst, t))
		case oxmARPSPA, nxmARPSPA:
			keep(setIPv4(&m.ARPSPA, t))
		case oxmARPTPA, nxmARPTPA:
			keep(setIPv4(&m.ARPTPA, t))
		case oxmTunID, nxmTunID:
			keep(setMasked64(&m.TunID, t))
		case nxmTunIPv4Src:
			keep(setOnce(&m.TunSrc, flows.IPv4(t.value), t.masked))
		case nxmReg0:
			keep(setMasked32(&m.Reg0, t))
		case oxmVLANVID, oxmVLANPCP, nxmVLANTCI:
			keep(tci.add(h, t))
		default:
			keep(false)
		}
	}
	if tci.set {
		m.VLANTCI = &flows.MaskedU16{Value: tci.value, Mask: tci.mask}
	}
	return m, nil
}

// vlanMatch collects the VLAN match, which OVS sends in OpenFlow 1.3 as OXM
// vlan_vid (13 bits: present bit and id) plus vlan_pcp, or as NXM vlan_tci.
type vlanMatch struct {
	value, mask uint16
	set, nxm    bool
}

// add merges one VLAN entry; it refuses duplicates and mixed forms.
func (v *vlanMatch) add(h oxmHeader, t tlv) bool {
	const vidCFI, pcpBits = 0x1fff, 0xe000
	switch h {
	case oxmVLANVID:
		mask := uint16(vidCFI)
		if t.masked {
			mask = uint16(beUint(t.mask)) & vidCFI
		}
		if v.nxm || v.mask&vidCFI != 0 {
			return false
		}
		v.value |= uint16(beUint(t.value)) & mask
		v.mask |= mask
	case oxmVLANPCP:
		if t.masked || v.nxm || v.mask&pcpBits != 0 {
			return false
		}
		v.value |= uint16(t.value[0]&7) << 13
		v.mask |= pcpBits
	default: // NXM_OF_VLAN_TCI
		if v.set {
			return false
		}
		v.value, v.mask, v.nxm = uint16(beUint(t.value)), 0xffff, true
		if t.masked {
			v.mask = uint16(beUint(t.mask))
		}
	}
	v.set = true
	return true
}

// setOnce stores an exact value into a match field that is still unset.
func setOnce[T any](dst **T, v T, masked bool) bool {
	if masked || *dst != nil {
		return false
	}
	*dst = &v
	return true
}

// setMasked64 stores a 64-bit match (tun_id), masked or not.
func setMasked64(dst **flows.MaskedU64, t tlv) bool {
	if *dst != nil {
		return false
	}
	v := flows.MaskedU64{Value: beUint(t.value), Mask: ^uint64(0)}
	if t.masked {
		v.Mask = beUint(t.mask)
	}
	*dst = &v
	return true
}

// setMasked32 stores a 32-bit match (reg0), masked or not.
func setMasked32(dst **flows.MaskedU32, t tlv) bool {
	if *dst != nil {
		return false
	}
	v := flows.MaskedU32{Value: uint32(beUint(t.value)), Mask: 0xffffffff}
	if t.masked {
		v.Mask = uint32(beUint(t.mask))
	}
	*dst = &v
	return true
}

// setMAC stores an Ethernet address match, masked or not.
func setMAC(dst **flows.MaskedMAC, t tlv) bool {
	if *dst != nil {
		return false
	}
	v := flows.MaskedMAC{Value: flows.MAC(t.value), Mask: flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if t.masked {
		v.Mask = flows.MAC(t.mask)
	}
	*dst = &v
	return true
}

// setIPv4 stores an IPv4 address match, masked or not.
func setIPv4(dst **flows.MaskedIPv4, t tlv) bool {
	if *dst != nil {
		return false
	}
	v := flows.MaskedIPv4{Value: flows.IPv4(t.value), Mask: flows.IPv4{0xff, 0xff, 0xff, 0xff}}
	if t.masked {
		v.Mask = flows.IPv4(t.mask)
	}
	*dst = &v
	return true
}

// port16to32 maps an OpenFlow 1.0 port number to OpenFlow 1.3 numbering
// (reserved ports 0xff00.. become 0xffffff00..).
func port16to32(p uint16) uint32 {
	if p >= 0xff00 {
		return uint32(p) | 0xffff0000
	}
	return uint32(p)
}

// OpenFlow 1.3 instruction types brtun decodes.
const (
	instrGotoTable    = 1
	instrApplyActions = 4
	instrMeter        = 6
)

// decodeInstructions flattens the instructions into brtun's action list:
// apply-actions contents, then goto-table. Other instructions become Raw.
func decodeInstructions(b []byte) ([]flows.Action, error) {
	var out []flows.Action
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("%w: instruction header at offset %d: %d bytes left", ErrMalformed, off, len(b)-off)
		}
		typ := binary.BigEndian.Uint16(b[off:])
		length := int(binary.BigEndian.Uint16(b[off+2:]))
		if length < 8 || length%8 != 0 || length > len(b)-off {
			return nil, fmt.Errorf("%w: instruction type %d at offset %d has length %d (%d bytes left)", ErrMalformed, typ, off, length, len(b)-off)
		}
		in := b[off : off+length]
		off += length
		switch {
		case typ == instrMeter && length == 8 && len(out) == 0:
			out = append(out, flows.Meter{ID: binary.BigEndian.Uint32(in[4:8])})
		case typ == instrGotoTable && length == 8:
			out = append(out, flows.GotoTable{Table: in[4]})
		case typ == instrApplyActions:
			actions, err := decodeActions(in[8:])
			if err != nil {
				return nil, err
			}
			out = append(out, actions...)
		default:
			out = append(out, flows.Raw{Bytes: append([]byte(nil), in...)})
		}
	}
	return out, nil
}

// Action types and Nicira subtypes brtun decodes.
const (
	actOutput       = 0
	actPushVLAN     = 17
	actPopVLAN      = 18
	actSetField     = 25
	actExperimenter = 0xffff

	nxVendor          = 0x00002320
	nxRegMove         = 6
	nxRegLoad         = 7
	nxResubmitTable   = 14
	nxLearn           = 16
	nxRegLoad2        = 33
	nxResubmitInPort  = 0xfff8 // OFPP_IN_PORT in resubmit: "resubmit(,T)"
	nxResubmitNoTable = 0xff
)

// decodeActions decodes an action list. Each action must have a length that
// is a multiple of 8 and fits; what it means is decoded by decodeAction.
func decodeActions(b []byte) ([]flows.Action, error) {
	var out []flows.Action // nil for no actions (drop), as before
	if len(b) > 0 {
		out = make([]flows.Action, 0, min(len(b)/8, 16)) // an action takes 8 bytes or more
	}
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("%w: action header at offset %d: %d bytes left", ErrMalformed, off, len(b)-off)
		}
		typ := binary.BigEndian.Uint16(b[off:])
		length := int(binary.BigEndian.Uint16(b[off+2:]))
		if length < 8 || length%8 != 0 || length > len(b)-off {
			return nil, fmt.Errorf("%w: action type %d at offset %d has length %d (%d bytes left)", ErrMalformed, typ, off, length, len(b)-off)
		}
		a := b[off : off+length]
		off += length
		if d := decodeAction(typ, a); d != nil {
			out = append(out, d)
		} else {
			out = append(out, flows.Raw{Bytes: append([]byte(nil), a...)})
		}
	}
	return out, nil
}

// decodeAction interprets one well-framed action, or returns nil when it is
// not one brtun models exactly.
func decodeAction(typ uint16, a []byte) flows.Action {
	switch typ {
	case actOutput:
		if len(a) != 16 {
			return nil
		}
		port := binary.BigEndian.Uint32(a[4:8])
		if port == flows.PortController { // its max_len shows in OVS's text
			if binary.BigEndian.Uint16(a[8:10]) == 0xffff {
				return flows.ToController{}
			}
			return nil
		}
		return flows.OutputTo(port)
	case actPushVLAN:
		return flows.PushVLAN{EtherType: binary.BigEndian.Uint16(a[4:6])}
	case actPopVLAN:
		return flows.PopVLAN{}
	case actSetField:
		return decodeSetField(a[4:])
	case actExperimenter:
		if len(a) < 16 || binary.BigEndian.Uint32(a[4:8]) != nxVendor {
			return nil
		}
		return decodeNicira(binary.BigEndian.Uint16(a[8:10]), a)
	}
	return nil
}

// decodeSetField decodes the OXM entry of a set_field action (padding after
// it is allowed).
func decodeSetField(b []byte) flows.Action {
	t, _, err := readTLV(b)
	if err != nil || t.masked {
		return nil
	}
	f, size, ok := fieldByHeader(t.class, t.field)
	if !ok || size != len(t.value) {
		return nil
	}
	return flows.SetField{Field: f, Value: append([]byte(nil), t.value...)}
}

// decodeNicira decodes the Nicira extension actions brtun uses.
func decodeNicira(subtype uint16, a []byte) flows.Action {
	switch subtype {
	case nxResubmitTable:
		if len(a) != 16 || binary.BigEndian.Uint16(a[10:12]) != nxResubmitInPort || a[12] == nxResubmitNoTable {
			return nil
		}
		return flows.Resubmit{Table: a[12]}
	case nxRegLoad:
		if len(a) != 24 {
			return nil
		}
		ofsNbits := binary.BigEndian.Uint16(a[10:12])
		dst, ok := subfieldOf(binary.BigEndian.Uint32(a[12:16]), ofsNbits>>6, ofsNbits&0x3f+1)
		if !ok {
			return nil
		}
		value := binary.BigEndian.Uint64(a[16:24])
		if dst.Bits < 64 && value>>dst.Bits != 0 {
			return nil
		}
		return flows.Load{Dst: dst, Value: value}
	case nxRegLoad2:
		return decodeRegLoad2(a[10:])
	case nxRegMove:
		if len(a) != 24 {
			return nil
		}
		n := binary.BigEndian.Uint16(a[10:12])
		src, ok1 := subfieldOf(binary.BigEndian.Uint32(a[16:20]), binary.BigEndian.Uint16(a[12:14]), n)
		dst, ok2 := subfieldOf(binary.BigEndian.Uint32(a[20:24]), binary.BigEndian.Uint16(a[14:16]), n)
		if !ok1 || !ok2 {
			return nil
		}
		return flows.Move{Src: src, Dst: dst}
	case nxLearn:
		return decodeLearn(a)
	}
	return nil
}

// subfieldOf builds a subfield from an unmasked NXM/OXM header, checking that
// the range lies inside the field.
func subfieldOf(hdr uint32, ofs, n uint16) (flows.Subfield, bool) {
	if hdr&(1<<8) != 0 {
		return flows.Subfield{}, false
	}
	f, size, ok := fieldByHeader(uint16(hdr>>16), uint8(hdr>>9)&0x7f)
	if !ok || int(hdr&0xff) != size || n == 0 || int(ofs)+int(n) > int(f.Bits()) {
		return flows.Subfield{}, false
	}
	return flows.Subfield{Field: f, Offset: ofs, Bits: n}, true
}

// decodeRegLoad2 decodes NXAST_REG_LOAD2 (an OXM entry, masked for a
// subfield), the form learned flows carry their loads in.
func decodeRegLoad2(b []byte) flows.Action {
	t, _, err := readTLV(b)
	if err != nil {
		return nil
	}
	f, size, ok := fieldByHeader(t.class, t.field)
	if !ok || size != len(t.value) || size > 8 {
		return nil
	}
	value := beUint(t.value)
	if !t.masked {
		if value>>f.Bits() != 0 {
			return nil
		}
		return flows.Load{Dst: flows.Whole(f), Value: value}
	}
	mask := beUint(t.mask)
	if mask == 0 || value&^mask != 0 {
		return nil
	}
	ofs := uint16(bits.TrailingZeros64(mask))
	n := uint16(bits.OnesCount64(mask))
	if mask>>ofs != 1<<n-1 || ofs+n > f.Bits() {
		return nil // not one contiguous range inside the field
	}
	return flows.Load{Dst: flows.Subfield{Field: f, Offset: ofs, Bits: n}, Value: value >> ofs}
}

// Learn spec header bits (nx_learn_spec_header).
const (
	learnSrcImmediate = 1 << 13
	learnDstShift     = 11
	learnNBitsMask    = 0x3ff
	learnDstMatch     = 0
	learnDstLoad      = 1
	learnDstOutput    = 2
)

// decodeLearn decodes NXAST_LEARN into flows.Learn. Learn features brtun does
// not use (flags, fin timeouts, immediate values over 64 bits) make it Raw.
func decodeLearn(a []byte) flows.Action {
	if len(a) < 32 {
		return nil
	}
	l := flows.Learn{
		IdleTimeout: binary.BigEndian.Uint16(a[10:12]),
		HardTimeout: binary.BigEndian.Uint16(a[12:14]),
		Priority:    binary.BigEndian.Uint16(a[14:16]),
		Cookie:      binary.BigEndian.Uint64(a[16:24]),
		Table:       a[26],
		Specs:       make([]flows.LearnSpec, 0, (len(a)-32)/8), // a spec takes 8 bytes or more
	}
	flags := binary.BigEndian.Uint16(a[24:26])
	finIdle := binary.BigEndian.Uint16(a[28:30])
	finHard := binary.BigEndian.Uint16(a[30:32])
	if flags != 0 || finIdle != 0 || finHard != 0 {
		return nil
	}
	specs := a[32:]
	for off := 0; off+2 <= len(specs); {
		hdr := binary.BigEndian.Uint16(specs[off:])
		if hdr == 0 { // end of specs; the rest is padding
			for _, p := range specs[off:] {
				if p != 0 {
					return nil
				}
			}
			break
		}
		off += 2
		spec, n, ok := decodeLearnSpec(hdr, specs[off:])
		if !ok {
			return nil
		}
		l.Specs = append(l.Specs, spec)
		off += n
		if off+2 > len(specs) && off != len(specs) {
			return nil // a stray byte after the last spec
		}
	}
	return l
}

// decodeLearnSpec decodes the body of one learn spec after its header and
// returns how many bytes it used.
func decodeLearnSpec(hdr uint16, b []byte) (flows.LearnSpec, int, bool) {
	n := hdr & learnNBitsMask
	dstType := hdr >> learnDstShift & 3
	immediate := hdr&learnSrcImmediate != 0
	if n == 0 || hdr>>14 != 0 {
		return flows.LearnSpec{}, 0, false
	}
	field := func(off int) (flows.Subfield, bool) {
		if len(b) < off+6 {
			return flows.Subfield{}, false
		}
		return subfieldOf(binary.BigEndian.Uint32(b[off:]), binary.BigEndian.Uint16(b[off+4:]), n)
	}
	var s flows.LearnSpec
	used := 0
	if immediate {
		size := 2 * int((n+15)/16)
		if size > 8 || len(b) < size {
			return flows.LearnSpec{}, 0, false
		}
		s.Value = beUint(b[:size])
		if n < 64 && s.Value>>n != 0 {
			return flows.LearnSpec{}, 0, false
		}
		used = size
	} else {
		src, ok := field(0)
		if !ok {
			return flows.LearnSpec{}, 0, false
		}
		s.Src = src
		used = 6
	}
	switch dstType {
	case learnDstMatch, learnDstLoad:
		dst, ok := field(used)
		if !ok {
			return flows.LearnSpec{}, 0, false
		}
		s.Dst = dst
		used += 6
		switch {
		case dstType == learnDstMatch && immediate:
			s.Kind = flows.LearnMatchValue
		case dstType == learnDstMatch:
			s.Kind = flows.LearnMatchField
		case immediate:
			s.Kind = flows.LearnLoadValue
		default:
			s.Kind = flows.LearnLoadField
		}
	case learnDstOutput:
		if immediate {
			return flows.LearnSpec{}, 0, false
		}
		s.Kind = flows.LearnOutput
	default:
		return flows.LearnSpec{}, 0, false
	}
	return s, used, true
}
