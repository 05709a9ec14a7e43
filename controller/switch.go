package controller

import (
	"context"
	"fmt"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// ofSwitch adapts an OpenFlow connection to what the controller needs.
type ofSwitch struct{ *ofswitch.Conn }

// NewSwitch wraps an OpenFlow connection for AddSwitch.
func NewSwitch(c *ofswitch.Conn) Switch { return ofSwitch{c} }

// DumpFlows reads and decodes every flow with its counters. A reply brtun
// cannot decode closes the connection: the switch is not to be trusted.
func (s ofSwitch) DumpFlows(ctx context.Context) ([]FlowStats, error) {
	stats, err := s.DumpFlowStats(ctx, ofswitch.FlowFilter{Table: ofswitch.AllTables})
	if err != nil {
		return nil, err
	}
	out := make([]FlowStats, len(stats))
	for i, st := range stats {
		f, err := ofswitch.DecodeFlow(st)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("flow #%d of the dump: %w", i, err)
		}
		out[i] = FlowStats{Flow: f, Packets: st.Packets, Bytes: st.Bytes, Duration: st.Duration}
	}
	return out, nil
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
