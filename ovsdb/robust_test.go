package ovsdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// A database a broken or hostile server could describe: dangling
// references, ports without interfaces, repeated names, malformed values.
// Deriving facts and planning changes from it must not panic.
func brokenState() *state {
	garbage := "not-a-dpid"
	neg := -1
	failed := "could not open network device"
	oneInt := 1
	return newState(
		map[string]*vswitchd.OpenvSwitch{
			"r2": {UUID: "r2", Bridges: []string{"b1", "b-missing"}, NextCfg: 3, CurCfg: 9},
			"r1": {UUID: "r1"},
		},
		map[string]*vswitchd.Bridge{
			"b1": {UUID: "b1", Name: BridgeTun, DatapathID: &garbage, Ports: []string{"p-missing", "p1", "p2", "p3"},
				Controller: []string{"c-missing"}},
			"b2": {UUID: "b2", Name: BridgeInt, Ports: []string{"p4", "p5", "p1"}},
			"b3": {UUID: "b3", Name: BridgeInt},
		},
		map[string]*vswitchd.Port{
			"p1": {UUID: "p1", Name: "vxlan-c0000202", ExternalIDs: map[string]string{KeyOwner: OwnerBrtun, KeyRole: roleTunnel}},
			"p2": {UUID: "p2", Name: "gre-c0000202", Interfaces: []string{"i-missing"},
				ExternalIDs: map[string]string{KeyOwner: OwnerBrtun, KeyRole: roleTunnel}},
			"p3": {UUID: "p3", Name: PatchInt, Interfaces: []string{"i1", "i2"}},
			"p4": {UUID: "p4", Name: "tap0", Tag: &oneInt, OtherConfig: map[string]string{KeyNetwork: "blue"}},
			"p5": {UUID: "p5", Name: "tap1", Interfaces: []string{"i3"}, OtherConfig: map[string]string{KeyNetwork: "red", KeyVLAN: "x"}},
		},
		map[string]*vswitchd.Interface{
			"i1": {UUID: "i1", Name: PatchInt, Ofport: &neg, Error: &failed},
			"i2": {UUID: "i2", Name: "tap9", ExternalIDs: map[string]string{KeyNetwork: "green"}},
			"i3": {UUID: "i3", Name: "tap1"},
			"i4": {UUID: "i4", Name: "tap2", ExternalIDs: map[string]string{KeyNetwork: ""}},
			"i5": {UUID: "i5", Name: "tap1"},
		},
		map[string]*vswitchd.Controller{"c1": {UUID: "c1"}},
	)
}

func TestBrokenDatabaseDoesNotPanic(t *testing.T) {
	m := newMemOVS(t, memOptions{})
	st := brokenState()
	var f Facts
	require.NotPanics(t, func() { f = factsOf(st) })
	assert.Zero(t, f.Bridges[BridgeTun].DatapathID, "malformed datapath id reads as unknown")
	assert.Len(t, f.Marked, 2)

	plans := map[string]func(*Txn) error{
		"host": func(tx *Txn) error {
			return tx.EnsureHost(HostSpec{Name: "h1", ControllerTargets: []string{"ptcp:6653"}})
		},
		"tunnels": func(tx *Txn) error {
			return tx.EnsureTunnels(TunnelSpec{LocalIP: "192.0.2.1", Peers: []Peer{
				{Name: "h2", IP: "192.0.2.2", Types: []topology.NetworkType{topology.VXLAN, topology.GRE}},
			}})
		},
		"bind existing":  func(tx *Txn) error { return tx.BindPort(Binding{Interface: "tap1", Network: "blue", VLAN: 3}) },
		"bind portless":  func(tx *Txn) error { return tx.BindPort(Binding{Interface: "tap2", Network: "blue", VLAN: 3}) },
		"bind new":       func(tx *Txn) error { return tx.BindPort(Binding{Interface: "tap0", Network: "blue", VLAN: 3}) },
		"unbind":         func(tx *Txn) error { return tx.UnbindPort("tap1") },
		"unbind no port": func(tx *Txn) error { return tx.UnbindPort("tap2") },
	}
	for name, plan := range plans {
		require.NotPanics(t, func() {
			tx := newTxn(m.raw, st)
			if err := plan(tx); err == nil {
				_, _ = tx.finish()
			}
		}, name)
	}
}
