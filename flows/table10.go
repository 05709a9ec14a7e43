package flows

// table10 emits br-tun table 10 (learn): per local VLAN, learn the source MAC
// of a frame from a tunnel into table 20 (if the network learns MACs), then
// output the frame to patch-int. The learned flow's cookie encodes (type,
// segment, VLAN), so it can be recognised as stale once the VLAN is released.
func (c *compiler) table10() []Flow {
	out := make([]Flow, 0, len(c.networks)+1)
	if c.patch != 0 {
		for _, n := range c.networks {
			var actions []Action
			if n.MACLearning {
				actions = append(actions, LearnFromTunnel(LearnedCookie(n.Type, n.SegmentID, n.LocalVLAN)))
			}
			actions = append(actions, Output{Port: c.patch})
			out = append(out, Flow{
				Table: TableLearn, Priority: 1, Cookie: NetworkCookie(n.Type, n.SegmentID),
				Match:   Match{VLANTCI: VLANMatch(n.LocalVLAN)},
				Actions: actions,
			})
		}
	}
	return append(out, c.miss(BrTun, TableLearn)...)
}

// LearnFromTunnel is the learn action of table 10: in table 20 at priority
// 1 for 300 s, frames to this source MAC on this VLAN are sent, untagged with
// this frame's tun_id, out of the tunnel port it came from.
func LearnFromTunnel(cookie uint64) Learn {
	return Learn{
		Table:       TableUnicast,
		HardTimeout: MACLearnTimeout,
		Priority:    learnedPriority,
		Cookie:      cookie,
		Specs: []LearnSpec{
			{Kind: LearnMatchField, Dst: Bitrange(FieldVLANTCI, 0, 12), Src: Bitrange(FieldVLANTCI, 0, 12)},
			{Kind: LearnMatchField, Dst: Whole(FieldEthDst), Src: Whole(FieldEthSrc)},
			{Kind: LearnLoadValue, Dst: Whole(FieldVLANTCI), Value: 0},
			{Kind: LearnLoadField, Dst: Whole(FieldTunID), Src: Whole(FieldTunID)},
			{Kind: LearnOutput, Src: Whole(FieldInPort)},
		},
	}
}
