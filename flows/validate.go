package flows

import (
	"errors"
	"fmt"
	"slices"
)

// Validate checks every flow of a FlowSet against its table's declaration
// (Declared): the table exists on that bridge, the priority is declared, the
// match uses only declared fields in canonical form with their prerequisites,
// gotos and resubmits reach only declared later tables, learn writes only a
// declared table with a learned cookie, actions are well formed, cookies are
// brtun's, no two flows share a Key, and every table has its declared miss
// flow. It returns all problems found, joined, or nil.
func Validate(s FlowSet) error {
	p := Declared()
	var errs []error
	errs = append(errs, validateBridge(p, BrTun, s.BrTun, nil)...)
	errs = append(errs, validateBridge(p, BrInt, s.BrInt, nil)...)
	errs = append(errs, validateLearnedCookies(s.LearnedCookies)...)
	return errors.Join(errs...)
}

// ValidateLearnedCookies checks a FlowSet's LearnedCookies: sorted, and
// each a learned cookie. With ValidateFlows of both bridges it makes
// Validate, for a caller that checks the parts of a set separately.
func ValidateLearnedCookies(cookies []uint64) error {
	return errors.Join(validateLearnedCookies(cookies)...)
}

func validateLearnedCookies(cookies []uint64) []error {
	var errs []error
	if !slices.IsSorted(cookies) {
		errs = append(errs, errors.New("learned cookies are not sorted"))
	}
	for _, c := range cookies {
		if !IsLearned(c) {
			errs = append(errs, fmt.Errorf("learned cookie %#x is not a learned cookie", c))
		}
	}
	return errs
}

// ValidateFlows checks one bridge's flows against the declared pipeline.
func ValidateFlows(b Bridge, flows []Flow) error {
	return errors.Join(validateBridge(Declared(), b, flows, nil)...)
}

// ValidateKeyedFlows is ValidateFlows given the flows' keys (keys[i] is
// flows[i].Key()), for a caller that holds them already: a key prints the
// whole match.
func ValidateKeyedFlows(b Bridge, flows []Flow, keys []Key) error {
	if len(keys) != len(flows) {
		return fmt.Errorf("%s: %d keys for %d flows", b, len(keys), len(flows))
	}
	return errors.Join(validateBridge(Declared(), b, flows, keys)...)
}

// validateBridge checks one bridge's flows; keys are their keys, or nil.
func validateBridge(p Pipeline, b Bridge, flows []Flow, keys []Key) []error {
	var errs []error
	seen := make(map[Key]bool, len(flows))
	misses := map[uint8]int{}
	for i, f := range flows {
		t, ok := p.Lookup(b, f.Table)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s: table %d is not declared", b, f, f.Table))
			continue
		}
		for _, err := range validateFlow(t, f) {
			errs = append(errs, fmt.Errorf("%s table %d (%s): %s: %w", b, t.ID, t.Name, f, err))
		}
		var k Key
		if keys != nil {
			k = keys[i]
		} else {
			k = f.Key()
		}
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: %s: another flow has the same table, priority and match", b, f))
		}
		seen[k] = true
		if f.Priority == 0 {
			misses[f.Table]++
		}
	}
	for _, t := range p.Tables(b) {
		if misses[t.ID] != 1 {
			errs = append(errs, fmt.Errorf("%s table %d (%s): %d miss flows, want 1", b, t.ID, t.Name, misses[t.ID]))
		}
	}
	return errs
}

// validateFlow checks one flow against its table's declaration.
func validateFlow(t Table, f Flow) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !slices.Contains(t.Priorities, f.Priority) {
		add("priority %d not declared (%v)", f.Priority, t.Priorities)
	}
	if f.Priority == 0 {
		if want := t.missFlow(); !f.Equal(want) {
			add("priority 0 is the table miss, want %q", want.String())
		}
	}
	if o, ok := DecodeCookie(f.Cookie); !ok {
		add("cookie %#x is not brtun's", f.Cookie)
	} else if o.Kind == OwnerLearned {
		add("cookie %#x is a learned cookie", f.Cookie)
	}
	if f.IdleTimeout != 0 || f.HardTimeout != 0 {
		add("timeouts are only for learned flows")
	}
	for _, mf := range f.Match.Fields() {
		if !slices.Contains(t.Matches, mf) {
			add("match field %s not declared (%v)", mf, t.Matches)
		}
	}
	for _, err := range f.Match.check() {
		add("match: %w", err)
	}
	for i, a := range f.Actions {
		last := i == len(f.Actions)-1
		for _, err := range checkAction(t, f.Match, a, i == 0, last) {
			add("action %d (%v): %w", i, a, err)
		}
	}
	return errs
}

