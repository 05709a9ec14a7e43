package ofswitch

import (
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
func Encode(f flows.Flow, cmd Command) (Message, error) {
	fm := of13.NewFlowMod()
	fm.TableId = f.Table
	fm.Priority = f.Priority
	switch cmd {
	case Add:
		fm.Command = of13.FC_ADD
		fm.Cookie = f.Cookie
		fm.IdleTimeout = f.IdleTimeout
		fm.HardTimeout = f.HardTimeout
	case ModifyStrict:
		fm.Command = of13.FC_MODIFY_STRICT
	case DeleteStrict:
		fm.Command = of13.FC_DELETE_STRICT
	default:
		return nil, fmt.Errorf("encode %s: unknown command %d", f, uint8(cmd))
	}
	match, err := encodeMatch(f.Match)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", f, err)
	}
	fm.Match = *match
	if cmd != DeleteStrict {
		instrs, err := encodeInstructions(f.Actions)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", f, err)
		}
		fm.Instructions = instrs
	}
	m, err := marshal(fm)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", f, err)
	}
	return m, nil
}

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

// rawField carries an encoded value or mask inside a libOpenflow MatchField.
type rawField []byte

func (r rawField) Len() uint16                    { return uint16(len(r)) }
func (r rawField) MarshalBinary() ([]byte, error) { return []byte(r), nil }
func (r rawField) UnmarshalBinary(b []byte) error {
	return fmt.Errorf("rawField is encode-only")
}

// matchEntry builds one OXM/NXM match field; mask nil means exact.
func matchEntry(h oxmHeader, value, mask []byte) of13.MatchField {
	mf := of13.MatchField{Class: h.class(), Field: h.field(), Length: h.size(), Value: rawField(value)}
	if mask != nil {
		mf.HasMask = true
		mf.Mask = rawField(mask)
		mf.Length = h.size() * 2
	}
	return mf
}

// encodeMatch builds the match of a flow with the headers OVS reports in
// flow stats (OXM where OpenFlow 1.3 has one, NXM otherwise).
func encodeMatch(m flows.Match) (*of13.Match, error) {
	om := of13.NewMatch()
	add := func(h oxmHeader, value, mask []byte) { om.AddField(matchEntry(h, value, mask)) }
	if m.InPort != nil {
		add(oxmInPort, putBE(uint64(*m.InPort), 4), nil)
	}
	if m.EthType != nil {
		add(oxmEthType, putBE(uint64(*m.EthType), 2), nil)
	}
	if m.VLANTCI != nil {
		encodeVLAN(*m.VLANTCI, add)
	}
	if m.EthSrc != nil {
		add(oxmEthSrc, m.EthSrc.Value[:], macMask(m.EthSrc.Mask))
	}
	if m.EthDst != nil {
		add(oxmEthDst, m.EthDst.Value[:], macMask(m.EthDst.Mask))
	}
	if m.IPProto != nil {
		add(oxmIPProto, []byte{*m.IPProto}, nil)
	}
	if m.IPv4Src != nil {
		add(oxmIPv4Src, m.IPv4Src.Value[:], ipv4Mask(m.IPv4Src.Mask))
	}
	if m.IPv6Src != nil {
		add(oxmIPv6Src, m.IPv6Src[:], nil)
	}
	if m.ARPOp != nil {
		add(oxmARPOp, putBE(uint64(*m.ARPOp), 2), nil)
	}
	if m.ARPSPA != nil {
		add(oxmARPSPA, m.ARPSPA.Value[:], ipv4Mask(m.ARPSPA.Mask))
	}
	if m.ARPTPA != nil {
		add(oxmARPTPA, m.ARPTPA.Value[:], ipv4Mask(m.ARPTPA.Mask))
	}
	if m.ARPSHA != nil {
		add(oxmARPSHA, m.ARPSHA[:], nil)
	}
	if m.UDPSrc != nil {
		add(oxmUDPSrc, putBE(uint64(*m.UDPSrc), 2), nil)
	}
	if m.UDPDst != nil {
		add(oxmUDPDst, putBE(uint64(*m.UDPDst), 2), nil)
	}
	if m.ICMPv6Type != nil {
		add(oxmICMPv6Type, []byte{*m.ICMPv6Type}, nil)
	}
	if m.NDTarget != nil {
		add(oxmNDTarget, m.NDTarget[:], nil)
	}
	if m.TunID != nil {
		add(oxmTunID, putBE(m.TunID.Value, 8), uintMask(m.TunID.Mask, 8))
	}
	if m.Reg0 != nil {
		add(nxmReg0, putBE(uint64(m.Reg0.Value), 4), uintMask(uint64(m.Reg0.Mask), 4))
	}
	if len(m.Raw) > 0 {
		// Entries a decoder kept verbatim: check they are whole entries,
		// then pass them through as they came.
		for off := 0; off < len(m.Raw); {
			t, n, err := readTLV(m.Raw[off:])
			if err != nil {
				return nil, fmt.Errorf("raw match: %w", err)
			}
			om.AddField(rawEntry(t))
			off += n
		}
	}
	return om, nil
}

