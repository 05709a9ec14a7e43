package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// hostState is what the controller knows of one host. Its OVSDB session
// and its autobind memory belong to the host's reconcile, and their types
// say who else may touch them; every other field is guarded by
// Controller.mu.
type hostState struct {
	name     string
	ovsdb    *ovsdbSession
	autobind *autobindLog

	// seenRev is the store revision the last reconcile computed, or a
	// later one that changed none of its inputs (setSnapshot).
	seenRev uint64
	// sum is the digest of the host's inputs at revision sumRev, the
	// newest desired state (setSnapshot).
	sum    hostDigest
	sumRev uint64
	// synced is what the last full reconcile was computed from when it
	// succeeded (nil: it failed, or none ran yet); a revision that leaves
	// it as it was needs nothing done on the host (see takeIfClean).
	synced *syncedState
	// compiled is the host's last compiled flows (compileFor). Like
	// ovsdb and autobind, it belongs to the host's reconcile.
	compiled *compiledSet
	// driftDue is set by the drift check: the next reconcile takes the
	// full path, OVSDB transaction included.
	driftDue bool
	lastErr  error
	bridges  map[string]*bridgeState
	// refused are the bindings the last OVSDB transaction left out because
	// OVSDB cannot take them: interface -> reason (see syncBindings).
	refused map[string]string
	// ofports maps br-int ofports to the up local ports on them, as the
	// last reconcile saw them: packet-ins name their port by in_port.
	ofports map[uint32]portRef
}

// portRef names a port.
type portRef struct{ network, name string }

// newHostState returns the state of a host first seen, with both bridges.
func newHostState(name string) *hostState {
	hs := &hostState{name: name, ovsdb: newOVSDBSession(), autobind: newAutobindLog(), bridges: map[string]*bridgeState{}}
	for _, b := range bridgeNames {
		ref := bridgeRef{name, b}
		hs.bridges[b] = &bridgeState{ref: ref, dpid: ovsdb.DatapathID(name, b)}
	}
	return hs
}

// reconcileHost brings one host to the desired state of the newest
// snapshot: OVSDB first (bridges, tunnels, bindings), then both bridges'
// flows, compiled from the snapshot and the host's OVSDB facts. A revision
// that changed nothing the host's reconcile reads is taken without that
// work (takeIfClean).
func (c *Controller) reconcileHost(ctx context.Context, name string) error {
	start := time.Now()
	c.mu.Lock()
	desired := c.desired
	hs := c.hosts[name]
	c.mu.Unlock()
	host, ok := desired.snap.Host(name)
	if hs == nil {
		return nil
	}
	if !ok {
		c.forgetHost(hs)
		return nil
	}
	c.mu.Lock()
	sum, summed := hs.sum, hs.sumRev == desired.snap.Revision
	c.mu.Unlock()
	if !summed {
		sum = desired.digest(host)
	}
	if c.takeIfClean(hs, desired, host, sum) {
		return nil
	}
	in := desired.inputs(host)
	err := c.reconcileFull(ctx, hs, in, sum, desired.snap)
	c.metrics.reconciled(err, time.Since(start))
	c.log.Debug("reconciled", zap.String("host", name), zap.Uint64("revision", desired.snap.Revision),
		zap.Duration("took", time.Since(start)), zap.Bool("ok", err == nil))
	return err
}

