package northbound

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPortSecurityFields(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)

	r := a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01",
		"allowed_address_pairs":[{"ip_address":"198.18.0.100"},{"ip_address":"198.18.1.9/24","mac_address":"02:00:00:00:00:99"}]}`, http.StatusCreated)
	assert.JSONEq(t, `{"network":"blue","name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01",
		"port_security_enabled":true,"allowed_address_pairs":[{"ip_address":"198.18.0.100"},
		{"ip_address":"198.18.1.0/24","mac_address":"02:00:00:00:00:99"}],"local_vlan":1,"status":"pending",
		"admin_state_up":true,"description":"","tags":[],"revision_number":3}`, string(r.body))

	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"appl","host":"h1","interface":"tap1","mac":"02:00:00:00:00:02",
		"port_security_enabled":false}`, http.StatusCreated)
	assert.Equal(t, false, r.json(t)["port_security_enabled"], "an appliance turns it off")

	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"nomac","host":"h1","interface":"tap2","port_security_enabled":true}`, http.StatusCreated)
	assert.Equal(t, true, r.json(t)["port_security_enabled"], "a port without a mac gets one generated, and port security with it")
	assert.NotEmpty(t, r.json(t)["mac"])

	// PUT replaces: security back to its default, the pairs as given.
	r = a.must("PUT", "/v1/networks/blue/ports/appl", `{"host":"h1","interface":"tap1","mac":"02:00:00:00:00:02"}`, http.StatusOK)
	assert.Equal(t, true, r.json(t)["port_security_enabled"])
	r = a.must("PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap0","mac":"02:00:00:00:00:01"}`, http.StatusOK)
	assert.NotContains(t, r.json(t), "allowed_address_pairs")

	for body, field := range map[string]string{
		`{"name":"x1","host":"h1","interface":"tapx","mac":"02:00:00:00:00:10","port_security_enabled":false,"allowed_address_pairs":[{"ip_address":"198.18.0.100"}]}`:   "allowed_address_pairs",
		`{"name":"x3","host":"h1","interface":"tapx","mac":"02:00:00:00:00:10","allowed_address_pairs":[{"ip_address":"2001:db8::/64"}]}`:                                "allowed_address_pairs[0].ip_address",
		`{"name":"x4","host":"h1","interface":"tapx","mac":"02:00:00:00:00:10","allowed_address_pairs":[{"ip_address":"198.18.0.5","mac_address":"ff:ff:ff:ff:ff:ff"}]}`: "allowed_address_pairs[0].mac_address",
	} {
		r := a.must("POST", "/v1/networks/blue/ports", body, http.StatusBadRequest)
		assert.Equal(t, codeInvalid, r.errorCode(t), body)
		assert.Equal(t, field, r.json(t)["error"].(map[string]any)["field"], body)
	}
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"x5","host":"h1","interface":"tapx","mac":"02:00:00:00:00:10","allowed_address_pairs":[{"ip_address":"198.18.0.5","extra":1}]}`, http.StatusBadRequest)
	assert.Equal(t, codeInvalidJSON, r.errorCode(t), "unknown pair fields are refused")
}

// TestPortSecurityByMergePatch: PATCH changes port_security_enabled and
// allowed_address_pairs like any field (arrays replaced as a whole, null
// back to the default), keeps what the patch leaves out, follows If-Match,
// and the list filters by port_security_enabled.
func TestPortSecurityByMergePatch(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01",
		"ips":["198.18.0.1"],"tags":["web"]}`, http.StatusCreated)
	const path = "/v1/networks/blue/ports/vm1"
	patch := func(body string, status int) response {
		t.Helper()
		r := a.doHeaders("PATCH", path, body, map[string]string{"Content-Type": "application/merge-patch+json"})
		require.Equal(t, status, r.status, "PATCH %s: %s", body, r.body)
		return r
	}

	r := patch(`{"allowed_address_pairs":[{"ip_address":"198.18.0.100"},{"ip_address":"198.18.1.0/24","mac_address":"02:00:00:00:00:99"}]}`, http.StatusOK)
	got := r.json(t)
	assert.Equal(t, []any{map[string]any{"ip_address": "198.18.0.100"},
		map[string]any{"ip_address": "198.18.1.0/24", "mac_address": "02:00:00:00:00:99"}}, got["allowed_address_pairs"])
	assert.Equal(t, []any{"198.18.0.1"}, got["ips"], "what the patch leaves out is kept")
	assert.Equal(t, []any{"web"}, got["tags"])
	assert.Equal(t, true, got["port_security_enabled"])

	r = patch(`{"allowed_address_pairs":[{"ip_address":"198.18.0.101"}]}`, http.StatusOK)
	assert.Equal(t, []any{map[string]any{"ip_address": "198.18.0.101"}}, r.json(t)["allowed_address_pairs"], "an array is replaced as a whole")

	r = patch(`{"port_security_enabled":false}`, http.StatusBadRequest)
	assert.Equal(t, "allowed_address_pairs", r.json(t)["error"].(map[string]any)["field"], "pairs need port security")
	r = patch(`{"port_security_enabled":false,"allowed_address_pairs":null}`, http.StatusOK)
	assert.Equal(t, false, r.json(t)["port_security_enabled"])
	assert.NotContains(t, r.json(t), "allowed_address_pairs", "null removes the pairs")

	assert.Equal(t, []string{"blue/vm1"}, names(t, a.must("GET", "/v1/ports?port_security_enabled=false", "", http.StatusOK), "ports"))
	assert.Empty(t, names(t, a.must("GET", "/v1/ports?port_security_enabled=true", "", http.StatusOK), "ports"),
		"control: the filter keeps only what matches")

	r = patch(`{"port_security_enabled":null}`, http.StatusOK)
	assert.Equal(t, true, r.json(t)["port_security_enabled"], "null: back to the default")

	// A stale If-Match is refused, the current one accepted.
	etag := r.header.Get("ETag")
	require.NotEmpty(t, etag)
	stale := a.doHeaders("PATCH", path, `{"port_security_enabled":false}`, map[string]string{"If-Match": `"1"`})
	assert.Equal(t, http.StatusPreconditionFailed, stale.status)
	r = a.doHeaders("PATCH", path, `{"port_security_enabled":false}`, map[string]string{"If-Match": etag})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["port_security_enabled"])
}
