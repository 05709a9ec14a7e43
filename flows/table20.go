package flows

// table20 emits br-tun table 20 (unicast): a known remote port's MAC on its
// network's VLAN goes untagged, with the network's tun_id, to the tunnel of
// the port's host (priority 2, above learned entries at priority 1). A miss
// floods via table 21.
func (c *compiler) table20() []Flow {
	out := make([]Flow, 0, len(c.ports)+1)
	for _, p := range c.ports {
		n := p.network
		out = append(out, Flow{
			Table: TableUnicast, Priority: 2, Cookie: PortCookie(n.Name, p.name),
			Match: Match{VLANTCI: VLANMatch(n.LocalVLAN), EthDst: ExactMAC(p.mac)},
			Actions: []Action{
				PopVLAN{},
				SetTunID(uint64(n.SegmentID)),
				Output{Port: p.tunnel},
			},
		})
	}
	return append(out, c.miss(BrTun, TableUnicast)...)
}
