package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/topology"
)

// Mastership decides which bridges this replica programs when several
// brtun replicas share one desired state. Every replica accepts every
// switch; the master of a bridge sends it OFPT_ROLE_REQUEST master and its
// flow_mods, the others hold the slave role and send nothing. A nil
// Mastership (one replica, bbolt store) masters every bridge and sends no
// role requests at all.
type Mastership interface {
	// SetBridges names every bridge to place ("HOST/BRIDGE"); the
	// controller calls it with each new snapshot.
	SetBridges(refs []string)
	// Role reports whether this replica masters ref right now, and the
	// generation id for role requests: the master's own, or the current
	// master's as far as this replica knows (0 if none).
	Role(ref string) (master bool, generation uint64)
	// Changes receives (coalesced) whenever a role may have changed.
	Changes() <-chan struct{}
	// Master names the replica that masters ref ("" when none is known).
	Master(ref string) string
	// ReportApplied tells the other replicas that this replica, as master
	// of ref, installed the desired state of revision rev.
	ReportApplied(ref string, rev uint64)
	// Applied is the newest revision ref's masters reported installed.
	Applied(ref string) uint64
	// AppliedChanges receives (coalesced) whenever Applied may have changed.
	AppliedChanges() <-chan struct{}
}

// roleSwitch is a Switch that can take a controller role. OpenFlow
// connections can; test fakes need not.
type roleSwitch interface {
	TakeRole(ctx context.Context, master bool, generation uint64) error
}

// TakeRole sends OFPT_ROLE_REQUEST master or slave with generation.
func (s ofSwitch) TakeRole(ctx context.Context, master bool, generation uint64) error {
	role := ofswitch.RoleSecondary
	if master {
		role = ofswitch.RolePrimary
	}
	_, _, err := s.RequestRole(ctx, role, generation)
	return err
}

// roleState is the role a bridge's connection was last given.
type roleState struct {
	conn       Switch // nil: none given yet
	master     bool
	generation uint64
}

// placeBridges hands the bridges of snap to the mastership.
func (c *Controller) placeBridges(snap topology.Snapshot) {
	if c.opts.Mastership == nil {
		return
	}
	refs := make([]string, 0, 2*len(snap.Hosts))
	for _, h := range snap.Hosts {
		for _, b := range bridgeNames {
			refs = append(refs, bridgeRef{h.Name, b}.String())
		}
	}
	c.opts.Mastership.SetBridges(refs)
}

// roleChanges is the channel of role changes; nil (never ready) for one
// replica.
func (c *Controller) roleChanges() <-chan struct{} {
	if c.opts.Mastership == nil {
		return nil
	}
	return c.opts.Mastership.Changes()
}

// rolesChanged enqueues every host so that each bridge gets its new role.
func (c *Controller) rolesChanged() {
	c.mu.Lock()
	keys := make([]string, 0, len(c.hosts))
	for name := range c.hosts {
		keys = append(keys, name)
	}
	c.changedLocked()
	c.mu.Unlock()
	for _, k := range keys {
		c.q.Add(k)
	}
}

// ownsOVSDB reports whether this replica does the OVSDB work of host
// (bridges, tunnel mesh, bindings, autobind): the master of its br-tun.
func (c *Controller) ownsOVSDB(host string) bool {
	if c.opts.Mastership == nil {
		return true
	}
	master, _ := c.opts.Mastership.Role(bridgeRef{host, BrTun}.String())
	return master
}

// masterOf names the replica mastering a bridge, for status ("" with one
// replica).
func (c *Controller) masterOf(ref bridgeRef) string {
	if c.opts.Mastership == nil {
		return ""
	}
	return c.opts.Mastership.Master(ref.String())
}

// holdRole gives conn the role this replica has for bs, when it does not
// hold it yet, and reports whether this replica is the bridge's master
// (always, with one replica). A bridge that is not mastered here forgets
// what it installed: on becoming master it dumps the switch and sends only
// the difference.
func (c *Controller) holdRole(ctx context.Context, bs *bridgeState, conn Switch) (bool, error) {
	if c.opts.Mastership == nil {
		return true, nil
	}
	master, gen := c.opts.Mastership.Role(bs.ref.String())
	want := roleState{conn: conn, master: master, generation: gen}
	c.mu.Lock()
	have := bs.role
	if !master {
		bs.installed = nil
	}
	c.mu.Unlock()
	if have == want {
		return master, nil
	}
	if rs, ok := conn.(roleSwitch); ok {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rs.TakeRole(rctx, master, gen)
		cancel()
		switch {
		case err != nil && master:
			return false, fmt.Errorf("take the master role (generation %d): %w", gen, err)
		case err != nil && !errors.Is(err, context.Canceled):
			// A slave request with an old generation is refused as stale;
			// the switch demoted this replica when the master took over.
			c.log.Debug("slave role request refused", zap.Stringer("bridge", bs.ref), zap.Uint64("generation", gen), zap.Error(err))
		}
	}
	c.mu.Lock()
	bs.role = want
	c.changedLocked()
	c.mu.Unlock()
	c.log.Info("bridge role", zap.Stringer("bridge", bs.ref), zap.Bool("master", master), zap.Uint64("generation", gen))
	return master, nil
}

// reportApplied publishes that this replica installed rev on ref.
func (c *Controller) reportApplied(ref bridgeRef, rev uint64) {
	if c.opts.Mastership != nil {
		c.opts.Mastership.ReportApplied(ref.String(), rev)
	}
}

// appliedChanges is the channel of applied revisions reported by other
// replicas; nil (never ready) for one replica.
func (c *Controller) appliedChanges() <-chan struct{} {
	if c.opts.Mastership == nil {
		return nil
	}
	return c.opts.Mastership.AppliedChanges()
}

// appliedRevLocked is the revision bs has installed: as this replica
// installed it or, with several replicas, as its master reported it.
func (c *Controller) appliedRevLocked(bs *bridgeState) uint64 {
	if c.opts.Mastership == nil {
		return bs.appliedRev
	}
	return max(bs.appliedRev, c.opts.Mastership.Applied(bs.ref.String()))
}
