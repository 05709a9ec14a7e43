package ovsdb

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDatapathID(t *testing.T) {
	a := DatapathID("h1", BridgeInt)
	assert.Equal(t, a, DatapathID("h1", BridgeInt), "deterministic")
	assert.NotEqual(t, a, DatapathID("h1", BridgeTun))
	assert.NotEqual(t, a, DatapathID("h2", BridgeInt))
	// The separator keeps ("h1b", "r") and ("h1", "br") apart.
	assert.NotEqual(t, DatapathID("h1b", "r"), DatapathID("h1", "br"))
	assert.NotZero(t, a)

	s := FormatDatapathID(a)
	assert.Len(t, s, 16)
	back, err := ParseDatapathID(s)
	require.NoError(t, err)
	assert.Equal(t, a, back)
	back, err = ParseDatapathID("0x" + s)
	require.NoError(t, err)
	assert.Equal(t, a, back)
	assert.Equal(t, "00000000000000ff", FormatDatapathID(255))

	for _, bad := range []string{"", "ff", "0000000000000000ff", "zzzzzzzzzzzzzzzz"} {
		_, err := ParseDatapathID(bad)
		assert.Error(t, err, bad)
	}
}

func TestControllerTargets(t *testing.T) {
	got, err := controllerTargets([]string{"tcp:198.51.100.254:6653", "ptcp:6653", "tcp:198.51.100.254:6653"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ptcp:6653", "tcp:198.51.100.254:6653"}, got)
	for _, bad := range []string{"198.51.100.254:6653", "http://x", "tcp:"} {
		_, err := controllerTargets([]string{bad})
		assert.Error(t, err, bad)
	}
}

// expectHost checks that the database holds exactly brtun's two bridges,
// their four ports and interfaces and one controller per bridge and target.
func expectHost(t *testing.T, st *state, spec HostSpec) {
	t.Helper()
	require.NotNil(t, st.root)
	assert.Len(t, st.root.Bridges, 2)
	assert.Len(t, st.bridges, 2)
	assert.Len(t, st.ports, 4)
	assert.Len(t, st.ifaces, 4)
	assert.Len(t, st.controllers, 2*len(spec.ControllerTargets))
	dpType := spec.DatapathType
	if dpType == "" {
		dpType = "system"
	}
	for _, br := range []struct{ name, patch, peer string }{{BridgeInt, PatchTun, PatchInt}, {BridgeTun, PatchInt, PatchTun}} {
		b := st.bridgeByName[br.name]
		require.NotNil(t, b, br.name)
		assert.Contains(t, st.root.Bridges, b.UUID)
		assert.Equal(t, dpType, b.DatapathType)
		require.NotNil(t, b.FailMode)
		assert.Equal(t, "secure", *b.FailMode)
		assert.ElementsMatch(t, []string{"OpenFlow10", "OpenFlow13"}, b.Protocols)
		assert.Equal(t, "true", b.OtherConfig["disable-in-band"])
		assert.Equal(t, FormatDatapathID(DatapathID(spec.Name, br.name)), b.OtherConfig["datapath-id"])
		assert.Equal(t, "brtun", b.ExternalIDs["brtun-owner"])
		var targets []string
		for _, uuid := range b.Controller {
			ctrl := st.controllers[uuid]
			require.NotNil(t, ctrl)
			targets = append(targets, ctrl.Target)
			require.NotNil(t, ctrl.ConnectionMode)
			assert.Equal(t, "out-of-band", *ctrl.ConnectionMode)
		}
		assert.ElementsMatch(t, spec.ControllerTargets, targets)

		var names []string
		for _, p := range st.portsOn(b) {
			names = append(names, p.Name)
		}
		assert.Equal(t, []string{br.name, br.patch}, names)
		internal := st.ifaceByName[br.name]
		require.NotNil(t, internal)
		assert.Equal(t, "internal", internal.Type)
		patch := st.ifaceByName[br.patch]
		require.NotNil(t, patch)
		assert.Equal(t, "patch", patch.Type)
		assert.Equal(t, map[string]string{"peer": br.peer}, patch.Options)
		for _, name := range []string{br.name, br.patch} {
			assert.Equal(t, "brtun", st.portByName[name].ExternalIDs["brtun-owner"], name)
		}
	}
}

func TestEnsureHostFreshAndIdempotent(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	spec := HostSpec{Name: "h1", DatapathType: "netdev", ControllerTargets: []string{"tcp:198.51.100.254:6653"}}

	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	st := m.state(t)
	expectHost(t, st, spec)
	cfg := st.root.NextCfg
	assert.Equal(t, 1, cfg, "one transaction")
	assert.Equal(t, []string{"brtun: ensure host h1"}, m.proxy.Comments())

	// The client returns once "ovs-vswitchd" applied it: the facts hold
	// datapath ids and patch ofports.
	f := c.Facts()
	assert.True(t, f.Connected)
	for _, br := range []string{BridgeInt, BridgeTun} {
		assert.Equal(t, DatapathID("h1", br), f.Bridges[br].DatapathID, br)
		assert.Positive(t, f.Bridges[br].PatchOFPort, br)
		assert.Equal(t, "netdev", f.Bridges[br].DatapathType)
	}

	// A second call sends no transaction at all: every commit bumps next_cfg.
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	assert.Equal(t, cfg, m.state(t).root.NextCfg)
	expectHost(t, m.state(t), spec)

	// A second client (brtun restarted) also finds nothing to do.
	c2 := m.dial(t)
	require.NoError(t, c2.EnsureHost(ctxT(t), spec))
	assert.Equal(t, cfg, m.state(t).root.NextCfg)
}

func TestEnsureHostCreatesRootRow(t *testing.T) {
	m := newMemOVS(t, memOptions{NoRoot: true})
	c := m.dial(t)
	spec := HostSpec{Name: "h1"}
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	expectHost(t, m.state(t), spec)
}

func TestEnsureHostRepairsAndAdopts(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	standalone := vswitchd.BridgeFailModeStandalone
	// br-int as "ovs-vsctl add-br br-int" plus operator settings: standalone,
	// an extra other_config key, a stale controller and an extra port.
	st := m.state(t)
	ops := m.Create(t,
		&vswitchd.Interface{UUID: "iint", Name: BridgeInt, Type: "internal"},
		&vswitchd.Port{UUID: "pint", Name: BridgeInt, Interfaces: []string{"iint"}},
	)
	ops = append(ops, m.Create(t,
		&vswitchd.Interface{UUID: "itap", Name: "tap9"},
		&vswitchd.Port{UUID: "ptap", Name: "tap9", Interfaces: []string{"itap"}},
	)...)
	ops = append(ops, m.Create(t, &vswitchd.Controller{UUID: "cold", Target: "tcp:198.51.100.9:6653"})...)
	ops = append(ops, m.Create(t, &vswitchd.Bridge{
		UUID: "bint", Name: BridgeInt, FailMode: &standalone, Ports: []string{"pint", "ptap"},
		OtherConfig: map[string]string{"mac-table-size": "4096", "disable-in-band": "false"},
		Controller:  []string{"cold"},
	})...)
	root := &vswitchd.OpenvSwitch{UUID: st.root.UUID, Bridges: []string{"bint"}}
	up, err := m.raw.Where(root).Update(root, &root.Bridges)
	require.NoError(t, err)
	m.Transact(t, append(ops, up...)...)

	orig := m.state(t).bridgeByName[BridgeInt].UUID

	c := m.dial(t)
	spec := HostSpec{Name: "h1", ControllerTargets: []string{"tcp:198.51.100.254:6653"}}
	require.NoError(t, c.EnsureHost(ctxT(t), spec))

	st = m.state(t)
	b := st.bridgeByName[BridgeInt]
	require.NotNil(t, b)
	assert.Equal(t, orig, b.UUID, "adopted, not re-created")
	assert.Equal(t, "secure", *b.FailMode)
	assert.Equal(t, "4096", b.OtherConfig["mac-table-size"], "operator key kept")
	assert.Equal(t, "true", b.OtherConfig["disable-in-band"])
	require.Len(t, b.Controller, 1)
	assert.Equal(t, "tcp:198.51.100.254:6653", st.controllers[b.Controller[0]].Target)
	assert.Len(t, st.controllers, 2, "stale controller garbage-collected")
	// The internal port was adopted, the operator's port left alone.
	assert.Equal(t, "brtun", st.portByName[BridgeInt].ExternalIDs["brtun-owner"])
	require.NotNil(t, st.portByName["tap9"])
	assert.Empty(t, st.portByName["tap9"].ExternalIDs)
	assert.Len(t, b.Ports, 3)

	cfg := st.root.NextCfg
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	assert.Equal(t, cfg, m.state(t).root.NextCfg, "second call changes nothing")

	// Changing the controller targets swaps the rows on both bridges.
	spec.ControllerTargets = []string{"tcp:198.51.100.253:6653", "tcp:198.51.100.254:6653"}
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	st = m.state(t)
	assert.Len(t, st.controllers, 4)
	assert.Len(t, st.bridgeByName[BridgeTun].Controller, 2)
	// nil leaves the controllers as they are (the operator's set-controller).
	spec.ControllerTargets = nil
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	assert.Len(t, m.state(t).bridgeByName[BridgeTun].Controller, 2, "nil targets leave controllers alone")
	// An empty list removes them.
	spec.ControllerTargets = []string{}
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	assert.Empty(t, m.state(t).controllers)
}

func TestEnsureHostChecksDatapathType(t *testing.T) {
	m := newMemOVS(t, memOptions{DatapathTypes: []string{"netdev", "system"}})
	c := m.dial(t)
	err := c.EnsureHost(ctxT(t), HostSpec{Name: "h1", DatapathType: "dummy"})
	require.ErrorContains(t, err, `datapath type "dummy" is not supported`)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1", DatapathType: "netdev"}))
	require.ErrorContains(t, c.EnsureHost(ctxT(t), HostSpec{}), "empty host name")
}

func TestEnsureHostChangesDatapathType(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1", DatapathType: "netdev"}))
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1", DatapathType: "dummy"}))
	st := m.state(t)
	for _, b := range st.bridges {
		assert.Equal(t, "dummy", b.DatapathType)
	}
	assert.Len(t, st.ports, 4)
}
