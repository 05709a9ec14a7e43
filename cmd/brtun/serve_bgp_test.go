package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/evpn"
	"github.com/brtun/brtun/topology"
)

func TestDesiredRoutesFromTheSnapshot(t *testing.T) {
	snap := topology.Snapshot{
		Hosts: []topology.Host{
			{Name: "h1", TunnelIP: "192.0.2.1"},
			{Name: "h2", TunnelIP: "192.0.2.2"},
			{Name: "h6", TunnelIP: "2001:db8::6"},
		},
		Networks: []topology.Network{
			{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, EVPN: true},
			{Name: "green", Type: topology.VXLAN, SegmentID: 5002, EVPN: true, RouteTarget: "65000:42"},
			{Name: "plain", Type: topology.VXLAN, SegmentID: 5003},
		},
		Ports: []topology.Port{
			{Network: "blue", Name: "a1", Host: "h1", MAC: "02:00:00:00:01:01", IPs: []string{"198.18.0.1"}},
			{Network: "blue", Name: "a2", Host: "h2"}, // no MAC: only the VTEP
			{Network: "blue", Name: "a3", Host: "h2", MAC: "02:00:00:00:01:03", AdminStateUp: topology.Bool(false)},
			{Network: "blue", Name: "a6", Host: "h6", MAC: "02:00:00:00:01:06"}, // IPv6 VTEP: left out
			{Network: "green", Name: "g1", Host: "h1", MAC: "02:00:00:00:02:01"},
			{Network: "plain", Name: "p1", Host: "h1", MAC: "02:00:00:00:03:01"},
		},
	}
	ip := netip.MustParseAddr
	assert.Equal(t, evpn.Desired{Networks: map[uint32]evpn.Network{
		5001: {VTEPs: []netip.Addr{ip("192.0.2.1"), ip("192.0.2.2")}, MACs: []evpn.MAC{
			{MAC: "02:00:00:00:01:01", IPs: []netip.Addr{ip("198.18.0.1")}, VTEP: ip("192.0.2.1")},
		}},
		5002: {RouteTarget: "65000:42", VTEPs: []netip.Addr{ip("192.0.2.1")}, MACs: []evpn.MAC{
			{MAC: "02:00:00:00:02:01", VTEP: ip("192.0.2.1")},
		}},
	}}, desiredRoutes(snap, zap.NewNop()))
}

func TestEVPNRoutesKeepTheStateForRestore(t *testing.T) {
	ip := netip.MustParseAddr
	st := evpn.State{
		Imported: evpn.Imported{Networks: []evpn.ImportedNetwork{{
			VNI:   5001,
			VTEPs: []evpn.RemoteVTEP{{IP: ip("192.0.2.9"), Peer: ip("198.51.100.9"), RD: "198.51.100.9:2"}},
			MACs:  []evpn.RemoteMAC{{MAC: "02:00:00:00:09:01", IPs: []netip.Addr{ip("198.18.0.9")}, VTEP: ip("192.0.2.9"), Seq: 1, Peer: ip("198.51.100.9"), RD: "198.51.100.9:2"}},
		}}},
		Seqs: []evpn.LocalSeq{{VNI: 5001, MAC: "02:00:00:00:01:01", VTEP: ip("192.0.2.1"), Seq: 2}},
	}
	r, err := evpnRoutes(st)
	require.NoError(t, err)
	assert.Equal(t, []topology.EVPNNetwork{{
		VNI:   5001,
		VTEPs: []topology.EVPNVTEP{{IP: "192.0.2.9", Peer: "198.51.100.9"}},
		MACs:  []topology.EVPNMAC{{MAC: "02:00:00:00:09:01", IPs: []string{"198.18.0.9"}, VTEP: "192.0.2.9", Peer: "198.51.100.9"}},
	}}, r.Networks)
	var back evpn.State
	require.NoError(t, json.Unmarshal(r.State, &back))
	assert.Equal(t, st, back, "the stored state restores the speaker exactly")
}

// Only the leading replica stores what its speaker imports; a replica that
// becomes the leader stores its speaker's state at once.
func TestOnlyTheLeaderStoresImportedRoutes(t *testing.T) {
	store, err := topology.OpenBoltStore(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	var leads atomic.Bool
	opts := bgpOptions{asn: 65000, routerID: "198.51.100.1", listenPort: -1, restartTime: 10 * time.Second}
	r, err := startBGP(t.Context(), opts, store, leads.Load, zap.NewNop(), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	stored := func() bool {
		routes, err := store.EVPNRoutes(t.Context())
		require.NoError(t, err)
		return len(routes.State) > 0
	}
	time.Sleep(3 * leaderCheck)
	assert.False(t, stored(), "a replica that does not lead stores nothing")
	leads.Store(true)
	assert.Eventually(t, stored, 5*time.Second, 20*time.Millisecond, "the new leader stores its speaker's state")
}

func TestGracefulRestartTimeBounds(t *testing.T) {
	store, err := topology.OpenBoltStore(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	for _, d := range []time.Duration{0, 500 * time.Millisecond, 4096 * time.Second} {
		_, err := startBGP(t.Context(), bgpOptions{asn: 65000, routerID: "198.51.100.1", listenPort: -1, restartTime: d}, store, nil, zap.NewNop(), nil)
		assert.ErrorContains(t, err, "--bgp-graceful-restart-time", "%s", d)
	}
}
