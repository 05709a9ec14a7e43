package controller

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// Flow monitors: every bridge this replica masters reports the changes of
// its flows as they happen (OpenFlow flow monitor, ofswitch/monitor.go),
// and a change made by anyone else asks for the host's drift check at once
// (driftDue plus a fresh dump of that bridge: the path of the periodic
// check, run.go's checkDrift), instead of at the next --drift-interval.
//
// What is watched: every table of both bridges, which brtun owns whole
// (the drift check deletes every flow it did not make). Reported are adds,
// deletes and modifies, without actions (the repair dumps the switch
// anyway, so an update only needs to say that something changed). brtun's
// own flow_mods and bundles come back abbreviated (one 8-byte update per
// burst) and are ignored; so are the flows learn() adds to br-tun's table
// 20 and their expiry, by cookie. A monitor OVS paused because brtun fell
// behind may have missed anything: its resume asks for the drift check.
// The periodic check stays as the safety net, and is all a switch that
// refuses flow monitors gets.

// monitorSwitch is a switch that can report its flow changes (an OpenFlow
// connection; test fakes may).
type monitorSwitch interface {
	// WatchFlows starts monitor id of every table; onUpdate receives its
	// updates on the connection's reader goroutine.
	WatchFlows(ctx context.Context, id uint32, onUpdate func([]ofswitch.FlowUpdate)) error
	// UnwatchFlows cancels monitor id.
	UnwatchFlows(ctx context.Context, id uint32) error
}

// WatchFlows starts a flow monitor of every table on the connection.
func (s ofSwitch) WatchFlows(ctx context.Context, id uint32, onUpdate func([]ofswitch.FlowUpdate)) error {
	return s.MonitorFlows(ctx, onUpdate, ofswitch.FlowMonitorRequest{
		ID: id, Table: ofswitch.AllTables,
		Flags: ofswitch.MonitorAdd | ofswitch.MonitorDelete | ofswitch.MonitorModify,
	})
}

// UnwatchFlows cancels a flow monitor on the connection.
func (s ofSwitch) UnwatchFlows(ctx context.Context, id uint32) error {
	return s.CancelFlowMonitor(ctx, id)
}

// monitorState is what a bridge's flow monitor is on conn. Every monitor
// gets an id of its own (Controller.monitorIDs): OVS 3.1 answers a request
// whose id is still in use on the connection (say, after a cancel that
// failed) with a garbled error that closes the connection.
type monitorState struct {
	conn    Switch // the connection it was asked of; nil: none
	id      uint32
	running bool // false: conn refused it (the periodic check only)
}

// watchFlows keeps the bridge's flow monitor as its role wants it: running
// on conn while this replica masters the bridge, cancelled when it does
// not. It is asked once per connection, and not waited for: on a busy
// switch the round trip would hold up the reconcile, one per bridge after a
// restart (docs/benchmarks.md, issue 23 item 4). Whether the switch sees
// the request before or after this
// reconcile's bundle does not matter: its own changes are no drift either
// way. A refusal is logged once and counted; that connection gets the
// periodic drift check only.
func (c *Controller) watchFlows(ctx context.Context, bs *bridgeState, conn Switch, master bool) {
	ms, ok := conn.(monitorSwitch)
	if !ok || c.opts.NoFlowMonitor {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	have := bs.monitor
	switch {
	case !master && have.conn == conn && have.running:
		bs.monitor = monitorState{}
		go func() {
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := ms.UnwatchFlows(mctx, have.id); err != nil {
				c.log.Debug("cancelling the flow monitor", zap.Stringer("bridge", bs.ref), zap.Error(err))
			}
		}()
	case master && have.conn != conn:
		c.monitorIDs++
		id := c.monitorIDs
		bs.monitor = monitorState{conn: conn, id: id, running: true} // before the first update can arrive
		go c.startMonitor(ctx, ms, bs, conn, id)
	}
}

// startMonitor asks conn for monitor id of bs and records a refusal. A
// switch that has not answered within 10 s has not refused: it answers in
// the order it reads, and one busy with a large bundle or a pass over
// thousands of ports may take longer. The monitor then counts as running
// (its updates reach the callback whenever the switch starts it); a switch
// that is gone is found by the keepalive.
func (c *Controller) startMonitor(ctx context.Context, ms monitorSwitch, bs *bridgeState, conn Switch, id uint32) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := ms.WatchFlows(mctx, id, c.flowUpdates(bs, conn))
	if err == nil {
		return
	}
	select {
	case <-conn.Done():
		return // the connection went: no refusal
	default:
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		c.metrics.flowMonitor("unanswered")
		c.log.Info("the switch has not answered the flow monitor request yet; it counts as running",
			zap.Stringer("bridge", bs.ref), zap.Error(err))
		return
	}
	c.mu.Lock()
	current := bs.monitor.id == id
	if current {
		bs.monitor.running = false
	}
	c.mu.Unlock()
	if !current || ctx.Err() != nil {
		return
	}
	c.metrics.flowMonitor("refused")
	c.monitorRefused.Do(func() {
		c.log.Warn("switch refused the flow monitor; its drift is repaired by the periodic check only (logged once)",
			zap.Stringer("bridge", bs.ref), zap.Error(err))
	})
	c.log.Debug("switch refused the flow monitor", zap.Stringer("bridge", bs.ref), zap.Error(err))
}

// flowUpdates returns the callback of bs's monitor on conn: a change by
// someone else, or a resume after a pause, asks for the host's drift check
// on that bridge. It runs on conn's reader goroutine, one call at a time.
func (c *Controller) flowUpdates(bs *bridgeState, conn Switch) func([]ofswitch.FlowUpdate) {
	paused := false
	return func(updates []ofswitch.FlowUpdate) {
		var why string
		var changed ofswitch.FlowUpdate
		for _, u := range updates {
			switch {
			case u.Event == ofswitch.MonitorPaused:
				paused = true
				c.metrics.flowMonitor("paused")
			case u.Event == ofswitch.MonitorResumed:
				paused, why = false, "resumed"
			case paused, u.Event == ofswitch.FlowAbbrev:
				// Nothing while paused is reliable; abbreviated is brtun's own.
			case u.Flow.Table == flows.TableUnicast && flows.IsLearned(u.Flow.Cookie):
				// learn() at work, or its entries expiring.
			case why == "":
				why, changed = "changed", u
			}
		}
		if why == "" {
			return
		}
		c.mu.Lock()
		hs := c.hosts[bs.ref.host]
		current := hs != nil && hs.bridges[bs.ref.bridge] == bs && c.switches[bs.dpid] == conn && bs.monitor.conn == conn
		if current {
			hs.driftDue = true
			bs.needDump = true
			bs.meters = nil // a deleted meter takes its flows with it: read the meters again too
		}
		c.mu.Unlock()
		if !current {
			return
		}
		c.metrics.flowMonitor(why)
		if why == "changed" {
			c.log.Info("flow changed on the switch by someone else; drift check now", zap.Stringer("bridge", bs.ref),
				zap.Stringer("event", changed.Event), zap.Stringer("flow", changed.Flow))
		} else {
			c.log.Info("flow monitor resumed after a pause; drift check now", zap.Stringer("bridge", bs.ref))
		}
		c.q.Add(bs.ref.host)
	}
}
