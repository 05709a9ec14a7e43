package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// meterSwitch is a switch with OpenFlow meters (an OpenFlow connection).
type meterSwitch interface {
	DumpMeters(ctx context.Context) ([]ofswitch.Meter, error)
	SetMeter(ctx context.Context, m ofswitch.Meter, add bool) error
}

// usesMeter reports whether a flow set names the DHCP meter.
func usesMeter(set []flows.Flow) bool {
	for _, f := range set {
		if len(f.Actions) > 0 && f.Actions[0] == (flows.Meter{ID: flows.DHCPMeter}) {
			return true
		}
	}
	return false
}

// dhcpMeter is the meter br-int's catch flows go through.
func (c *Controller) dhcpMeter() ofswitch.Meter {
	o := c.opts.DHCP
	return ofswitch.Meter{ID: flows.DHCPMeter, Flags: ofswitch.MeterFlagPktps | ofswitch.MeterFlagBurst,
		Rate: uint32(o.MeterRate), Burst: uint32(o.MeterBurst)}
}

// ensureMeter makes the switch hold the DHCP meter as configured, like
// flows: once per connection it reads the switch's meters and sends a
// meter_mod only when the meter is missing or different, so a restarted
// brtun that finds it right sends none.
func (c *Controller) ensureMeter(ctx context.Context, bs *bridgeState, conn Switch) error {
	ms, ok := conn.(meterSwitch)
	if !ok {
		return nil
	}
	c.mu.Lock()
	known := bs.meterConn == conn
	c.mu.Unlock()
	if known {
		return nil
	}
	want := c.dhcpMeter()
	have, err := ms.DumpMeters(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, m := range have {
		if m.ID != want.ID {
			continue
		}
		found = true
		m.Flags &= want.Flags // OVS adds the stats flag
		if m == want {
			c.mu.Lock()
			bs.meterConn = conn
			c.mu.Unlock()
			return nil
		}
	}
	if err := ms.SetMeter(ctx, want, !found); err != nil {
		return fmt.Errorf("DHCP meter: %w", err)
	}
	c.metrics.meterMod()
	c.log.Info("DHCP meter set", zap.Stringer("bridge", bs.ref), zap.Uint32("rate_pps", want.Rate), zap.Uint32("burst", want.Burst), zap.Bool("added", !found))
	c.mu.Lock()
	bs.meterConn = conn
	c.mu.Unlock()
	return nil
}
