package ovsdb

import (
	"context"
	"crypto/tls"
	"runtime"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

func TestCheckAddress(t *testing.T) {
	good := []string{"tcp:198.51.100.1:6640", "tcp:[2001:db8::1]:6640", "unix:/run/openvswitch/db.sock"}
	for _, a := range good {
		assert.NoError(t, checkAddress(a, nil), a)
	}
	assert.NoError(t, checkAddress("ssl:198.51.100.1:6640", &tls.Config{}))
	bad := []string{"", "198.51.100.1:6640", "tcp:198.51.100.1", "tcp::6640", "unix:db.sock", "unix:",
		"ssl:198.51.100.1:6640", "http://198.51.100.1:6640"}
	for _, a := range bad {
		assert.Error(t, checkAddress(a, nil), a)
	}
}

func TestDialGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, Options{Address: "unix:/tmp/brtun-no-such-dir/db.sock", Logger: zaptest.NewLogger(t)})
	require.Error(t, err)
	assert.ErrorContains(t, err, "no such file", "the last attempt's reason is reported")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = Dial(context.Background(), Options{Address: "tcp:nowhere"})
	require.ErrorContains(t, err, "want tcp:IP:PORT")
}

// waitChange waits for a Changes notification and returns the facts then.
func waitChange(t *testing.T, c *Client, cond func(Facts) bool) Facts {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f := c.Facts()
		if cond(f) {
			return f
		}
		select {
		case <-c.Changes():
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("facts never matched; last: %+v\n%s", f, buf[:runtime.Stack(buf, true)])
		}
	}
}

func TestChangesNotifications(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	settle(t, c)

	// A tunnel port appears...
	spec := TunnelSpec{LocalIP: "192.0.2.1", Peers: []Peer{{Name: "h2", IP: "192.0.2.2", Types: []topology.NetworkType{topology.VXLAN}}}}
	require.NoError(t, c.EnsureTunnels(ctxT(t), spec))
	select {
	case <-c.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no notification for a new tunnel port")
	}
	f := c.Facts()
	require.Len(t, f.Tunnels, 1)
	old := f.Tunnels[0].OFPort

	// ...changes ofport (ovs-vswitchd renumbered it)...
	renumbered := old + 100
	i := &vswitchd.Interface{UUID: m.state(t).ifaceByName["vxlan-c0000202"].UUID, Ofport: &renumbered}
	ops, err := m.raw.Where(i).Update(i, &i.Ofport)
	require.NoError(t, err)
	m.Transact(t, ops...)
	f = waitChange(t, c, func(f Facts) bool { return len(f.Tunnels) == 1 && f.Tunnels[0].OFPort == renumbered })
	assert.Equal(t, "vxlan-c0000202", f.Tunnels[0].Name)

	// ...and vanishes.
	require.NoError(t, c.EnsureTunnels(ctxT(t), TunnelSpec{LocalIP: "192.0.2.1"}))
	waitChange(t, c, func(f Facts) bool { return len(f.Tunnels) == 0 })

	// A change outside the facts (an operator's external_ids key) is seen
	// by the cache but does not notify.
	settle(t, c)
	other := &vswitchd.Bridge{UUID: m.state(t).bridgeByName[BridgeInt].UUID, ExternalIDs: map[string]string{"brtun-owner": "brtun", "note": "x"}}
	ops, err = m.raw.Where(other).Update(other, &other.ExternalIDs)
	require.NoError(t, err)
	m.Transact(t, ops...)
	require.Eventually(t, func() bool {
		v := c.liveView()
		return v != nil && v.st.bridgeByName[BridgeInt].ExternalIDs["note"] == "x"
	}, 5*time.Second, 5*time.Millisecond)
	settle(t, c)
	select {
	case <-c.Changes():
		t.Fatal("notified although the facts did not change")
	default:
	}
}

// settle waits until the watcher has taken every change announced so far,
// records the current facts and drains the pending notification.
func settle(t testing.TB, c *Client) {
	t.Helper()
	require.Eventually(t, func() bool { return len(c.poke) == 0 }, 5*time.Second, 5*time.Millisecond)
	c.Facts()
	select {
	case <-c.Changes():
	default:
	}
}

