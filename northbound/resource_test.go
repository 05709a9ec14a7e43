package northbound

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryResourceFollowsTheConventions runs the same requests against
// every object type, since they share one implementation (resource.go):
// 201 with Location and ETag, reads with ETag and X-Brtun-Revision, PATCH
// with If-Match (412 stale, 200 current), ?wait on a write, filters on the
// list, DELETE with If-Match, and the query parameters each takes.
func TestEveryResourceFollowsTheConventions(t *testing.T) {
	for _, c := range []struct {
		collection, body, item string
		list, id               string // the list's member holding the objects; the field naming one
		waits                  bool   // GET of one object takes ?wait
	}{
		{"/v1/hosts", `{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"192.0.2.99"}`, "/v1/hosts/h9", "hosts", "name", false},
		{"/v1/networks", `{"name":"n9","type":"geneve"}`, "/v1/networks/n9", "networks", "name", false},
		{"/v1/networks/blue/subnets", `{"name":"s9","cidr":"198.18.9.0/24"}`, "/v1/networks/blue/subnets/s9", "subnets", "name", false},
		{"/v1/networks/blue/ports", `{"name":"p9","host":"h1","interface":"tap9"}`, "/v1/networks/blue/ports/p9", "ports", "name", true},
		{"/v1/remote-vteps", `{"name":"k9","tunnel_ip":"192.0.2.98","networks":["blue"]}`, "/v1/remote-vteps/k9", "remote_vteps", "name", false},
		{"/v1/bgp/peers", `{"address":"198.51.100.99","asn":65009}`, "/v1/bgp/peers/198.51.100.99", "peers", "address", false},
	} {
		t.Run(c.list, func(t *testing.T) {
			ctrl := newFakeController()
			a := newTestAPI(t, ctrl, func(o *Options) { o.BGP = fakeBGP{} })
			a.must("POST", "/v1/hosts", `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1"}`, http.StatusCreated)
			a.must("POST", "/v1/networks", `{"name":"blue","type":"vxlan","segment_id":5001}`, http.StatusCreated)
			r := a.must("POST", c.collection, c.body, http.StatusCreated)
			assert.Equal(t, c.item, r.header.Get("Location"))
			created := r.json(t)
			etag := r.header.Get("ETag")
			assert.Equal(t, `"`+strconv.FormatFloat(created["revision_number"].(float64), 'f', -1, 64)+`"`, etag, "the ETag is the revision_number")
			assert.Equal(t, strconv.FormatUint(a.revision(), 10), r.header.Get(revisionHeader), "a write answers the revision it committed")

			r = a.must("GET", c.item, "", http.StatusOK)
			assert.Equal(t, etag, r.header.Get("ETag"))
			assert.Equal(t, strconv.FormatUint(a.revision(), 10), r.header.Get(revisionHeader), "a read carries the store's revision")
			assert.Equal(t, codeInvalidQuery, a.must("GET", c.item+"?colour=blue", "", http.StatusBadRequest).errorCode(t))
			if c.waits {
				assert.Equal(t, codeNotBound, a.must("GET", c.item+"?wait=50ms", "", http.StatusGatewayTimeout).errorCode(t))
			} else {
				assert.Equal(t, codeInvalidQuery, a.must("GET", c.item+"?wait=50ms", "", http.StatusBadRequest).errorCode(t))
			}

			// PATCH: a stale If-Match stores nothing; the current one writes.
			before := a.revision()
			r = a.doHeaders("PATCH", c.item, `{"description":"mine"}`, map[string]string{"If-Match": `"999999"`})
			assert.Equal(t, http.StatusPreconditionFailed, r.status, "%s", r.body)
			assert.Equal(t, before, a.revision(), "a 412 stores nothing")
			r = a.doHeaders("PATCH", c.item, `{"description":"mine"}`, map[string]string{"If-Match": etag})
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.Equal(t, "mine", r.json(t)["description"])
			assert.NotEqual(t, etag, r.header.Get("ETag"), "the ETag grows with the change")
			etag = r.header.Get("ETag")

			// ?wait on a write: committed, but not applied in time.
			ctrl.mu.Lock()
			ctrl.notApplied = []string{"h1/br-tun"}
			ctrl.mu.Unlock()
			r = a.must("PATCH", c.item+"?wait=50ms", `{"tags":["t9"]}`, http.StatusGatewayTimeout)
			assert.Equal(t, codeNotApplied, r.errorCode(t))
			ctrl.mu.Lock()
			ctrl.notApplied = nil
			ctrl.mu.Unlock()
			r = a.must("GET", c.item, "", http.StatusOK)
			assert.Equal(t, []any{"t9"}, r.json(t)["tags"], "the write stays committed")
			assert.NotEqual(t, etag, r.header.Get("ETag"))
			etag = r.header.Get("ETag")

			// The list filters by the fields every object carries.
			list := a.must("GET", c.collection+"?description=mine&tags=t9", "", http.StatusOK).json(t)[c.list].([]any)
			require.Len(t, list, 1)
			assert.Equal(t, created[c.id], list[0].(map[string]any)[c.id])
			assert.Empty(t, a.must("GET", c.collection+"?description=theirs", "", http.StatusOK).json(t)[c.list], "a filter that matches nothing")
			assert.Equal(t, codeInvalidQuery, a.must("GET", c.collection+"?colour=blue", "", http.StatusBadRequest).errorCode(t))

			// DELETE: a stale If-Match keeps the object; the current one deletes it.
			r = a.doHeaders("DELETE", c.item, "", map[string]string{"If-Match": `"999999"`})
			assert.Equal(t, http.StatusPreconditionFailed, r.status, "%s", r.body)
			a.must("GET", c.item, "", http.StatusOK)
			r = a.doHeaders("DELETE", c.item, "", map[string]string{"If-Match": etag})
			assert.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
			a.must("GET", c.item, "", http.StatusNotFound)
			a.must("DELETE", c.item, "", http.StatusNotFound)
		})
	}
}
