package flows

// table2 emits br-tun table 2, unused as in the source design: a single drop.
func (c *compiler) table2() []Flow { return c.miss(BrTun, TableUnused) }