// reconcileFull is the full reconcile of one host: the OVSDB transaction,
// autobind, compile, validation, and the diff of both bridges against what
// they hold.
func (c *Controller) reconcileFull(ctx context.Context, hs *hostState, in hostInputs, sum hostDigest, snap topology.Snapshot) error {
	log := c.log.With(zap.String("host", hs.name), zap.Uint64("revision", snap.Revision))
	c.mu.Lock()
	drift := hs.driftDue
	hs.driftDue = false // this reconcile does what the drift check asked for
	c.mu.Unlock()
	c.startDumps(ctx, hs)

	owns := c.ownsOVSDB(hs.name)
	osum := in.ovsdbSum()
	cl, swapWaits, ovsErr := c.syncOVSDB(ctx, hs, in, osum, owns, drift)
	var facts ovsdb.Facts
	if cl != nil {
		facts = cl.Facts()
	}
	if owns {
		c.autobind(ctx, hs, snap, in, facts.Marked)
	}
	view := buildView(in, facts)
	view.SourceMeter = c.opts.SourceMeter.Rate > 0
	if cl != nil {
		ofports := make(map[uint32]portRef, len(view.LocalPorts))
		for _, p := range view.LocalPorts {
			if p.Ofport > 0 {
				ofports[p.Ofport] = portRef{p.Network, p.Name}
			}
		}
		c.mu.Lock()
		hs.ofports = ofports
		c.mu.Unlock()
	}
	fp := map[string][32]byte{}
	for _, b := range bridgeNames {
		fp[b] = sum.bridge(b, view)
	}
	cs, compiled := c.compileFor(hs.compiled, view, fp)
	hs.compiled = cs
	set := cs.set
	if compiled {
		for _, s := range set.Skipped {
			log.Debug("left out of the pipeline", zap.String("reason", s))
		}
	}
	invalid := cs.err()
	if invalid != nil {
		// A compiler bug: sending the set could break forwarding on the
		// host, so neither bridge gets any of it. The error names every
		// offending flow.
		c.metrics.invalidFlowSet(hs.name)
		log.Error("compiled flows break the declared pipeline; none are sent", zap.Error(invalid))
		invalid = fmt.Errorf("flows: %w", invalid)
	}

	// The bridges are two switches: their syncs run side by side, so
	// ovs-vswitchd takes both bundles in the same main-loop passes (it reads
	// at most 50 messages a connection a pass, and a pass over thousands of
	// ports costs more than the messages it reads).
	round := bridgeRound{cs: cs, rev: snap.Revision, known: cl != nil, valid: invalid == nil, swapWaits: swapWaits, applied: ovsErr == nil}
	bridgeErrs := make([]error, len(bridgeNames))
	var wg, syncing sync.WaitGroup
	syncing.Add(len(bridgeNames))
	syncsDone := make(chan struct{})
	for i, b := range bridgeNames {
		c.mu.Lock()
		bs := hs.bridges[b]
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var absent bool
			absent, bridgeErrs[i] = c.reconcileBridge(ctx, bs, fp[b], round)
			syncing.Done()
			if absent && round.known && round.valid && !(round.swapWaits && b == BrTun) && c.joinWhenConnected(ctx, bs, syncsDone) {
				_, bridgeErrs[i] = c.reconcileBridge(ctx, bs, fp[b], round)
			}
		}()
	}
	syncing.Wait()
	close(syncsDone)
	wg.Wait()
	err := errors.Join(append([]error{ovsErr, invalid}, bridgeErrs...)...)
	c.mu.Lock()
	hs.seenRev = max(hs.seenRev, snap.Revision)
	hs.lastErr = err
	hs.synced = nil
	// A reconcile whose OVSDB transaction left the tunnel ports of the
	// other mode in place (their swap waits for br-tun's switch) is not
	// one the next may skip, even when br-tun's switch connected during it.
	if err == nil && cl != nil && !swapPending(facts, in.view.TunnelPorts.Flow()) {
		hs.synced = &syncedState{digest: sum.all, facts: facts, ownsOVSDB: owns, ovsdb: osum}
	}
	c.changedLocked()
	c.mu.Unlock()
	return err
}

// bridgeRound is what the syncs of a host's two bridges in one reconcile
// share.
type bridgeRound struct {
	cs        *compiledSet
	rev       uint64
	known     bool // the OVSDB facts the set was compiled from are known
	valid     bool // the set passed validation
	swapWaits bool // the tunnel swap waits for br-tun's switch (syncOVSDB)
	applied   bool // the host's OVSDB is applied: a synced bridge applied rev
}

