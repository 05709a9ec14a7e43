package northbound

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPortDeviceID: a port's device_id is stored, answered, filterable
// (also across networks), changed by PUT and PATCH, validated, and left
// out of answers when unset.
func TestPortDeviceID(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"red","type":"vxlan"}`, http.StatusCreated)

	r := a.must("POST", "/v1/networks/blue/ports", `{"name":"c1","host":"h1","interface":"cni1","device_id":"3f1c0e5d"}`, http.StatusCreated)
	assert.Equal(t, "3f1c0e5d", r.json(t)["device_id"])
	a.must("POST", "/v1/networks/red/ports", `{"name":"c1","host":"h1","interface":"cni2","device_id":"3f1c0e5d"}`, http.StatusCreated)
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm","host":"h1","interface":"tap0"}`, http.StatusCreated)
	assert.NotContains(t, r.json(t), "device_id", "unset: not in the answer")

	assert.Equal(t, []string{"blue/c1", "red/c1"}, names(t, a.must("GET", "/v1/ports?device_id=3f1c0e5d", "", http.StatusOK), "ports"))
	assert.Equal(t, []string{"blue/c1"}, names(t, a.must("GET", "/v1/networks/blue/ports?device_id=3f1c0e5d", "", http.StatusOK), "ports"))
	assert.Equal(t, []string{}, names(t, a.must("GET", "/v1/ports?device_id=other", "", http.StatusOK), "ports"))
	assert.Equal(t, []string{"blue/vm"}, names(t, a.must("GET", "/v1/ports?device_id=", "", http.StatusOK), "ports"), "empty: ports without one")

	r = a.must("PATCH", "/v1/networks/blue/ports/c1", `{"device_id":"new"}`, http.StatusOK)
	assert.Equal(t, "new", r.json(t)["device_id"])
	r = a.must("PUT", "/v1/networks/blue/ports/c1", `{"host":"h1","interface":"cni1"}`, http.StatusOK)
	assert.NotContains(t, r.json(t), "device_id", "PUT replaces it as a whole")

	long := strings.Repeat("x", 256)
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"c2","host":"h1","interface":"cni3","device_id":"`+long+`"}`, http.StatusBadRequest)
	assert.Equal(t, "device_id", r.json(t)["error"].(map[string]any)["field"])
	a.must("POST", "/v1/networks/blue/ports", `{"name":"c2","host":"h1","interface":"cni3","device_id":"`+long[:255]+`"}`, http.StatusCreated)
	r = a.must("PATCH", "/v1/networks/blue/ports/c2", `{"device_id":"a\u0001b"}`, http.StatusBadRequest)
	assert.Equal(t, "device_id", r.json(t)["error"].(map[string]any)["field"])
}
