package ovsdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

func TestBindOperatorMarkedInterface(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))

	// ovs-vsctl add-port br-int tap0 -- set interface tap0
	//   external_ids:brtun-network=blue external_ids:attached-mac=02:00:00:00:01:01
	m.AddPort(t, BridgeInt, &vswitchd.Port{Name: "tap0"}, &vswitchd.Interface{Name: "tap0",
		ExternalIDs: map[string]string{"brtun-network": "blue", "attached-mac": "02:00:00:00:01:01"}})
	// and one marked with an explicit port name but no MAC.
	m.AddPort(t, BridgeInt, &vswitchd.Port{Name: "tap1"}, &vswitchd.Interface{Name: "tap1",
		ExternalIDs: map[string]string{"brtun-network": "red", "brtun-port": "web1"}})
	// Ports added by others get ofports once "ovs-vswitchd" runs; a brtun
	// transaction makes it run here.
	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "tap1", Port: "web1", Network: "red", VLAN: 2}))

	f := c.Facts()
	require.Len(t, f.Marked, 2)
	assert.Equal(t, "tap0", f.Marked[0].Interface)
	assert.Equal(t, "blue", f.Marked[0].Network)
	assert.Equal(t, "tap0", f.Marked[0].Port, "port name defaults to the interface name")
	assert.Equal(t, "02:00:00:00:01:01", f.Marked[0].MAC)
	assert.True(t, f.Marked[0].MACAttached)
	assert.Equal(t, BridgeInt, f.Marked[0].Bridge)
	assert.Equal(t, "web1", f.Marked[1].Port)
	assert.Regexp(t, "^02:00:00:00:", f.Marked[1].MAC, "mac_in_use when no attached-mac")
	assert.False(t, f.Marked[1].MACAttached)
	require.Len(t, f.Bindings, 1)
	assert.Equal(t, "tap1", f.Bindings[0].Interface)

	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "tap0", Port: "tap0", Network: "blue", VLAN: 1}))
	st := m.state(t)
	p := st.portByName["tap0"]
	require.NotNil(t, p.Tag)
	assert.Equal(t, 1, *p.Tag)
	assert.Equal(t, map[string]string{"brtun-network": "blue", "brtun-port": "tap0", "brtun-vlan": "1"}, p.OtherConfig)
	assert.Empty(t, p.ExternalIDs, "brtun does not claim the operator's port")

	f = c.Facts()
	require.Len(t, f.Bindings, 2)
	b := f.Bindings[0]
	assert.Equal(t, "tap0", b.Interface)
	assert.Equal(t, "blue", b.Network)
	assert.Equal(t, 1, b.VLAN)
	assert.Positive(t, b.OFPort)
	assert.Equal(t, "02:00:00:00:01:01", b.MAC)

	cfg := st.root.NextCfg
	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "tap0", Port: "tap0", Network: "blue", VLAN: 1}))
	assert.Equal(t, cfg, m.state(t).root.NextCfg, "second call changes nothing")

	// A new client (brtun restarted) reads the binding back.
	f = m.dial(t).Facts()
	require.Len(t, f.Bindings, 2)
	assert.Equal(t, "blue", f.Bindings[0].Network)

	// Re-binding to another VLAN retags in place.
	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "tap0", Port: "tap0", Network: "green", VLAN: 7}))
	p = m.state(t).portByName["tap0"]
	assert.Equal(t, 7, *p.Tag)
	assert.Equal(t, "green", p.OtherConfig["brtun-network"])

	// Unbinding the operator's port leaves it on br-int with the dead VLAN.
	require.NoError(t, c.UnbindPort(ctxT(t), "tap0"))
	p = m.state(t).portByName["tap0"]
	require.NotNil(t, p)
	assert.Equal(t, DeadVLAN, *p.Tag)
	assert.Empty(t, p.OtherConfig)
	assert.Len(t, c.Facts().Bindings, 1)
	cfg = m.state(t).root.NextCfg
	require.NoError(t, c.UnbindPort(ctxT(t), "tap0"))
	require.NoError(t, c.UnbindPort(ctxT(t), "no-such-iface"))
	assert.Equal(t, cfg, m.state(t).root.NextCfg, "nothing left to unbind")
}

