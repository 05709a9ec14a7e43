package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
)

// syncOVSDB connects to the host's OVSDB when needed and, when this
// replica owns the host's OVSDB work, applies bridges, the tunnel mesh and
// port bindings in one transaction, unless that would write nothing
// (ovsdbClean, given osum = in.ovsdbSum(); drift: the drift check asks
// for the transaction). It returns the host's client, nil while it is not
// connected, and whether the tunnel ports were left in the other
// tunnel-port mode for now (tunnelSwapWaits): br-tun's flows must then
// stay as they are, since flows of the new mode over the old mode's ports
// would carry nothing.
func (c *Controller) syncOVSDB(ctx context.Context, hs *hostState, in hostInputs, osum [32]byte, owns, drift bool) (cl *ovsdb.Client, swapWaits bool, err error) {
	cl, err = c.ovsdbClient(ctx, hs, in.host)
	if err != nil {
		return nil, false, err
	}
	if !owns {
		return cl, false, nil // the master of the host's br-tun writes its OVSDB
	}
	if c.ovsdbClean(hs, cl, osum, owns, drift, in.view.TunnelPorts.Flow()) {
		c.metrics.ovsdbSkipped()
		return cl, false, nil
	}
	uctx, cancel := context.WithTimeout(ctx, c.opts.OVSDBTimeout)
	defer cancel()
	var refused map[string]string
	err = cl.Update(uctx, func(t *ovsdb.Txn) error {
		if err := t.EnsureHost(hostSpec(in.host, c.opts)); err != nil {
			return err
		}
		swapWaits = c.tunnelSwapWaits(hs, in, cl.Facts())
		if swapWaits {
			c.log.Info("tunnel ports of the other --tunnel-ports mode: swapping them once br-tun's switch is connected",
				zap.String("host", in.host.Name))
		} else if err := t.EnsureTunnels(in.tunnels()); err != nil {
			return err
		}
		var err error
		refused, err = syncBindings(t, in.bindings, cl.Facts())
		return err
	})
	c.mu.Lock()
	hs.refused = refused
	c.mu.Unlock()
	for iface, msg := range refused {
		c.log.Warn("binding left out of the host's OVSDB transaction", zap.String("host", in.host.Name),
			zap.String("interface", iface), zap.String("reason", msg))
	}
	if err != nil {
		return cl, swapWaits, fmt.Errorf("ovsdb: %w", err)
	}
	return cl, swapWaits, nil
}

// tunnelSwapWaits reports whether the host's br-tun holds tunnel ports of
// the other tunnel-port mode (brtun restarted with another --tunnel-ports)
// while its br-tun switch is not connected to this replica. Swapping the
// ports then would leave the flows the switch holds sending to ports that
// are gone until it connects; waiting keeps the gap between the swap and
// the new flows to one reconcile (the switch's connection enqueues the
// host).
func (c *Controller) tunnelSwapWaits(hs *hostState, in hostInputs, facts ovsdb.Facts) bool {
	if !swapPending(facts, in.view.TunnelPorts.Flow()) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bs := hs.bridges[BrTun]
	return bs == nil || bs.dpid == 0 || c.switches[bs.dpid] == nil
}

// syncBindings tags every port of this host on br-int and unbinds the
// bindings brtun made that are no longer desired. A binding that the
// host's OVSDB, as the client's cache shows it, cannot take (its interface
// sits on another bridge, a port of that name has another interface, ...)
// is left out and returned in refused (interface -> reason), so that one
// bad port never stalls the host's other changes: they still commit
// together, in one transaction. Checking against the cache rather than
// retrying after a failed commit keeps that one transaction in the common
// case; a binding the cache did not yet show as bad (a race with another
// OVSDB client) fails the whole commit once, and the retry, against the
// updated cache, leaves it out.
func syncBindings(t *ovsdb.Txn, bindings []ovsdb.Binding, facts ovsdb.Facts) (refused map[string]string, err error) {
	want := map[string]bool{}
	for _, b := range bindings {
		want[b.Interface] = true
		if err := t.BindPort(b); err != nil {
			if refused == nil {
				refused = map[string]string{}
			}
			refused[b.Interface] = err.Error()
		}
	}
	for _, b := range facts.Bindings {
		if !want[b.Interface] {
			if err := t.UnbindPort(b.Interface); err != nil {
				return refused, err
			}
		}
	}
	return refused, nil
}
