package flows

// table3 emits br-tun table 3 (tunnel-in): a frame whose tunnel type
// (reg0[0..7], loaded in table 0) and tun_id are a network's gets that
// network's local VLAN and goes to the learn table. A GRE key and a VXLAN VNI
// with the same number are different networks. Anything else is dropped.
func (c *compiler) table3() []Flow {
	out := make([]Flow, 0, len(c.networks)+1)
	for _, n := range c.networks {
		out = append(out, Flow{
			Table: TableTunnelIn, Priority: 1, Cookie: NetworkCookie(n.Type, n.SegmentID),
			Match: Match{
				Reg0:  TunnelTypeMatch(n.Type),
				TunID: Exact64(uint64(n.SegmentID)),
			},
			Actions: []Action{
				PushVLAN{EtherType: EthTypeVLAN},
				SetVLANVID(n.LocalVLAN),
				GotoTable{Table: TableLearn},
			},
		})
	}
	return append(out, c.miss(BrTun, TableTunnelIn)...)
}
