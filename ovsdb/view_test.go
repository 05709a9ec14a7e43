package ovsdb

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// currentSession returns the client's session; the test fails without one.
func currentSession(t *testing.T, c *Client) *session {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotNil(t, c.sess, "no session")
	return c.sess
}

// requireFreshView waits until the client's view equals a state built from
// its cache right now and stays the same object on the next call (it is
// memoized, not rebuilt), then checks that Facts equals facts derived from
// that state. It returns the view.
func requireFreshView(t *testing.T, c *Client, what string) *view {
	t.Helper()
	var v *view
	var fresh *state
	require.Eventually(t, func() bool {
		s := currentSession(t, c)
		var err error
		if v, err = s.view(); err != nil {
			return false
		}
		if fresh, err = snapshot(s.ovs.Cache()); err != nil {
			return false
		}
		again, err := s.view()
		return err == nil && again == v && reflect.DeepEqual(fresh, v.st)
	}, 5*time.Second, 5*time.Millisecond, "%s: the view never matched the cache", what)
	assert.Equal(t, factsOf(fresh), c.Facts(), what)
	return v
}

// setOFPort changes an interface's ofport behind the client's back, as
// ovs-vswitchd renumbering it would.
func (m *memOVS) setOFPort(t *testing.T, iface string, ofport int) {
	t.Helper()
	i := &vswitchd.Interface{UUID: m.state(t).ifaceByName[iface].UUID, Ofport: &ofport}
	ops, err := m.raw.Where(i).Update(i, &i.Ofport)
	require.NoError(t, err)
	m.Transact(t, ops...)
}

func bindingOf(f Facts, iface string) (BoundPort, bool) {
	for _, b := range f.Bindings {
		if b.Interface == iface {
			return b, true
		}
	}
	return BoundPort{}, false
}

func TestViewsFollowTheCache(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	requireFreshView(t, c, "after EnsureHost")

	// Rows added by brtun and by an operator.
	bindMany(t, c, 50)
	requireFreshView(t, c, "after binding 50 ports")
	m.AddPort(t, BridgeInt, &vswitchd.Port{Name: "manual"},
		&vswitchd.Interface{Name: "manual", ExternalIDs: map[string]string{KeyNetwork: "red"}})
	v := requireFreshView(t, c, "after an operator added a port")
	require.Len(t, v.facts().Bindings, 50)
	require.Len(t, v.facts().Marked, 1)

	// A row updated.
	m.setOFPort(t, "tap1", 4000)
	v = requireFreshView(t, c, "after an ofport changed")
	b, ok := bindingOf(v.facts(), "tap1")
	require.True(t, ok)
	assert.Equal(t, 4000, b.OFPort)

	// Rows deleted.
	require.NoError(t, c.UnbindPort(ctxT(t), "tap2"))
	v = requireFreshView(t, c, "after a port was removed")
	_, ok = bindingOf(v.facts(), "tap2")
	assert.False(t, ok)
	assert.Len(t, v.facts().Bindings, 49)

	// A new session builds its own views from its new cache, including
	// what changed while the client was away.
	old := v
	m.proxy.Down()
	waitChange(t, c, func(f Facts) bool { return !f.Connected })
	m.setOFPort(t, "tap3", 4001)
	m.proxy.Up()
	waitChange(t, c, func(f Facts) bool { return f.Connected })
	v = requireFreshView(t, c, "after reconnecting")
	assert.NotSame(t, old, v)
	b, ok = bindingOf(v.facts(), "tap3")
	require.True(t, ok)
	assert.Equal(t, 4001, b.OFPort)
	assert.Len(t, v.facts().Bindings, 49)
}

// libovsdb delivers change events on its own goroutine, after the change is
// in the cache, and drops them when its queue (1024 events, see
// third_party/libovsdb/BRTUN.md) is full. Here the event goroutine is held
// up and more changes than the queue holds reach the cache: the session must
// still notice the ones whose events were dropped and announce the new facts.
func TestViewsRecoverFromDroppedEvents(t *testing.T) {
	const taps, rounds = 100, 11 // 11 x 98 row changes below overflow the queue
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	bindMany(t, c, taps)
	settle(t, c)

	s := currentSession(t, c)
	var armed atomic.Bool
	blocked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before Close, which waits for the event goroutine
	s.ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		UpdateFunc: func(string, model.Model, model.Model) {
			if armed.CompareAndSwap(true, false) {
				close(blocked)
				<-release
			}
		},
	})

	armed.Store(true)
	m.setOFPort(t, "tap1", 3001)
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the event goroutine never reached the blocking handler")
	}
	// From here on no event reaches the session until unblock: fill the
	// queue (rounds of new ofports on every interface but tap1's and
	// tap2's, one transaction each: the in-memory server is slow with big
	// ones), then change tap2, whose event is dropped.
	st := m.state(t)
	for round := 1; round <= rounds; round++ {
		var ops []libovsdb.Operation
		for i := 3; i <= taps; i++ {
			ofport := 1000*round + i
			iface := &vswitchd.Interface{UUID: st.ifaceByName[fmt.Sprintf("tap%d", i)].UUID, Ofport: &ofport}
			o, err := m.raw.Where(iface).Update(iface, &iface.Ofport)
			require.NoError(t, err)
			ops = append(ops, o...)
		}
		m.Transact(t, ops...)
	}
	m.setOFPort(t, "tap2", 3002)
	f := waitChange(t, c, func(f Facts) bool {
		b, ok := bindingOf(f, "tap2")
		return ok && b.OFPort == 3002
	})
	b, _ := bindingOf(f, "tap1")
	assert.Equal(t, 3001, b.OFPort)
	b, _ = bindingOf(f, fmt.Sprintf("tap%d", taps))
	assert.Equal(t, 1000*rounds+taps, b.OFPort)
	select {
	case <-release:
		t.Fatal("released too early")
	default:
	}
	requireFreshView(t, c, "while no events arrive")
	unblock()
}

