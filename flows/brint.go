package flows

import "slices"

// brIntTable0 emits br-int's table 0: a drop for every frame an
// administratively down port sends (priority 1), then NORMAL switching (VM
// ports are VLAN access ports, patch-tun is a trunk). br-int is
// fail_mode=secure, so it forwards nothing until the NORMAL flow is
// installed.
func (c *compiler) brIntTable0() []Flow {
	out := make([]Flow, 0, len(c.downPorts)+1)
	for _, p := range c.downPorts {
		out = append(out, Flow{
			Table: TableIntNormal, Priority: 1, Cookie: PortCookie(p.Network, p.Name),
			Match: Match{InPort: Ptr(p.Ofport)},
		})
	}
	return append(out, c.miss(BrInt, TableIntNormal)...)
}

// indexDownPorts keeps the down ports with a usable ofport, by ofport.
func (c *compiler) indexDownPorts(in []DownPort) {
	for _, p := range in {
		if p.Ofport == 0 || p.Ofport >= PortMax {
			c.skip("down port %s/%s has no usable ofport (%d): its frames are not dropped yet", p.Network, p.Name, p.Ofport)
			continue
		}
		c.downPorts = append(c.downPorts, p)
	}
	slices.SortFunc(c.downPorts, func(a, b DownPort) int { return int(a.Ofport) - int(b.Ofport) })
	c.downPorts = slices.CompactFunc(c.downPorts, func(a, b DownPort) bool { return a.Ofport == b.Ofport })
}
