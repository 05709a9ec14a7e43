package northbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// fakeController is a Controller whose answers the test sets.
type fakeController struct {
	mu         sync.Mutex
	status     map[string]HostStatus
	bound      map[string]bool   // "host/iface"
	refused    map[string]string // "host/iface" -> PortError's message
	notApplied []string          // when set, WaitApplied waits for ctx and reports these
	waited     []uint64
	flows      []FlowEntry
	flowsErr   error
	dumped     []string // "host bridge table" of each DumpFlows call
	panicOn    string   // HostStatus panics for this host
}

func newFakeController() *fakeController {
	return &fakeController{status: make(map[string]HostStatus), bound: make(map[string]bool), refused: make(map[string]string)}
}

func (f *fakeController) HostStatus(host string) HostStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if host == f.panicOn {
		panic("fake controller failure")
	}
	return f.status[host]
}

func (f *fakeController) PortBound(host, iface string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound[host+"/"+iface]
}

func (f *fakeController) PortError(host, iface string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused[host+"/"+iface]
}

func (f *fakeController) WaitApplied(ctx context.Context, rev uint64) ([]string, error) {
	f.mu.Lock()
	f.waited = append(f.waited, rev)
	notApplied := f.notApplied
	f.mu.Unlock()
	if len(notApplied) == 0 {
		return nil, nil
	}
	<-ctx.Done()
	return notApplied, ctx.Err()
}

func (f *fakeController) DumpFlows(ctx context.Context, host, bridge string, table int) ([]FlowEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dumped = append(f.dumped, strings.Join([]string{host, bridge, itoa(table)}, " "))
	return append([]FlowEntry(nil), f.flows...), f.flowsErr
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// testAPI is an API over a memory store, served by httptest.
type testAPI struct {
	t     *testing.T
	srv   *httptest.Server
	store topology.Store
}

func newTestAPI(t *testing.T, ctrl Controller, mutate ...func(*Options)) *testAPI {
	t.Helper()
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	opts := Options{Store: store, Logger: zaptest.NewLogger(t), MaxWait: 10 * time.Second}
	if ctrl != nil {
		opts.Controller = ctrl
	}
	for _, m := range mutate {
		m(&opts)
	}
	api, err := New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &testAPI{t: t, srv: srv, store: store}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var body ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &body), "body %s", r.body)
	require.NotEmpty(t, body.Error.Message, "error message in %s", r.body)
	return body.Error.Code
}

// do sends a request; a non-empty body is sent as application/json.
func (a *testAPI) do(method, path, body string) response {
	a.t.Helper()
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	return a.doWith(method, path, strings.NewReader(body), h)
}

