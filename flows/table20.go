package flows

// table20 emits br-tun table 20 (unicast): a known remote port's MAC on its
// network's VLAN goes untagged, with the network's tun_id, to the tunnel of
// the port's host (with a flow-based port: tun_dst set to the host's
// address; priority 2, above learned entries at priority 1). A miss floods
// via table 21.
func (c *compiler) table20() []Flow {
	out := make([]Flow, 0, len(c.ports)+1)
	for _, p := range c.ports {
		n := p.network
		out = append(out, Flow{
			Table: TableUnicast, Priority: 2, Cookie: PortCookie(n.Name, p.name),
			Match:   Match{VLANTCI: VLANMatch(n.LocalVLAN), EthDst: ExactMAC(p.mac)},
			Actions: append([]Action{PopVLAN{}, SetTunID(uint64(n.SegmentID))}, c.send(p.tunnel)...),
		})
	}
	return append(out, c.miss(BrTun, TableUnicast)...)
}

// LearnedShadow returns the learned entry (as learn() in table 10 writes
// its match: priority 1, vlan_tci=VLAN/0x0fff, dl_dst=MAC) that a
// registered port's table 20 flow f stands for, and false when f is not
// one. When a registered entry appears, changes tunnel or goes (the port
// moved here, there, or away), a learned entry for the same VLAN and MAC
// still names the tunnel the MAC was last seen on: the controller deletes
// it strictly in the same bundle, so no host keeps sending the MAC to its
// old host once the registered entry is gone or hides it only until it
// goes.
func LearnedShadow(f Flow) (Flow, bool) {
	vid, ok := f.Match.VLANID()
	if f.Table != TableUnicast || f.Priority != 2 || !ok || f.Match.EthDst == nil || *f.Match.EthDst != *ExactMAC(f.Match.EthDst.Value) {
		return Flow{}, false
	}
	return Flow{
		Table: TableUnicast, Priority: learnedPriority,
		Match: Match{VLANTCI: &MaskedU16{Value: vid, Mask: 0x0fff}, EthDst: ExactMAC(f.Match.EthDst.Value)},
	}, true
}
