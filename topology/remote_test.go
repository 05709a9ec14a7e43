package topology

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRemoteVTEPsInTheSnapshot(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", VXLAN, 5001)
		mustNetwork(t, s, "red", GRE, 5001)
		v, rev, err := s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "k9", TunnelIP: "192.0.2.9", Networks: []string{"blue", "blue"},
			MACs: []RemoteMAC{{MAC: "02:00:00:00:09:0A", IPs: []string{"198.18.0.9"}}}})
		require.NoError(t, err)
		assert.Equal(t, rev, v.RevisionNumber)
		assert.Equal(t, []string{"blue"}, v.Networks)
		assert.Equal(t, "02:00:00:00:09:0a", v.MACs[0].MAC, "MACs in lower case")

		_, _, err = s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "k8", TunnelIP: "192.0.2.8", Networks: []string{"red"}})
		requireKind(t, err, ErrInvalid, "networks[0]")
		_, _, err = s.CreateRemoteVTEP(ctx, RemoteVTEP{Name: "k8", TunnelIP: "192.0.2.1", Networks: []string{"blue"}})
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.CreateHost(ctx, Host{Name: "h9", OVSDB: "tcp:198.51.100.9:6640", TunnelIP: "192.0.2.9"})
		requireKind(t, err, ErrConflict, "")

		routes := EVPNRoutes{Networks: []EVPNNetwork{{VNI: 5001, VTEPs: []EVPNVTEP{{IP: "192.0.2.20", Peer: "198.51.100.9"}}}},
			State: json.RawMessage(`{"imported":{"networks":[]}}`)}
		rev1, err := s.PutEVPNRoutes(ctx, routes)
		require.NoError(t, err)
		assert.NotZero(t, rev1)
		rev2, err := s.PutEVPNRoutes(ctx, routes)
		require.NoError(t, err)
		assert.Zero(t, rev2, "an equal value is not written again")
		cur, err := s.Revision(ctx)
		require.NoError(t, err)
		assert.Equal(t, rev1, cur)

		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		require.Len(t, snap.RemoteVTEPs, 1)
		assert.Equal(t, "k9", snap.RemoteVTEPs[0].Name)
		assert.Equal(t, routes.Networks, snap.EVPN.Networks)
		assert.Nil(t, snap.EVPN.State, "the speaker's own state stays out of the snapshot")
		got, err := s.EVPNRoutes(ctx)
		require.NoError(t, err)
		assert.JSONEq(t, string(routes.State), string(got.State))

		_, err = s.DeleteRemoteVTEP(ctx, "k9", IfMatch{v.RevisionNumber + 100})
		requireKind(t, err, ErrPrecondition, "")
		_, err = s.DeleteRemoteVTEP(ctx, "k9", IfMatch{v.RevisionNumber})
		require.NoError(t, err)
		mustHost(t, s, "h9", "192.0.2.9") // its tunnel IP is free again
	})
}

func TestBGPPeerStore(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		p, _, err := s.CreateBGPPeer(ctx, BGPPeer{Address: "::ffff:198.51.100.9", ASN: 65000, Password: "pw"})
		require.NoError(t, err)
		assert.Equal(t, "198.51.100.9", p.Address, "canonical form")
		_, _, err = s.CreateBGPPeer(ctx, BGPPeer{Address: "198.51.100.9", ASN: 65001})
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.CreateBGPPeer(ctx, BGPPeer{Address: "198.51.100.10", ASN: 23456})
		requireKind(t, err, ErrInvalid, "asn")
		got, err := s.GetBGPPeer(ctx, "198.51.100.9")
		require.NoError(t, err)
		assert.Equal(t, "pw", got.Password)
		_, _, err = s.UpdateBGPPeer(ctx, "198.51.100.9", nil, func(p *BGPPeer) error { p.ASN = 65001; return nil })
		require.NoError(t, err)
		list, err := s.ListBGPPeers(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, uint32(65001), list[0].ASN)
		_, err = s.DeleteBGPPeer(ctx, "198.51.100.9", nil)
		require.NoError(t, err)
		_, err = s.GetBGPPeer(ctx, "198.51.100.9")
		requireKind(t, err, ErrNotFound, "")
	})
}

func TestEVPNNetworkFields(t *testing.T) {
	_, err := normalizeNetwork(Network{Name: "red", Type: GRE, EVPN: true})
	requireKind(t, err, ErrInvalid, "evpn")
	for _, rt := range []string{"65000:5001", "4200000000:7", "192.0.2.1:7"} {
		_, err := normalizeNetwork(Network{Name: "blue", Type: VXLAN, EVPN: true, RouteTarget: rt})
		assert.NoError(t, err, rt)
	}
	for _, rt := range []string{"x", "65000", "4200000000:70000", "2001:db8::1:7", "192.0.2.1:70000", "0:1"} {
		_, err := normalizeNetwork(Network{Name: "blue", Type: VXLAN, EVPN: true, RouteTarget: rt})
		requireKind(t, err, ErrInvalid, "route_target")
	}
}
