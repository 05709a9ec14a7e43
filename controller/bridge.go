package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// bridgeRef names one bridge of one host.
type bridgeRef struct{ host, bridge string }

func (r bridgeRef) String() string { return r.host + "/" + r.bridge }

// bridgeState tracks one bridge: what it should hold and what it holds.
// Its fields are guarded by Controller.mu; its reconcile reads and writes
// them under it, around the switch I/O.
type bridgeState struct {
	ref         bridgeRef
	dpid        uint64
	fingerprint [32]byte          // of what the desired flows and OVSDB configuration are made of
	desiredRev  uint64            // revision at which the fingerprint last changed
	appliedRev  uint64            // revision whose desired state is fully installed
	conn        Switch            // the connection installed refers to
	installed   *bridgeFlows      // what the last apply left the switch holding, on conn; nil: unknown
	needDump    bool              // the drift check wants a fresh dump
	dump        *flowDump         // a dump of the switch under way for the next sync (dump.go)
	learned     []uint64          // learned cookies valid at the last apply
	tableFlows  map[uint8]int     // installed flows per table (replaced, never mutated: metrics read it)
	learnedMACs map[uint64]int    // learned flows per learned cookie at the last dump (replaced, never mutated)
	portDrops   map[uint64]uint64 // br-int: packets of each port's drop flows per port cookie at the last dump (replaced, never mutated)
	role        roleState         // the controller role conn was given (several replicas only)
	meterConn   Switch            // br-int: the connection whose meters are known right (meter.go)
	meters      []ofswitch.Meter  // br-int: the meters known right on meterConn, by id (replaced, never mutated)
	staleMeters []uint32          // br-int: brtun's meters on meterConn that no flow names, deleted once the flows are synced
	sourceDrops map[uint32]uint64 // br-int: packets each port's source meter dropped, by ofport, at the last dump (replaced, never mutated)
	monitor     monitorState      // the flow monitor that reports others' changes (monitor.go)
	held        *heldFlows        // what the switch holds, as far as brtun knows (dump.go)
}

// syncBridge makes one switch hold exactly the desired flows of bridge
// name in cs: it diffs them against a dump of the switch when what it
// holds is unknown (a new connection) or the drift check asks for it, and
// otherwise against what the last apply installed, unless those were
// compiled with the same fingerprint: then there is nothing to send. The
// dump is the one startDumps began for conn in the role it holds now when
// there is one, else it is read now.
func (c *Controller) syncBridge(ctx context.Context, bs *bridgeState, conn Switch, cs *compiledSet, name string) error {
	set, b, want := cs.set, flowsBridge(name), cs.bridges[name]
	c.mu.Lock()
	dump := bs.dump
	bs.dump = nil
	if dump != nil && (dump.conn != conn || dump.role != bs.role) {
		// Of a connection that has gone since, or from before this
		// replica took the master role (holdRole).
		dump.cancel()
		dump = nil
	}
	if dump == nil && bs.dumpDueLocked(conn) {
		dump = c.startDump(ctx, conn, bs.role, bs.heldLocked(conn)) // not started ahead
		bs.needDump = false
	}
	// Known content on the same connection is dumped for the drift check only.
	drift := dump != nil && bs.installed != nil && bs.conn == conn
	installed, known := bs.installed, bs.heldLocked(conn)
	// Not dumped, the switch holds what the last apply installed: when that
	// was compiled from the same inputs, with the same learned cookies,
	// the diff would be empty and nothing would be purged.
	same := dump == nil && installed.fp == want.fp && slices.Equal(bs.learned, set.LearnedCookies)
	c.mu.Unlock()
	if same {
		return nil
	}

	keep := func(f flows.Flow) bool { return set.ValidLearned(f.Cookie) }
	var current []*keyedFlow
	var learned *uint64 // the keys of the learned flows the switch holds, summed; nil: not known
	rk := &reportedKeys{seed: c.seed}
	if known != nil {
		learned, rk.was = &known.learned, known.reported
	}
	if dump != nil {
		read, err := dump.result()
		if err != nil {
			return fmt.Errorf("dump flows: %w", err)
		}
		c.metrics.dumpRead(read.Unchanged)
		var sum uint64
		current, sum, err = c.readDump(bs, b, read, dump.held, keep)
		if err != nil {
			return err
		}
		learned = &sum
		if read.Unchanged {
			rk.was = dump.held.reported // what the undecoded dump stands for
		} else {
			rk.decoded, rk.was = true, nil
		}
		if b == flows.BrInt {
			c.readSourceDrops(ctx, bs, conn)
		}
	} else {
		current = installed.flows
	}
	changes := diffKeyed(want.flows, current, keep, rk.follow())
	if dump == nil || len(current) > 0 {
		// A switch whose dump found it empty had no pipeline that could
		// learn a MAC before this bundle commits: it holds no learned
		// entry to delete (a restarted ovs-vswitchd, a new host).
		changes = append(changes, staleLearned(changes)...)
	}
	var purge []uint64
	for _, ck := range bs.learned {
		if !set.ValidLearned(ck) {
			purge = append(purge, ck)
		}
	}
	if len(changes) > 0 || len(purge) > 0 {
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		err := conn.Apply(actx, changes, purge)
		cancel()
		c.metrics.applied(bs.ref, changes, err, time.Since(start))
		if err != nil {
			c.mu.Lock()
			bs.installed = nil // unknown now: dump again next time
			bs.meters = nil    // a flow naming a meter someone deleted is refused: read them again
			c.mu.Unlock()
			return fmt.Errorf("apply %d flow changes: %w", len(changes), err)
		}
		log := c.log.With(zap.Stringer("bridge", bs.ref), zap.Int("changes", len(changes)), zap.Int("purged_cookies", len(purge)))
		// Drift is what the switch holds beyond what the last apply left
		// it: a drift check that runs for a revision that changed the
		// bridge's flows applies the revision's own changes too.
		drifted := 0
		if drift {
			drifted = len(diffKeyed(installed.flows, current, keep, nil))
		}
		if drifted > 0 {
			c.metrics.driftRepaired(bs.ref, drifted)
			log.Warn("repaired flow drift", zap.Int("drifted", drifted))
		} else {
			log.Info("flows applied")
		}
	}
	tables := map[uint8]int{}
	for _, f := range want.flows {
		tables[f.flow.Table]++
	}
	// What the switch holds now, for the next drift check: want, and the
	// learned flows of the last dump. Learned flows the bundle deleted
	// (purges, shadows) or that came and went since make the next dump's
	// digest another: that check decodes.
	var held *heldFlows
	if learned != nil {
		held = c.expectHeld(conn, want, *learned, rk.keys)
	}
	c.mu.Lock()
	bs.installed, bs.conn, bs.learned, bs.tableFlows, bs.held = want, conn, set.LearnedCookies, tables, held
	c.mu.Unlock()
	return nil
}

