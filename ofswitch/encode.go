package ofswitch

import (
	"encoding/binary"
	"fmt"

	of13 "github.com/contiv/libOpenflow/openflow13"

	"github.com/brtun/brtun/flows"
)

// Command is what a FlowMod does with a flows.Flow.
type Command uint8

// The flow-mod commands brtun uses.
const (
	// Add installs the flow, replacing one with the same table, priority and
	// match (counters and duration restart).
	Add Command = iota + 1
	// ModifyStrict replaces the instructions of the flow with the same table,
	// priority and match. OVS keeps its counters, duration and cookie, so a
	// flow whose cookie must change is re-added with Add instead.
	ModifyStrict
	// DeleteStrict removes the flow with the same table, priority and match.
	DeleteStrict
)

// String names the command.
func (c Command) String() string {
	switch c {
	case Add:
		return "add"
	case ModifyStrict:
		return "modify-strict"
	case DeleteStrict:
		return "delete-strict"
	default:
		return fmt.Sprintf("command(%d)", uint8(c))
	}
}

// Encode turns a flow into an OpenFlow 1.3 FLOW_MOD. Match fields become
// OXM/NXM entries, actions an apply-actions instruction and a trailing
// GotoTable a goto-table instruction; no actions means drop. Match.Raw (from
// a decoded flow) is sent back verbatim, so a flow with fields brtun does not
// know can still be deleted strictly. Raw actions cannot be encoded: they only
// exist in decoded flows, which brtun deletes but never installs.
//
// The message is appended into one buffer with no intermediate objects: a
// bulk install encodes tens of thousands of flows while the switch waits,
// and libOpenflow's marshalling cost as much CPU per flow as ovs-vswitchd
// spends installing it. The bytes are pinned by testdata/encode.golden.
func Encode(f flows.Flow, cmd Command) (Message, error) {
	var command uint8
	var cookie uint64
	var idle, hard uint16
	switch cmd {
	case Add:
		command, cookie, idle, hard = of13.FC_ADD, f.Cookie, f.IdleTimeout, f.HardTimeout
	case ModifyStrict:
		command = of13.FC_MODIFY_STRICT
	case DeleteStrict:
		command = of13.FC_DELETE_STRICT
	default:
		return nil, fmt.Errorf("encode %s: unknown command %d", f, uint8(cmd))
	}
	b := make([]byte, flowModFixedLen, 256)
	b[0], b[1] = Version13, typeFlowMod
	binary.BigEndian.PutUint64(b[8:], cookie)
	// cookie_mask (b[16:24]) stays 0.
	b[24], b[25] = f.Table, command
	binary.BigEndian.PutUint16(b[26:], idle)
	binary.BigEndian.PutUint16(b[28:], hard)
	binary.BigEndian.PutUint16(b[30:], f.Priority)
	binary.BigEndian.PutUint32(b[32:], noBuffer)
	binary.BigEndian.PutUint32(b[36:], of13.P_ANY)    // out_port
	binary.BigEndian.PutUint32(b[40:], of13.OFPG_ANY) // out_group
	// flags (b[44:46]) and pad stay 0.
	b, err := appendMatch(b, f.Match)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", f, err)
	}
	if cmd != DeleteStrict {
		if b, err = appendInstructions(b, f.Actions); err != nil {
			return nil, fmt.Errorf("encode %s: %w", f, err)
		}
	}
	if len(b) > 0xffff {
		return nil, fmt.Errorf("encode %s: %d bytes do not fit in one message", f, len(b))
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b, nil
}

// flowModFixedLen is the OpenFlow header plus ofp_flow_mod's fixed part,
// up to the match.
const flowModFixedLen = headerLen + 40

// noBuffer is OFP_NO_BUFFER: the flow_mod refers to no buffered packet.
const noBuffer = 0xffffffff

// EncodeDeleteByCookie builds a non-strict FLOW_MOD delete of every flow in
// table (or AllTables) whose cookie matches cookie under mask, whatever its
// match: how learned flows of a released VLAN are cleaned up.
func EncodeDeleteByCookie(table uint8, cookie, mask uint64) (Message, error) {
	if mask == 0 {
		return nil, fmt.Errorf("delete by cookie %#x in table %d: a zero mask would delete every flow", cookie, table)
	}
	fm := of13.NewFlowMod()
	fm.Command = of13.FC_DELETE
	fm.TableId = table
	fm.Cookie = cookie
	fm.CookieMask = mask
	fm.Priority = 0
	return marshal(fm)
}

