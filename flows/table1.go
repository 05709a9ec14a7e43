package flows

// table1 emits br-tun table 1 (outbound): from br-int, unicast goes to the
// unicast table, multicast and broadcast to the flood table.
func (c *compiler) table1() []Flow {
	group := MAC{0x01}
	return append([]Flow{
		{
			Table: TableOutbound, Priority: 1, Cookie: PipelineCookie(),
			Match:   Match{EthDst: MaskedMACOf(MAC{}, group)},
			Actions: []Action{GotoTable{Table: TableUnicast}},
		},
		{
			Table: TableOutbound, Priority: 1, Cookie: PipelineCookie(),
			Match:   Match{EthDst: MaskedMACOf(group, group)},
			Actions: []Action{GotoTable{Table: TableFlood}},
		},
	}, c.miss(BrTun, TableOutbound)...)
}
