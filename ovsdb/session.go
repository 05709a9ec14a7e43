package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// session is one connection to ovsdb-server with its monitor.
//
// Indexing the cache and deriving facts costs time in proportion to the
// number of rows (thousands of ports on a busy br-int), and both are needed
// several times per reconcile and per database update. So a session keeps
// the newest view it built and hands it out until the cache changes: gen
// counts the cache's change events, and a view is reused while gen has not
// moved since it was built.
//
// libovsdb runs event handlers on its own goroutine after it changed the
// cache, so for a moment a change can be in the cache while gen does not
// show it yet. Readers therefore see the database only through views (see
// rootReached): views are built one at a time, each from the cache as it is
// then, so every reader sees the same sequence of states, never one older
// than a state another reader already saw. libovsdb drops events when its
// queue is full; hold compares the newest view with the cache after a drop
// (see outdated).
type session struct {
	ovs  client.Client
	disc chan struct{} // libovsdb's disconnect notification

	dead     chan struct{} // closed by kill
	killOnce sync.Once

	gen    atomic.Uint64 // cache change events seen
	viewMu sync.Mutex    // held while building, so one view per generation
	newest *view         // nil until the first view
}

// view is what a session's readers derive from its cache at one generation.
// Nothing in it changes after it is built.
type view struct {
	gen uint64
	st  *state

	factsOnce sync.Once
	derived   Facts // set by factsOnce: use facts()
}

// facts returns the facts of the view, deriving them on first use. The
// result is shared: do not modify it.
func (v *view) facts() Facts {
	v.factsOnce.Do(func() { v.derived = factsOf(v.st) })
	return v.derived
}

func newSession(ovs client.Client, disc chan struct{}) *session {
	return &session{ovs: ovs, disc: disc, dead: make(chan struct{})}
}

// kill tells hold that a request found the session gone.
func (s *session) kill() {
	s.killOnce.Do(func() { close(s.dead) })
}

// cacheChanged records a change event of the session's cache. It runs on
// libovsdb's event goroutine and must not block.
func (s *session) cacheChanged() {
	s.gen.Add(1)
}

// view returns the view of the current generation, building it when the
// cache changed since the newest one.
func (s *session) view() (*view, error) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	// Read before building: should the cache change meanwhile, the view
	// carries the older generation and the next call rebuilds.
	gen := s.gen.Load()
	if s.newest != nil && s.newest.gen == gen {
		return s.newest, nil
	}
	st, err := snapshot(s.ovs.Cache())
	if err != nil {
		return nil, err
	}
	s.newest = &view{gen: gen, st: st}
	return s.newest, nil
}

// state returns the state of the current view.
func (s *session) state() (*state, error) {
	v, err := s.view()
	if err != nil {
		return nil, err
	}
	return v.st, nil
}

// outdated reports whether the view of the current generation differs from
// the cache. hold asks after libovsdb dropped a change event because its
// queue was full: the change is in the cache, but the generation did not
// move. (An event still waiting in the queue moves it when it arrives.)
func (s *session) outdated() bool {
	tc := s.ovs.Cache()
	if tc == nil {
		return false // disconnected: hold ends the session
	}
	s.viewMu.Lock()
	v := s.newest
	s.viewMu.Unlock()
	if v == nil || v.gen != s.gen.Load() {
		return false // the next view is built from the cache anyway
	}
	same, err := v.st.inCache(tc)
	return err == nil && !same
}

// errTransport marks a request that failed on the connection itself (a
// broken pipe, a reset, EOF) rather than in the database.
var errTransport = errors.New("connection failed")

// transportErr marks a failed request as a connection failure unless the
// caller's context ended.
func transportErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, client.ErrNotConnected) {
		return err
	}
	return fmt.Errorf("%w: %w", errTransport, err)
}

// sessionGone reports whether err means the session's connection is gone.
func sessionGone(err error) bool {
	return errors.Is(err, client.ErrNotConnected) || errors.Is(err, errNoCache) || errors.Is(err, errTransport)
}

// rootReached reports whether the Open_vSwitch row satisfies ok in the
// session's view, so that whatever the caller reads next shows it. The
// cache's own row is checked first because that is cheap and a view may
// need building.
func (s *session) rootReached(ok func(*vswitchd.OpenvSwitch) bool) bool {
	if root := s.cacheRoot(); root == nil || !ok(root) {
		return false
	}
	st, err := s.state()
	return err == nil && st.root != nil && ok(st.root)
}

// cacheRoot returns the Open_vSwitch row of the session's cache, or nil.
func (s *session) cacheRoot() *vswitchd.OpenvSwitch {
	tc := s.ovs.Cache()
	if tc == nil {
		return nil
	}
	roots, err := rowsOf[*vswitchd.OpenvSwitch](tc, vswitchd.OpenvSwitchTable)
	if err != nil {
		return nil
	}
	for _, uuid := range sortedKeys(roots) {
		return roots[uuid]
	}
	return nil
}

// run keeps a session up until ctx ends.
func (c *Client) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	failures := 0
	for ctx.Err() == nil {
		s, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setSession(nil, err)
			if failures == 0 {
				c.log.Warn("cannot connect to ovsdb-server, retrying", zap.Error(err))
			} else {
				c.log.Debug("cannot connect to ovsdb-server", zap.Error(err), zap.Int("failures", failures+1))
			}
			failures++
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, c.opts.MaxBackoff)
			continue
		}
		c.log.Info("connected to ovsdb-server", zap.Int("failed_attempts", failures))
		failures, backoff = 0, 100*time.Millisecond
		c.setSession(s, nil)
		reason := c.hold(ctx, s)
		c.setSession(nil, reason)
		s.ovs.Close()
		if ctx.Err() == nil {
			c.log.Warn("lost ovsdb-server session, reconnecting", zap.Error(reason))
		}
	}
}

