package northbound

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/require"
)

// The fuzz targets send arbitrary request bodies (and, for PUT, port names)
// through the whole handler: decoding, the API's own checks and the store's
// validation. Properties, for every input:
//   - the answer is never a 5xx (a handler panic is a 500);
//   - a refusal is a 4xx with a JSON error body, and stores nothing;
//   - a 2xx answers the object the store now holds, and that object is
//     valid: sent again to a fresh API with the same fixture it is accepted
//     and stored unchanged (validation and normalisation are idempotent).
// Seeds are valid bodies plus every hostile case of hostile_test.go for the
// route; crashers found by `make fuzz` go to testdata/fuzz/FuzzX/.

// fuzzFixture is the state every fuzz request starts from: hosts h1 and h2,
// network blue and its port vm1 on h1.
var fuzzFixture = []struct{ method, path, body string }{
	{"POST", "/v1/hosts", h1Body},
	{"POST", "/v1/hosts", h2Body},
	{"POST", "/v1/networks", blueBody},
	{"POST", "/v1/networks/blue/ports", vm1Body},
}

// fuzzAPI is an API over a fresh memory store holding fuzzFixture.
type fuzzAPI struct {
	t     *testing.T
	api   *API
	store topology.Store
}

func newFuzzAPI(t *testing.T) *fuzzAPI {
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	api, err := New(Options{Store: store})
	require.NoError(t, err)
	f := &fuzzAPI{t: t, api: api, store: store}
	for _, r := range fuzzFixture {
		w := f.serve(r.method, r.path, []byte(r.body))
		require.Equal(t, http.StatusCreated, w.Code, "fixture %s %s: %s", r.method, r.path, w.Body)
	}
	return f
}

// serve runs one request through the handler. path is used as is (not
// parsed), so any bytes may appear in it.
func (f *fuzzAPI) serve(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL = &url.URL{Path: path}
	req.RequestURI = ""
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	return w
}

func (f *fuzzAPI) snapshot() topology.Snapshot {
	snap, err := f.store.Snapshot(context.Background())
	require.NoError(f.t, err)
	return snap
}

// check sends one fuzzed request and asserts the common properties. On a
// 2xx it decodes the answer into out and returns true.
func (f *fuzzAPI) check(method, path string, body []byte, out any) bool {
	t := f.t
	before := f.snapshot()
	w := f.serve(method, path, body)
	require.Less(t, w.Code, 500, "%s %s %q: a server error: %s", method, path, body, w.Body)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"), "%s %s %q", method, path, body)
	if w.Code >= 400 {
		var e ErrorBody
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), "error body of %q: %s", body, w.Body)
		require.NotEmpty(t, e.Error.Code, "error code for %q", body)
		require.NotEmpty(t, e.Error.Message, "error message for %q", body)
		require.Equal(t, before, f.snapshot(), "a refused request (%d) must store nothing: %q", w.Code, body)
		return false
	}
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), out), "answer to %q: %s", body, w.Body)
	require.Equal(t, before.Revision+1, f.snapshot().Revision, "an accepted write commits one revision")
	return true
}

// roundTrip sends a stored object to a fresh API (same fixture) and
// requires it to be accepted and stored unchanged.
func roundTrip[T any](t *testing.T, method, path string, req any, get func(*fuzzAPI) (T, error), want T) {
	t.Helper()
	fresh := newFuzzAPI(t)
	body, err := json.Marshal(req)
	require.NoError(t, err)
	w := fresh.serve(method, path, body)
	require.Less(t, w.Code, 300, "the stored object %s must be valid input: %s", body, w.Body)
	got, err := get(fresh)
	require.NoError(t, err)
	require.Equal(t, want, got, "normalising a stored object must not change it")
}

// hostileBodies returns the bodies of the hostile cases sent to method path.
func hostileBodies(method, path string) []string {
	var out []string
	for _, c := range hostileCases() {
		if c.method == method && c.path == path && len(c.body) < 4096 {
			out = append(out, c.body)
		}
	}
	return out
}

func FuzzCreateHost(f *testing.F) {
	for _, s := range append(hostileBodies("POST", "/v1/hosts"),
		`{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.3"}`,
		`{"name":"h3","ovsdb":"ssl:[2001:db8::3]:6640","tunnel_ip":"2001:db8::3","datapath_type":"netdev"}`,
		`{"name":"h3","ovsdb":"unix:/run/openvswitch/db.sock","tunnel_ip":"::ffff:192.0.2.3"}`,
		`{"name":"h3","ovsdb":"tcp:198.51.100.3","tunnel_ip":"192.0.2.1"}`,
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a := newFuzzAPI(t)
		var v HostView
		if !a.check("POST", "/v1/hosts", body, &v) {
			return
		}
		stored, err := a.store.GetHost(context.Background(), v.Name)
		require.NoError(t, err)
		require.Equal(t, stored, v.Host, "the answer is the stored host")
		roundTrip(t, "POST", "/v1/hosts",
			HostRequest{Name: stored.Name, OVSDB: stored.OVSDB, TunnelIP: stored.TunnelIP, DatapathType: stored.DatapathType},
			func(a *fuzzAPI) (topology.Host, error) { return a.store.GetHost(context.Background(), stored.Name) }, stored)
	})
}

