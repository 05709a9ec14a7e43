package northbound

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// fakeBGP reports one established session.
type fakeBGP struct{}

func (fakeBGP) PeerStatus(_ context.Context, address string) (BGPPeerStatus, bool, error) {
	if address != "198.51.100.9" {
		return BGPPeerStatus{}, false, nil
	}
	return BGPPeerStatus{State: "established", Since: "2026-12-04T21:00:00Z", RoutesReceived: 3, RoutesAccepted: 3, RoutesAdvertised: 5}, true, nil
}

func remoteFixture(t *testing.T) *testAPI {
	t.Helper()
	a := newTestAPI(t, newFakeController(), func(o *Options) { o.BGP = fakeBGP{} })
	a.must("POST", "/v1/hosts", `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1"}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"blue","type":"vxlan","segment_id":5001,"evpn":true}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"green","type":"geneve","segment_id":9}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":5001}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap1","mac":"02:00:00:00:00:01"}`, http.StatusCreated)
	return a
}

func TestRemoteVTEPs(t *testing.T) {
	a := remoteFixture(t)
	r := a.must("POST", "/v1/remote-vteps", `{"name":"k1","tunnel_ip":"192.0.2.9","networks":["blue"],"tags":["fab"],
		"macs":[{"mac":"02:00:00:00:09:01","ips":["198.18.0.9"]}]}`, http.StatusCreated)
	assert.Equal(t, "/v1/remote-vteps/k1", r.header.Get("Location"))
	assert.NotEmpty(t, r.header.Get("ETag"))
	a.must("POST", "/v1/remote-vteps", `{"name":"k2","tunnel_ip":"192.0.2.10","networks":["green","blue"],"description":"leaf"}`, http.StatusCreated)

	// Refused: GRE networks, unknown networks, a host's tunnel IP, another
	// VTEP's, a port's MAC, a duplicate name, unknown fields.
	for body, code := range map[string]string{
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["red"]}`:                                       codeInvalid,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["nope"]}`:                                      codeInvalid,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":[]}`:                                            codeInvalid,
		`{"name":"k3","tunnel_ip":"192.0.2.1","networks":["blue"]}`:                                       codeConflict,
		`{"name":"k3","tunnel_ip":"192.0.2.9","networks":["blue"]}`:                                       codeConflict,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["blue"],"macs":[{"mac":"02:00:00:00:00:01"}]}`: codeConflict,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["blue"],"macs":[{"mac":"02:00:00:00:09:01"}]}`: codeConflict,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["blue"],"macs":[{"mac":"01:00:00:00:09:01"}]}`: codeInvalid,
		`{"name":"k1","tunnel_ip":"192.0.2.11","networks":["blue"]}`:                                      codeConflict,
		`{"name":"k3","tunnel_ip":"192.0.2.11","networks":["blue"],"colour":1}`:                           codeInvalidJSON,
		`{"name":"k3","tunnel_ip":"nope","networks":["blue"]}`:                                            codeInvalid,
	} {
		r := a.do("POST", "/v1/remote-vteps", body)
		assert.Equal(t, code, r.errorCode(t), "%s: %s", body, r.body)
	}
	// A host cannot take a remote VTEP's tunnel IP either.
	r = a.do("POST", "/v1/hosts", `{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"192.0.2.9"}`)
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)

	// GET, filters.
	r = a.must("GET", "/v1/remote-vteps/k1", "", http.StatusOK)
	etag := r.header.Get("ETag")
	assert.Equal(t, []any{map[string]any{"mac": "02:00:00:00:09:01", "ips": []any{"198.18.0.9"}}}, r.json(t)["macs"])
	assert.Equal(t, []any{"blue", "green"}, a.must("GET", "/v1/remote-vteps/k2", "", http.StatusOK).json(t)["networks"], "networks sorted")
	for query, want := range map[string][]string{
		"":                     {"k1", "k2"},
		"?name=k2":             {"k2"},
		"?tunnel_ip=192.0.2.9": {"k1"},
		"?network=green":       {"k2"},
		"?description=leaf":    {"k2"},
		"?tags=fab":            {"k1"},
		"?sort=-tunnel_ip":     {"k1", "k2"},
		"?revision_number=6":   {"k1"},
	} {
		assert.Equal(t, want, names(t, a.must("GET", "/v1/remote-vteps"+query, "", http.StatusOK), "remote_vteps"), query)
	}
	a.must("GET", "/v1/remote-vteps?colour=x", "", http.StatusBadRequest)

	// PATCH with If-Match: a stale ETag is refused, the current one works.
	h := http.Header{"Content-Type": {"application/merge-patch+json"}, "If-Match": {`"1"`}}
	r = a.doWith("PATCH", "/v1/remote-vteps/k1", jsonReader(`{"tunnel_ip":"192.0.2.19"}`), h)
	assert.Equal(t, http.StatusPreconditionFailed, r.status, "%s", r.body)
	h.Set("If-Match", etag)
	r = a.doWith("PATCH", "/v1/remote-vteps/k1", jsonReader(`{"tunnel_ip":"192.0.2.19","macs":null}`), h)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "192.0.2.19", r.json(t)["tunnel_ip"])
	assert.Equal(t, []any{}, r.json(t)["macs"])
	r = a.doWith("PATCH", "/v1/remote-vteps/k1", jsonReader(`{"networks":["red"]}`), http.Header{"Content-Type": {"application/json"}})
	assert.Equal(t, codeInvalid, r.errorCode(t), "a GRE network")
	// The old tunnel IP is free again.
	a.must("POST", "/v1/remote-vteps", `{"name":"k3","tunnel_ip":"192.0.2.9","networks":["blue"]}`, http.StatusCreated)

	a.must("DELETE", "/v1/remote-vteps/k3", "", http.StatusNoContent)
	a.must("DELETE", "/v1/remote-vteps/k3", "", http.StatusNotFound)
	a.must("GET", "/v1/remote-vteps/k3", "", http.StatusNotFound)
}

func TestBGPPeers(t *testing.T) {
	a := remoteFixture(t)
	r := a.must("POST", "/v1/bgp/peers", `{"address":"198.51.100.9","asn":65000,"password":"s3cret"}`, http.StatusCreated)
	assert.Equal(t, "/v1/bgp/peers/198.51.100.9", r.header.Get("Location"))
	body := r.json(t)
	assert.NotContains(t, body, "password", "the password is never answered")
	assert.Equal(t, true, body["password_set"])
	a.must("POST", "/v1/bgp/peers", `{"address":"198.51.100.10","asn":65001,"tags":["leaf"]}`, http.StatusCreated)
	a.must("POST", "/v1/bgp/peers", `{"address":"198.51.100.9","asn":65000}`, http.StatusConflict)
	a.must("POST", "/v1/bgp/peers", `{"address":"nope","asn":65000}`, http.StatusBadRequest)
	a.must("POST", "/v1/bgp/peers", `{"address":"198.51.100.11","asn":0}`, http.StatusBadRequest)

	r = a.must("GET", "/v1/bgp/peers/198.51.100.9", "", http.StatusOK)
	var v BGPPeerView
	require.NoError(t, json.Unmarshal(r.body, &v))
	assert.Equal(t, "established", v.Session.State)
	assert.Equal(t, uint64(5), v.Session.RoutesAdvertised)
	assert.Empty(t, v.Password)
	r = a.must("GET", "/v1/bgp/peers/198.51.100.10", "", http.StatusOK)
	assert.Equal(t, "unknown", r.json(t)["session"].(map[string]any)["state"], "the speaker does not know it yet")

	var list BGPPeerList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/bgp/peers?state=established", "", http.StatusOK).body, &list))
	require.Len(t, list.Peers, 1)
	assert.Equal(t, "198.51.100.9", list.Peers[0].Address)
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/bgp/peers?tags=leaf&asn=65001", "", http.StatusOK).body, &list))
	require.Len(t, list.Peers, 1)
	assert.Equal(t, "198.51.100.10", list.Peers[0].Address)

	// A PATCH without the password keeps it; one with "" removes it.
	r = a.doWith("PATCH", "/v1/bgp/peers/198.51.100.9", jsonReader(`{"description":"rr1"}`), http.Header{"Content-Type": {"application/merge-patch+json"}})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, true, r.json(t)["password_set"])
	stored, err := a.store.GetBGPPeer(context.Background(), "198.51.100.9")
	require.NoError(t, err)
	assert.Equal(t, "s3cret", stored.Password)
	r = a.doWith("PATCH", "/v1/bgp/peers/198.51.100.9", jsonReader(`{"password":""}`), http.Header{"Content-Type": {"application/merge-patch+json"}})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["password_set"])
	r = a.doWith("PATCH", "/v1/bgp/peers/198.51.100.9", jsonReader(`{"address":"198.51.100.12"}`), http.Header{"Content-Type": {"application/merge-patch+json"}})
	assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)

	a.must("DELETE", "/v1/bgp/peers/198.51.100.9", "", http.StatusNoContent)
	a.must("GET", "/v1/bgp/peers/198.51.100.9", "", http.StatusNotFound)

	// Without a speaker, sessions are "disabled".
	b := newTestAPI(t, nil)
	b.must("POST", "/v1/bgp/peers", `{"address":"198.51.100.9","asn":65000}`, http.StatusCreated)
	assert.Equal(t, "disabled", b.must("GET", "/v1/bgp/peers/198.51.100.9", "", http.StatusOK).json(t)["session"].(map[string]any)["state"])
}

func TestNetworkVTEPs(t *testing.T) {
	a := remoteFixture(t)
	a.must("POST", "/v1/remote-vteps", `{"name":"k1","tunnel_ip":"192.0.2.9","networks":["blue"],"macs":[{"mac":"02:00:00:00:09:01"}]}`, http.StatusCreated)
	_, err := a.store.PutEVPNRoutes(context.Background(), topology.EVPNRoutes{Networks: []topology.EVPNNetwork{{
		VNI: 5001,
		VTEPs: []topology.EVPNVTEP{
			{IP: "192.0.2.9", Peer: "198.51.100.9"},
			{IP: "192.0.2.20", Peer: "198.51.100.9"},
			{IP: "192.0.2.1", Peer: "198.51.100.9"}, // our own host: stays a host
		},
		MACs: []topology.EVPNMAC{{MAC: "02:00:00:00:20:01", VTEP: "192.0.2.20", Peer: "198.51.100.9"}},
	}}})
	require.NoError(t, err)
	var got VTEPList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks/blue/vteps", "", http.StatusOK).body, &got))
	assert.Equal(t, []VTEPView{
		{TunnelIP: "192.0.2.1", Kind: "host", Host: "h1", MACs: 1},
		{TunnelIP: "192.0.2.20", Kind: "remote", LearnedBy: []string{"evpn"}, BGPPeers: []string{"198.51.100.9"}, MACs: 1},
		{TunnelIP: "192.0.2.9", Kind: "remote", Name: "k1", LearnedBy: []string{"static", "evpn"}, BGPPeers: []string{"198.51.100.9"}, MACs: 1},
	}, got.VTEPs)
	// green is not EVPN: nothing imported shows there.
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks/green/vteps", "", http.StatusOK).body, &got))
	assert.Empty(t, got.VTEPs)
	a.must("GET", "/v1/networks/nope/vteps", "", http.StatusNotFound)
	a.must("GET", "/v1/networks/blue/vteps?x=1", "", http.StatusBadRequest)
}

func jsonReader(s string) *strings.Reader { return strings.NewReader(s) }
