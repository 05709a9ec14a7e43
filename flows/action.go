package flows

import (
	"strconv"
	"strings"
)

// Action is one OpenFlow action or instruction of a flow. The set of action
// types is closed (this package's types only) so that every action has one
// canonical representation. A flow whose Actions are empty drops.
type Action interface {
	// String prints the action as OVS 3.1 dumps it.
	String() string
	isAction()
}

// Output sends the packet to an ordinary port. Reserved ports have their own
// actions (InPort, Normal); use OutputTo when decoding a port number.
type Output struct{ Port uint32 }

// InPort sends the packet back out of the port it came in on (IN_PORT).
type InPort struct{}

// Normal hands the packet to the switch's normal L2 processing (NORMAL).
type Normal struct{}

// Meter passes the packet through an OpenFlow meter (the OpenFlow 1.3
// meter instruction): packets over the meter's rate are dropped. It must be
// the first action; OVS prints it meter:ID.
type Meter struct{ ID uint32 }

// ToController sends the whole packet to the controller as a packet-in
// (output to CONTROLLER with max_len 65535, no buffering; OVS prints
// CONTROLLER:65535). The flow's cookie travels with it.
type ToController struct{}

// GotoTable is the OpenFlow 1.3 goto_table instruction; it must be the last
// action and go to a higher table.
type GotoTable struct{ Table uint8 }

// Resubmit is the Nicira resubmit(,TABLE) action: look the packet up in
// Table and come back.
type Resubmit struct{ Table uint8 }

// PushVLAN pushes a VLAN header with the given TPID (0x8100).
type PushVLAN struct{ EtherType uint16 }

// PopVLAN removes the outer VLAN header (OVS prints strip_vlan as pop_vlan).
type PopVLAN struct{}

// SetField is the OpenFlow 1.3 set_field action: Value is the whole field,
// big-endian, Field.Bytes() long.
type SetField struct {
	Field Field
	Value []byte
}

// Load is the Nicira reg_load action: writes Value into Dst (at most 64 bits).
type Load struct {
	Dst   Subfield
	Value uint64
}

// Move is the Nicira reg_move action: copies Src into Dst (same width).
type Move struct {
	Src Subfield
	Dst Subfield
}

// Learn is the Nicira learn action: it adds a flow to Table built from Specs.
// Cookie is the cookie of every flow it creates.
type Learn struct {
	Table       uint8
	IdleTimeout uint16
	HardTimeout uint16
	Priority    uint16
	Cookie      uint64
	Specs       []LearnSpec
}

// LearnSpecKind says what a learn spec does.
type LearnSpecKind uint8

// The learn spec kinds.
const (
	// LearnMatchField: the learned flow matches Dst against the value of Src
	// in the packet being learned from (Src == Dst prints as "FIELD[...]").
	LearnMatchField LearnSpecKind = iota + 1
	// LearnMatchValue: the learned flow matches Dst against Value.
	LearnMatchValue
	// LearnLoadField: the learned flow loads Src's current value into Dst.
	LearnLoadField
	// LearnLoadValue: the learned flow loads Value into Dst.
	LearnLoadValue
	// LearnOutput: the learned flow outputs to the port held in Src.
	LearnOutput
)

// LearnSpec is one field spec of a learn action. Dst is unused for
// LearnOutput, Src for the *Value kinds, Value for the *Field kinds and
// LearnOutput. Immediate values are at most 64 bits wide.
type LearnSpec struct {
	Kind  LearnSpecKind
	Dst   Subfield
	Src   Subfield
	Value uint64
}

// Raw is an action a decoder could not interpret, kept as its wire bytes.
// Desired flows never contain it.
type Raw struct{ Bytes []byte }

func (Output) isAction()       {}
func (InPort) isAction()       {}
func (Normal) isAction()       {}
func (ToController) isAction() {}
func (Meter) isAction()        {}
func (GotoTable) isAction()    {}
func (Resubmit) isAction()     {}
func (PushVLAN) isAction()     {}
func (PopVLAN) isAction()      {}
func (SetField) isAction()     {}
func (Load) isAction()         {}
func (Move) isAction()         {}
func (Learn) isAction()        {}
func (Raw) isAction()          {}

// OutputTo returns the canonical action for an OpenFlow output to port:
// InPort or Normal for those reserved ports, Output otherwise.
func OutputTo(port uint32) Action {
	switch port {
	case PortInPort:
		return InPort{}
	case PortNormal:
		return Normal{}
	}
	return Output{Port: port}
}

// SetVLANVID sets the VLAN id of the outer VLAN header (OXM vlan_vid with
// the present bit, printed as set_field:4097->vlan_vid for VLAN 1).
func SetVLANVID(vid uint16) SetField {
	return SetField{Field: FieldVLANVID, Value: be16(VLANCFI | vid&0x0fff)}
}

// SetTunID sets the tunnel id (printed set_field:0x1->tun_id).
func SetTunID(id uint64) SetField { return SetField{Field: FieldTunID, Value: be64(id)} }

