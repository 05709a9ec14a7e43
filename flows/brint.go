package flows

// brIntTable0 emits br-int's only flow: NORMAL switching (VM ports are VLAN
// access ports, patch-tun is a trunk). br-int is fail_mode=secure, so it
// forwards nothing until this flow is installed.
func (c *compiler) brIntTable0() []Flow { return c.miss(BrInt, TableIntNormal) }
