package controller

import (
	"context"
	"fmt"

	"github.com/brtun/brtun/ovsdb"
)

// syncOVSDB connects to the host's OVSDB when needed and, when this
// replica owns the host's OVSDB work, applies bridges, the tunnel mesh and
// port bindings in one transaction. It returns the host's client, nil
// while it is not connected.
func (c *Controller) syncOVSDB(ctx context.Context, hs *hostState, in hostInputs, owns bool) (*ovsdb.Client, error) {
	cl, err := c.ovsdbClient(ctx, hs, in.host)
	if err != nil {
		return nil, err
	}
	if !owns {
		return cl, nil // the master of the host's br-tun writes its OVSDB
	}
	uctx, cancel := context.WithTimeout(ctx, c.opts.OVSDBTimeout)
	defer cancel()
	err = cl.Update(uctx, func(t *ovsdb.Txn) error {
		if err := t.EnsureHost(hostSpec(in.host, c.opts)); err != nil {
			return err
		}
		if err := t.EnsureTunnels(in.tunnels()); err != nil {
			return err
		}
		return syncBindings(t, in.bindings, cl.Facts())
	})
	if err != nil {
		return cl, fmt.Errorf("ovsdb: %w", err)
	}
	return cl, nil
}

// syncBindings tags every port of this host on br-int and unbinds the
// bindings brtun made that are no longer desired.
func syncBindings(t *ovsdb.Txn, bindings []ovsdb.Binding, facts ovsdb.Facts) error {
	want := map[string]bool{}
	for _, b := range bindings {
		want[b.Interface] = true
		if err := t.BindPort(b); err != nil {
			return err
		}
	}
	for _, b := range facts.Bindings {
		if !want[b.Interface] {
			if err := t.UnbindPort(b.Interface); err != nil {
				return err
			}
		}
	}
	return nil
}
