package flows

import "github.com/brtun/brtun/topology"

// table0 emits br-tun table 0 (dispatch): frames from patch-int go to the
// outbound split, frames from a tunnel port load the port's tunnel type into
// reg0[0..7] and go to table 3, anything else is dropped. A flow-based
// port takes frames from any underlay address: its flows match the tun_src
// of each known peer, so a frame from anyone else is dropped.
func (c *compiler) table0() []Flow {
	out := make([]Flow, 0, len(c.tunnels)+2)
	if c.patch != 0 {
		out = append(out, Flow{
			Table: TableDispatch, Priority: 1, Cookie: PipelineCookie(),
			Match:   Match{InPort: Ptr(c.patch)},
			Actions: []Action{GotoTable{Table: TableOutbound}},
		})
	}
	for _, t := range c.tunnels {
		out = append(out, Flow{
			Table: TableDispatch, Priority: 1, Cookie: TunnelCookie(t.peer),
			Match: c.from(t),
			Actions: []Action{
				Load{Dst: TunnelTypeReg(), Value: uint64(t.typ.Code())},
				GotoTable{Table: TableTunnelIn},
			},
		})
	}
	return append(out, c.miss(BrTun, TableDispatch)...)
}

// TunnelTypeReg is where table 0 keeps the tunnel type of a frame from a
// tunnel port: NXM_NX_REG0[0..7], the type's topology.TunnelType.Code (1 = VXLAN).
func TunnelTypeReg() Subfield { return Bitrange(FieldReg0, 0, 8) }

// TunnelTypeMatch matches frames that table 0 marked as coming from a tunnel
// port of type t (reg0=0x1/0xff for VXLAN).
func TunnelTypeMatch(t topology.NetworkType) *MaskedU32 {
	r := TunnelTypeReg()
	mask := uint32(1)<<r.Bits - 1
	return Masked32(uint32(t.Code())<<r.Offset, mask<<r.Offset)
}
