package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
)

// Switch is what the controller needs of one OpenFlow connection.
type Switch interface {
	DatapathID() uint64
	// Done is closed when the connection has ended.
	Done() <-chan struct{}
	Close() error
	// DumpFlows reads every flow of every table, with statistics, each
	// keyed with seed (FlowCounters.Key). When known is not nil and the
	// dump's Digest equals *known, the flows are not decoded
	// (Dump.Unchanged): the caller knows them already.
	DumpFlows(ctx context.Context, seed maphash.Seed, known *uint64) (Dump, error)
	// Apply sends changes, plus a delete of the learned flows of each cookie
	// in purge, as one atomic bundle, and returns once the switch committed
	// it (or rejected it whole).
	Apply(ctx context.Context, changes []Change, purge []uint64) error
}

// Dump is what a switch held when DumpFlows read it.
type Dump struct {
	// Flows are the flows with their counters, unless Unchanged.
	Flows []FlowStats
	// Counters are, when Unchanged, each flow's Key and counters.
	Counters []FlowCounters
	// Digest sums the flows' Keys: two dumps keyed with the same seed that
	// hold the same flows, in any order, have the same digest, whatever
	// their counters.
	Digest uint64
	// Unchanged says that Digest was the one DumpFlows was told it knows,
	// so the flows were not decoded: the caller knows them already. A
	// drift check of a bridge nobody changed is thus a dump and a hash of
	// each flow, not a decode and a diff of every flow
	// (docs/benchmarks.md, issue 21 item 11).
	Unchanged bool
}

// FlowStats is one flow as a switch reports it.
type FlowStats struct {
	Flow flows.Flow
	FlowCounters
}

// FlowCounters are what a dump says of a flow besides the flow itself.
type FlowCounters struct {
	// Key identifies the flow, without its counters, among dumps keyed
	// with the same seed (ofswitch.FlowStats.Key).
	Key      uint64
	Packets  uint64
	Bytes    uint64
	Duration time.Duration
}

// ofSwitch adapts an OpenFlow connection to what the controller needs.
type ofSwitch struct{ *ofswitch.Conn }

// NewSwitch wraps an OpenFlow connection for AddSwitch.
func NewSwitch(c *ofswitch.Conn) Switch { return ofSwitch{c} }

// DumpFlows reads every flow with its counters, and decodes them unless
// the dump's digest is known. A reply brtun cannot decode closes the
// connection: the switch is not to be trusted.
func (s ofSwitch) DumpFlows(ctx context.Context, seed maphash.Seed, known *uint64) (Dump, error) {
	stats, err := s.DumpFlowStats(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	if err != nil {
		return Dump{}, err
	}
	counters := make([]FlowCounters, len(stats))
	var d Dump
	for i, st := range stats {
		counters[i] = FlowCounters{Key: st.Key(seed), Packets: st.Packets, Bytes: st.Bytes, Duration: st.Duration}
		d.Digest += counters[i].Key
	}
	if known != nil && *known == d.Digest {
		d.Counters, d.Unchanged = counters, true
		return d, nil
	}
	d.Flows = make([]FlowStats, len(stats))
	for i, st := range stats {
		f, err := ofswitch.DecodeFlow(st)
		if err != nil {
			_ = s.Close()
			return Dump{}, fmt.Errorf("flow #%d of the dump: %w", i, err)
		}
		d.Flows[i] = FlowStats{Flow: f, FlowCounters: counters[i]}
	}
	return d, nil
}

// Apply encodes the changes and the learned-flow purges and sends them as
// one bundle.
func (s ofSwitch) Apply(ctx context.Context, changes []Change, purge []uint64) error {
	msgs := make([]ofswitch.Message, 0, len(changes)+len(purge))
	for _, ch := range changes {
		m, err := ofswitch.Encode(ch.Flow, command(ch.Op))
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", ch.Op, ch.Flow, err)
		}
		msgs = append(msgs, m)
	}
	for _, cookie := range purge {
		m, err := ofswitch.EncodeDeleteByCookie(flows.TableUnicast, cookie, ^uint64(0))
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return s.ApplyBundle(ctx, msgs)
}

func command(op Op) ofswitch.Command {
	switch op {
	case OpModifyStrict:
		return ofswitch.ModifyStrict
	case OpDeleteStrict:
		return ofswitch.DeleteStrict
	}
	return ofswitch.Add
}

// AddSwitch hands the controller a switch that completed its handshake
// (accepted by the OpenFlow listener or dialled). The switch is matched to
// its host bridge by datapath id; a newer connection of the same switch
// replaces an older one. It returns at once.
func (c *Controller) AddSwitch(sw Switch) {
	dpid := sw.DatapathID()
	c.mu.Lock()
	old := c.switches[dpid]
	c.switches[dpid] = sw
	ref, known := c.owners[dpid]
	c.changedLocked()
	c.mu.Unlock()
	c.metrics.switchConnected(1)
	if old != nil && old != sw {
		_ = old.Close()
	}
	log := c.log.With(zap.String("dpid", ovsdb.FormatDatapathID(dpid)))
	if known {
		log.Info("switch connected", zap.Stringer("bridge", ref))
		c.q.Add(ref.host)
	} else {
		log.Warn("switch with an unknown datapath id connected; it is served once a host claims it")
	}
	go func() {
		<-sw.Done()
		c.removeSwitch(sw)
	}()
}

func (c *Controller) removeSwitch(sw Switch) {
	dpid := sw.DatapathID()
	c.mu.Lock()
	ref, known := c.owners[dpid]
	if c.switches[dpid] == sw {
		delete(c.switches, dpid)
	}
	c.changedLocked()
	c.mu.Unlock()
	c.metrics.switchConnected(-1)
	c.log.Info("switch disconnected", zap.String("dpid", ovsdb.FormatDatapathID(dpid)))
	if known {
		c.q.Add(ref.host) // refresh status; nothing to send until it returns
	}
}
