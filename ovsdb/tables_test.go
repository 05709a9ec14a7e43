package ovsdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
)

// tablesSpec is a host with named tables on both bridges and a bounded
// table 20 on br-tun.
func tablesSpec() HostSpec {
	return HostSpec{
		Name: "h1",
		Tables: map[string][]TableSpec{
			BridgeTun: {
				{ID: 0, Name: "dispatch"},
				{ID: 20, Name: "unicast", OwnLimit: true, FlowLimit: 1000, EvictionGroups: []string{"NXM_OF_VLAN_TCI[0..11]"}},
			},
			BridgeInt: {{ID: 0, Name: "normal"}},
		},
		MACTableSize: 2000,
	}
}

// flowTable returns the Flow_Table row of table id on a bridge, or nil.
func flowTable(st *state, bridge string, id int) *vswitchd.FlowTable {
	b := st.bridgeByName[bridge]
	if b == nil {
		return nil
	}
	return st.flowTables[b.FlowTables[id]]
}

func TestEnsureHostWritesFlowTablesInTheSameTransaction(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	spec := tablesSpec()
	require.NoError(t, c.EnsureHost(ctxT(t), spec))

	st := m.state(t)
	assert.Equal(t, 1, st.root.NextCfg, "bridges and tables in one transaction")
	assert.Equal(t, []string{"brtun: ensure host h1"}, m.proxy.Comments())
	expectHost(t, st, spec)
	assert.Len(t, st.flowTables, 3)

	dispatch := flowTable(st, BridgeTun, 0)
	require.NotNil(t, dispatch)
	assert.Equal(t, "dispatch", *dispatch.Name)
	assert.Nil(t, dispatch.FlowLimit, "no limit asked")
	assert.Nil(t, dispatch.OverflowPolicy)
	assert.Empty(t, dispatch.Groups)
	assert.Equal(t, "brtun", dispatch.ExternalIDs[KeyOwner])

	unicast := flowTable(st, BridgeTun, 20)
	require.NotNil(t, unicast)
	assert.Equal(t, "unicast", *unicast.Name)
	require.NotNil(t, unicast.FlowLimit)
	assert.Equal(t, 1000, *unicast.FlowLimit)
	require.NotNil(t, unicast.OverflowPolicy)
	assert.Equal(t, "evict", *unicast.OverflowPolicy)
	assert.Equal(t, []string{"NXM_OF_VLAN_TCI[0..11]"}, unicast.Groups)

	normal := flowTable(st, BridgeInt, 0)
	require.NotNil(t, normal)
	assert.Equal(t, "normal", *normal.Name)
	assert.Equal(t, "2000", st.bridgeByName[BridgeInt].OtherConfig["mac-table-size"])
	assert.NotContains(t, st.bridgeByName[BridgeTun].OtherConfig, "mac-table-size", "br-tun does no NORMAL learning")

	// Idempotent: the same spec, from this client or a restarted one,
	// sends no transaction (every commit bumps next_cfg).
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	require.NoError(t, m.dial(t).EnsureHost(ctxT(t), spec))
	assert.Equal(t, 1, m.state(t).root.NextCfg)
}