// cloneState deep-copies a state: its rows and its indexes.
func cloneState(st *state) *state {
	out := newState(cloneRows(st.roots), cloneRows(st.bridges), cloneRows(st.ports),
		cloneRows(st.ifaces), cloneRows(st.controllers))
	out.flowTables = cloneRows(st.flowTables)
	return out
}

func cloneRows[T model.Model](rows map[string]T) map[string]T {
	out := make(map[string]T, len(rows))
	for uuid, row := range rows {
		out[uuid] = model.Clone(row).(T)
	}
	return out
}

// Views are shared by every reader, Txn included: planning changes of every
// kind must leave the state, its indexes and its rows as they were.
func TestTxnLeavesTheStateAlone(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1", ControllerTargets: []string{"tcp:198.51.100.254:6653"}}))
	require.NoError(t, c.EnsureTunnels(ctxT(t), TunnelSpec{LocalIP: "192.0.2.1", Peers: []Peer{
		{Name: "h2", IP: "192.0.2.2", Types: []topology.NetworkType{topology.VXLAN}},
		{Name: "h3", IP: "192.0.2.3", Types: []topology.NetworkType{topology.GRE}},
	}}))
	bindMany(t, c, 3)
	m.AddPort(t, BridgeInt, &vswitchd.Port{Name: "manual"}, &vswitchd.Interface{Name: "manual"})
	v := requireFreshView(t, c, "before planning")
	before := cloneState(v.st)
	require.Equal(t, before, v.st, "the copy is faithful")

	txn := newTxn(currentSession(t, c).ovs, v.st)
	require.NoError(t, txn.EnsureHost(HostSpec{Name: "h1", DatapathType: "netdev", ControllerTargets: []string{"tcp:198.51.100.253:6653"}}))
	require.NoError(t, txn.EnsureTunnels(TunnelSpec{LocalIP: "192.0.2.1", UDPPorts: map[topology.NetworkType]uint16{topology.VXLAN: 4790}, Peers: []Peer{
		{Name: "h2", IP: "192.0.2.2", Types: []topology.NetworkType{topology.VXLAN, topology.GRE}},
		{Name: "h4", IP: "192.0.2.4", Types: []topology.NetworkType{topology.VXLAN}},
	}}))
	require.NoError(t, txn.BindPort(Binding{Interface: "tap1", Port: "p1", Network: "red", VLAN: 7}))
	require.NoError(t, txn.BindPort(Binding{Interface: "manual", Port: "pm", Network: "red", VLAN: 7}))
	require.NoError(t, txn.BindPort(Binding{Interface: "tap9", Port: "p9", Network: "red", VLAN: 9}))
	require.NoError(t, txn.UnbindPort("tap2"))
	ops, err := txn.finish()
	require.NoError(t, err)
	require.NotEmpty(t, ops)
	assert.Equal(t, before, v.st)
}

// Readers share views while updates replace them; run with -race.
func TestViewsConcurrentReaders(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if v := c.liveView(); v != nil {
					_ = v.facts()
				}
				// Callers own what Facts returns.
				f := c.Facts()
				if len(f.Bindings) > 0 {
					f.Bindings[0].VLAN = -1
				}
				if f.Bridges != nil {
					f.Bridges["scribble"] = BridgeFacts{}
				}
			}
		}()
	}
	for i := 1; i <= 10; i++ {
		require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: fmt.Sprintf("tap%d", i), Network: "blue", VLAN: i}))
	}
	require.NoError(t, c.UnbindPort(ctxT(t), "tap1"))
	cancel()
	wg.Wait()
	v := requireFreshView(t, c, "after concurrent reads")
	assert.Len(t, v.facts().Bindings, 9)
	for _, b := range c.Facts().Bindings {
		assert.Positive(t, b.VLAN)
	}
	assert.NotContains(t, c.Facts().Bridges, "scribble")
}