// rawEntry passes an entry read by readTLV back through libOpenflow
// unchanged: the whole payload (experimenter id, value and mask) travels as
// the value, and the header keeps its own mask bit and length.
func rawEntry(t tlv) of13.MatchField {
	body := t.raw[4:]
	return of13.MatchField{
		Class: t.class, Field: t.field, HasMask: t.masked, Length: uint8(len(body)),
		Value: rawField(body), Mask: rawField{},
	}
}

// encodeVLAN writes a vlan_tci match the way OVS does in OpenFlow 1.3: as
// OXM vlan_vid when no PCP bits are involved, as NXM vlan_tci otherwise.
func encodeVLAN(t flows.MaskedU16, add func(oxmHeader, []byte, []byte)) {
	const vidCFI = 0x1fff
	if t.Mask&^vidCFI == 0 {
		var mask []byte
		if t.Mask != vidCFI {
			mask = putBE(uint64(t.Mask), 2)
		}
		add(oxmVLANVID, putBE(uint64(t.Value&vidCFI), 2), mask)
		return
	}
	var mask []byte
	if t.Mask != 0xffff {
		mask = putBE(uint64(t.Mask), 2)
	}
	add(nxmVLANTCI, putBE(uint64(t.Value), 2), mask)
}

// macMask returns the mask bytes, or nil for an exact match.
func macMask(m flows.MAC) []byte {
	if m == (flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		return nil
	}
	return append([]byte(nil), m[:]...)
}

// ipv4Mask returns the mask bytes, or nil for an exact match.
func ipv4Mask(m flows.IPv4) []byte {
	if m == (flows.IPv4{0xff, 0xff, 0xff, 0xff}) {
		return nil
	}
	return append([]byte(nil), m[:]...)
}

// uintMask returns an n-byte mask, or nil when it is all ones.
func uintMask(mask uint64, n int) []byte {
	if n < 8 && mask == 1<<(8*n)-1 || n == 8 && mask == ^uint64(0) {
		return nil
	}
	return putBE(mask, n)
}

// encodeInstructions turns actions into apply-actions plus an optional
// trailing goto-table.
func encodeInstructions(actions []flows.Action) ([]of13.Instruction, error) {
	var out []of13.Instruction
	apply := of13.NewInstrApplyActions()
	for i, a := range actions {
		if g, ok := a.(flows.GotoTable); ok {
			if i != len(actions)-1 {
				return nil, fmt.Errorf("goto_table:%d must be the last action", g.Table)
			}
			if len(apply.Actions) > 0 {
				out = append(out, apply)
			}
			return append(out, of13.NewInstrGotoTable(g.Table)), nil
		}
		act, err := encodeAction(a)
		if err != nil {
			return nil, fmt.Errorf("action #%d (%v): %w", i, a, err)
		}
		if err := apply.AddAction(act, false); err != nil {
			return nil, err
		}
	}
	if len(apply.Actions) > 0 {
		out = append(out, apply)
	}
	return out, nil
}

// encodeAction encodes one action with libOpenflow.
func encodeAction(a flows.Action) (of13.Action, error) {
	switch a := a.(type) {
	case flows.Output:
		return outputAction(a.Port), nil
	case flows.InPort:
		return outputAction(flows.PortInPort), nil
	case flows.Normal:
		return outputAction(flows.PortNormal), nil
	case flows.Resubmit:
		return of13.NewNXActionResubmitTableAction(of13.OFPP_IN_PORT, a.Table), nil
	case flows.PushVLAN:
		return of13.NewActionPushVlan(a.EtherType), nil
	case flows.PopVLAN:
		return of13.NewActionPopVlan(), nil
	case flows.SetField:
		h, err := setFieldHeaderOf(a.Field)
		if err != nil {
			return nil, err
		}
		if len(a.Value) != int(h.size()) {
			return nil, fmt.Errorf("set_field %s: value of %d bytes, field has %d", a.Field, len(a.Value), h.size())
		}
		return of13.NewActionSetField(matchEntry(h, append([]byte(nil), a.Value...), nil)), nil
	case flows.Load:
		h, err := subfieldHeader(a.Dst)
		if err != nil {
			return nil, err
		}
		if a.Dst.Bits < 64 && a.Value>>a.Dst.Bits != 0 {
			return nil, fmt.Errorf("load %#x does not fit in %s", a.Value, a.Dst)
		}
		return of13.NewNXActionRegLoad(ofsNbits(a.Dst), headerField(h), a.Value), nil
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
		return of13.NewNXActionRegMove(a.Src.Bits, a.Src.Offset, a.Dst.Offset, headerField(src), headerField(dst)), nil
	case flows.Learn:
		return encodeLearn(a)
	case flows.Raw:
		return nil, fmt.Errorf("a raw action cannot be installed")
	case nil:
		return nil, fmt.Errorf("nil action")
	default:
		return nil, fmt.Errorf("unsupported action type %T", a)
	}
}

