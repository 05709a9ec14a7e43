package controller

import (
	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// syncedState is what a successful full reconcile of a host was computed
// from.
type syncedState struct {
	digest    [32]byte    // hostDigest.all of the host's inputs
	facts     ovsdb.Facts // the host's OVSDB facts it compiled with
	ownsOVSDB bool        // whether this replica did the host's OVSDB work
	ovsdb     [32]byte    // hostInputs.ovsdbSum of the host's inputs
}

// ovsdbClean reports whether the host's OVSDB transaction, with inputs
// summed in sum, would find nothing to write: the last full reconcile
// succeeded with the same OVSDB inputs and OVSDB role, the client's facts
// are still those it saw after its transaction, no tunnel ports of the
// other --tunnel-ports mode wait for their swap, and the drift check
// (drift) does not ask for the transaction, which also puts back what the
// facts do not show (a bridge's fail_mode, its controllers, ...).
func (c *Controller) ovsdbClean(hs *hostState, cl *ovsdb.Client, sum [32]byte, owns, drift, flowPorts bool) bool {
	c.mu.Lock()
	s := hs.synced
	c.mu.Unlock()
	return !drift && s != nil && s.ovsdb == sum && s.ownsOVSDB == owns && cl.SameFacts(s.facts) && !swapPending(s.facts, flowPorts)
}

// swapPending reports whether facts show tunnel ports of the other
// --tunnel-ports mode than flowPorts says (tunnelSwapWaits): the host is
// not in its desired state until they are swapped.
func swapPending(facts ovsdb.Facts, flowPorts bool) bool {
	for _, t := range facts.Tunnels {
		if t.Flow != flowPorts {
			return true
		}
	}
	return false
}

// takeIfClean takes revision rev on hs without a reconcile when nothing
// the reconcile reads changed since the last full one, which succeeded:
// the inputs from the desired state (digest), the OVSDB facts and roles
// are the same, no marked interface waits for autobind, the drift check
// asks for nothing, and every bridge this replica programs holds what that
// reconcile installed on the connection it has now. The full reconcile
// would then send nothing and compile the same flows; only the revision
// moves. It reports whether it took the revision.
func (c *Controller) takeIfClean(hs *hostState, desired *desiredState, host topology.Host, sum hostDigest) bool {
	rev := desired.snap.Revision
	cl := hs.ovsdb.clientFor(host.OVSDB)
	if cl == nil {
		return false
	}
	c.mu.Lock()
	synced := hs.synced
	c.mu.Unlock()
	// The facts are compared in place (a host's hold a tunnel port per
	// peer in per-peer mode), outside mu like every OVSDB call.
	if synced == nil || !cl.SameFacts(synced.facts) || desired.unboundMarks(host.Name, synced.facts.Marked) {
		return false
	}
	c.mu.Lock()
	if hs.synced != synced || !c.cleanLocked(hs, sum) {
		c.mu.Unlock()
		return false
	}
	var applied []bridgeRef
	// WaitApplied is woken only when this changes what it reads: a host
	// that setSnapshot found untouched has seen rev already, and its
	// bridges' desired state is older than rev. (At 1000 hosts every
	// revision is taken this way by 999 of them: 999 wakeups, each walking
	// the hosts until a bridge not applied, cost more than the change.)
	wake := hs.seenRev < rev || hs.lastErr != nil
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		if c.switches[bs.dpid] == nil || (c.opts.Mastership != nil && !bs.role.master) {
			continue // the full reconcile would not apply it either
		}
		if bs.appliedRev < bs.desiredRev {
			wake = true
		}
		bs.appliedRev = max(bs.appliedRev, rev)
		applied = append(applied, bs.ref)
	}
	hs.seenRev = max(hs.seenRev, rev)
	hs.lastErr = nil
	if wake {
		c.changedLocked()
	}
	c.mu.Unlock()
	for _, ref := range applied {
		c.reportApplied(ref, rev)
	}
	c.metrics.skipped()
	c.log.Debug("revision taken without a reconcile: nothing the host depends on changed", zap.String("host", hs.name), zap.Uint64("revision", rev))
	return true
}

// cleanLocked reports whether a full reconcile of hs with inputs summed in
// sum would find nothing to do (see takeIfClean), given that the host's
// OVSDB facts are still those hs.synced was computed with.
func (c *Controller) cleanLocked(hs *hostState, sum hostDigest) bool {
	s := hs.synced
	if s == nil || hs.driftDue || s.digest != sum.all || s.ownsOVSDB != c.ownsOVSDB(hs.name) {
		return false
	}
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		conn := c.switches[bs.dpid]
		if conn == nil {
			continue
		}
		if c.opts.Mastership != nil {
			master, gen := c.opts.Mastership.Role(bs.ref.String())
			if bs.role != (roleState{conn: conn, master: master, generation: gen}) {
				return false
			}
			if !master {
				continue
			}
		}
		if bs.needDump || bs.installed == nil || bs.conn != conn {
			return false
		}
	}
	return true
}