func (a *testAPI) doWith(method, path string, body io.Reader, h http.Header) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	require.NoError(a.t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(a.t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (a *testAPI) must(method, path, body string, status int) response {
	a.t.Helper()
	r := a.do(method, path, body)
	require.Equal(a.t, status, r.status, "%s %s: %s", method, path, r.body)
	return r
}

func (a *testAPI) revision() uint64 {
	a.t.Helper()
	rev, err := a.store.Revision(context.Background())
	require.NoError(a.t, err)
	return rev
}

const (
	h1Body   = `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1","datapath_type":"netdev"}`
	h2Body   = `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2"}`
	blueBody = `{"name":"blue","type":"vxlan","segment_id":5001}`
	vm1Body  = `{"name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01","ips":["198.18.0.1"]}`
)

func TestHealthz(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("GET", "/healthz", "", http.StatusOK)
	assert.Equal(t, "ok", r.json(t)["status"])
}

func TestHosts(t *testing.T) {
	ctrl := newFakeController()
	ctrl.status["h1"] = HostStatus{OVSDB: Connected, Bridges: map[string]BridgeStatus{
		BridgeTun: {DatapathID: "0000000000000001", OpenFlow: Connected, AppliedRevision: 1},
	}}
	a := newTestAPI(t, ctrl)

	r := a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	assert.Equal(t, "1", r.header.Get(revisionHeader))
	assert.JSONEq(t, `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1","datapath_type":"netdev",
		"description":"","tags":[],"revision_number":1,
		"status":{"ovsdb":"connected","bridges":{
			"br-tun":{"datapath_id":"0000000000000001","openflow":"connected","applied_revision":1},
			"br-int":{"datapath_id":"","openflow":"disconnected","applied_revision":0}}}}`, string(r.body))

	r = a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
	assert.Equal(t, "system", r.json(t)["datapath_type"], "datapath_type defaults to system")

	r = a.must("GET", "/v1/hosts/h2", "", http.StatusOK)
	assert.JSONEq(t, `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2","datapath_type":"system",
		"description":"","tags":[],"revision_number":2,
		"status":{"ovsdb":"disconnected","bridges":{
			"br-tun":{"datapath_id":"","openflow":"disconnected","applied_revision":0},
			"br-int":{"datapath_id":"","openflow":"disconnected","applied_revision":0}}}}`, string(r.body))

	var list HostList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/hosts", "", http.StatusOK).body, &list))
	require.Len(t, list.Hosts, 2)
	assert.Equal(t, "h1", list.Hosts[0].Name)
	assert.Equal(t, Connected, list.Hosts[0].Status.OVSDB)
	assert.Equal(t, "h2", list.Hosts[1].Name)

	assert.Equal(t, codeConflict, a.must("POST", "/v1/hosts", h1Body, http.StatusConflict).errorCode(t))
	assert.Equal(t, codeConflict, a.must("POST", "/v1/hosts",
		`{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.1"}`, http.StatusConflict).errorCode(t), "duplicate tunnel_ip")
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/hosts/h9", "", http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("DELETE", "/v1/hosts/h9", "", http.StatusNotFound).errorCode(t))

	r = a.must("DELETE", "/v1/hosts/h2", "", http.StatusNoContent)
	assert.Empty(t, r.body)
	assert.Equal(t, "3", r.header.Get(revisionHeader))
	a.must("GET", "/v1/hosts/h2", "", http.StatusNotFound)
}

func TestDeleteInUseNeedsCascade(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)

	assert.Equal(t, codeConflict, a.must("DELETE", "/v1/hosts/h1", "", http.StatusConflict).errorCode(t))
	assert.Equal(t, codeConflict, a.must("DELETE", "/v1/networks/blue", "", http.StatusConflict).errorCode(t))
	assert.Equal(t, codeConflict, a.must("DELETE", "/v1/hosts/h1?cascade=false", "", http.StatusConflict).errorCode(t))
	assert.Equal(t, codeInvalidQuery, a.must("DELETE", "/v1/hosts/h1?cascade=maybe", "", http.StatusBadRequest).errorCode(t))

	a.must("DELETE", "/v1/networks/blue?cascade=true", "", http.StatusNoContent)
	a.must("GET", "/v1/networks/blue", "", http.StatusNotFound)
	a.must("DELETE", "/v1/hosts/h1", "", http.StatusNoContent)

	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	a.must("DELETE", "/v1/hosts/h1?cascade=true", "", http.StatusNoContent)
	var list PortList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks/blue/ports", "", http.StatusOK).body, &list))
	assert.Empty(t, list.Ports)
	assert.NotNil(t, list.Ports, "an empty list is [] not null")
}

func TestNetworks(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	assert.JSONEq(t, `{"name":"blue","type":"vxlan","segment_id":5001,"mac_learning":true,"mtu":1450,
		"description":"","tags":[],"revision_number":1}`, string(r.body))

	r = a.must("POST", "/v1/networks", `{"name":"red","type":"gre","mac_learning":false}`, http.StatusCreated)
	assert.JSONEq(t, `{"name":"red","type":"gre","segment_id":1,"mac_learning":false,"mtu":1458,
		"description":"","tags":[],"revision_number":2}`, string(r.body))
	r = a.must("POST", "/v1/networks", `{"name":"green","type":"vxlan"}`, http.StatusCreated)
	assert.EqualValues(t, 1, r.json(t)["segment_id"], "lowest free VXLAN segment")
	a.must("POST", "/v1/networks", `{"name":"gre5001","type":"gre","segment_id":5001}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"maxv","type":"vxlan","segment_id":16777215}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"maxg","type":"gre","segment_id":4294967295}`, http.StatusCreated)

	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks", `{"name":"blue","type":"gre"}`, http.StatusConflict).errorCode(t))
	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks", `{"name":"x","type":"vxlan","segment_id":5001}`, http.StatusConflict).errorCode(t))

	var list NetworkList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks", "", http.StatusOK).body, &list))
	var names []string
	for _, n := range list.Networks {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"blue", "gre5001", "green", "maxg", "maxv", "red"}, names)

	r = a.must("GET", "/v1/networks/red", "", http.StatusOK)
	assert.EqualValues(t, 1458, r.json(t)["mtu"])
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/nope", "", http.StatusNotFound).errorCode(t))
	a.must("DELETE", "/v1/networks/red", "", http.StatusNoContent)
	assert.Equal(t, codeNotFound, a.must("DELETE", "/v1/networks/red", "", http.StatusNotFound).errorCode(t))
}

