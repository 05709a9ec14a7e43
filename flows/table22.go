package flows

// table22 emits br-tun table 22 (nd-reply): the advertisement built in table
// 21 gets the port's MAC as target link-layer address and goes back to
// br-int. Anything else is dropped.
func (c *compiler) table22() []Flow {
	var out []Flow
	for _, p := range c.ports {
		for _, ip := range p.ipv6 {
			out = append(out, Flow{
				Table: TableNDReply, Priority: 1, Cookie: PortCookie(p.network.Name, p.name),
				Match: Match{
					EthType:    Ptr(EthTypeIPv6),
					IPProto:    Ptr(IPProtoICMPv6),
					VLANTCI:    VLANMatch(p.network.LocalVLAN),
					ICMPv6Type: Ptr(uint8(136)),
					NDTarget:   Ptr(ip),
				},
				Actions: []Action{SetMAC(FieldNDTLL, p.mac), InPort{}},
			})
		}
	}
	return append(out, c.miss(BrTun, TableNDReply)...)
}
