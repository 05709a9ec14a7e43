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
				actions = append(actions, c.learn(n))
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

// learn is the learn action of network n in table 10: LearnFromTunnel
// with per-peer ports, LearnFromFlowTunnel with flow-based ones.
func (c *compiler) learn(n NetworkView) Learn {
	if c.flowPorts {
		return LearnFromFlowTunnel(c.learnedCookie(n))
	}
	return LearnFromTunnel(c.learnedCookie(n))
}

// learnedCookie is the cookie of the flows network n's learn action
// creates: LearnedCookie, marked as flow-based with flow-based ports, so a
// switch of modes makes the other mode's learned entries stale.
func (c *compiler) learnedCookie(n NetworkView) uint64 {
	cookie := LearnedCookie(n.Type, n.SegmentID, n.LocalVLAN)
	if c.flowPorts {
		cookie |= learnedFlowBit
	}
	return cookie
}

// LearnFromFlowTunnel is LearnFromTunnel for a flow-based tunnel port: the
// learned flow also loads this frame's tun_src into tun_dst, so it goes
// back to the host the MAC was seen behind.
func LearnFromFlowTunnel(cookie uint64) Learn {
	l := LearnFromTunnel(cookie)
	out := l.Specs[len(l.Specs)-1]
	l.Specs = append(l.Specs[:len(l.Specs)-1:len(l.Specs)-1],
		LearnSpec{Kind: LearnLoadField, Dst: Whole(FieldTunIPv4Dst), Src: Whole(FieldTunIPv4Src)}, out)
	return l
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
