package northbound

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGeneveNetworks(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("POST", "/v1/networks", `{"name":"blue","type":"geneve","segment_id":5001}`, http.StatusCreated)
	assert.JSONEq(t, `{"name":"blue","type":"geneve","segment_id":5001,"mac_learning":true,"mtu":1450,"description":"","tags":[],"revision_number":1}`, string(r.body))
	// Segments are per type: VXLAN and GRE 5001 are other networks.
	a.must("POST", "/v1/networks", `{"name":"vx","type":"vxlan","segment_id":5001}`, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"gr","type":"gre","segment_id":5001}`, http.StatusCreated)
	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks", `{"name":"x","type":"geneve","segment_id":5001}`, http.StatusConflict).errorCode(t))

	assert.EqualValues(t, 1, a.must("POST", "/v1/networks", `{"name":"green","type":"geneve"}`, http.StatusCreated).json(t)["segment_id"],
		"lowest free Geneve segment")
	a.must("POST", "/v1/networks", `{"name":"maxgn","type":"geneve","segment_id":16777215}`, http.StatusCreated)
	r = a.must("POST", "/v1/networks", `{"name":"big","type":"geneve","segment_id":16777216}`, http.StatusBadRequest)
	assert.Equal(t, codeInvalid, r.errorCode(t))
	assert.Contains(t, string(r.body), "geneve")
}
