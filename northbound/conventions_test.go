package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// doHeaders sends a request with extra headers; a non-empty body is JSON
// unless h sets another Content-Type.
func (a *testAPI) doHeaders(method, path, body string, h map[string]string) response {
	a.t.Helper()
	hdr := http.Header{}
	if body != "" {
		hdr.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		hdr.Set(k, v)
	}
	return a.doWith(method, path, strings.NewReader(body), hdr)
}

// names returns "name" (or "network/name" for ports) of every object of a list answer.
func names(t *testing.T, r response, key string) []string {
	t.Helper()
	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &body), "%s", r.body)
	raw, ok := body[key]
	require.True(t, ok, "no %q in %s", key, r.body)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(raw, &list))
	out := []string{}
	for _, o := range list {
		n := o["name"].(string)
		if nw, ok := o["network"].(string); ok && key == "ports" {
			n = nw + "/" + n
		}
		out = append(out, n)
	}
	return out
}

func TestPatchHostNetworkPort(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)

	// A host re-IP without deleting its ports, as a merge patch.
	r := a.doHeaders("PATCH", "/v1/hosts/h1", `{"tunnel_ip":"192.0.2.11","ovsdb":"unix:/run/openvswitch/db.sock","datapath_type":"system","tags":["rack1"]}`,
		map[string]string{"Content-Type": "application/merge-patch+json"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	h := r.json(t)
	assert.Equal(t, "192.0.2.11", h["tunnel_ip"])
	assert.Equal(t, "unix:/run/openvswitch/db.sock", h["ovsdb"])
	assert.Equal(t, "system", h["datapath_type"])
	assert.Equal(t, []any{"rack1"}, h["tags"])
	assert.EqualValues(t, 5, h["revision_number"])
	assert.Equal(t, `"5"`, r.header.Get("ETag"))
	assert.Equal(t, "5", r.header.Get(revisionHeader))
	assert.Equal(t, "h1", a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK).json(t)["host"], "the port stayed")
	// The old tunnel IP is free again, the new one taken.
	a.must("PATCH", "/v1/hosts/h2", `{"tunnel_ip":"192.0.2.11"}`, http.StatusConflict)
	a.must("PATCH", "/v1/hosts/h2", `{"tunnel_ip":"192.0.2.1"}`, http.StatusOK)
	// null resets to the default; members left out keep their value.
	r = a.must("PATCH", "/v1/hosts/h1", `{"tags":null,"description":"first"}`, http.StatusOK)
	assert.Equal(t, []any{}, r.json(t)["tags"])
	assert.Equal(t, "first", r.json(t)["description"])
	assert.Equal(t, "192.0.2.11", r.json(t)["tunnel_ip"])
	// A GET's own answer patches nothing away (status is live, ignored).
	got := a.must("GET", "/v1/hosts/h1", "", http.StatusOK)
	r = a.must("PATCH", "/v1/hosts/h1", string(got.body), http.StatusOK)
	assert.Equal(t, "first", r.json(t)["description"])
	assert.Equal(t, codeInvalid, a.must("PATCH", "/v1/hosts/h1", `{"name":"h9"}`, http.StatusBadRequest).errorCode(t))

	r = a.must("PATCH", "/v1/networks/blue", `{"mac_learning":false,"description":"tenant blue","mtu":1450,"type":"vxlan","segment_id":5001}`, http.StatusOK)
	n := r.json(t)
	assert.Equal(t, false, n["mac_learning"])
	assert.Equal(t, "tenant blue", n["description"])
	assert.EqualValues(t, 5001, n["segment_id"])
	for field, body := range map[string]string{"type": `{"type":"gre"}`, "segment_id": `{"segment_id":5002}`, "mtu": `{"mtu":1400}`, "name": `{"name":"red"}`} {
		r := a.must("PATCH", "/v1/networks/blue", body, http.StatusBadRequest)
		var e ErrorBody
		require.NoError(t, json.Unmarshal(r.body, &e))
		assert.Equal(t, codeInvalid, e.Error.Code)
		assert.Equal(t, field, e.Error.Field, "%s names the field", body)
	}

	r = a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"admin_state_up":false,"tags":["web","a"],"ips":["198.18.0.1","198.18.0.9"]}`, http.StatusOK)
	p := r.json(t)
	assert.Equal(t, false, p["admin_state_up"])
	assert.Equal(t, []any{"a", "web"}, p["tags"])
	assert.Equal(t, []any{"198.18.0.1", "198.18.0.9"}, p["ips"])
	assert.Equal(t, "02:00:00:00:00:01", p["mac"], "kept")
	r = a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"admin_state_up":null,"mac":null}`, http.StatusOK)
	assert.Equal(t, true, r.json(t)["admin_state_up"], "null means the default, up")
	assert.Equal(t, "02:00:00:00:00:01", r.json(t)["mac"], "a port always has a MAC: null keeps the stored one")
	a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"host":"h2","interface":"tap9"}`, http.StatusOK)
	assert.EqualValues(t, 1, a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK).json(t)["local_vlan"], "moved: h2's VLAN")

	assert.Equal(t, codeNotFound, a.must("PATCH", "/v1/networks/blue/ports/nope", `{}`, http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeUnsupportedMedia, a.doHeaders("PATCH", "/v1/hosts/h1", `{}`, map[string]string{"Content-Type": "text/plain"}).errorCode(t))
	assert.Equal(t, codeInvalidJSON, a.must("PATCH", "/v1/hosts/h1", `{} {}`, http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidJSON, a.must("PATCH", "/v1/hosts/h1", `null`, http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidJSON, a.must("PATCH", "/v1/hosts/h1", `{"tunnel_ip":7}`, http.StatusBadRequest).errorCode(t))
}

func TestIfMatch(t *testing.T) {
	a := newTestAPI(t, nil)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	r := a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	etag := r.header.Get("ETag")
	require.Equal(t, `"3"`, etag)
	r = a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK)
	assert.Equal(t, etag, r.header.Get("ETag"), "a read carries the same ETag")
	assert.Equal(t, `"1"`, a.must("GET", "/v1/hosts/h1", "", http.StatusOK).header.Get("ETag"))
	assert.Equal(t, `"2"`, a.must("GET", "/v1/networks/blue", "", http.StatusOK).header.Get("ETag"))

	// Someone else changes the port: the ETag read before is stale.
	a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"description":"theirs"}`, http.StatusOK)
	before := a.revision()
	for _, ifMatch := range []string{
		etag,        // stale
		`"3", "99"`, // none current
		`W/"4"`,     // weak tags never match (strong comparison)
		`4`,         // malformed: not quoted
		`"4`,        // malformed: unclosed quote
		`"4" "5"`,   // malformed: no comma
		`*, "4"`,    // malformed: * among tags
		`"04"`,      // not the revision's form
		`""`,        // empty tag
		`"x"`,       // not a revision
		`"4",`,      // trailing comma
	} {
		for _, req := range []struct{ method, path, body string }{
			{"PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","description":"mine"}`},
			{"PATCH", "/v1/networks/blue/ports/vm1", `{"description":"mine"}`},
			{"DELETE", "/v1/networks/blue/ports/vm1", ``},
			{"PATCH", "/v1/hosts/h1", `{"description":"mine"}`},
			{"DELETE", "/v1/hosts/h1?cascade=true", ``},
			{"PATCH", "/v1/networks/blue", `{"description":"mine"}`},
			{"DELETE", "/v1/networks/blue?cascade=true", ``},
		} {
			r := a.doHeaders(req.method, req.path, req.body, map[string]string{"If-Match": ifMatch})
			require.Equal(t, http.StatusPreconditionFailed, r.status, "%s %s If-Match %q: %s", req.method, req.path, ifMatch, r.body)
			assert.Equal(t, codePreconditionFailed, r.errorCode(t))
		}
	}
	assert.Equal(t, before, a.revision(), "a 412 stores nothing")
	assert.Equal(t, "theirs", a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK).json(t)["description"])

	// Positive controls: the current ETag, a list holding it, and *.
	cur := a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK).header.Get("ETag")
	r = a.doHeaders("PATCH", "/v1/networks/blue/ports/vm1", `{"description":"mine"}`, map[string]string{"If-Match": cur})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "mine", r.json(t)["description"])
	next := r.header.Get("ETag")
	assert.NotEqual(t, cur, next, "the ETag grows with the change")
	r = a.doHeaders("PATCH", "/v1/networks/blue/ports/vm1", `{"description":"again"}`, map[string]string{"If-Match": `W/"1", "2" ,` + next})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = a.doHeaders("PATCH", "/v1/networks/blue/ports/vm1", `{"description":"star"}`, map[string]string{"If-Match": `*`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, http.StatusNotFound, a.doHeaders("PATCH", "/v1/networks/blue/ports/nope", `{}`, map[string]string{"If-Match": `*`}).status)
	cur = r.header.Get("ETag")
	assert.Equal(t, http.StatusNoContent, a.doHeaders("DELETE", "/v1/networks/blue/ports/vm1", "", map[string]string{"If-Match": cur}).status)
	net := a.must("GET", "/v1/networks/blue", "", http.StatusOK).header.Get("ETag")
	assert.Equal(t, http.StatusNoContent, a.doHeaders("DELETE", "/v1/networks/blue", "", map[string]string{"If-Match": net}).status)
}

// TestConcurrentEditsNeverOverwrite: of two writers holding the same ETag,
// exactly one wins; the other gets 412.
func TestConcurrentEditsNeverOverwrite(t *testing.T) {
	a := newTestAPI(t, nil)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	etag := a.must("GET", "/v1/hosts/h1", "", http.StatusOK).header.Get("ETag")
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = a.doHeaders("PATCH", "/v1/hosts/h1", fmt.Sprintf(`{"description":"writer %d"}`, i), map[string]string{"If-Match": etag}).status
		}()
	}
	wg.Wait()
	sort.Ints(statuses)
	assert.Equal(t, []int{200, 412, 412, 412, 412, 412, 412, 412}, statuses)
}

// listFixture stores three hosts, three networks and four ports with
// varied fields; h1/tap1 is bound.
func listFixture(t *testing.T) *testAPI {
	t.Helper()
	ctrl := newFakeController()
	ctrl.bound["h1/tap1"] = true
	a := newTestAPI(t, ctrl)
	for _, b := range []string{
		`{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1","description":"first","tags":["rack1"]}`,
		`{"name":"h2","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.2","datapath_type":"netdev","tags":["rack1","rack2"]}`,
		`{"name":"h3","ovsdb":"unix:/run/h3.sock","tunnel_ip":"192.0.2.3"}`,
	} {
		a.must("POST", "/v1/hosts", b, http.StatusCreated)
	}
	for _, b := range []string{
		`{"name":"blue","type":"vxlan","segment_id":5001,"tags":["prod"],"description":"tenant blue"}`,
		`{"name":"red","type":"gre","segment_id":7,"mac_learning":false,"tags":["prod","gre"]}`,
		`{"name":"green","type":"vxlan","segment_id":9,"evpn":true,"route_target":"65000:9"}`,
	} {
		a.must("POST", "/v1/networks", b, http.StatusCreated)
	}
	for _, p := range []struct{ net, body string }{
		{"blue", `{"name":"vm1","host":"h1","interface":"tap1","mac":"02:00:00:00:00:01","ips":["198.18.0.1","2001:db8::1"],"tags":["web"],"description":"web server"}`},
		{"blue", `{"name":"vm2","host":"h2","interface":"tap2","ips":["198.18.0.2"],"admin_state_up":false,"device_id":"ctr-2","port_security_enabled":false}`},
		{"red", `{"name":"vm1","host":"h2","interface":"tap3","tags":["web","db"]}`},
		{"green", `{"name":"db","host":"h3","interface":"tap4","ips":["198.18.0.1"],"device_id":"ctr-4"}`},
	} {
		a.must("POST", "/v1/networks/"+p.net+"/ports", p.body, http.StatusCreated)
	}
	return a
}

// TestEveryFilterOnEveryList checks each field every list filters by,
// each with a value that keeps a strict subset; a test below checks that
// no filterable field is left out of this table.
func TestEveryFilterOnEveryList(t *testing.T) {
	a := listFixture(t)
	cases := map[string]map[string]struct {
		query string
		want  []string
	}{
		"/v1/hosts": {
			"name":            {"name=h2", []string{"h2"}},
			"ovsdb":           {"ovsdb=unix:/run/h3.sock", []string{"h3"}},
			"tunnel_ip":       {"tunnel_ip=192.0.2.2", []string{"h2"}},
			"datapath_type":   {"datapath_type=system", []string{"h1", "h3"}},
			"description":     {"description=first", []string{"h1"}},
			"tags":            {"tags=rack1", []string{"h1", "h2"}},
			"revision_number": {"revision_number=3", []string{"h3"}},
		},
		"/v1/networks": {
			"name":            {"name=red", []string{"red"}},
			"type":            {"type=gre", []string{"red"}},
			"segment_id":      {"segment_id=9", []string{"green"}},
			"mac_learning":    {"mac_learning=false", []string{"red"}},
			"evpn":            {"evpn=true", []string{"green"}},
			"route_target":    {"route_target=65000:9", []string{"green"}},
			"mtu":             {"mtu=1450", []string{"blue", "green"}},
			"description":     {"description=tenant+blue", []string{"blue"}},
			"tags":            {"tags=prod", []string{"blue", "red"}},
			"revision_number": {"revision_number=5", []string{"red"}},
		},
		"/v1/ports": {
			"name":                  {"name=vm1", []string{"blue/vm1", "red/vm1"}},
			"network":               {"network=blue", []string{"blue/vm1", "blue/vm2"}},
			"host":                  {"host=h2", []string{"blue/vm2", "red/vm1"}},
			"interface":             {"interface=tap4", []string{"green/db"}},
			"mac":                   {"mac=02:00:00:00:00:01", []string{"blue/vm1"}},
			"device_id":             {"device_id=ctr-4", []string{"green/db"}},
			"ips":                   {"ips=198.18.0.1", []string{"blue/vm1", "green/db"}},
			"local_vlan":            {"local_vlan=2", []string{"red/vm1"}},
			"admin_state_up":        {"admin_state_up=false", []string{"blue/vm2"}},
			"port_security_enabled": {"port_security_enabled=false", []string{"blue/vm2"}}, // every port has a MAC (given or generated)
			"status":                {"status=bound", []string{"blue/vm1"}},
			"description":           {"description=web+server", []string{"blue/vm1"}},
			"tags":                  {"tags=web", []string{"blue/vm1", "red/vm1"}},
			"revision_number":       {"revision_number=9", []string{"red/vm1"}},
		},
		"/v1/networks/blue/ports": {
			"name":                  {"name=vm2", []string{"blue/vm2"}},
			"network":               {"network=red", []string{}},
			"host":                  {"host=h1", []string{"blue/vm1"}},
			"interface":             {"interface=tap2", []string{"blue/vm2"}},
			"mac":                   {"mac=02:00:00:00:00:01", []string{"blue/vm1"}},
			"device_id":             {"device_id=ctr-2", []string{"blue/vm2"}},
			"ips":                   {"ips=198.18.0.2", []string{"blue/vm2"}},
			"local_vlan":            {"local_vlan=2", []string{}},
			"admin_state_up":        {"admin_state_up=true", []string{"blue/vm1"}},
			"port_security_enabled": {"port_security_enabled=false", []string{"blue/vm2"}},
			"status":                {"status=pending", []string{"blue/vm2"}},
			"description":           {"description=web+server", []string{"blue/vm1"}},
			"tags":                  {"tags=web", []string{"blue/vm1"}},
			"revision_number":       {"revision_number=8", []string{"blue/vm2"}},
		},
	}
	all := map[string][]string{
		"/v1/hosts":               {"h1", "h2", "h3"},
		"/v1/networks":            {"blue", "green", "red"},
		"/v1/ports":               {"blue/vm1", "blue/vm2", "green/db", "red/vm1"},
		"/v1/networks/blue/ports": {"blue/vm1", "blue/vm2"},
	}
	specs := map[string][]string{
		"/v1/hosts": keys(hostList().fields), "/v1/networks": keys(networkList().fields),
		"/v1/ports": keys(portList().fields), "/v1/networks/blue/ports": keys(portList().fields),
	}
	for path, fields := range cases {
		key := strings.TrimPrefix(path[strings.LastIndex(path, "/"):], "/")
		assert.ElementsMatch(t, specs[path], keys(fields), "%s: every field it filters by is tested", path)
		assert.Equal(t, all[path], names(t, a.must("GET", path, "", http.StatusOK), key), "control: %s unfiltered", path)
		for field, c := range fields {
			got := names(t, a.must("GET", path+"?"+c.query, "", http.StatusOK), key)
			assert.Equal(t, c.want, got, "%s?%s (%s)", path, c.query, field)
			assert.Less(t, len(got), len(all[path]), "%s?%s keeps a strict subset", path, c.query)
		}
	}

	// Several values of one parameter match any; several parameters all.
	assert.Equal(t, []string{"h1", "h3"}, names(t, a.must("GET", "/v1/hosts?name=h1&name=h3", "", http.StatusOK), "hosts"))
	assert.Equal(t, []string{"blue/vm2"}, names(t, a.must("GET", "/v1/ports?host=h2&network=blue", "", http.StatusOK), "ports"))
	assert.Equal(t, []string{"h2"}, names(t, a.must("GET", "/v1/hosts?tags=rack2,rack1", "", http.StatusOK), "hosts"), "tags: all of them")
	assert.Equal(t, []string{}, names(t, a.must("GET", "/v1/networks?type=gre&type=geneve&segment_id=9", "", http.StatusOK), "networks"))

	// Sorting.
	assert.Equal(t, []string{"blue", "green", "red"}, names(t, a.must("GET", "/v1/networks?sort=-segment_id", "", http.StatusOK), "networks"))
	assert.Equal(t, []string{"red", "green", "blue"}, names(t, a.must("GET", "/v1/networks?sort=segment_id", "", http.StatusOK), "networks"))
	assert.Equal(t, []string{"blue/vm1", "blue/vm2", "red/vm1", "green/db"}, names(t, a.must("GET", "/v1/ports?sort=host", "", http.StatusOK), "ports"))
	assert.Equal(t, []string{"h3", "h2", "h1"}, names(t, a.must("GET", "/v1/hosts?sort=-name", "", http.StatusOK), "hosts"))
	assert.Equal(t, []string{"red", "blue", "green"}, names(t, a.must("GET", "/v1/networks?sort=mac_learning,-type", "", http.StatusOK), "networks"))

	for _, bad := range []string{
		"/v1/networks?colour=blue", "/v1/hosts?wait=1s", "/v1/ports?segment_id=1", "/v1/networks?segment_id=x",
		"/v1/networks?mac_learning=maybe", "/v1/networks?sort=colour", "/v1/ports?sort=tags", "/v1/hosts?limit=0",
		"/v1/hosts?limit=1001", "/v1/hosts?limit=x", "/v1/hosts?marker=nonsense", "/v1/hosts/h1?x=1",
		"/v1/networks/blue?x=1", "/v1/networks/blue/ports/vm1?x=1", "/v1/networks/blue/ports?cascade=true",
		"/v1/hosts/h1/flows?colour=blue", "/v1/cluster?x=1", "/v1/openapi.json?x=1",
	} {
		assert.Equal(t, codeInvalidQuery, a.must("GET", bad, "", http.StatusBadRequest).errorCode(t), bad)
	}
}

// TestPagesWithConcurrentInserts pages through a list three objects at a
// time while objects are created before and after the marker: every object
// that existed throughout appears exactly once, in order.
func TestPagesWithConcurrentInserts(t *testing.T) {
	a := newTestAPI(t, nil)
	for _, n := range []string{"n1", "n3", "n5", "n7", "n9", "n11", "n13", "n15"} {
		a.must("POST", "/v1/networks", `{"name":"`+n+`","type":"vxlan"}`, http.StatusCreated)
	}
	var pages [][]string
	path := "/v1/networks?limit=3&type=vxlan"
	for i := 0; ; i++ {
		require.Less(t, i, 10, "pagination must end")
		r := a.must("GET", path, "", http.StatusOK)
		var list NetworkList
		require.NoError(t, json.Unmarshal(r.body, &list))
		page := []string{}
		for _, n := range list.Networks {
			page = append(page, n.Name)
		}
		pages = append(pages, page)
		if i == 0 {
			// Between the pages: one object behind the marker, one ahead.
			a.must("POST", "/v1/networks", `{"name":"n0","type":"vxlan"}`, http.StatusCreated)
			a.must("POST", "/v1/networks", `{"name":"n6","type":"vxlan"}`, http.StatusCreated)
			a.must("DELETE", "/v1/networks/n13", "", http.StatusNoContent) // ahead, deleted
		}
		if list.NextMarker == "" {
			assert.Empty(t, r.header.Get("Link"), "no next link on the last page")
			break
		}
		link := r.header.Get("Link")
		require.NotEmpty(t, link)
		u, err := url.Parse(strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`))
		require.NoError(t, err)
		assert.Equal(t, list.NextMarker, u.Query().Get("marker"))
		assert.Equal(t, "3", u.Query().Get("limit"), "the link keeps the other parameters")
		path = u.String()
	}
	// Names sort as strings: n1 n11 n13 n15 n3 n5 n7 n9.
	assert.Equal(t, [][]string{{"n1", "n11", "n13"}, {"n15", "n3", "n5"}, {"n6", "n7", "n9"}}, pages)

	// Pages of a sorted list; a marker belongs to its sort.
	r := a.must("GET", "/v1/networks?sort=-segment_id&limit=4", "", http.StatusOK)
	var list NetworkList
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.NotEmpty(t, list.NextMarker)
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/networks?marker="+list.NextMarker, "", http.StatusBadRequest).errorCode(t))
	rest := names(t, a.must("GET", "/v1/networks?sort=-segment_id&limit=100&marker="+list.NextMarker, "", http.StatusOK), "networks")
	assert.Len(t, append(names(t, r, "networks"), rest...), 9, "two pages hold every network once")
}

func TestLocationRevisionAndPortWait(t *testing.T) {
	ctrl := newFakeController()
	a := newTestAPI(t, ctrl)
	r := a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	assert.Equal(t, "/v1/hosts/h1", r.header.Get("Location"))
	r = a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	assert.Equal(t, "/v1/networks/blue", r.header.Get("Location"))
	r = a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	assert.Equal(t, "/v1/networks/blue/ports/vm1", r.header.Get("Location"))
	a.must("GET", r.header.Get("Location"), "", http.StatusOK)

	for _, path := range []string{"/v1/hosts", "/v1/hosts/h1", "/v1/networks", "/v1/networks/blue", "/v1/ports",
		"/v1/networks/blue/ports", "/v1/networks/blue/ports/vm1"} {
		assert.Equal(t, "3", a.must("GET", path, "", http.StatusOK).header.Get(revisionHeader), "GET %s", path)
	}
	a.must("DELETE", "/v1/hosts/h1?cascade=true", "", http.StatusNoContent)
	assert.Equal(t, "4", a.must("GET", "/v1/hosts", "", http.StatusOK).header.Get(revisionHeader), "the current revision")

	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	start := time.Now()
	r = a.must("GET", "/v1/networks/blue/ports/vm1?wait=300ms", "", http.StatusGatewayTimeout)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	var e ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &e))
	assert.Equal(t, codeNotBound, e.Error.Code)
	assert.Equal(t, PortPending, e.Object.(map[string]any)["status"])

	go func() {
		time.Sleep(200 * time.Millisecond)
		ctrl.mu.Lock()
		ctrl.bound["h1/tap0"] = true
		ctrl.mu.Unlock()
	}()
	start = time.Now()
	r = a.must("GET", "/v1/networks/blue/ports/vm1?wait=5s", "", http.StatusOK)
	assert.Equal(t, PortBound, r.json(t)["status"])
	assert.Less(t, time.Since(start), 4*time.Second, "answers once bound")
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/networks/blue/ports/vm1?wait=1h", "", http.StatusBadRequest).errorCode(t))
}

// TestPutOfGetOutput: a GET's answer can be edited and sent back with PUT.
func TestPutOfGetOutput(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	got := a.must("GET", "/v1/networks/blue/ports/vm1", "", http.StatusOK)
	edited := strings.Replace(string(got.body), `"tap0"`, `"tap7"`, 1)
	r := a.doHeaders("PUT", "/v1/networks/blue/ports/vm1", edited, map[string]string{"If-Match": got.header.Get("ETag")})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "tap7", r.json(t)["interface"])
	assert.Equal(t, "02:00:00:00:00:01", r.json(t)["mac"])
	// The same answer again is stale now (its revision_number too).
	r = a.doHeaders("PUT", "/v1/networks/blue/ports/vm1", edited, nil)
	assert.Equal(t, codeInvalid, r.errorCode(t))
	assert.Contains(t, string(r.body), "revision_number")
}

func TestSmallThings(t *testing.T) {
	a := newTestAPI(t, nil)
	// A 404 does not echo a huge name back.
	long := strings.Repeat("a", 100_000)
	for _, path := range []string{"/v1/hosts/" + long, "/v1/nothing/" + long} {
		r := a.must("GET", path, "", http.StatusNotFound)
		assert.Less(t, len(r.body), 1000, "answer of %d bytes", len(r.body))
		assert.Contains(t, string(r.body), "bytes)", "says it clipped")
	}
	// A second JSON value is reported as such, not as an unknown field.
	r := a.must("POST", "/v1/hosts", `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1"} {"colour":1}`, http.StatusBadRequest)
	assert.Contains(t, string(r.body), "more than one JSON value")
	assert.NotContains(t, string(r.body), "unknown field")
	// Only UTF-8 bodies.
	// In order: the UTF-8 one creates "blue", the quoted UTF-8 one is then
	// accepted and refused as a duplicate.
	for _, c := range []struct {
		ct   string
		want int
	}{
		{"application/json; charset=utf-16", http.StatusUnsupportedMediaType},
		{"application/json; charset=latin1", http.StatusUnsupportedMediaType},
		{"application/merge-patch+json", http.StatusUnsupportedMediaType}, // POST takes application/json only
		{"application/json; charset=UTF-8", http.StatusCreated},
		{"application/json; charset=\"utf-8\"", http.StatusConflict},
	} {
		ct, want := c.ct, c.want
		r := a.doHeaders("POST", "/v1/networks", `{"name":"blue","type":"vxlan"}`, map[string]string{"Content-Type": ct})
		assert.Equal(t, want, r.status, "%s: %s", ct, r.body)
	}
}

// TestRefusedRequestsLogQuietly: a flood of 401s logs at debug level only,
// apart from one rate-limited warning.
func TestRefusedRequestsLogQuietly(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := RequireToken(AuthOptions{Token: "secret", Logger: zap.New(core)})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 100 {
		req, err := http.NewRequest("POST", "/v1/hosts", nil)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnauthorized, rec.Code)
	}
	infoOrAbove := logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zapcore.InfoLevel }).Len()
	assert.LessOrEqual(t, infoOrAbove, 1, "at most one line above debug for a burst")
	assert.Equal(t, 100, logs.FilterLevelExact(zapcore.DebugLevel).Len(), "each refusal at debug")
}