func FuzzCreateNetwork(f *testing.F) {
	for _, s := range append(hostileBodies("POST", "/v1/networks"),
		`{"name":"red","type":"vxlan"}`,
		`{"name":"red","type":"gre","segment_id":4294967295,"mac_learning":false}`,
		`{"name":"red","type":"vxlan","segment_id":16777215}`,
		`{"name":"red","type":"gre","segment_id":5001}`,
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a := newFuzzAPI(t)
		var v NetworkView
		if !a.check("POST", "/v1/networks", body, &v) {
			return
		}
		stored, err := a.store.GetNetwork(context.Background(), v.Name)
		require.NoError(t, err)
		require.Equal(t, stored, v.Network, "the answer is the stored network")
		require.Equal(t, stored.Type.MTU(DefaultUnderlayMTU), v.MTU)
		seg := int64(stored.SegmentID)
		roundTrip(t, "POST", "/v1/networks",
			NetworkRequest{Name: stored.Name, Type: string(stored.Type), SegmentID: &seg, MACLearning: &stored.MACLearning},
			func(a *fuzzAPI) (topology.Network, error) {
				return a.store.GetNetwork(context.Background(), stored.Name)
			}, stored)
	})
}

// portRequest is the request that recreates a stored port.
func portRequest(p topology.Port) PortRequest {
	return PortRequest{Name: p.Name, Host: p.Host, Interface: p.Interface, MAC: p.MAC, IPs: p.IPs}
}

func FuzzCreatePort(f *testing.F) {
	for _, s := range append(hostileBodies("POST", "/v1/networks/blue/ports"),
		`{"name":"vm2","host":"h2","interface":"tap1"}`,
		`{"name":"vm2","host":"h1","interface":"tap1","mac":"02-00-00-00-00-0A","ips":["198.18.0.2","2001:db8:100::2"]}`,
		`{"name":"vm2","host":"h2","interface":"tap0","mac":"0200.0000.000b","ips":["::ffff:198.18.0.3"]}`,
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a := newFuzzAPI(t)
		var v PortView
		if !a.check("POST", "/v1/networks/blue/ports", body, &v) {
			return
		}
		stored, err := a.store.GetPort(context.Background(), "blue", v.Name)
		require.NoError(t, err)
		require.Equal(t, stored, v.Port, "the answer is the stored port")
		require.NotZero(t, stored.LocalVLAN, "a stored port has a local VLAN")
		roundTrip(t, "POST", "/v1/networks/blue/ports", portRequest(stored),
			func(a *fuzzAPI) (topology.Port, error) {
				return a.store.GetPort(context.Background(), "blue", stored.Name)
			}, stored)
	})
}

func FuzzUpdatePort(f *testing.F) {
	f.Add("vm1", []byte(`{"host":"h2","interface":"tap5","mac":"02:00:00:00:00:01","ips":["198.18.0.1","2001:db8:100::1"]}`))
	f.Add("vm1", []byte(`{"name":"vm1","host":"h1","interface":"tap0"}`))
	f.Add("vm1", []byte(`{"name":"other","host":"h1","interface":"tap0"}`))
	f.Add("../vm1", []byte(`{"host":"h1","interface":"tap0"}`))
	f.Add("vm1%2F..", []byte(`{"host":"h1","interface":"tap0"}`))
	f.Add("nope", []byte(`{"host":"h1","interface":"tap0"}`))
	for _, s := range hostileBodies("PUT", "/v1/networks/blue/ports/vm1") {
		f.Add("vm1", []byte(s))
	}
	for _, s := range hostileBodies("POST", "/v1/networks/blue/ports") {
		f.Add("vm1", []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		a := newFuzzAPI(t)
		var v PortView
		if !a.check("PUT", "/v1/networks/blue/ports/"+name, body, &v) {
			return
		}
		require.Equal(t, "vm1", v.Name, "only the fixture's port exists to update")
		stored, err := a.store.GetPort(context.Background(), "blue", "vm1")
		require.NoError(t, err)
		require.Equal(t, stored, v.Port, "the answer is the stored port")
		roundTrip(t, "PUT", "/v1/networks/blue/ports/vm1", portRequest(stored),
			func(a *fuzzAPI) (topology.Port, error) { return a.store.GetPort(context.Background(), "blue", "vm1") }, stored)
	})
}

// TestFuzzSeedsCoverEveryRoute keeps the hostile seeds wired: if a route's
// path in hostileCases changes, the fuzz targets would silently lose them.
func TestFuzzSeedsCoverEveryRoute(t *testing.T) {
	for _, route := range [][2]string{
		{"POST", "/v1/hosts"}, {"POST", "/v1/networks"}, {"POST", "/v1/networks/blue/ports"}, {"PUT", "/v1/networks/blue/ports/vm1"},
	} {
		n := len(hostileBodies(route[0], route[1]))
		require.Positive(t, n, "no hostile seeds for %s %s", route[0], route[1])
		t.Logf("%s %s: %d hostile seeds", route[0], route[1], n)
	}
}