func TestUnderlayMTUSetting(t *testing.T) {
	a := newTestAPI(t, nil, func(o *Options) { o.UnderlayMTU = 9000 })
	assert.EqualValues(t, 8950, a.must("POST", "/v1/networks", blueBody, http.StatusCreated).json(t)["mtu"])
	assert.EqualValues(t, 8958, a.must("POST", "/v1/networks", `{"name":"red","type":"gre"}`, http.StatusCreated).json(t)["mtu"])

	_, err := New(Options{Store: topology.NewMemoryStore(), UnderlayMTU: 100})
	require.Error(t, err)
	_, err = New(Options{})
	require.Error(t, err)
}

func TestPorts(t *testing.T) {
	ctrl := newFakeController()
	a := newTestAPI(t, ctrl)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"red","type":"vxlan"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/red/ports", `{"name":"r1","host":"h1","interface":"tap9"}`, http.StatusCreated)

	r := a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	assert.JSONEq(t, `{"network":"blue","name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01",
		"ips":["198.18.0.1"],"port_security_enabled":true,"local_vlan":2,"status":"pending","admin_state_up":true,"description":"","tags":[],"revision_number":6}`, string(r.body),
		"port security is on by default")

	ctrl.mu.Lock()
	ctrl.bound["h1/tap0"] = true
	ctrl.mu.Unlock()
	r = a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK)
	assert.Equal(t, PortBound, r.json(t)["status"], "status follows the controller")
	assert.NotContains(t, r.json(t), "message", "no message while bound")

	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1"}`, http.StatusCreated)
	assert.JSONEq(t, `{"network":"blue","name":"vm2","host":"h1","interface":"tap1","mac":"02:62:74:00:00:02","port_security_enabled":true,"local_vlan":2,"status":"pending",
		"admin_state_up":true,"description":"","tags":[],"revision_number":7}`, string(r.body),
		"mac and ips are optional; a MAC is generated (and with it port security), a network without subnets gives no address")

	var list PortList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks/blue/ports", "", http.StatusOK).body, &list))
	require.Len(t, list.Ports, 2)
	assert.Equal(t, "vm1", list.Ports[0].Name)
	assert.Equal(t, PortBound, list.Ports[0].Status)
	assert.Equal(t, "vm2", list.Ports[1].Name)

	// The VM moves to h2: new host, new interface, new local VLAN there.
	r = a.must("PUT", "/v1/networks/blue/ports/vm1", `{"host":"h2","interface":"tap5","mac":"02:00:00:00:00:01","ips":["198.18.0.1","2001:db8:100::1"]}`, http.StatusOK)
	assert.JSONEq(t, `{"network":"blue","name":"vm1","host":"h2","interface":"tap5","mac":"02:00:00:00:00:01",
		"ips":["198.18.0.1","2001:db8:100::1"],"port_security_enabled":true,"local_vlan":1,"status":"pending","admin_state_up":true,"description":"","tags":[],"revision_number":8}`, string(r.body))
	a.must("PUT", "/v1/networks/blue/ports/vm1", `{"name":"vm1","host":"h2","interface":"tap6"}`, http.StatusOK)
	r = a.must("PUT", "/v1/networks/blue/ports/vm1", `{"name":"other","host":"h2","interface":"tap6"}`, http.StatusBadRequest)
	assert.Equal(t, codeInvalid, r.errorCode(t))
	assert.Equal(t, codeNotFound, a.must("PUT", "/v1/networks/blue/ports/nope", `{"host":"h2","interface":"tap7"}`, http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("PUT", "/v1/networks/nope/ports/vm1", `{"host":"h2","interface":"tap7"}`, http.StatusNotFound).errorCode(t))

	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusConflict).errorCode(t), "duplicate name")
	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks/blue/ports",
		`{"name":"vm3","host":"h1","interface":"tap9"}`, http.StatusConflict).errorCode(t), "interface bound in another network")
	// Port names are unique within their network only.
	a.must("POST", "/v1/networks/red/ports", `{"name":"vm1","host":"h1","interface":"tap3"}`, http.StatusCreated)

	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm3","host":"h9","interface":"tap3"}`, http.StatusBadRequest)
	assert.Equal(t, codeInvalid, r.errorCode(t), "unknown host in the body is a 400")
	assert.Contains(t, string(r.body), "does not exist")
	assert.Equal(t, codeNotFound, a.must("POST", "/v1/networks/nope/ports", vm1Body, http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/nope/ports", "", http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/blue/ports/nope", "", http.StatusNotFound).errorCode(t))

	a.must("DELETE", "/v1/networks/blue/ports/vm2", "", http.StatusNoContent)
	assert.Equal(t, codeNotFound, a.must("DELETE", "/v1/networks/blue/ports/vm2", "", http.StatusNotFound).errorCode(t))

	// A binding OVSDB refuses is reported on the port, and the answer can
	// be sent back as it is.
	ctrl.mu.Lock()
	ctrl.refused["h1/tap9"] = "bind tap9: interface is not on br-int"
	ctrl.mu.Unlock()
	r = a.must("GET", "/v1/networks/red/ports/r1", "", http.StatusOK)
	assert.Equal(t, PortError, r.json(t)["status"])
	assert.Equal(t, "bind tap9: interface is not on br-int", r.json(t)["message"])
	a.must("PUT", "/v1/networks/red/ports/r1", string(r.body), http.StatusOK)
	a.must("PATCH", "/v1/networks/red/ports/r1", `{"status":"error","message":"ignored"}`, http.StatusOK)
	ctrl.mu.Lock()
	delete(ctrl.refused, "h1/tap9")
	ctrl.mu.Unlock()
	r = a.must("GET", "/v1/networks/red/ports/r1", "", http.StatusOK)
	assert.Equal(t, PortPending, r.json(t)["status"], "back to pending once OVSDB takes it")
}

