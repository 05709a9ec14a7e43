package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// errConnecting says the host's OVSDB connection is still being made; the
// host is reconciled again as soon as it is up (or has failed).
var errConnecting = errors.New("connecting to ovsdb")

// ovsdbSession is one host's OVSDB connection. The host's reconcile alone
// connects, replaces and closes it (the queue runs one reconcile per host
// at a time), so connect, close and the dial bookkeeping need no lock;
// anyone else (status, metrics, PortBound) reads the client through
// client, which mu guards against the reconcile replacing it.
type ovsdbSession struct {
	mu        sync.Mutex
	cl        *ovsdb.Client // nil: not connected
	addr      string        // the address cl was made for
	watchStop context.CancelFunc

	dialing bool            // a background dial runs; its result arrives on dialed
	dialed  chan dialResult // capacity 1: one dial at a time
}

// dialResult is the outcome of connecting to a host's OVSDB.
type dialResult struct {
	addr string
	cl   *ovsdb.Client
	err  error
}

func newOVSDBSession() *ovsdbSession {
	return &ovsdbSession{dialed: make(chan dialResult, 1)}
}

// client returns the connected client, or nil. Safe from any goroutine.
func (s *ovsdbSession) client() *ovsdb.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cl
}

// clientFor returns the connected client if it was made for addr, else
// nil.
func (s *ovsdbSession) clientFor(addr string) *ovsdb.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr != addr {
		return nil
	}
	return s.cl
}

// set installs a client the reconcile connected, and the cancel of its
// watcher.
func (s *ovsdbSession) set(cl *ovsdb.Client, addr string, watchStop context.CancelFunc) {
	s.mu.Lock()
	s.cl, s.addr, s.watchStop = cl, addr, watchStop
	s.mu.Unlock()
}

// close stops the watcher and closes the client, if any.
func (s *ovsdbSession) close() {
	s.mu.Lock()
	cl, stop := s.cl, s.watchStop
	s.cl, s.addr, s.watchStop = nil, "", nil
	s.mu.Unlock()
	if cl == nil {
		return
	}
	stop()
	cl.Close()
}

// dropDialed closes a client that a finished dial left for a host that
// will not use it (removed, or the controller stopping).
func (s *ovsdbSession) dropDialed() {
	select {
	case r := <-s.dialed:
		if r.cl != nil {
			r.cl.Close()
		}
	default:
	}
}

// ovsdbClient returns the host's OVSDB client. A missing connection is made
// in the background, never by the reconcile itself: a host whose OVSDB is
// down or slow to answer must not hold a worker for the connect timeout, or
// a few such hosts would stall every other host. Until the connection is up
// it returns errConnecting; the dialer enqueues the host when it is done.
// Only the host's reconcile calls it.
func (c *Controller) ovsdbClient(ctx context.Context, hs *hostState, host topology.Host) (*ovsdb.Client, error) {
	s := hs.ovsdb
	if cl := s.client(); cl != nil {
		if s.addr == host.OVSDB {
			return cl, nil
		}
		s.close() // the host was re-registered with another address
	}
	select {
	case r := <-s.dialed:
		s.dialing = false
		switch {
		case r.err != nil:
			return nil, fmt.Errorf("connect to ovsdb %s: %w", r.addr, r.err)
		case r.addr != host.OVSDB:
			r.cl.Close() // made for an address the host no longer has
		default:
			wctx, stop := context.WithCancel(context.Background())
			s.set(r.cl, r.addr, stop)
			go c.watchOVSDB(wctx, host.Name, r.cl)
			return r.cl, nil
		}
	default:
	}
	if !s.dialing {
		s.dialing = true
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
		hs.ovsdb.dialed <- dialResult{addr: host.OVSDB, cl: cl, err: err}
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

// watchOVSDB enqueues the host whenever its OVSDB facts change.
func (c *Controller) watchOVSDB(ctx context.Context, host string, cl *ovsdb.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-cl.Changes():
			c.q.Add(host)
		}
	}
}