// readDump returns the flows a dump of bs's switch holds, keyed, and the
// keys of its learned flows that keep keeps, summed, and keeps the
// counters the metrics read. A dump left undecoded holds what held says.
func (c *Controller) readDump(bs *bridgeState, b flows.Bridge, read Dump, held *heldFlows, keep func(flows.Flow) bool) ([]*keyedFlow, uint64, error) {
	portDrops := map[uint64]uint64{}
	if read.Unchanged {
		if held == nil || read.Digest != held.digest {
			return nil, 0, fmt.Errorf("the switch left a dump undecoded that brtun does not know (digest %#x)", read.Digest)
		}
		if b == flows.BrInt {
			for _, st := range read.Counters {
				if cookie, ok := held.drops[st.Key]; ok {
					portDrops[cookie] += st.Packets
				}
			}
		}
		c.mu.Lock()
		bs.portDrops = portDrops // the learned flows are those of the last decoded dump: learnedMACs holds
		c.mu.Unlock()
		return held.installed.flows, held.learned, nil
	}
	learnedMACs := map[uint64]int{}
	var learned uint64
	for _, st := range read.Flows {
		if flows.IsLearned(st.Flow.Cookie) {
			learnedMACs[st.Flow.Cookie]++
			if keep(st.Flow) {
				learned += st.Key
			}
		}
		if b == flows.BrInt && flows.IsPortSecurityDrop(st.Flow) {
			portDrops[st.Flow.Cookie] += st.Packets
		}
	}
	c.mu.Lock()
	bs.learnedMACs = learnedMACs
	bs.portDrops = portDrops
	c.mu.Unlock()
	return keyedDump(read), learned, nil
}

// staleLearned are the strict deletes of the learned entries that changes
// of registered ports' table 20 flows leave stale (flows.LearnedShadow): a
// port that moved to this host, from it, or between two others, and a
// port that appeared or went. They go in the same bundle as the changes.
func staleLearned(changes []Change) []Change {
	var out []Change
	for _, ch := range changes {
		if f, ok := flows.LearnedShadow(ch.Flow); ok {
			out = append(out, Change{Op: OpDeleteStrict, Flow: f})
		}
	}
	return out
}