func TestReconnectResyncs(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	spec := HostSpec{Name: "h1", ControllerTargets: []string{"tcp:198.51.100.254:6653"}}
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	tunnels := TunnelSpec{LocalIP: "192.0.2.1", Peers: []Peer{
		{Name: "h2", IP: "192.0.2.2", Types: []topology.NetworkType{topology.VXLAN}},
	}}
	require.NoError(t, c.EnsureTunnels(ctxT(t), tunnels))

	m.proxy.Down()
	f := waitChange(t, c, func(f Facts) bool { return !f.Connected })
	assert.Len(t, f.Tunnels, 1, "last known facts kept while disconnected")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := c.EnsureHost(ctx, spec)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "not connected")

	// While the client is away someone deletes br-tun's tunnel port and
	// adds another port: the resynced cache must show both.
	st := m.state(t)
	b := &vswitchd.Bridge{UUID: st.bridgeByName[BridgeTun].UUID}
	ops, err := m.raw.Where(b).Mutate(b, model.Mutation{
		Field: &b.Ports, Mutator: libovsdb.MutateOperationDelete, Value: []string{st.portByName["vxlan-c0000202"].UUID},
	})
	require.NoError(t, err)
	m.Transact(t, ops...)
	m.AddPort(t, BridgeTun, &vswitchd.Port{Name: "manual"}, &vswitchd.Interface{Name: "manual"})

	m.proxy.Up()
	f = waitChange(t, c, func(f Facts) bool { return f.Connected })
	assert.Empty(t, f.Tunnels, "cache rebuilt from the server")
	require.NoError(t, c.EnsureTunnels(ctxT(t), tunnels))
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	st = m.state(t)
	assert.Equal(t, []string{BridgeTun, "manual", PatchInt, "vxlan-c0000202"}, tunnelNames(t, st))
	assert.Len(t, st.bridges, 2)
	assert.Len(t, st.controllers, 2)
	assert.Len(t, st.ports, 6)
	assert.Len(t, c.Facts().Tunnels, 1)
}

func TestUpdateWaitsForVswitchd(t *testing.T) {
	m := newMemOVS(t, memOptions{NoVswitchd: true})
	c := m.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.EnsureHost(ctx, HostSpec{Name: "h1"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "wait for ovs-vswitchd")
	assert.Len(t, m.state(t).bridges, 2, "the transaction itself was committed")
	assert.Zero(t, c.Facts().Bridges[BridgeInt].PatchOFPort)

	// Once ovs-vswitchd catches up the same call returns without sending
	// anything new.
	m.SetVswitchd(true)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	assert.Equal(t, 1, m.state(t).root.NextCfg)
	assert.Positive(t, c.Facts().Bridges[BridgeInt].PatchOFPort)
}

func TestCloseStopsReconnecting(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	m.proxy.Down()
	waitChange(t, c, func(f Facts) bool { return !f.Connected })
	c.Close()
	m.proxy.Up()
	time.Sleep(300 * time.Millisecond)
	assert.False(t, c.Connected())
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	before := stableGoroutines()
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	m.proxy.Down() // one reconnect cycle too
	waitChange(t, c, func(f Facts) bool { return !f.Connected })
	m.proxy.Up()
	waitChange(t, c, func(f Facts) bool { return f.Connected })
	c.Close()
	// Polled by hand: assert.Eventually runs its condition in a goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before Dial, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestProbeDetectsHungServer(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	// Attempts made while frozen hang until their timeout: keep it short.
	c := m.dialProbing(t, 100*time.Millisecond, time.Second)
	m.proxy.Freeze(true)
	waitChange(t, c, func(f Facts) bool { return !f.Connected })
	m.proxy.Freeze(false)
	waitChange(t, c, func(f Facts) bool { return f.Connected })
}

// TestProbeOnlyWhenTheServerIsSilent: a server that probes its client
// (ovsdb-server does on tcp and ssl connections) gets no echo request from
// it; once the server falls silent the client probes it, and when the
// server does not answer either the session ends within 2 x ProbeInterval
// of the server's last message: the dead-peer bound.
func TestProbeOnlyWhenTheServerIsSilent(t *testing.T) {
	const probe = 400 * time.Millisecond
	m := newMemOVS(t, memOptions{})
	m.proxy.ProbeClients(probe / 2)
	c := m.dialProbing(t, probe, time.Second)
	time.Sleep(5 * probe)
	assert.Zero(t, m.proxy.ClientEchoes(), "the client probed a server that was talking")

	m.proxy.ProbeClients(0)
	require.Eventually(t, func() bool { return m.proxy.ClientEchoes() > 0 }, 5*probe, 10*time.Millisecond,
		"the client never probed the silent server")

	m.proxy.Freeze(true)
	last := time.Now() // the server's last message (the answer to the echo) came before
	waitChange(t, c, func(f Facts) bool { return !f.Connected })
	dead := time.Since(last)
	assert.Less(t, dead, 2*probe+500*time.Millisecond, "the dead-peer bound")
	t.Logf("session ended %s after the server's last message", dead)
}

// stableGoroutines returns the number of goroutines once it has not changed
// for 100ms (goroutines the fixture started may still be starting).
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for stable, tries := 0, 0; stable < 10 && tries < 200; tries++ {
		time.Sleep(10 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			stable++
		} else {
			n, stable = m, 0
		}
	}
	return n
}

func TestUpdateWaitsForTheNextSession(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	m.proxy.Down()
	restored := make(chan struct{})
	go func() {
		defer close(restored)
		time.Sleep(300 * time.Millisecond)
		m.proxy.Up()
	}()
	defer func() { <-restored }()
	// Called while the session is gone, whether or not the client noticed
	// yet: the update lands on the next session.
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	expectHost(t, m.state(t), HostSpec{Name: "h1"})
	assert.Equal(t, 1, m.state(t).root.NextCfg)
}
