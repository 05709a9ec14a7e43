package controller

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// Defaults of SourceMeterOptions (serve's --appliance-source-* flags).
const (
	DefaultSourceMeterRate  = 500
	DefaultSourceMeterBurst = 100
)

// SourceMeterOptions configure the storm control of ports without port
// security (appliances): what such a port sends from a source MAC other
// than its own or an allowed pair's goes through a meter of its own
// (flows.SourceMeterID), at most Rate packets a second beyond a burst of
// Burst (serve --appliance-source-rate, --appliance-source-burst). Every
// such frame is a MAC every host of the network must learn, in the slow
// path of OVS; unbounded, one appliance's flood of random source MACs
// delays and drops other tenants' traffic on the hosts that learn them
// (docs/benchmarks.md). Rate 0 turns the meter off.
type SourceMeterOptions struct {
	Rate  int
	Burst int
}

// meterStatsSwitch is a switch that reports its meters' counters.
type meterStatsSwitch interface {
	DumpMeterStats(ctx context.Context) ([]ofswitch.MeterStats, error)
}

// readSourceDrops records, with br-int's dump, what each port's source
// meter has dropped (brtun_appliance_source_dropped_packets_total). It
// only feeds a metric: a failure is logged and the last figures stay.
func (c *Controller) readSourceDrops(ctx context.Context, bs *bridgeState, conn Switch) {
	ms, ok := conn.(meterStatsSwitch)
	if !ok || c.opts.SourceMeter.Rate <= 0 {
		return
	}
	stats, err := ms.DumpMeterStats(ctx)
	if err != nil {
		c.log.Warn("meter stats", zap.Stringer("bridge", bs.ref), zap.Error(err))
		return
	}
	drops := map[uint32]uint64{}
	for _, s := range stats {
		if ofport, ok := flows.IsSourceMeter(s.ID); ok {
			drops[ofport] = s.Dropped
		}
	}
	c.mu.Lock()
	bs.sourceDrops = drops
	c.mu.Unlock()
}

// meterSwitch is a switch with OpenFlow meters (an OpenFlow connection).
type meterSwitch interface {
	DumpMeters(ctx context.Context) ([]ofswitch.Meter, error)
	SetMeter(ctx context.Context, m ofswitch.Meter, add bool) error
	DeleteMeter(ctx context.Context, id uint32) error
}

// brtunMeter reports whether id is one of the meters brtun sets on br-int.
func brtunMeter(id uint32) bool {
	_, source := flows.IsSourceMeter(id)
	return source || id == flows.DHCPMeter
}

// wantMeters returns the meters a flow set names, by id: the DHCP meter
// and the source meters of ports without port security.
func (c *Controller) wantMeters(set []*keyedFlow) []ofswitch.Meter {
	var out []ofswitch.Meter
	for _, kf := range set {
		f := &kf.flow
		if len(f.Actions) == 0 {
			continue
		}
		m, ok := f.Actions[0].(flows.Meter)
		if !ok || slices.ContainsFunc(out, func(o ofswitch.Meter) bool { return o.ID == m.ID }) {
			continue
		}
		if m.ID == flows.DHCPMeter {
			out = append(out, c.dhcpMeter())
		} else if _, ok := flows.IsSourceMeter(m.ID); ok {
			out = append(out, c.sourceMeter(m.ID))
		}
	}
	slices.SortFunc(out, func(a, b ofswitch.Meter) int { return int(a.ID) - int(b.ID) })
	return out
}

// dhcpMeter is the meter br-int's catch flows go through.
func (c *Controller) dhcpMeter() ofswitch.Meter {
	o := c.opts.DHCP
	return ofswitch.Meter{ID: flows.DHCPMeter, Flags: ofswitch.MeterFlagPktps | ofswitch.MeterFlagBurst,
		Rate: uint32(o.MeterRate), Burst: uint32(o.MeterBurst)}
}

// sourceMeter is the source meter id, as configured.
func (c *Controller) sourceMeter(id uint32) ofswitch.Meter {
	o := c.opts.SourceMeter
	return ofswitch.Meter{ID: id, Flags: ofswitch.MeterFlagPktps | ofswitch.MeterFlagBurst,
		Rate: uint32(o.Rate), Burst: uint32(max(o.Burst, 1))}
}

// ensureMeters makes the switch hold the meters want as configured, like
// flows: when a connection or the wanted set is new it reads the switch's
// meters and sends a meter_mod only for a meter missing or different, so a
// restarted brtun that finds them right sends none. brtun's meters that no
// flow of want names any more (of a port gone) are noted for
// dropStaleMeters, which deletes them once the bridge's flows no longer
// name them: OVS deletes a meter's flows with it.
func (c *Controller) ensureMeters(ctx context.Context, bs *bridgeState, conn Switch, want []ofswitch.Meter) error {
	ms, ok := conn.(meterSwitch)
	if !ok {
		return nil
	}
	c.mu.Lock()
	known := bs.meterConn == conn && slices.Equal(bs.meters, want)
	c.mu.Unlock()
	if known {
		return nil
	}
	have, err := ms.DumpMeters(ctx)
	if err != nil {
		return err
	}
	held := make(map[uint32]ofswitch.Meter, len(have))
	for _, m := range have {
		held[m.ID] = m
	}
	var stale []uint32
	for _, m := range have {
		if brtunMeter(m.ID) && !slices.ContainsFunc(want, func(w ofswitch.Meter) bool { return w.ID == m.ID }) {
			stale = append(stale, m.ID)
		}
	}
	for _, w := range want {
		m, found := held[w.ID]
		m.Flags &= w.Flags // OVS adds the stats flag
		if found && m == w {
			continue
		}
		if err := ms.SetMeter(ctx, w, !found); err != nil {
			return fmt.Errorf("meter %d: %w", w.ID, err)
		}
		c.metrics.meterMod()
		c.log.Info("meter set", zap.Stringer("bridge", bs.ref), zap.Uint32("meter", w.ID),
			zap.Uint32("rate_pps", w.Rate), zap.Uint32("burst", w.Burst), zap.Bool("added", !found))
	}
	c.mu.Lock()
	bs.meterConn, bs.meters, bs.staleMeters = conn, want, stale
	c.mu.Unlock()
	return nil
}

// dropStaleMeters deletes the meters ensureMeters found that no flow names
// any more; it runs once the bridge's flows are synced. A failure is
// logged, and the switch's meters are read again (and the stale ones
// found again) by the next full reconcile of the host.
func (c *Controller) dropStaleMeters(ctx context.Context, bs *bridgeState, conn Switch) {
	c.mu.Lock()
	stale := bs.staleMeters
	bs.staleMeters = nil
	c.mu.Unlock()
	ms, ok := conn.(meterSwitch)
	if !ok {
		return
	}
	for _, id := range stale {
		if err := ms.DeleteMeter(ctx, id); err != nil {
			c.log.Warn("stale meter not deleted", zap.Stringer("bridge", bs.ref), zap.Uint32("meter", id), zap.Error(err))
			c.mu.Lock()
			bs.meters = nil // read the switch's meters again next time
			c.mu.Unlock()
			return
		}
		c.metrics.meterMod()
		c.log.Info("meter deleted: no flow names it", zap.Stringer("bridge", bs.ref), zap.Uint32("meter", id))
	}
}