// outputAction is OFPAT_OUTPUT; max_len matters only for the controller port.
func outputAction(port uint32) *of13.ActionOutput {
	a := of13.NewActionOutput(port)
	a.MaxLen = 0
	if port == flows.PortController {
		a.MaxLen = of13.OFPCML_NO_BUFFER
	}
	return a
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

// headerField gives libOpenflow a field header to write (it only uses class,
// field, mask bit and length).
func headerField(h oxmHeader) *of13.MatchField {
	return &of13.MatchField{Class: h.class(), Field: h.field(), Length: h.size()}
}

// ofsNbits packs a subfield as reg_load wants it: offset << 6 | (bits - 1).
func ofsNbits(s flows.Subfield) uint16 { return s.Offset<<6 | (s.Bits - 1) }

// encodeLearn builds NXAST_LEARN with libOpenflow's learn spec types.
func encodeLearn(l flows.Learn) (of13.Action, error) {
	a := of13.NewNXActionLearn()
	a.IdleTimeout = l.IdleTimeout
	a.HardTimeout = l.HardTimeout
	a.Priority = l.Priority
	a.Cookie = l.Cookie
	a.TableID = l.Table
	for i, s := range l.Specs {
		spec, err := encodeLearnSpec(s)
		if err != nil {
			return nil, fmt.Errorf("learn spec #%d (%s): %w", i, s, err)
		}
		a.LearnSpecs = append(a.LearnSpecs, spec)
	}
	return a, nil
}

// encodeLearnSpec builds one learn spec.
func encodeLearnSpec(s flows.LearnSpec) (*of13.NXLearnSpec, error) {
	field := func(sf flows.Subfield) (*of13.NXLearnSpecField, error) {
		h, err := subfieldHeader(sf)
		if err != nil {
			return nil, err
		}
		return &of13.NXLearnSpecField{Field: headerField(h), Ofs: sf.Offset}, nil
	}
	value := func(bits uint16) ([]byte, error) {
		if bits > 64 || bits < 64 && s.Value>>bits != 0 {
			return nil, fmt.Errorf("value %#x does not fit in %d bits", s.Value, bits)
		}
		return putBE(s.Value, 2*int((bits+15)/16)), nil
	}
	spec := &of13.NXLearnSpec{}
	var err error
	switch s.Kind {
	case flows.LearnMatchField, flows.LearnLoadField:
		if s.Src.Bits != s.Dst.Bits {
			return nil, fmt.Errorf("source and destination widths differ")
		}
		if s.Kind == flows.LearnMatchField {
			spec.Header = of13.NewLearnHeaderMatchFromField(s.Dst.Bits)
		} else {
			spec.Header = of13.NewLearnHeaderLoadFromField(s.Dst.Bits)
		}
		if spec.SrcField, err = field(s.Src); err != nil {
			return nil, err
		}
		if spec.DstField, err = field(s.Dst); err != nil {
			return nil, err
		}
	case flows.LearnMatchValue, flows.LearnLoadValue:
		if s.Kind == flows.LearnMatchValue {
			spec.Header = of13.NewLearnHeaderMatchFromValue(s.Dst.Bits)
		} else {
			spec.Header = of13.NewLearnHeaderLoadFromValue(s.Dst.Bits)
		}
		if spec.SrcValue, err = value(s.Dst.Bits); err != nil {
			return nil, err
		}
		if spec.DstField, err = field(s.Dst); err != nil {
			return nil, err
		}
	case flows.LearnOutput:
		spec.Header = of13.NewLearnHeaderOutputFromField(s.Src.Bits)
		if spec.SrcField, err = field(s.Src); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown learn spec kind %d", s.Kind)
	}
	return spec, nil
}
