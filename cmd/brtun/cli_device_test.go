package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIPortKeepsDeviceID: `port show` prints a container port's
// device_id, and `port set` (a PUT of the whole port) keeps it.
func TestCLIPortKeepsDeviceID(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	req, err := http.NewRequest(http.MethodPost, url+"/v1/networks/blue/ports",
		strings.NewReader(`{"name":"c1","host":"h1","interface":"cni1","device_id":"3f1c0e5d"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	assert.Contains(t, mustRun(t, s, "port", "show", "blue", "c1"), "Device ID:    3f1c0e5d")
	out := mustRun(t, s, "port", "set", "blue", "c1", "--description", "web")
	assert.Contains(t, out, "Device ID:    3f1c0e5d", "port set keeps the device_id")
	assert.NotContains(t, mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0"), "Device ID",
		"control: a port without one shows none")
}