// TestRejectedRequestsStoreNothing sends one request per error class and
// checks its status, its code and that the store did not change.
func TestRejectedRequestsStoreNothing(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	before, err := a.store.Snapshot(context.Background())
	require.NoError(t, err)

	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"malformed json", "POST", "/v1/hosts", `{"name":"h2",`, 400, codeInvalidJSON, ""},
		{"syntax error", "POST", "/v1/hosts", `{"name" "h2"}`, 400, codeInvalidJSON, ""},
		{"two values", "POST", "/v1/hosts", `{"name":"h2"} {}`, 400, codeInvalidJSON, ""},
		{"not an object", "POST", "/v1/networks", `["blue"]`, 400, codeInvalidJSON, ""},
		{"empty body", "POST", "/v1/networks", ``, 400, codeInvalidJSON, ""},
		{"unknown field", "POST", "/v1/hosts", `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2","color":"red"}`, 400, codeInvalidJSON, "color"},
		{"unknown port field", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","local_vlan":7}`, 400, codeInvalidJSON, "local_vlan"},
		{"wrong type", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":"5"}`, 400, codeInvalidJSON, "segment_id"},
		{"wrong type bool", "POST", "/v1/networks", `{"name":"red","type":"vxlan","mac_learning":"no"}`, 400, codeInvalidJSON, "mac_learning"},
		{"fractional segment", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":1.5}`, 400, codeInvalidJSON, "segment_id"},
		{"wrong type ips", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","ips":"198.18.0.2"}`, 400, codeInvalidJSON, "ips"},
		{"bad host name", "POST", "/v1/hosts", `{"name":"H_2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2"}`, 400, codeInvalid, "name"},
		{"long network name", "POST", "/v1/networks", `{"name":"` + strings.Repeat("a", 64) + `","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"bad port name", "POST", "/v1/networks/blue/ports", `{"name":".vm2","host":"h1","interface":"tap1"}`, 400, codeInvalid, "name"},
		{"bad tunnel ip", "POST", "/v1/hosts", `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2"}`, 400, codeInvalid, "tunnel_ip"},
		{"bad ovsdb", "POST", "/v1/hosts", `{"name":"h2","ovsdb":"198.51.100.2","tunnel_ip":"192.0.2.2"}`, 400, codeInvalid, "ovsdb"},
		{"bad mac", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","mac":"02:00:00:00:00:zz"}`, 400, codeInvalid, "mac"},
		{"bad ip", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","ips":["198.18.0.2","198.18.0.256"]}`, 400, codeInvalid, "ips[1]"},
		{"segment zero", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":0}`, 400, codeInvalid, "segment_id"},
		{"segment negative", "POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":-1}`, 400, codeInvalid, "segment_id"},
		{"vxlan segment too big", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":16777216}`, 400, codeInvalid, "segment_id"},
		{"gre segment too big", "POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":4294967296}`, 400, codeInvalid, "segment_id"},
		{"unknown tunnel type", "POST", "/v1/networks", `{"name":"red","type":"stt"}`, 400, codeInvalid, "type"},
		{"missing tunnel type", "POST", "/v1/networks", `{"name":"red"}`, 400, codeInvalid, "type"},
		{"bad wait", "POST", "/v1/networks?wait=soon", `{"name":"red","type":"vxlan"}`, 400, codeInvalidQuery, ""},
		{"wait too long", "POST", "/v1/networks?wait=1h", `{"name":"red","type":"vxlan"}`, 400, codeInvalidQuery, ""},
		{"bad wait on delete", "DELETE", "/v1/networks/blue/ports/vm1?wait=-1s", ``, 400, codeInvalidQuery, ""},
		{"duplicate host", "POST", "/v1/hosts", h1Body, 409, codeConflict, ""},
		{"duplicate segment", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":5001}`, 409, codeConflict, ""},
		{"duplicate mac", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","mac":"02:00:00:00:00:01"}`, 409, codeConflict, ""},
		{"unknown network", "POST", "/v1/networks/nope/ports", `{"name":"vm2","host":"h1","interface":"tap1"}`, 404, codeNotFound, ""},
		{"unknown path", "GET", "/v1/things", ``, 404, codeNotFound, ""},
		{"method not allowed", "DELETE", "/v1/hosts/h1/flows", ``, 405, codeMethodNotAllowed, ""},
		{"second value with fields", "POST", "/v1/hosts", `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2"} {"color":1}`, 400, codeInvalidJSON, ""},
		{"unknown query", "POST", "/v1/networks?colour=blue", `{"name":"red","type":"vxlan"}`, 400, codeInvalidQuery, ""},
		{"cascade on a create", "POST", "/v1/networks?cascade=true", `{"name":"red","type":"vxlan"}`, 400, codeInvalidQuery, ""},
		{"patch immutable type", "PATCH", "/v1/networks/blue", `{"type":"gre"}`, 400, codeInvalid, "type"},
		{"patch immutable segment", "PATCH", "/v1/networks/blue", `{"segment_id":7}`, 400, codeInvalid, "segment_id"},
		{"patch mtu", "PATCH", "/v1/networks/blue", `{"mtu":9000}`, 400, codeInvalid, "mtu"},
		{"patch port local_vlan", "PATCH", "/v1/networks/blue/ports/vm1", `{"local_vlan":9}`, 400, codeInvalid, "local_vlan"},
		{"patch port network", "PATCH", "/v1/networks/blue/ports/vm1", `{"network":"red"}`, 400, codeInvalid, "network"},
		{"patch unknown field", "PATCH", "/v1/hosts/h1", `{"colour":"blue"}`, 400, codeInvalidJSON, "colour"},
		{"patch not an object", "PATCH", "/v1/hosts/h1", `["x"]`, 400, codeInvalidJSON, ""},
		{"patch bad tunnel ip", "PATCH", "/v1/hosts/h1", `{"tunnel_ip":"192.0.2"}`, 400, codeInvalid, "tunnel_ip"},
		{"patch bad tag", "PATCH", "/v1/hosts/h1", `{"tags":["a b"]}`, 400, codeInvalid, "tags[0]"},
		{"put other network", "PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","network":"red"}`, 400, codeInvalid, "network"},
		{"put other local_vlan", "PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","local_vlan":9}`, 400, codeInvalid, "local_vlan"},
		{"put bad status", "PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","status":"up"}`, 400, codeInvalid, "status"},
		{"put on a network", "PUT", "/v1/networks/blue", `{}`, 405, codeMethodNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(c.method, c.path, c.body)
			require.Equal(t, c.status, r.status, "body %s", r.body)
			var body ErrorBody
			require.NoError(t, json.Unmarshal(r.body, &body), "body %s", r.body)
			assert.Equal(t, c.code, body.Error.Code)
			assert.Equal(t, c.field, body.Error.Field)
			assert.NotEmpty(t, body.Error.Message)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		big := `{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2","datapath_type":"` + strings.Repeat("x", 1<<20) + `"}`
		r := a.do("POST", "/v1/hosts", big)
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
		assert.Equal(t, codeTooLarge, r.errorCode(t))
		// The same without a Content-Length (chunked): caught while reading.
		h := http.Header{"Content-Type": {"application/json"}}
		r = a.doWith("POST", "/v1/hosts", io.MultiReader(strings.NewReader(big)), h)
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
		assert.Equal(t, codeTooLarge, r.errorCode(t))
	})
	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "application/merge-patch+json"} {
			h := http.Header{}
			if ct != "" {
				h.Set("Content-Type", ct)
			}
			r := a.doWith("POST", "/v1/networks", strings.NewReader(`{"name":"red","type":"vxlan"}`), h)
			require.Equal(t, http.StatusUnsupportedMediaType, r.status, "Content-Type %q", ct)
			assert.Equal(t, codeUnsupportedMedia, r.errorCode(t))
		}
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
		r := a.doWith("PUT", "/v1/networks/blue/ports/vm1", strings.NewReader(`{"host":"h1","interface":"tap0"}`), h)
		require.Equal(t, http.StatusOK, r.status, "a charset parameter is fine: %s", r.body)
		// Put it back as it was for the snapshot comparison.
		a.must("PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","mac":"02:00:00:00:00:01","ips":["198.18.0.1"]}`, http.StatusOK)
	})

	after, err := a.store.Snapshot(context.Background())
	require.NoError(t, err)
	before.Revision += 2 // the two PUTs of the content type check
	before.Ports[0].RevisionNumber = before.Revision
	assert.Equal(t, before, after, "rejected requests stored nothing")
}

func TestWaitApplied(t *testing.T) {
	ctrl := newFakeController()
	a := newTestAPI(t, ctrl)

	r := a.must("POST", "/v1/hosts?wait=5s", h1Body, http.StatusCreated)
	assert.Equal(t, "h1", r.json(t)["name"])
	ctrl.mu.Lock()
	assert.Equal(t, []uint64{1}, ctrl.waited, "waited for the write's revision")
	ctrl.notApplied = []string{"h1/br-int", "h1/br-tun"}
	ctrl.mu.Unlock()

	start := time.Now()
	r = a.must("POST", "/v1/networks?wait=200ms", blueBody, http.StatusGatewayTimeout)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	var body ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, codeNotApplied, body.Error.Code)
	assert.Equal(t, []string{"h1/br-int", "h1/br-tun"}, body.Error.NotApplied)
	assert.Contains(t, body.Error.Message, "h1/br-int")
	assert.Equal(t, map[string]any{"name": "blue", "type": "vxlan", "segment_id": float64(5001), "mac_learning": true, "mtu": float64(1450),
		"description": "", "tags": []any{}, "revision_number": float64(2)}, body.Object)
	assert.Equal(t, "2", r.header.Get(revisionHeader))

	// Committed, not rolled back: it is there and a retry conflicts.
	a.must("GET", "/v1/networks/blue", "", http.StatusOK)
	a.must("POST", "/v1/networks?wait=200ms", blueBody, http.StatusConflict)

	r = a.must("POST", "/v1/networks/blue/ports?wait=100ms", vm1Body, http.StatusGatewayTimeout)
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, "vm1", body.Object.(map[string]any)["name"])
	assert.EqualValues(t, 1, body.Object.(map[string]any)["local_vlan"])

	r = a.must("DELETE", "/v1/networks/blue/ports/vm1?wait=100ms", "", http.StatusGatewayTimeout)
	body = ErrorBody{}
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Nil(t, body.Object)
	assert.Equal(t, codeNotApplied, body.Error.Code)
	a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusNotFound)

	ctrl.mu.Lock()
	ctrl.notApplied = nil
	ctrl.mu.Unlock()
	a.must("DELETE", "/v1/networks/blue?wait=1s", "", http.StatusNoContent)
	a.must("DELETE", "/v1/hosts/h1?wait=1s&cascade=true", "", http.StatusNoContent)
}

func TestWithoutController(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	var h HostView
	require.NoError(t, json.Unmarshal(r.body, &h))
	assert.Equal(t, Disconnected, h.Status.OVSDB)
	assert.Equal(t, map[string]BridgeStatus{BridgeInt: {OpenFlow: Disconnected}, BridgeTun: {OpenFlow: Disconnected}}, h.Status.Bridges)

	r = a.must("POST", "/v1/networks?wait=100ms", blueBody, http.StatusGatewayTimeout)
	assert.Equal(t, codeNotApplied, r.errorCode(t))
	assert.Contains(t, string(r.body), "no controller")
	r = a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	assert.Equal(t, PortPending, r.json(t)["status"])
	assert.Equal(t, codeUnavailable, a.must("GET", "/v1/hosts/h1/flows", "", http.StatusServiceUnavailable).errorCode(t))
}

func TestFlows(t *testing.T) {
	ctrl := newFakeController()
	ctrl.flows = []FlowEntry{
		{Table: 20, Priority: 1, Cookie: 0x2000000000000001, Match: "vlan_tci=0x0001/0x0fff,dl_dst=62:13:fd:12:5e:dd",
			Actions: "load:0->NXM_OF_VLAN_TCI[],load:0x1->NXM_NX_TUN_ID[],output:2", NPackets: 3, NBytes: 294, Duration: 1500 * time.Millisecond, Owner: "learned"},
		{Table: 20, Priority: 0, Cookie: 0x1, Actions: "resubmit(,21)", Duration: 10 * time.Second, Owner: "pipeline"},
		{Table: 0, Priority: 1, Cookie: 0x1, Match: "in_port=1", Actions: "resubmit(,1)", Duration: 10 * time.Second, Owner: "pipeline"},
	}
	a := newTestAPI(t, ctrl)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)

	r := a.must("GET", "/v1/hosts/h1/flows?bridge=br-tun&table=20", "", http.StatusOK)
	assert.JSONEq(t, `{"flows":[
		{"table":0,"priority":1,"cookie":"0x1","match":"in_port=1","actions":"resubmit(,1)","n_packets":0,"n_bytes":0,"duration_s":10,"owner":"pipeline"},
		{"table":20,"priority":1,"cookie":"0x2000000000000001","match":"vlan_tci=0x0001/0x0fff,dl_dst=62:13:fd:12:5e:dd",
		 "actions":"load:0->NXM_OF_VLAN_TCI[],load:0x1->NXM_NX_TUN_ID[],output:2","n_packets":3,"n_bytes":294,"duration_s":1.5,"owner":"learned"},
		{"table":20,"priority":0,"cookie":"0x1","match":"","actions":"resubmit(,21)","n_packets":0,"n_bytes":0,"duration_s":10,"owner":"pipeline"}]}`,
		string(r.body), "sorted by table, then priority high to low")

	r = a.must("GET", "/v1/hosts/h1/flows?bridge=br-int&format=text", "", http.StatusOK)
	assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, ` cookie=0x1, duration=10.000s, table=0, n_packets=0, n_bytes=0, priority=1,in_port=1 actions=resubmit(,1)
 cookie=0x2000000000000001, duration=1.500s, table=20, n_packets=3, n_bytes=294, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=62:13:fd:12:5e:dd actions=load:0->NXM_OF_VLAN_TCI[],load:0x1->NXM_NX_TUN_ID[],output:2
 cookie=0x1, duration=10.000s, table=20, n_packets=0, n_bytes=0, priority=0 actions=resubmit(,21)
`, string(r.body))
	a.must("GET", "/v1/hosts/h1/flows", "", http.StatusOK)

	ctrl.mu.Lock()
	assert.Equal(t, []string{"h1 br-tun 20", "h1 br-int -1", "h1 br-tun -1"}, ctrl.dumped)
	ctrl.mu.Unlock()

	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/hosts/h1/flows?bridge=br-phy", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/hosts/h1/flows?table=255", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/hosts/h1/flows?table=x", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/hosts/h1/flows?format=xml", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/hosts/h9/flows", "", http.StatusNotFound).errorCode(t))

	ctrl.mu.Lock()
	ctrl.flowsErr = errors.New("br-tun of h1 is not connected")
	ctrl.mu.Unlock()
	r = a.must("GET", "/v1/hosts/h1/flows", "", http.StatusServiceUnavailable)
	assert.Equal(t, codeUnavailable, r.errorCode(t))
	assert.Contains(t, string(r.body), "not connected")
}

func TestHandlerPanicIsA500(t *testing.T) {
	ctrl := newFakeController()
	ctrl.panicOn = "h1"
	a := newTestAPI(t, ctrl)
	r := a.must("POST", "/v1/hosts", h1Body, http.StatusInternalServerError)
	assert.Equal(t, codeInternal, r.errorCode(t))
	// The server is still serving.
	a.must("GET", "/healthz", "", http.StatusOK)
	a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
}

func TestConcurrentRequests(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			body, _ := json.Marshal(NetworkRequest{Name: "n" + itoa(i), Type: "vxlan"})
			req, err := http.NewRequest("POST", a.srv.URL+"/v1/networks", bytes.NewReader(body))
			if !assert.NoError(t, err) {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := a.srv.Client().Do(req)
			if assert.NoError(t, err) {
				assert.Equal(t, http.StatusCreated, res.StatusCode)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	var list NetworkList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks", "", http.StatusOK).body, &list))
	segs := make(map[uint32]bool)
	for _, n := range list.Networks {
		segs[n.SegmentID] = true
	}
	assert.Len(t, segs, 20)
	assert.Equal(t, uint64(21), a.revision())
}

// A port that would take a host's br-tun table 20 past its share of
// --mac-learn-limit is refused with 409, naming the host and the limit.
func TestPortOverMACLearnLimitConflicts(t *testing.T) {
	a := newTestAPI(t, nil, func(o *Options) {
		s := topology.NewMemoryStore(topology.WithMACLearnLimit(4)) // 3 registered entries: the miss flow and 2 MACs
		t.Cleanup(func() { _ = s.Close() })
		o.Store = s
	})
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"a","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"b1","host":"h2","interface":"tap1","mac":"02:00:00:00:00:02"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"b2","host":"h2","interface":"tap2","mac":"02:00:00:00:00:03"}`, http.StatusCreated)
	r := a.must("POST", "/v1/networks/blue/ports", `{"name":"b3","host":"h2","interface":"tap3","mac":"02:00:00:00:00:04"}`, http.StatusConflict)
	assert.Equal(t, codeConflict, r.errorCode(t))
	assert.Contains(t, string(r.body), `host \"h1\" would hold 4 registered entries in br-tun table 20`)
	assert.Contains(t, string(r.body), "--mac-learn-limit is 4")
	a.must("GET", "/v1/networks/blue/ports/b3", "", http.StatusNotFound)
	// Positive control: on h1 itself the port adds nothing to h1's table 20.
	a.must("POST", "/v1/networks/blue/ports", `{"name":"b3","host":"h1","interface":"tap3","mac":"02:00:00:00:00:04"}`, http.StatusCreated)
}