func TestEnsureHostRepairsFlowTablesInPlace(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	spec := tablesSpec()
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	st := m.state(t)
	unicast := flowTable(st, BridgeTun, 20)
	require.NotNil(t, unicast)

	// An operator renames table 20 and drops its limit, renames table 0
	// and limits it (brtun owns its name, not its limit), and names table 5
	// of br-tun, a table brtun does not declare.
	other := "mine"
	tampered := &vswitchd.FlowTable{UUID: unicast.UUID, Name: &other, Groups: []string{}}
	up, err := m.raw.Where(tampered).Update(tampered, &tampered.Name, &tampered.FlowLimit, &tampered.OverflowPolicy, &tampered.Groups)
	require.NoError(t, err)
	seven, refuse := 7, vswitchd.FlowTableOverflowPolicyRefuse
	limited := &vswitchd.FlowTable{UUID: flowTable(st, BridgeTun, 0).UUID, Name: &other, FlowLimit: &seven, OverflowPolicy: &refuse}
	up0, err := m.raw.Where(limited).Update(limited, &limited.Name, &limited.FlowLimit, &limited.OverflowPolicy)
	require.NoError(t, err)
	ops := append(append(up, up0...), m.Create(t, &vswitchd.FlowTable{UUID: "t5", Name: &other})...)
	br := &vswitchd.Bridge{UUID: st.bridgeByName[BridgeTun].UUID, FlowTables: map[int]string{}}
	for k, v := range st.bridgeByName[BridgeTun].FlowTables {
		br.FlowTables[k] = v
	}
	br.FlowTables[5] = "t5"
	upBr, err := m.raw.Where(br).Update(br, &br.FlowTables)
	require.NoError(t, err)
	m.Transact(t, append(ops, upBr...)...)
	require.Equal(t, "mine", *flowTable(m.state(t), BridgeTun, 20).Name, "tampering took")

	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	st = m.state(t)
	got := flowTable(st, BridgeTun, 20)
	require.NotNil(t, got)
	assert.Equal(t, unicast.UUID, got.UUID, "repaired in place")
	assert.Equal(t, "unicast", *got.Name)
	require.NotNil(t, got.FlowLimit)
	assert.Equal(t, 1000, *got.FlowLimit)
	require.NotNil(t, got.OverflowPolicy)
	assert.Equal(t, "evict", *got.OverflowPolicy)
	assert.Equal(t, []string{"NXM_OF_VLAN_TCI[0..11]"}, got.Groups)
	dispatch := flowTable(st, BridgeTun, 0)
	require.NotNil(t, dispatch)
	assert.Equal(t, "dispatch", *dispatch.Name, "the name is brtun's")
	require.NotNil(t, dispatch.FlowLimit, "the operator's limit on a table brtun does not bound stays")
	assert.Equal(t, 7, *dispatch.FlowLimit)
	assert.Equal(t, "refuse", *dispatch.OverflowPolicy)
	kept := flowTable(st, BridgeTun, 5)
	require.NotNil(t, kept, "a table brtun does not declare keeps its row")
	assert.Equal(t, "mine", *kept.Name)

	// A new limit changes the row in place; no limit clears it.
	spec.Tables[BridgeTun][1].FlowLimit = 50
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	got = flowTable(m.state(t), BridgeTun, 20)
	assert.Equal(t, unicast.UUID, got.UUID)
	assert.Equal(t, 50, *got.FlowLimit)
	spec.Tables[BridgeTun][1].FlowLimit = 0
	spec.Tables[BridgeTun][1].EvictionGroups = nil
	require.NoError(t, c.EnsureHost(ctxT(t), spec))
	got = flowTable(m.state(t), BridgeTun, 20)
	assert.Nil(t, got.FlowLimit)
	assert.Nil(t, got.OverflowPolicy)
	assert.Empty(t, got.Groups)
	assert.Equal(t, "unicast", *got.Name)

	// No tables in the spec leaves the rows alone, like nil controller
	// targets; a MAC table size of 0 leaves the key alone.
	cfg := m.state(t).root.NextCfg
	require.NoError(t, c.EnsureHost(ctxT(t), HostSpec{Name: "h1"}))
	st = m.state(t)
	assert.Equal(t, cfg, st.root.NextCfg)
	assert.Equal(t, "2000", st.bridgeByName[BridgeInt].OtherConfig["mac-table-size"])
	assert.Len(t, st.flowTables, 4)
}

func TestEnsureHostRefusesBadTables(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	c := m.dial(t)
	for name, spec := range map[string]HostSpec{
		"table 255":        {Name: "h1", Tables: map[string][]TableSpec{BridgeTun: {{ID: 255, Name: "x"}}}},
		"twice":            {Name: "h1", Tables: map[string][]TableSpec{BridgeTun: {{ID: 1, Name: "x"}, {ID: 1, Name: "y"}}}},
		"negative limit":   {Name: "h1", Tables: map[string][]TableSpec{BridgeTun: {{ID: 1, OwnLimit: true, FlowLimit: -1}}}},
		"groups, no limit": {Name: "h1", Tables: map[string][]TableSpec{BridgeTun: {{ID: 1, OwnLimit: true, EvictionGroups: []string{"NXM_OF_VLAN_TCI[0..11]"}}}}},
		"limit not owned":  {Name: "h1", Tables: map[string][]TableSpec{BridgeTun: {{ID: 1, FlowLimit: 5}}}},
		"unknown bridge":   {Name: "h1", Tables: map[string][]TableSpec{"br-ex": {{ID: 1}}}},
		"negative size":    {Name: "h1", MACTableSize: -1},
	} {
		assert.Error(t, c.EnsureHost(ctxT(t), spec), name)
	}
	// Positive control: a valid spec on the same database commits.
	require.NoError(t, c.EnsureHost(ctxT(t), tablesSpec()))
	assert.Len(t, m.state(t).flowTables, 3)
}
