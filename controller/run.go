package controller

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/topology"
)

// Run reconciles until ctx ends: on every store revision every host, and
// each host once per drift interval, at its own offset within it, with a
// fresh dump of every connected bridge.
func (c *Controller) Run(ctx context.Context) error {
	revs := c.opts.Store.Watch(ctx)
	workers := make(chan struct{})
	go func() {
		c.q.run(ctx, c.opts.Workers, c.reconcileHost, func(key string, err error, in time.Duration) {
			c.log.Warn("reconcile failed; retrying", zap.String("host", key), zap.Duration("in", in), zap.Error(err))
		})
		close(workers)
	}()
	dhcpDone := make(chan struct{})
	go func() {
		defer close(dhcpDone)
		c.runDHCP(ctx)
	}()
	defer func() { <-dhcpDone }()
	sched := newDriftSchedule(c.opts.DriftInterval)
	drift := time.NewTicker(sched.tick())
	defer drift.Stop()
	defer func() {
		<-workers
		c.closeHosts()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rev, ok := <-revs:
			if !ok {
				return nil
			}
			snap, err := c.opts.Store.Snapshot(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Error("reading the store", zap.Uint64("revision", rev), zap.Error(err))
				continue
			}
			c.setSnapshot(snap)
		case now := <-drift.C:
			c.checkDrift(sched, now)
		case <-c.roleChanges():
			c.rolesChanged()
		case <-c.appliedChanges():
			c.mu.Lock()
			c.changedLocked() // wakes WaitApplied
			c.mu.Unlock()
		}
	}
}

// setSnapshot makes snap the desired state and enqueues every host. A
// host whose inputs the revision did not touch, and which has seen the
// revision before it, has seen this one too: WaitApplied need not wait
// for its reconcile, which only takes the revision (takeIfClean), or
// repairs what the drift check or its OVSDB found, whatever the revision.
func (c *Controller) setSnapshot(snap topology.Snapshot) {
	desired := newDesiredState(snap, c.opts.TunnelPorts)
	sums := make([]hostDigest, len(snap.Hosts))
	for i, h := range snap.Hosts {
		sums[i] = desired.digest(h)
	}
	c.mu.Lock()
	if snap.Revision < c.desired.snap.Revision {
		c.mu.Unlock()
		return
	}
	c.desired = desired
	c.owners = map[uint64]bridgeRef{}
	// The hosts WaitApplied waits for (changed ones) go ahead of those that
	// only take the revision, and of drift checks: at 1000 hosts a bound
	// port's host would otherwise wait behind up to 999 others still
	// queued from the previous revision.
	var changed []string
	keys := make([]string, 0, len(snap.Hosts)+len(c.hosts))
	for i, h := range snap.Hosts {
		hs := c.hosts[h.Name]
		if hs == nil {
			hs = newHostState(h.Name)
			c.hosts[h.Name] = hs
		}
		if hs.sumRev != 0 && hs.sum == sums[i] && hs.seenRev >= hs.sumRev {
			hs.seenRev = max(hs.seenRev, snap.Revision)
			keys = append(keys, h.Name)
		} else {
			changed = append(changed, h.Name)
		}
		hs.sum, hs.sumRev = sums[i], snap.Revision
		for _, bs := range hs.bridges {
			c.owners[bs.dpid] = bs.ref
		}
	}
	for name := range c.hosts {
		if _, ok := snap.Host(name); !ok {
			keys = append(keys, name) // its reconcile forgets it
		}
	}
	c.changedLocked()
	c.mu.Unlock()
	c.placeBridges(snap)
	c.q.AddFirst(changed...)
	for _, k := range keys {
		c.q.Add(k)
	}
}

// checkDrift asks each host whose drift check sched says is due at now
// for a full reconcile and each of its bridges for a fresh dump, and
// enqueues it.
func (c *Controller) checkDrift(sched *driftSchedule, now time.Time) {
	c.mu.Lock()
	names := make([]string, 0, len(c.hosts))
	for name := range c.hosts {
		names = append(names, name)
	}
	keys := sched.due(now, names)
	for _, name := range keys {
		hs := c.hosts[name]
		hs.driftDue = true
		for _, bs := range hs.bridges {
			bs.needDump = true
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.q.Add(k)
	}
}