// hold returns when the session is gone (or ctx ended), with the reason.
// It wakes only for a reason: the disconnect notification, a request that
// found the session gone, libovsdb dropping a change event, and the probe
// timer. The probe sends an echo request only when nothing arrived from
// ovsdb-server for probeAfter, and ends the session when the answer takes
// longer than answerWithin: a server that went silent is found within
// 2 x ProbeInterval of its last message. ovsdb-server probes tcp and ssl
// clients itself after 5 s of silence, and any message counts, so with
// brtun's probe a little later (5.5 s) the server sends the echoes there
// and brtun only answers, where equal intervals would often have both
// sides send one.
func (c *Client) hold(ctx context.Context, s *session) error {
	probe := time.NewTimer(c.untilProbe(s))
	defer probe.Stop()
	var dropped <-chan struct{}
	if tc := s.ovs.Cache(); tc != nil {
		dropped = tc.DropNotify()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.disc:
			return errors.New("disconnected by the server")
		case <-s.dead:
			return errors.New("connection found gone by a request")
		case <-dropped:
			if s.outdated() {
				c.log.Debug("the cache changed without a change event, refreshing")
				s.cacheChanged()
				c.changed()
			}
		case <-probe.C:
			if wait := c.untilProbe(s); wait > 0 {
				probe.Reset(wait)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, c.answerWithin())
			err := s.ovs.Echo(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("echo: %w", err)
			}
			probe.Reset(c.probeAfter())
		}
	}
}

// probeAfter is how long the session must be silent before hold sends an
// echo request, and answerWithin how long the answer may take; together
// they make ProbeInterval twice.
func (c *Client) probeAfter() time.Duration   { return c.opts.ProbeInterval * 11 / 10 }
func (c *Client) answerWithin() time.Duration { return c.opts.ProbeInterval * 9 / 10 }

// untilProbe returns how long until the session has been silent for
// probeAfter, 0 when it has (or nearly: a wait shorter than a sixteenth of
// it, such as the round trip of the last echo, is not worth another
// wakeup).
func (c *Client) untilProbe(s *session) time.Duration {
	wait := c.probeAfter() - s.ovs.SinceReceived()
	if wait < c.probeAfter()/16 {
		return 0
	}
	return wait
}

// clientModel is the part of the Open_vSwitch schema brtun uses.
func clientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.BridgeTable:      &vswitchd.Bridge{},
		vswitchd.PortTable:        &vswitchd.Port{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
		vswitchd.ControllerTable:  &vswitchd.Controller{},
		vswitchd.FlowTableTable:   &vswitchd.FlowTable{},
	})
}

// connect opens a session: connection, schema check, monitor.
func (c *Client) connect(ctx context.Context) (*session, error) {
	dbModel, err := clientModel()
	if err != nil {
		return nil, fmt.Errorf("client model: %w", err)
	}
	logger := zapr.NewLogger(c.log.Named("libovsdb"))
	opts := []client.Option{client.WithEndpoint(c.opts.Address), client.WithLogger(&logger)}
	if c.opts.TLS != nil {
		opts = append(opts, client.WithTLSConfig(c.opts.TLS))
	}
	ovs, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	// Without libovsdb's own reconnect (which panics when its backoff gives
	// up) a dropped connection is announced here; take it before Connect.
	disc := ovs.DisconnectNotify()
	cctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	if err := ovs.Connect(cctx); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	tc := ovs.Cache()
	if tc == nil {
		ovs.Close()
		return nil, errors.New("connect: no cache")
	}
	s := newSession(ovs, disc)
	// The generation moves before waiters and the watcher wake up.
	onChange := func(string, model.Model) {
		s.cacheChanged()
		c.changed()
	}
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    onChange,
		DeleteFunc: onChange,
		UpdateFunc: func(table string, _, m model.Model) { onChange(table, m) },
	})
	if _, err := ovs.Monitor(cctx, c.monitor(ovs)); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return s, nil
}

// monitor asks for the columns brtun reads or writes; statistics and other
// busy columns are left out so idle hosts send no updates.
func (c *Client) monitor(ovs client.Client) *client.Monitor {
	root := &vswitchd.OpenvSwitch{}
	br := &vswitchd.Bridge{}
	port := &vswitchd.Port{}
	iface := &vswitchd.Interface{}
	ctrl := &vswitchd.Controller{}
	table := &vswitchd.FlowTable{}
	return ovs.NewMonitor(
		client.WithTable(root, &root.Bridges, &root.NextCfg, &root.CurCfg, &root.DatapathTypes),
		client.WithTable(br, &br.Name, &br.DatapathType, &br.DatapathID, &br.FailMode, &br.Protocols,
			&br.OtherConfig, &br.ExternalIDs, &br.Controller, &br.Ports, &br.FlowTables),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.Tag, &port.VLANMode,
			&port.ExternalIDs, &port.OtherConfig),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options, &iface.ExternalIDs,
			&iface.Ofport, &iface.MACInUse, &iface.Error),
		client.WithTable(ctrl, &ctrl.Target, &ctrl.ConnectionMode, &ctrl.MaxBackoff, &ctrl.InactivityProbe,
			&ctrl.ExternalIDs),
		client.WithTable(table, &table.Name, &table.FlowLimit, &table.OverflowPolicy, &table.Groups,
			&table.ExternalIDs),
	)
}
