package evpn

import (
	"context"
	"net/netip"
	"sync"
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
			gauges[mf.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{"brtun_bgp_routes_exported": 3, "brtun_bgp_routes_imported": 0,
		"brtun_bgp_table_relists_total": 1, "brtun_bgp_table_updates_total": 0}, gauges,
		"no peers: no session metrics; the table was listed once, at Start")
	_, err = Start(ctx, Options{Config: Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenPort: -1}, Metrics: reg},
		Desired{}, nil)
	assert.ErrorContains(t, err, "register metrics", "a second speaker on the same registry while the first runs")

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
	defer func() {
		s.Stop()
		assert.ErrorIs(t, s.SetDesired(ctx, Desired{}), errStopped)
		assert.ErrorIs(t, s.SetPeers(ctx, nil), errStopped)
		s.Stop() // twice is fine
	}()
	_, ok, err := s.PeerStatus(ctx, peer1)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestSpeakerRestoreHoldsImports starts a speaker with a stored State: its
// first State reports the stored imports of the desired networks at once;
// the held routes go when their peer is released (End-of-RIB or restart
// time), and the stored sequence numbers are kept.
func TestSpeakerRestoreHoldsImports(t *testing.T) {
	ctx := context.Background()
	restored := State{
		Imported: Imported{Networks: []ImportedNetwork{
			{VNI: 5001, VTEPs: []RemoteVTEP{{IP: frr, Peer: peer1, RD: "198.51.100.9:2"}},
				MACs: []RemoteMAC{{MAC: "02:00:00:00:09:01", VTEP: frr, Seq: 3, Peer: peer1, RD: "198.51.100.9:2"}}},
			{VNI: 5009, VTEPs: []RemoteVTEP{{IP: frr, Peer: peer1}}}, // no longer desired
		}},
		Seqs: []LocalSeq{{VNI: 5001, MAC: "02:00:00:00:00:0a", VTEP: hostA, Seq: 4}},
	}
	var mu sync.Mutex
	var updates []State
	s, err := Start(ctx, Options{
		Config:  Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenPort: -1},
		Logger:  zaptest.NewLogger(t),
		Restore: &restored,
		OnUpdate: func(st State) {
			mu.Lock()
			updates = append(updates, st)
			mu.Unlock()
		},
	}, blue(MAC{MAC: "02:00:00:00:00:0a", VTEP: hostA}), nil)
	require.NoError(t, err)
	defer s.Stop()

	first := s.State()
	assert.Equal(t, Imported{Networks: restored.Imported.Networks[:1]}, first.Imported, "stored imports reported at once")
	assert.Equal(t, restored.Seqs, first.Seqs, "stored sequence numbers kept")

	s.release(&peer2) // another peer's End-of-RIB changes nothing
	require.NoError(t, s.SetDesired(ctx, blue(MAC{MAC: "02:00:00:00:00:0a", VTEP: hostA})))
	assert.Equal(t, first, s.State())

	s.release(&peer1)
	require.Eventually(t, func() bool { return len(s.State().Imported.Networks) == 0 }, 5*time.Second, 10*time.Millisecond,
		"held routes of a released peer stay: %+v", s.State().Imported)
	assert.Equal(t, restored.Seqs, s.State().Seqs)
	mu.Lock()
	assert.Len(t, updates, 2, "one State at start, one after the release")
	mu.Unlock()
}

func TestSetPeersAndSessionConfig(t *testing.T) {
	ctx := context.Background()
	// Loopback peers: nothing listens there, the sessions stay down.
	peer1, peer2 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	s, err := Start(ctx, Options{
		Config: Config{ASN: 65000, RouterID: netip.MustParseAddr("198.51.100.254"), ListenPort: -1,
			ListenAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: 3 * time.Second, KeepaliveInterval: time.Second},
		Logger: zaptest.NewLogger(t),
	}, Desired{}, nil)
	require.NoError(t, err)
	defer s.Stop()

	assert.ErrorContains(t, s.SetPeers(ctx, []Peer{{Address: peer1}}), "ASN")
	assert.ErrorContains(t, s.SetPeers(ctx, []Peer{{Address: peer1, ASN: 1}, {Address: peer1, ASN: 2}}), "twice")

	require.NoError(t, s.SetPeers(ctx, []Peer{{Address: peer1, ASN: 65000}, {Address: peer2, ASN: 65001, Password: "x"}}))
	all, err := s.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, peer1, all[0].Address)
	assert.Equal(t, uint32(65001), all[1].ASN)
	assert.NotEqual(t, "established", all[0].State)

	var got *api.Peer
	require.NoError(t, s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: peer2.String()}, func(p *api.Peer) { got = p }))
	require.NotNil(t, got)
	assert.True(t, got.GracefulRestart.Enabled)
	assert.True(t, got.GracefulRestart.LocalRestarting, "sessions open with the R and F bits")
	assert.Equal(t, uint32(120), got.GracefulRestart.RestartTime)
	assert.Equal(t, uint64(3), got.Timers.Config.HoldTime)
	assert.Equal(t, "127.0.0.1", got.Transport.LocalAddress)
	require.Len(t, got.AfiSafis, 1, "only L2VPN EVPN")
	assert.Equal(t, api.Family_AFI_L2VPN, got.AfiSafis[0].Config.Family.Afi)

	// Removing one peer leaves the other alone.
	require.NoError(t, s.SetPeers(ctx, []Peer{{Address: peer1, ASN: 65000}}))
	all, err = s.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, peer1, all[0].Address)
	_, ok, err := s.PeerStatus(ctx, peer2)
	require.NoError(t, err)
	assert.False(t, ok)
	st, ok, err := s.PeerStatus(ctx, peer1)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, peer1, st.Address)
}
