package controller

import (
	"context"
	"hash/maphash"
	"time"

	"github.com/brtun/brtun/flows"
)

// dumpTimeout bounds reading every flow of one switch.
const dumpTimeout = 30 * time.Second

// flowDump is what one switch connection holds, read in the background so
// that the dump, the biggest part of a reconcile after a (re)connect,
// overlaps the OVSDB transaction and the compile. It belongs to its bridge
// (bridgeState.dump) until the bridge's sync takes it.
type flowDump struct {
	conn   Switch
	role   roleState  // the role conn held for this replica when the dump started
	held   *heldFlows // what conn was known to hold when the dump started; nil: nothing
	cancel context.CancelFunc
	done   chan struct{} // closed once read and err are set
	read   Dump
	err    error
}

// heldFlows is what a bridge's switch is known to hold on conn: exactly the
// installed flows, which its last sync diffed against a dump or sent
// itself, and the learned flows its last dump held. A dump of conn whose
// digest is the one expected holds the same flows (the odds of another set
// of flows with the same sum of 64-bit keys are 2^-64), so it needs
// neither a decode nor a diff: the drift check of a bridge nobody changed,
// most of brtun's idle CPU at 1000 hosts before, is then a dump and a hash
// of each flow, also right after brtun changed the bridge itself
// (docs/benchmarks.md, issue 21 item 11). Any expectation that is wrong (a
// learned flow that came or went, a flow a switch reports otherwise, a
// change by someone else) only makes the digests differ: that check
// decodes and diffs.
type heldFlows struct {
	conn      Switch
	digest    uint64 // the dump's digest expected: installed's keys and learned, summed
	installed *bridgeFlows
	learned   uint64 // the keys of the learned flows the switch holds, summed
	// drops are br-int's port-security drop flows, by key, with their
	// cookie: an undecoded dump still counts their packets.
	drops map[uint64]uint64
	// reported are the installed flows this switch reports by another key
	// than brtun's encoding predicts (keyedFlow.wire), as its last decoded
	// dump did; usually none.
	reported map[*keyedFlow]uint64
}

// reportedKeys follows a sync's diff (diffKeyed's held callback) and
// keeps, for each desired flow the switch holds right, the key the switch
// reports it by where brtun's encoding does not predict it (heldFlows.
// reported): from the dump when one was decoded, else carried over from
// was, keyed by the flows the switch was known to hold (a recompile may
// have made a held flow another object of the same values).
type reportedKeys struct {
	seed    maphash.Seed
	decoded bool
	was     map[*keyedFlow]uint64
	keys    map[*keyedFlow]uint64 // the result, by desired flow; usually nil
}

// follow is the callback for diffKeyed, nil when there is nothing to keep.
func (r *reportedKeys) follow() func(desired, installed *keyedFlow) {
	if !r.decoded && len(r.was) == 0 {
		return nil
	}
	return func(d, in *keyedFlow) {
		var key uint64
		if r.decoded {
			if key = in.wire.Load(); key == 0 || key == d.wireKey(r.seed) {
				return
			}
		} else if key = r.was[in]; key == 0 {
			return
		}
		if r.keys == nil {
			r.keys = map[*keyedFlow]uint64{}
		}
		r.keys[d] = key
	}
}

// expectHeld is what conn holds after a sync that left it want and the
// learned flows whose keys sum to learned, reporting the flows in reported
// (flows of want) by those keys; nil when a flow's key cannot be told (a
// flow brtun cannot encode: it would not have been installed).
func (c *Controller) expectHeld(conn Switch, want *bridgeFlows, learned uint64, reported map[*keyedFlow]uint64) *heldFlows {
	held := &heldFlows{conn: conn, digest: learned, installed: want, learned: learned, drops: map[uint64]uint64{}, reported: reported}
	for _, kf := range want.flows {
		key, ok := reported[kf]
		if !ok {
			if key = kf.wireKey(c.seed); key == 0 {
				return nil
			}
		}
		held.digest += key
		if flows.IsPortSecurityDrop(kf.flow) {
			held.drops[key] = kf.flow.Cookie
		}
	}
	return held
}

// startDump reads every flow of conn, which holds role, in the
// background, for at most dumpTimeout and no longer than ctx lasts. When
// held is not nil, a dump that holds what it says is not decoded.
func (c *Controller) startDump(ctx context.Context, conn Switch, role roleState, held *heldFlows) *flowDump {
	dctx, cancel := context.WithTimeout(ctx, dumpTimeout)
	d := &flowDump{conn: conn, role: role, held: held, cancel: cancel, done: make(chan struct{})}
	var known *uint64
	if held != nil {
		known = &held.digest
	}
	go func() {
		defer close(d.done)
		defer cancel()
		d.read, d.err = conn.DumpFlows(dctx, c.seed, known)
	}()
	return d
}

// result waits for the dump to end and returns what it read.
func (d *flowDump) result() (Dump, error) {
	<-d.done
	return d.read, d.err
}

// heldLocked is what bs's switch is known to hold on conn, if anything,
// while the flows it says were installed still are.
func (bs *bridgeState) heldLocked(conn Switch) *heldFlows {
	if bs.held == nil || bs.held.conn != conn || bs.held.installed != bs.installed {
		return nil
	}
	return bs.held
}

// dumpDueLocked reports whether what conn holds must be read before bs can
// be diffed: nothing is known installed (first sync, or a failed apply),
// the switch connected anew, or the drift check asked for a fresh dump.
func (bs *bridgeState) dumpDueLocked(conn Switch) bool {
	return bs.installed == nil || bs.conn != conn || bs.needDump
}

// dropDumpLocked stops and forgets bs's dump, which nobody will use.
func (bs *bridgeState) dropDumpLocked() {
	if bs.dump != nil {
		bs.dump.cancel()
		bs.dump = nil
	}
}

// startDumps starts reading the switch of every bridge of hs whose sync
// will need a dump, at the start of a reconcile, so that the dumps run
// while the OVSDB transaction and the compile do. A dump of the same
// connection that an earlier reconcile started and could not use (the
// host's OVSDB was not connected yet) is kept, unless the drift check
// asked for a fresh one since. With several replicas, only a switch that
// already holds this replica as its master is dumped ahead: until then
// another replica may still change it (and one it masters is not
// programmed here at all).
func (c *Controller) startDumps(ctx context.Context, hs *hostState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bridgeNames {
		bs := hs.bridges[b]
		conn := c.switches[bs.dpid]
		if bs.dump != nil && (bs.dump.conn != conn || bs.needDump) {
			bs.dropDumpLocked()
		}
		if conn == nil || bs.dump != nil || !bs.dumpDueLocked(conn) {
			continue
		}
		if c.opts.Mastership != nil {
			master, gen := c.opts.Mastership.Role(bs.ref.String())
			if !master || bs.role != (roleState{conn: conn, master: true, generation: gen}) {
				continue
			}
		}
		bs.dump = c.startDump(ctx, conn, bs.role, bs.heldLocked(conn))
		bs.needDump = false // this is the fresh dump the drift check asked for
	}
}