// check returns the match's canonical-form and prerequisite problems.
func (m Match) check() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(m.Raw) > 0 {
		add("raw match bytes")
	}
	if m.Reg0 != nil && (m.Reg0.Mask == 0 || m.Reg0.Value&^m.Reg0.Mask != 0) {
		add("reg0 %#x/%#x not canonical", m.Reg0.Value, m.Reg0.Mask)
	}
	if m.TunID != nil && (m.TunID.Mask == 0 || m.TunID.Value&^m.TunID.Mask != 0) {
		add("tun_id %#x/%#x not canonical", m.TunID.Value, m.TunID.Mask)
	}
	if m.VLANTCI != nil && (m.VLANTCI.Mask == 0 || m.VLANTCI.Value&^m.VLANTCI.Mask != 0) {
		add("vlan_tci %#x/%#x not canonical", m.VLANTCI.Value, m.VLANTCI.Mask)
	}
	checkMAC := func(name string, mm *MaskedMAC) {
		if mm != nil && !canonicalBytes(mm.Value[:], mm.Mask[:]) {
			add("%s %s/%s not canonical", name, mm.Value, mm.Mask)
		}
	}
	checkMAC("dl_src", m.EthSrc)
	checkMAC("dl_dst", m.EthDst)
	checkIPv4 := func(name string, ma *MaskedIPv4) {
		if ma != nil && !canonicalBytes(ma.Value[:], ma.Mask[:]) {
			add("%s %s/%s not canonical", name, ma.Value, ma.Mask)
		}
	}
	checkIPv4("arp_spa", m.ARPSPA)
	checkIPv4("arp_tpa", m.ARPTPA)
	checkIPv4("nw_src", m.IPv4Src)
	isARP := m.EthType != nil && *m.EthType == EthTypeARP
	isIP := m.EthType != nil && (*m.EthType == EthTypeIPv4 || *m.EthType == EthTypeIPv6)
	if m.IPv4Src != nil && (m.EthType == nil || *m.EthType != EthTypeIPv4) {
		add("nw_src needs ip")
	}
	if m.IPv6Src != nil && (m.EthType == nil || *m.EthType != EthTypeIPv6) {
		add("ipv6_src needs ipv6")
	}
	if (m.UDPSrc != nil || m.UDPDst != nil) && (!isIP || m.IPProto == nil || *m.IPProto != IPProtoUDP) {
		add("tp_src and tp_dst need udp or udp6")
	}
	if (m.ARPSPA != nil || m.ARPTPA != nil || m.ARPOp != nil || m.ARPSHA != nil) && !isARP {
		add("ARP fields need arp")
	}
	if m.IPProto != nil && !isIP {
		add("nw_proto needs ip or ipv6")
	}
	if m.ICMPv6Type != nil && !m.isICMPv6() {
		add("icmp_type needs icmp6")
	}
	if m.NDTarget != nil && !m.isND() {
		add("nd_target needs icmp6 with icmp_type 135 or 136")
	}
	return errs
}

func (m Match) isICMPv6() bool {
	return m.EthType != nil && *m.EthType == EthTypeIPv6 && m.IPProto != nil && *m.IPProto == IPProtoICMPv6
}

func (m Match) isND() bool {
	return m.isICMPv6() && m.ICMPv6Type != nil && (*m.ICMPv6Type == 135 || *m.ICMPv6Type == 136)
}

// canonicalBytes reports whether mask is not all zero and value has no bits
// outside it.
func canonicalBytes(value, mask []byte) bool {
	nonzero := false
	for i := range mask {
		if value[i]&^mask[i] != 0 {
			return false
		}
		nonzero = nonzero || mask[i] != 0
	}
	return nonzero
}

// fieldPrereqOK reports whether a field may be written or read by a flow
// with match m (OVS checks prerequisites against the match).
func fieldPrereqOK(f Field, m Match) bool {
	switch f {
	case FieldARPOp, FieldARPSPA, FieldARPTPA, FieldARPSHA, FieldARPTHA:
		return m.EthType != nil && *m.EthType == EthTypeARP
	case FieldIPv6Src, FieldIPv6Dst:
		return m.EthType != nil && *m.EthType == EthTypeIPv6
	case FieldICMPv6Type:
		return m.isICMPv6()
	case FieldNDTarget, FieldNDReserved, FieldNDOptionsType:
		return m.isND()
	case FieldNDSLL:
		return m.isND() && *m.ICMPv6Type == 135
	case FieldNDTLL:
		return m.isND() && *m.ICMPv6Type == 136
	}
	return true
}