// SetMAC sets an Ethernet-address field (eth_src, eth_dst, arp_sha, nd_tll, ...).
func SetMAC(f Field, m MAC) SetField { return SetField{Field: f, Value: append([]byte(nil), m[:]...)} }

// SetIPv4 sets an IPv4-address field (arp_spa, arp_tpa).
func SetIPv4(f Field, a IPv4) SetField {
	return SetField{Field: f, Value: append([]byte(nil), a[:]...)}
}

// SetIPv6 sets an IPv6-address field (ipv6_src, ...).
func SetIPv6(f Field, a IPv6) SetField {
	return SetField{Field: f, Value: append([]byte(nil), a[:]...)}
}

// SetUint sets an integer field (arp_op, icmpv6_type, nd_reserved, ...) to v,
// truncated to the field's width.
func SetUint(f Field, v uint64) SetField {
	n := f.Bytes()
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return SetField{Field: f, Value: out}
}

// String implements Action. OVS prints reserved ports by name alone.
func (a Output) String() string {
	if a.Port >= PortMax {
		return formatPort(a.Port)
	}
	return "output:" + formatPort(a.Port)
}

// String implements Action.
func (InPort) String() string { return "IN_PORT" }

// String implements Action.
func (Normal) String() string { return "NORMAL" }

// String implements Action.
func (a Meter) String() string { return "meter:" + strconv.FormatUint(uint64(a.ID), 10) }

// String implements Action.
func (ToController) String() string { return "CONTROLLER:65535" }

// String implements Action.
func (a GotoTable) String() string { return "goto_table:" + strconv.Itoa(int(a.Table)) }

// String implements Action.
func (a Resubmit) String() string { return "resubmit(," + strconv.Itoa(int(a.Table)) + ")" }

// String implements Action.
func (a PushVLAN) String() string {
	return "push_vlan:0x" + strconv.FormatUint(uint64(a.EtherType), 16)
}

// String implements Action.
func (PopVLAN) String() string { return "pop_vlan" }

// String implements Action.
func (a SetField) String() string {
	return "set_field:" + a.Field.formatValue(a.Value) + "->" + a.Field.Name()
}

// String implements Action.
func (a Load) String() string { return "load:" + hexU64(a.Value) + "->" + a.Dst.String() }

// String implements Action.
func (a Move) String() string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// String implements Action; the order of arguments is OVS's learn_format.
func (a Learn) String() string {
	var b strings.Builder
	b.WriteString("learn(table=")
	b.WriteString(strconv.Itoa(int(a.Table)))
	if a.IdleTimeout != 0 {
		b.WriteString(",idle_timeout=")
		b.WriteString(strconv.Itoa(int(a.IdleTimeout)))
	}
	if a.HardTimeout != 0 {
		b.WriteString(",hard_timeout=")
		b.WriteString(strconv.Itoa(int(a.HardTimeout)))
	}
	if a.Priority != DefaultPriority {
		b.WriteString(",priority=")
		b.WriteString(strconv.Itoa(int(a.Priority)))
	}
	if a.Cookie != 0 {
		b.WriteString(",cookie=")
		b.WriteString(hexU64(a.Cookie))
	}
	for _, s := range a.Specs {
		b.WriteByte(',')
		b.WriteString(s.String())
	}
	b.WriteByte(')')
	return b.String()
}

// String prints the spec as OVS's learn_format does.
func (s LearnSpec) String() string {
	switch s.Kind {
	case LearnMatchField:
		if s.Src.Field != s.Dst.Field || s.Src.Offset != s.Dst.Offset {
			return s.Dst.String() + "=" + s.Src.String()
		}
		return s.Dst.String()
	case LearnMatchValue:
		if s.Dst.Offset == 0 && s.Dst.Bits == s.Dst.Field.Bits() && s.Dst.Field.Bits() <= 64 {
			return s.Dst.Field.Name() + "=" + s.Dst.Field.formatValue(be64(s.Value)[8-s.Dst.Field.Bytes():])
		}
		return s.Dst.String() + "=" + hexU64(s.Value)
	case LearnLoadField:
		return "load:" + s.Src.String() + "->" + s.Dst.String()
	case LearnLoadValue:
		return "load:" + hexU64(s.Value) + "->" + s.Dst.String()
	case LearnOutput:
		return "output:" + s.Src.String()
	}
	return "unknown_spec(" + strconv.Itoa(int(s.Kind)) + ")"
}

// String implements Action.
func (a Raw) String() string { return "raw_action(" + hexBytes(a.Bytes) + ")" }

// formatActions prints an action list as OVS does; no actions is "drop".
func formatActions(b *strings.Builder, actions []Action) {
	if len(actions) == 0 {
		b.WriteString("drop")
		return
	}
	for i, a := range actions {
		if i > 0 {
			b.WriteByte(',')
		}
		if a == nil {
			b.WriteString("<nil>")
			continue
		}
		b.WriteString(a.String())
	}
}