func TestBindCreatesAndUnbindRemovesPort(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))

	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "vm7", Port: "p7", Network: "blue", VLAN: 3}))
	st := m.state(t)
	p := st.portByName["vm7"]
	require.NotNil(t, p)
	assert.Equal(t, BridgeInt, st.bridgeOfPort(p).Name)
	assert.Equal(t, 3, *p.Tag)
	assert.Equal(t, map[string]string{"brtun-owner": "brtun", "brtun-role": "vm"}, p.ExternalIDs)
	assert.Equal(t, "brtun", st.ifaceByName["vm7"].ExternalIDs["brtun-owner"])
	f := c.Facts()
	require.Len(t, f.Bindings, 1)
	assert.Equal(t, BoundPort{Interface: "vm7", Port: "p7", Network: "blue", VLAN: 3, OFPort: f.Bindings[0].OFPort,
		MAC: f.Bindings[0].MAC}, f.Bindings[0])
	assert.Positive(t, f.Bindings[0].OFPort)

	require.NoError(t, c.UnbindPort(ctxT(t), "vm7"))
	st = m.state(t)
	assert.Nil(t, st.portByName["vm7"])
	assert.Nil(t, st.ifaceByName["vm7"])
	assert.Len(t, st.bridgeByName[BridgeInt].Ports, 2)
}

// TestBindDownPortOnDeadVLAN: a port that is administratively down is
// bound with tag DeadVLAN and back on its VLAN when it is up again.
func TestBindDownPortOnDeadVLAN(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "vm7", Port: "p7", Network: "blue", VLAN: DeadVLAN}))
	p := m.state(t).portByName["vm7"]
	require.NotNil(t, p)
	assert.Equal(t, DeadVLAN, *p.Tag)
	assert.Equal(t, "4095", p.OtherConfig[KeyVLAN])
	require.Len(t, c.Facts().Bindings, 1)
	assert.Equal(t, DeadVLAN, c.Facts().Bindings[0].VLAN, "still a binding, on the dead VLAN")

	require.NoError(t, c.BindPort(ctxT(t), Binding{Interface: "vm7", Port: "p7", Network: "blue", VLAN: 3}))
	assert.Equal(t, 3, *m.state(t).portByName["vm7"].Tag, "up again: back on its VLAN")
}

func TestBindRefusals(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.ErrorContains(t, c.BindPort(ctxT(t), Binding{Interface: "tap0", Network: "blue", VLAN: 1}),
		"br-int does not exist")
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	m.AddPort(t, BridgeTun, &vswitchd.Port{Name: "eth9"}, &vswitchd.Interface{Name: "eth9"})

	for _, tc := range []struct {
		b    Binding
		want string
	}{
		{Binding{Interface: "tap0", Network: "blue", VLAN: 0}, "outside 1..4094"},
		{Binding{Interface: "tap0", Network: "blue", VLAN: 4096}, "outside 1..4094"},
		{Binding{Interface: "tap0", Network: "blue", VLAN: -1}, "outside 1..4094"},
		{Binding{Interface: "", Network: "blue", VLAN: 1}, "required"},
		{Binding{Interface: "tap0", VLAN: 1}, "required"},
		{Binding{Interface: "eth9", Network: "blue", VLAN: 1}, "not on br-int"},
		{Binding{Interface: PatchInt, Network: "blue", VLAN: 1}, "brtun's own"},
		{Binding{Interface: PatchTun, Network: "blue", VLAN: 1}, "brtun's own"},
		{Binding{Interface: BridgeInt, Network: "blue", VLAN: 1}, "brtun's own"},
	} {
		assert.ErrorContains(t, c.BindPort(ctxT(t), tc.b), tc.want, "%+v", tc.b)
	}
	assert.Nil(t, m.state(t).portByName["eth9"].Tag, "refused binding left the port alone")
}

func TestNothingToDoOnEmptyDatabase(t *testing.T) {
	m := newMemOVS(t, memOptions{NoRoot: true, NoVswitchd: true})
	c := m.dial(t)
	require.NoError(t, c.UnbindPort(ctxT(t), "tap0"))
	assert.Nil(t, m.state(t).root, "nothing was written")
}
