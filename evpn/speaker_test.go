package evpn

import (
	"context"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// ribPaths lists the EVPN paths in the speaker's GoBGP RIB.
func ribPaths(t *testing.T, s *Speaker) []*api.Path {
	t.Helper()
	var out []*api.Path
	require.NoError(t, s.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily},
		func(d *api.Destination) { out = append(out, d.Paths...) }))
	return out
}

// TestSpeakerAdvertisesOnlyTheDifference runs GoBGP without a listener or
// peers: SetDesired puts the routes into its RIB and changes only what
// changed; its own routes are never reported as imported.
func TestSpeakerAdvertisesOnlyTheDifference(t *testing.T) {
	ctx := context.Background()
	var updates []State
	reg := prometheus.NewPedanticRegistry()
	s, err := Start(ctx, Options{
		Config:   Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenPort: -1},
		Logger:   zaptest.NewLogger(t),
		Metrics:  reg,
		OnUpdate: func(st State) { updates = append(updates, st) },
	}, blue(MAC{MAC: "02:00:00:00:00:0a", VTEP: hostA}), nil)
	require.NoError(t, err)
	defer s.Stop()

	paths := ribPaths(t, s)
	assert.Len(t, paths, 3, "two type-3 and one type-2")
	got, err := s.received(ctx)
	require.NoError(t, err)
	assert.Empty(t, got, "the speaker's own routes are not received routes")
	require.Len(t, updates, 1, "Start reports the first State")
	assert.Equal(t, []LocalSeq{{VNI: 5001, MAC: "02:00:00:00:00:0a", VTEP: hostA}}, updates[0].Seqs)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	gauges := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			gauges[mf.GetName()] += m.GetGauge().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{"brtun_bgp_routes_exported": 3, "brtun_bgp_routes_imported": 0}, gauges,
		"no peers: no session metrics")

	ages := map[string]time.Time{}
	for _, p := range paths {
		ages[p.Nlri.String()] = p.Age.AsTime()
	}
	time.Sleep(1100 * time.Millisecond) // GoBGP timestamps have a second's resolution
	require.NoError(t, s.SetDesired(ctx, blue(
		MAC{MAC: "02:00:00:00:00:0a", VTEP: hostA},
		MAC{MAC: "02:00:00:00:00:0b", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.11")}, VTEP: hostB})))
	paths = ribPaths(t, s)
	require.Len(t, paths, 5)
	var unchanged int
	for _, p := range paths {
		if a, ok := ages[p.Nlri.String()]; ok {
			assert.Equal(t, a, p.Age.AsTime(), "an unchanged route was re-added: %s", p.Nlri)
			unchanged++
		}
	}
	assert.Equal(t, 3, unchanged, "positive control: the three old routes are still there")

	require.NoError(t, s.SetDesired(ctx, Desired{}))
	assert.Empty(t, ribPaths(t, s), "everything withdrawn")

	peers, err := s.Peers(ctx)
	require.NoError(t, err)
	assert.Empty(t, peers)
	_, ok, err := s.PeerStatus(ctx, peer1)
	require.NoError(t, err)
	assert.False(t, ok)
}