// checkAction checks one action of a flow in table t with match m.
func checkAction(t Table, m Match, a Action, first, last bool) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkSub := func(role string, s Subfield) {
		if !s.valid() {
			add("%s %s is not a valid subfield", role, s)
		} else if !fieldPrereqOK(s.Field, m) {
			add("%s %s: prerequisites not met by the match", role, s)
		}
	}
	switch a := a.(type) {
	case nil:
		add("nil action")
	case Output:
		if a.Port == 0 || a.Port >= PortMax {
			add("output to %d: use an ordinary port (InPort/Normal for reserved ones)", a.Port)
		}
	case InPort, Normal, PopVLAN, ToController:
	case Meter:
		if a.ID == 0 || a.ID > MeterMax {
			add("meter:%d: not a meter id", a.ID)
		}
		if !first {
			add("meter must be the first action")
		}
	case GotoTable:
		if !last {
			add("goto_table must be the last action")
		}
		if !slices.Contains(t.Gotos, a.Table) && !(t.Miss == MissGoto && a.Table == t.MissTable) {
			add("goto_table:%d not declared (%v)", a.Table, t.Gotos)
		}
		if a.Table <= t.ID {
			add("goto_table:%d does not go forward", a.Table)
		}
	case Resubmit:
		if !slices.Contains(t.Gotos, a.Table) {
			add("resubmit to %d not declared (%v)", a.Table, t.Gotos)
		}
	case PushVLAN:
		if a.EtherType != EthTypeVLAN && a.EtherType != 0x88a8 {
			add("push_vlan with TPID %#x", a.EtherType)
		}
	case SetField:
		if !a.Field.Valid() {
			add("set_field of unknown field %d", a.Field)
		} else if len(a.Value) != a.Field.Bytes() {
			add("set_field %s: value has %d bytes, want %d", a.Field, len(a.Value), a.Field.Bytes())
		} else if !fieldPrereqOK(a.Field, m) {
			add("set_field %s: prerequisites not met by the match", a.Field)
		}
	case Load:
		checkSub("load destination", a.Dst)
		if a.Dst.Bits < 64 && a.Value>>a.Dst.Bits != 0 {
			add("load value %#x does not fit %d bits", a.Value, a.Dst.Bits)
		}
		if a.Dst.Bits > 64 {
			add("load into more than 64 bits")
		}
	case Move:
		checkSub("move source", a.Src)
		checkSub("move destination", a.Dst)
		if a.Src.Bits != a.Dst.Bits {
			add("move of %d bits into %d bits", a.Src.Bits, a.Dst.Bits)
		}
	case Learn:
		errs = append(errs, checkLearn(t, a)...)
	case Raw:
		add("raw action bytes")
	default:
		add("unknown action type %T", a)
	}
	return errs
}

// checkLearn checks a learn action.
func checkLearn(t Table, l Learn) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(t.LearnInto, l.Table) {
		add("learn into table %d not declared (%v)", l.Table, t.LearnInto)
	}
	if !IsLearned(l.Cookie) {
		add("learn cookie %#x is not a learned cookie", l.Cookie)
	}
	if len(l.Specs) == 0 {
		add("learn without specs")
	}
	for i, s := range l.Specs {
		fieldSrc := s.Kind == LearnMatchField || s.Kind == LearnLoadField || s.Kind == LearnOutput
		if s.Kind < LearnMatchField || s.Kind > LearnOutput {
			add("learn spec %d: unknown kind %d", i, s.Kind)
			continue
		}
		if s.Kind != LearnOutput && !s.Dst.valid() {
			add("learn spec %d: destination %s is not a valid subfield", i, s.Dst)
		}
		if fieldSrc && !s.Src.valid() {
			add("learn spec %d: source %s is not a valid subfield", i, s.Src)
		}
		if (s.Kind == LearnMatchField || s.Kind == LearnLoadField) && s.Src.Bits != s.Dst.Bits {
			add("learn spec %d: %d source bits for %d destination bits", i, s.Src.Bits, s.Dst.Bits)
		}
		if !fieldSrc && (s.Dst.Bits > 64 || (s.Dst.Bits < 64 && s.Value>>s.Dst.Bits != 0)) {
			add("learn spec %d: value %#x does not fit %d bits", i, s.Value, s.Dst.Bits)
		}
	}
	return errs
}
