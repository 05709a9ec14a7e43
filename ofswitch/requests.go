package ofswitch

import (
	"context"
	"fmt"
	"time"
)

// Echo sends an echo request and returns the round-trip time.
func (c *Conn) Echo(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if _, err := c.roundTrip(ctx, buildEchoRequest(), typeEchoReply, false); err != nil {
		return 0, fmt.Errorf("echo: %w", err)
	}
	return time.Since(start), nil
}

// Barrier returns once the switch has processed every message sent before it.
func (c *Conn) Barrier(ctx context.Context) error {
	if _, err := c.roundTrip(ctx, buildBarrierRequest(), typeBarrierReply, false); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// RequestRole asks the switch to give this connection a role (for several
// brtun replicas: one primary, the others secondary) and returns the role and
// generation id the switch answered. generation must increase with every
// change of primary; OVS refuses a stale one with ROLE_REQUEST_FAILED/STALE.
func (c *Conn) RequestRole(ctx context.Context, role Role, generation uint64) (Role, uint64, error) {
	cl, err := c.roundTrip(ctx, buildRoleRequest(role, generation), typeRoleReply, false)
	if err != nil {
		return 0, 0, fmt.Errorf("role request %s: %w", role, err)
	}
	got, gen, err := parseRoleReply(cl.reply)
	if err != nil {
		return 0, 0, fmt.Errorf("role request %s: %w", role, err)
	}
	return got, gen, nil
}

// SendBatch sends msgs (flow mods, typically) in order, then a barrier, and
// reports which of them the switch refused as a *BatchError. Messages that
// were accepted stay applied: for all-or-nothing use ApplyBundle.
func (c *Conn) SendBatch(ctx context.Context, msgs []Message) error {
	failed, err := c.sendWithBarrier(ctx, msgs, 0)
	if err != nil {
		return fmt.Errorf("send %d messages: %w", len(msgs), err)
	}
	if len(failed) > 0 {
		return &BatchError{Failed: failed}
	}
	return nil
}

// DumpFlowStats returns the flow entries the filter selects, with their
// counters, stitched from every part of the multipart reply. Match and
// instructions stay raw here; DumpFlows decodes them.
func (c *Conn) DumpFlowStats(ctx context.Context, filter FlowFilter) ([]FlowStats, error) {
	req, err := buildFlowStatsRequest(filter)
	if err != nil {
		return nil, err
	}
	cl, err := c.roundTrip(ctx, req, typeMultipartReply, true)
	if err != nil {
		return nil, fmt.Errorf("dump flows: %w", err)
	}
	var out []FlowStats
	for _, part := range cl.parts {
		r, err := parseMultipartReply(part)
		if err == nil && r.Type != multipartTypeFlow {
			err = fmt.Errorf("%w: multipart reply of type %d to a flow-stats request", ErrMalformed, r.Type)
		}
		var entries []FlowStats
		if err == nil {
			entries, err = parseFlowStats(r.Body)
		}
		if err != nil {
			// The reader already checked every part, so this is a switch
			// that cannot be trusted: drop it like any other bad message.
			c.shutdown(err)
			return nil, fmt.Errorf("dump flows: %w", err)
		}
		out = append(out, entries...)
	}
	return out, nil
}
