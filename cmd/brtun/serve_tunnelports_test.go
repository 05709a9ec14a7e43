package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// --tunnel-ports flow refuses to start while a host has an IPv6 tunnel IP,
// and says why; per-peer starts with it, and flow starts without it.
func TestFlowTunnelPortsRefuseIPv6HostsAtStart(t *testing.T) {
	ctx := context.Background()
	store := topology.NewMemoryStore()
	_, _, err := store.CreateHost(ctx, topology.Host{Name: "h1", OVSDB: "tcp:198.51.100.1:6640", TunnelIP: "192.0.2.1"})
	require.NoError(t, err)
	require.NoError(t, checkTunnelPorts(ctx, store, topology.FlowTunnels), "IPv4 hosts only: flow mode starts")

	_, _, err = store.CreateHost(ctx, topology.Host{Name: "h6", OVSDB: "tcp:198.51.100.6:6640", TunnelIP: "2001:db8::6"})
	require.NoError(t, err)
	err = checkTunnelPorts(ctx, store, topology.FlowTunnels)
	require.ErrorContains(t, err, "--tunnel-ports flow: host h6 has IPv6 tunnel IP 2001:db8::6, and flow-based tunnel ports carry IPv4 tunnel IPs only")
	require.NoError(t, checkTunnelPorts(ctx, store, topology.PerPeerTunnels), "per-peer takes IPv6 tunnel IPs")

	_, err = topology.ParseTunnelPortMode("mesh")
	require.Error(t, err)
}