// appendBE appends the low n bytes of v big-endian.
func appendBE(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendEntry appends one OXM/NXM entry: the header (with the mask bit and
// doubled length when masked), the value, then the mask.
func appendEntry(b []byte, h oxmHeader, value []byte, masked bool, mask []byte) []byte {
	hdr := uint32(h)
	if masked {
		hdr = hdr&^0xff | 1<<8 | uint32(2*h.size())
	}
	b = binary.BigEndian.AppendUint32(b, hdr)
	b = append(b, value...)
	if masked {
		b = append(b, mask...)
	}
	return b
}

// appendUintEntry appends an n-byte integer field, masked unless mask is
// all ones.
func appendUintEntry(b []byte, h oxmHeader, value, mask uint64) []byte {
	n := int(h.size())
	all := ^uint64(0)
	if n < 8 {
		all = 1<<(8*n) - 1
	}
	var v, m [8]byte
	binary.BigEndian.PutUint64(v[:], value)
	binary.BigEndian.PutUint64(m[:], mask)
	return appendEntry(b, h, v[8-n:], mask&all != all, m[8-n:])
}

// appendMatch appends the OXM match of a flow with the headers OVS reports
// in flow stats (OXM where OpenFlow 1.3 has one, NXM otherwise), padded to
// 8 bytes.
func appendMatch(b []byte, m flows.Match) ([]byte, error) {
	start := len(b)
	b = append(b, 0, of13.MatchType_OXM, 0, 0) // type, length (below)
	exact := ^uint64(0)
	// The fields go in the order OVS reports them (nx_put_raw), so that a
	// dump holds each flow as it was encoded (FlowKey) and ovs-ofctl would
	// send the same bytes.
	if m.InPort != nil {
		b = appendUintEntry(b, oxmInPort, uint64(*m.InPort), exact)
	}
	if m.EthSrc != nil {
		b = appendEntry(b, oxmEthSrc, m.EthSrc.Value[:], m.EthSrc.Mask != exactMAC, m.EthSrc.Mask[:])
	}
	if m.EthDst != nil {
		b = appendEntry(b, oxmEthDst, m.EthDst.Value[:], m.EthDst.Mask != exactMAC, m.EthDst.Mask[:])
	}
	if m.EthType != nil {
		b = appendUintEntry(b, oxmEthType, uint64(*m.EthType), exact)
	}
	if m.VLANTCI != nil {
		b = appendVLAN(b, *m.VLANTCI)
	}
	if m.IPv4Src != nil {
		b = appendEntry(b, oxmIPv4Src, m.IPv4Src.Value[:], m.IPv4Src.Mask != exactIPv4, m.IPv4Src.Mask[:])
	}
	if m.IPv6Src != nil {
		b = appendEntry(b, oxmIPv6Src, m.IPv6Src[:], false, nil)
	}
	if m.IPProto != nil {
		b = appendUintEntry(b, oxmIPProto, uint64(*m.IPProto), exact)
	}
	if m.UDPSrc != nil {
		b = appendUintEntry(b, oxmUDPSrc, uint64(*m.UDPSrc), exact)
	}
	if m.UDPDst != nil {
		b = appendUintEntry(b, oxmUDPDst, uint64(*m.UDPDst), exact)
	}
	if m.ICMPv6Type != nil {
		b = appendUintEntry(b, oxmICMPv6Type, uint64(*m.ICMPv6Type), exact)
	}
	if m.NDTarget != nil {
		b = appendEntry(b, oxmNDTarget, m.NDTarget[:], false, nil)
	}
	if m.ARPOp != nil {
		b = appendUintEntry(b, oxmARPOp, uint64(*m.ARPOp), exact)
	}
	if m.ARPSPA != nil {
		b = appendEntry(b, oxmARPSPA, m.ARPSPA.Value[:], m.ARPSPA.Mask != exactIPv4, m.ARPSPA.Mask[:])
	}
	if m.ARPTPA != nil {
		b = appendEntry(b, oxmARPTPA, m.ARPTPA.Value[:], m.ARPTPA.Mask != exactIPv4, m.ARPTPA.Mask[:])
	}
	if m.ARPSHA != nil {
		b = appendEntry(b, oxmARPSHA, m.ARPSHA[:], false, nil)
	}
	if m.TunID != nil {
		b = appendUintEntry(b, oxmTunID, m.TunID.Value, m.TunID.Mask)
	}
	if m.TunSrc != nil {
		b = appendEntry(b, nxmTunIPv4Src, m.TunSrc[:], false, nil)
	}
	if m.Reg0 != nil {
		b = appendUintEntry(b, nxmReg0, uint64(m.Reg0.Value), uint64(m.Reg0.Mask))
	}
	if len(m.Raw) > 0 {
		// Entries a decoder kept verbatim: check they are whole entries,
		// then pass them through as they came (the header keeps its own
		// mask bit; its length is the payload's).
		for off := 0; off < len(m.Raw); {
			t, n, err := readTLV(m.Raw[off:])
			if err != nil {
				return nil, fmt.Errorf("raw match: %w", err)
			}
			body := t.raw[4:]
			hdr := uint32(t.class)<<16 | uint32(t.field)<<9 | uint32(len(body))&0xff
			if t.masked {
				hdr |= 1 << 8
			}
			b = binary.BigEndian.AppendUint32(b, hdr)
			b = append(b, body...)
			off += n
		}
	}
	length := len(b) - start
	if length > 0xffff {
		return nil, fmt.Errorf("match of %d bytes", length)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(length))
	return appendPad8(b, length), nil
}

// appendPad8 pads a structure of length bytes that ends b to a multiple of 8.
func appendPad8(b []byte, length int) []byte {
	for ; length%8 != 0; length++ {
		b = append(b, 0)
	}
	return b
}

var (
	exactMAC  = flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	exactIPv4 = flows.IPv4{0xff, 0xff, 0xff, 0xff}
)

// appendVLAN writes a vlan_tci match the way OVS does in OpenFlow 1.3: as
// OXM vlan_vid when no PCP bits are involved, as NXM vlan_tci otherwise.
func appendVLAN(b []byte, t flows.MaskedU16) []byte {
	const vidCFI = 0x1fff
	if t.Mask&^vidCFI == 0 {
		mask := uint64(t.Mask)
		if t.Mask == vidCFI {
			mask = 0xffff // exact
		}
		return appendUintEntry(b, oxmVLANVID, uint64(t.Value&vidCFI), mask)
	}
	return appendUintEntry(b, nxmVLANTCI, uint64(t.Value), uint64(t.Mask))
}

// appendInstructions appends actions as an apply-actions instruction plus
// an optional trailing goto-table.
func appendInstructions(b []byte, actions []flows.Action) ([]byte, error) {
	if m, ok := first[flows.Meter](actions); ok { // the meter instruction comes first
		b = append(b, 0, instrMeter, 0, 8)
		b = binary.BigEndian.AppendUint32(b, m.ID)
		actions = actions[1:]
	}
	start := len(b)
	b = append(b, 0, of13.InstrType_APPLY_ACTIONS, 0, 0, 0, 0, 0, 0) // type, length, pad
	closeApply := func(b []byte) []byte {
		if len(b)-start == 8 { // no actions: no apply-actions instruction
			return b[:start]
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
		return b
	}
	for i, a := range actions {
		if _, ok := a.(flows.Meter); ok {
			return nil, fmt.Errorf("meter must be the first action")
		}
		if g, ok := a.(flows.GotoTable); ok {
			if i != len(actions)-1 {
				return nil, fmt.Errorf("goto_table:%d must be the last action", g.Table)
			}
			b = closeApply(b)
			return append(b, 0, of13.InstrType_GOTO_TABLE, 0, 8, g.Table, 0, 0, 0), nil
		}
		var err error
		if b, err = appendAction(b, a); err != nil {
			return nil, fmt.Errorf("action #%d (%v): %w", i, a, err)
		}
		if len(b)-start > 0xffff {
			return nil, fmt.Errorf("apply-actions of %d bytes", len(b)-start)
		}
	}
	return closeApply(b), nil
}

// appendNXHeader starts a Nicira extension action of length bytes.
func appendNXHeader(b []byte, length, subtype uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, of13.ActionType_Experimenter)
	b = binary.BigEndian.AppendUint16(b, length)
	b = binary.BigEndian.AppendUint32(b, of13.NxExperimenterID)
	return binary.BigEndian.AppendUint16(b, subtype)
}

// appendAction appends one action.
func appendAction(b []byte, a flows.Action) ([]byte, error) {
	switch a := a.(type) {
	case flows.Output:
		return appendOutput(b, a.Port), nil
	case flows.InPort:
		return appendOutput(b, flows.PortInPort), nil
	case flows.Normal:
		return appendOutput(b, flows.PortNormal), nil
	case flows.ToController:
		return appendOutput(b, flows.PortController), nil
	case flows.Resubmit:
		b = appendNXHeader(b, 16, of13.NXAST_RESUBMIT_TABLE)
		b = binary.BigEndian.AppendUint16(b, of13.OFPP_IN_PORT)
		return append(b, a.Table, 0, 0, 0), nil
	case flows.PushVLAN:
		b = append(b, 0, of13.ActionType_PushVlan, 0, 8)
		b = binary.BigEndian.AppendUint16(b, a.EtherType)
		return append(b, 0, 0), nil
	case flows.PopVLAN:
		return append(b, 0, of13.ActionType_PopVlan, 0, 8, 0, 0, 0, 0), nil
	case flows.SetField:
		h, err := setFieldHeaderOf(a.Field)
		if err != nil {
			return nil, err
		}
		if len(a.Value) != int(h.size()) {
			return nil, fmt.Errorf("set_field %s: value of %d bytes, field has %d", a.Field, len(a.Value), h.size())
		}
		length := 4 + 4 + len(a.Value)
		padded := (length + 7) / 8 * 8
		b = append(b, 0, of13.ActionType_SetField)
		b = binary.BigEndian.AppendUint16(b, uint16(padded))
		b = appendEntry(b, h, a.Value, false, nil)
		return appendPad8(b, length), nil
	case flows.Load:
		h, err := subfieldHeader(a.Dst)
		if err != nil {
			return nil, err
		}
		if a.Dst.Bits < 64 && a.Value>>a.Dst.Bits != 0 {
			return nil, fmt.Errorf("load %#x does not fit in %s", a.Value, a.Dst)
		}
		b = appendNXHeader(b, 24, of13.NXAST_REG_LOAD)
		b = binary.BigEndian.AppendUint16(b, ofsNbits(a.Dst))
		b = binary.BigEndian.AppendUint32(b, uint32(h))
		return binary.BigEndian.AppendUint64(b, a.Value), nil
	case flows.Move:
		src, err := subfieldHeader(a.Src)
		if err != nil {
			return nil, err
		}
		dst, err := subfieldHeader(a.Dst)
		if err != nil {
			return nil, err
		}
		if a.Src.Bits != a.Dst.Bits {
			return nil, fmt.Errorf("move %s -> %s: widths differ", a.Src, a.Dst)
		}
		b = appendNXHeader(b, 24, of13.NXAST_REG_MOVE)
		b = binary.BigEndian.AppendUint16(b, a.Src.Bits)
		b = binary.BigEndian.AppendUint16(b, a.Src.Offset)
		b = binary.BigEndian.AppendUint16(b, a.Dst.Offset)
		b = binary.BigEndian.AppendUint32(b, uint32(src))
		return binary.BigEndian.AppendUint32(b, uint32(dst)), nil
	case flows.Learn:
		return appendLearn(b, a)
	case flows.Raw:
		return nil, fmt.Errorf("a raw action cannot be installed")
	case nil:
		return nil, fmt.Errorf("nil action")
	default:
		return nil, fmt.Errorf("unsupported action type %T", a)
	}
}

// appendOutput appends OFPAT_OUTPUT; max_len matters only for the
// controller port.
func appendOutput(b []byte, port uint32) []byte {
	b = append(b, 0, of13.ActionType_Output, 0, 16)
	b = binary.BigEndian.AppendUint32(b, port)
	var maxLen uint16
	if port == flows.PortController {
		maxLen = of13.OFPCML_NO_BUFFER
	}
	b = binary.BigEndian.AppendUint16(b, maxLen)
	return append(b, 0, 0, 0, 0, 0, 0)
}

// subfieldHeader checks a subfield and returns its field's NXM header.
func subfieldHeader(s flows.Subfield) (oxmHeader, error) {
	h, err := nxmHeaderOf(s.Field)
	if err != nil {
		return 0, err
	}
	if s.Bits == 0 || int(s.Offset)+int(s.Bits) > int(h.size())*8 {
		return 0, fmt.Errorf("subfield %s outside its %d-bit field", s, int(h.size())*8)
	}
	return h, nil
}

// ofsNbits packs a subfield as reg_load wants it: offset << 6 | (bits - 1).
func ofsNbits(s flows.Subfield) uint16 { return s.Offset<<6 | (s.Bits - 1) }

// appendLearn appends NXAST_LEARN: the fixed part, then one spec after the
// other, padded to 8 bytes.
func appendLearn(b []byte, l flows.Learn) ([]byte, error) {
	start := len(b)
	b = appendNXHeader(b, 0, of13.NXAST_LEARN) // length below
	b = binary.BigEndian.AppendUint16(b, l.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, l.HardTimeout)
	b = binary.BigEndian.AppendUint16(b, l.Priority)
	b = binary.BigEndian.AppendUint64(b, l.Cookie)
	b = append(b, 0, 0, l.Table, 0, 0, 0, 0, 0) // flags, table, pad, fin_idle, fin_hard
	for i, s := range l.Specs {
		var err error
		if b, err = appendLearnSpec(b, s); err != nil {
			return nil, fmt.Errorf("learn spec #%d (%s): %w", i, s, err)
		}
	}
	b = appendPad8(b, len(b)-start)
	if len(b)-start > 0xffff {
		return nil, fmt.Errorf("learn action of %d bytes", len(b)-start)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// appendLearnSpec appends one learn spec: the header (kind and width), the
// source (a field and offset, or an immediate value) and the destination.
func appendLearnSpec(b []byte, s flows.LearnSpec) ([]byte, error) {
	field := func(b []byte, sf flows.Subfield) ([]byte, error) {
		h, err := subfieldHeader(sf)
		if err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(h))
		return binary.BigEndian.AppendUint16(b, sf.Offset), nil
	}
	var err error
	switch s.Kind {
	case flows.LearnMatchField, flows.LearnLoadField:
		if s.Src.Bits != s.Dst.Bits {
			return nil, fmt.Errorf("source and destination widths differ")
		}
		hdr := s.Dst.Bits
		if s.Kind == flows.LearnLoadField {
			hdr |= learnDstLoad << learnDstShift
		}
		b = binary.BigEndian.AppendUint16(b, hdr)
		if b, err = field(b, s.Src); err != nil {
			return nil, err
		}
		return field(b, s.Dst)
	case flows.LearnMatchValue, flows.LearnLoadValue:
		bits := s.Dst.Bits
		if bits > 64 || bits < 64 && s.Value>>bits != 0 {
			return nil, fmt.Errorf("value %#x does not fit in %d bits", s.Value, bits)
		}
		hdr := bits | learnSrcImmediate
		if s.Kind == flows.LearnLoadValue {
			hdr |= learnDstLoad << learnDstShift
		}
		b = binary.BigEndian.AppendUint16(b, hdr)
		b = appendBE(b, s.Value, 2*int((bits+15)/16))
		return field(b, s.Dst)
	case flows.LearnOutput:
		b = binary.BigEndian.AppendUint16(b, s.Src.Bits|learnDstOutput<<learnDstShift)
		return field(b, s.Src)
	default:
		return nil, fmt.Errorf("unknown learn spec kind %d", s.Kind)
	}
}

// first returns actions[0] as a T, if it is one.
func first[T flows.Action](actions []flows.Action) (T, bool) {
	var zero T
	if len(actions) == 0 {
		return zero, false
	}
	a, ok := actions[0].(T)
	return a, ok
}
