package controller

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// errConnecting says the host's OVSDB connection is still being made; the
// host is reconciled again as soon as it is up (or has failed).
var errConnecting = errors.New("connecting to ovsdb")

// dialResult is the outcome of connecting to a host's OVSDB.
type dialResult struct {
	addr string
	cl   *ovsdb.Client
	err  error
}

// ovsdbClient returns the host's OVSDB client. A missing connection is made
// in the background, never by the reconcile itself: a host whose OVSDB is
// down or slow to answer must not hold a worker for the connect timeout, or
// a few such hosts would stall every other host. Until the connection is up
// it returns errConnecting; the dialer enqueues the host when it is done.
// Only the host's reconcile calls it (it owns hs.ovs, hs.dialing).
func (c *Controller) ovsdbClient(ctx context.Context, hs *hostState, host topology.Host) (*ovsdb.Client, error) {
	if hs.ovs != nil && hs.ovsAddr != host.OVSDB {
		c.closeOVSDB(hs) // the host was re-registered with another address
	}
	if hs.ovs != nil {
		return hs.ovs, nil
	}
	select {
	case r := <-hs.dialed:
		hs.dialing = false
		switch {
		case r.err != nil:
			return nil, fmt.Errorf("connect to ovsdb %s: %w", r.addr, r.err)
		case r.addr != host.OVSDB:
			r.cl.Close() // made for an address the host no longer has
		default:
			wctx, stop := context.WithCancel(context.Background())
			c.mu.Lock() // status readers look at hs.ovs under c.mu
			hs.ovs, hs.ovsAddr, hs.watchStop = r.cl, r.addr, stop
			c.mu.Unlock()
			go c.watchOVSDB(wctx, host.Name, r.cl)
			return hs.ovs, nil
		}
	default:
	}
	if !hs.dialing {
		hs.dialing = true
		go c.dialOVSDB(ctx, hs, host)
	}
	return nil, errConnecting
}

// dialOVSDB connects to host's OVSDB and hands the result to the host's
// next reconcile. A client made for a host that was removed meanwhile is
// closed at once.
func (c *Controller) dialOVSDB(ctx context.Context, hs *hostState, host topology.Host) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.OVSDBTimeout)
	cl, err := ovsdb.Dial(dctx, ovsdb.Options{
		Address:        host.OVSDB,
		TLS:            c.opts.OVSDBTLS,
		Logger:         c.log.With(zap.String("host", host.Name)),
		ConnectTimeout: c.opts.OVSDBTimeout,
	})
	cancel()
	c.mu.Lock()
	current := c.hosts[hs.name] == hs
	if current {
		hs.dialed <- dialResult{addr: host.OVSDB, cl: cl, err: err} // cap 1: one dial at a time
	}
	c.mu.Unlock()
	if !current {
		if cl != nil {
			cl.Close()
		}
		return
	}
	c.q.Add(hs.name)
}

// dropDialed closes a client that a finished dial left for a host that will
// not use it (removed, or the controller stopping).
func dropDialed(hs *hostState) {
	select {
	case r := <-hs.dialed:
		if r.cl != nil {
			r.cl.Close()
		}
	default:
	}
}