// joinWhenConnected waits, for a bridge whose switch was not connected
// when the reconcile began, until it connects or the syncs of the host's
// other bridges are done (syncsDone closed), and says whether it connected.
// Both switches of a host come back together (brtun or ovs-vswitchd
// restarted, `ovs-appctl bridge/reconnect`), one a few milliseconds after
// the other; the second joining the reconcile the first began puts both
// bundles into the same main-loop passes of ovs-vswitchd, where the next
// reconcile, which its connection asked for, would send it only after the
// first bundle (2.2 s more at 4094 networks, docs/benchmarks.md).
func (c *Controller) joinWhenConnected(ctx context.Context, bs *bridgeState, syncsDone <-chan struct{}) bool {
	for {
		c.mu.Lock()
		conn, tick := c.switches[bs.dpid], c.tick
		c.mu.Unlock()
		if conn != nil {
			return true
		}
		select {
		case <-tick:
		case <-syncsDone:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// reconcileBridge is step 3 of reconcileFull for one bridge, whose
// fingerprint is fp: it syncs the bridge's switch, when it is connected
// and this replica masters it, to the compiled set, and records the
// revision as applied when the host's OVSDB is too. absent says that the
// switch was not connected.
func (c *Controller) reconcileBridge(ctx context.Context, bs *bridgeState, fp [32]byte, r bridgeRound) (absent bool, err error) {
	c.mu.Lock()
	if fp != bs.fingerprint {
		bs.fingerprint, bs.desiredRev = fp, r.rev
	}
	conn := c.switches[bs.dpid]
	if conn == nil {
		bs.dropDumpLocked() // of a connection that has gone
		c.mu.Unlock()
		return true, nil // reconciled again when the switch connects
	}
	c.mu.Unlock()
	return false, c.syncConnected(ctx, bs, conn, r)
}

// syncConnected is reconcileBridge for a connected switch.
func (c *Controller) syncConnected(ctx context.Context, bs *bridgeState, conn Switch, r bridgeRound) error {
	b := bs.ref.bridge
	if !r.known {
		// Nothing is known yet of the host's ports and their ofports,
		// so flows compiled now would delete the pipeline the switch
		// holds and forwards on. They wait for the OVSDB connection,
		// whose dial enqueues the host when it is done; the dump
		// started for the bridge waits with them.
		return nil
	}
	if !r.valid {
		return nil // what the switch holds stays, and so does its dump
	}
	if r.swapWaits && b == BrTun {
		// br-tun's switch connected after the OVSDB transaction left the
		// other mode's tunnel ports in place: the new mode's flows would
		// send over ports that are not there. Its connection enqueued the
		// host; that reconcile swaps the ports and sends these flows
		// together.
		return nil
	}
	if master, err := c.holdRole(ctx, bs, conn); !master {
		c.watchFlows(ctx, bs, conn, false)
		c.mu.Lock()
		bs.dropDumpLocked()
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: %w", bs.ref, err)
		}
		return nil // another replica programs this bridge
	}
	c.watchFlows(ctx, bs, conn, true)
	if b == BrInt {
		if err := c.ensureMeters(ctx, bs, conn, c.wantMeters(r.cs.bridges[BrInt].flows)); err != nil {
			return fmt.Errorf("%s: %w", bs.ref, err) // flows naming a missing meter would be refused
		}
	}
	if err := c.syncBridge(ctx, bs, conn, r.cs, b); err != nil {
		return fmt.Errorf("%s: %w", bs.ref, err)
	}
	if b == BrInt {
		c.dropStaleMeters(ctx, bs, conn)
	}
	if r.applied {
		c.mu.Lock()
		bs.appliedRev = r.rev
		c.mu.Unlock()
		c.reportApplied(bs.ref, r.rev)
	}
	return nil
}

// forgetHost drops a host that left the store: its OVSDB session closes,
// its switches are no longer served.
func (c *Controller) forgetHost(hs *hostState) {
	hs.ovsdb.close()
	c.mu.Lock()
	if c.hosts[hs.name] == hs {
		delete(c.hosts, hs.name)
	}
	hs.ovsdb.dropDialed() // a dial finishing from now on sees the host gone
	var gone []Switch
	for _, bs := range hs.bridges {
		bs.dropDumpLocked()
		if sw := c.switches[bs.dpid]; sw != nil {
			delete(c.switches, bs.dpid)
			gone = append(gone, sw)
		}
	}
	c.changedLocked()
	c.mu.Unlock()
	// Closed outside mu: a connection's Close waits for its reader, which
	// may be waiting for mu itself (a packet-in, a flow monitor update).
	for _, sw := range gone {
		_ = sw.Close()
	}
	c.log.Info("host removed", zap.String("host", hs.name))
}

// closeHosts ends every OVSDB session when the controller stops. Emptying
// the host map first makes a dial that finishes later close its own client.
func (c *Controller) closeHosts() {
	c.mu.Lock()
	hosts := make([]*hostState, 0, len(c.hosts))
	for _, hs := range c.hosts {
		hosts = append(hosts, hs)
		hs.ovsdb.dropDialed()
	}
	c.hosts = map[string]*hostState{}
	c.mu.Unlock()
	for _, hs := range hosts {
		hs.ovsdb.close()
	}
}
