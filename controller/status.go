package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
)

// HostStatus is the live state of one host.
type HostStatus struct {
	OVSDBConnected bool
	Bridges        map[string]BridgeStatus
	LastError      string
}

// BridgeStatus is the live state of one bridge.
type BridgeStatus struct {
	DatapathID        uint64
	OpenFlowConnected bool
	AppliedRevision   uint64
	// Master names the replica that masters the bridge ("" with one
	// replica, or while none does).
	Master string
}

// HostStatus reports a host's OVSDB session and its bridges.
func (c *Controller) HostStatus(host string) HostStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := HostStatus{Bridges: map[string]BridgeStatus{}}
	hs := c.hosts[host]
	if hs == nil {
		return st
	}
	if cl := hs.ovsdb.client(); cl != nil {
		st.OVSDBConnected = cl.Connected()
	}
	if hs.lastErr != nil {
		st.LastError = hs.lastErr.Error()
	}
	for name, bs := range hs.bridges {
		st.Bridges[name] = BridgeStatus{
			DatapathID:        bs.dpid,
			OpenFlowConnected: c.switches[bs.dpid] != nil,
			AppliedRevision:   c.appliedRevLocked(bs),
			Master:            c.masterOf(bs.ref),
		}
	}
	return st
}

// PortBound reports whether iface is bound on host's br-int with an ofport.
func (c *Controller) PortBound(host, iface string) bool {
	c.mu.Lock()
	hs := c.hosts[host]
	var cl *ovsdb.Client
	if hs != nil {
		cl = hs.ovsdb.client()
	}
	c.mu.Unlock()
	if cl == nil {
		return false
	}
	for _, b := range cl.Facts().Bindings {
		if b.Interface == iface {
			return b.OFPort > 0 && b.VLAN > 0
		}
	}
	return false
}

// PortError is why host's OVSDB cannot take the binding of iface, which
// the host's last OVSDB transaction left out ("" when it did not). Only the
// replica that writes the host's OVSDB knows it.
func (c *Controller) PortError(host, iface string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hs := c.hosts[host]; hs != nil {
		return hs.refused[iface]
	}
	return ""
}

// WaitApplied blocks until every bridge whose desired state changed at or
// after revision rev has installed it. It returns nil, nil then; when ctx
// ends first it returns the bridges that had not ("HOST/BRIDGE", sorted)
// and ctx's error. A disconnected bridge that the change touched counts as
// not applied.
func (c *Controller) WaitApplied(ctx context.Context, rev uint64) ([]string, error) {
	for {
		c.mu.Lock()
		// Every host that takes a revision wakes the waiters: stopping at
		// the first bridge not applied, with no list built, keeps a wait at
		// N hosts from costing O(N²).
		done := len(c.notAppliedLocked(rev, 1)) == 0
		tick := c.tick
		c.mu.Unlock()
		if done {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			c.mu.Lock()
			pending := c.notAppliedLocked(rev, -1)
			c.mu.Unlock()
			if len(pending) == 0 {
				return nil, nil
			}
			return pending, ctx.Err()
		case <-tick:
		}
	}
}

// notAppliedLocked returns the bridges that have not applied revision rev
// (see WaitApplied), sorted, or the first limit of them found in no order
// when limit is positive.
func (c *Controller) notAppliedLocked(rev uint64, limit int) []string {
	var pending []string
	full := func() bool { return limit > 0 && len(pending) >= limit }
	if c.desired.snap.Revision < rev && len(c.hosts) == 0 {
		pending = append(pending, "controller") // has not seen the revision yet
	}
	for _, hs := range c.hosts {
		for _, bs := range hs.bridges {
			if full() {
				return pending
			}
			unknown := c.desired.snap.Revision < rev || hs.seenRev < rev
			if unknown || (bs.desiredRev >= rev && c.appliedRevLocked(bs) < bs.desiredRev) {
				pending = append(pending, bs.ref.String())
			}
		}
	}
	sort.Strings(pending)
	return pending
}

// DumpFlows reads the flows of one bridge of a host from the switch itself;
// table < 0 means every table.
func (c *Controller) DumpFlows(ctx context.Context, host, bridge string, table int) ([]FlowStats, error) {
	if bridge != BrInt && bridge != BrTun {
		return nil, fmt.Errorf("unknown bridge %q: want %s or %s", bridge, BrInt, BrTun)
	}
	c.mu.Lock()
	hs := c.hosts[host]
	var sw Switch
	if hs != nil {
		sw = c.switches[hs.bridges[bridge].dpid]
	}
	c.mu.Unlock()
	if hs == nil {
		return nil, fmt.Errorf("host %q: %w", host, ErrUnknownHost)
	}
	if sw == nil {
		return nil, fmt.Errorf("%s/%s: %w", host, bridge, ErrNotConnected)
	}
	d, err := sw.DumpFlows(ctx, c.seed, nil)
	if err != nil {
		return nil, fmt.Errorf("dump %s/%s: %w", host, bridge, err)
	}
	out := d.Flows[:0]
	for _, f := range d.Flows {
		if table < 0 || int(f.Flow.Table) == table {
			out = append(out, f)
		}
	}
	return out, nil
}

// Owners returns a function naming the owner of a flow by its cookie, with
// port cookies resolved to the port's name ("port:vm1") through the desired
// state as it is now. Build it once per dump: it indexes every port.
func (c *Controller) Owners() func(cookie uint64) string {
	c.mu.Lock()
	ports := make(map[uint32]string, len(c.desired.snap.Ports))
	for _, p := range c.desired.snap.Ports {
		ports[flows.PortID(p.Network, p.Name)] = p.Name
	}
	remote := c.desired.remote.owners // never written after newDesiredState
	c.mu.Unlock()
	return func(cookie uint64) string {
		o, ok := flows.DecodeCookie(cookie)
		switch {
		case !ok:
			return flows.DecodeOwner(cookie)
		case o.Kind == flows.OwnerLearned:
			return "learned"
		case o.Kind == flows.OwnerPort && ports[o.ID] != "":
			return "port:" + ports[o.ID]
		case o.Kind == flows.OwnerPort && remote[o.ID] != "":
			return "remote:" + remote[o.ID] // remote:static:NAME:MAC@VTEP, remote:evpn:PEER:MAC@VTEP
		}
		return o.String()
	}
}

// Errors DumpFlows returns.
var (
	ErrUnknownHost  = errors.New("no such host")
	ErrNotConnected = errors.New("switch not connected")
)
