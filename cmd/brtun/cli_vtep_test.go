package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCLIRemoteVTEPsAndBGPPeers(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan", "--segment", "5001", "--evpn", "--route-target", "65000:77")
	mustRun(t, s, "net", "create", "red", "--type", "gre")
	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--mac", "02:00:00:00:00:01")
	out := mustRun(t, s, "net", "show", "blue")
	assert.Contains(t, out, "EVPN:")
	assert.Contains(t, out, "65000:77")

	out = mustRun(t, s, "vtep", "add", "k9", "--tunnel-ip", "192.0.2.9", "--network", "blue", "--mac", "02:00:00:00:09:01,198.18.0.9,2001:db8:100::9")
	assert.Contains(t, out, "02:00:00:00:09:01 (198.18.0.9, 2001:db8:100::9)")
	_, errOut, err := run(t, s, "vtep", "add", "k8", "--tunnel-ip", "192.0.2.8", "--network", "red")
	require.Error(t, err, "GRE networks take no remote VTEP")
	assert.Contains(t, errOut+err.Error(), "VXLAN and Geneve")

	out = mustRun(t, s, "vtep", "list")
	assert.Contains(t, out, "k9")
	assert.Contains(t, out, "192.0.2.9")
	out = mustRun(t, s, "vtep", "list", "--network", "blue")
	assert.Contains(t, out, "192.0.2.1")
	assert.Contains(t, out, "static")

	mustRun(t, s, "vtep", "set", "k9", "--mac", "")
	var v struct {
		MACs []any `json:"macs"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, s, "-o", "json", "vtep", "show", "k9")), &v))
	assert.Empty(t, v.MACs, "--mac '' clears the MACs")
	mustRun(t, s, "vtep", "rm", "k9")
	_, _, err = run(t, s, "vtep", "show", "k9")
	require.Error(t, err)

	out = mustRun(t, s, "bgp", "peer", "add", "198.51.100.9", "--asn", "65000", "--password", "pw")
	assert.Contains(t, out, "Password:")
	assert.NotContains(t, out, "pw\n")
	out = mustRun(t, s, "bgp", "peer", "list")
	assert.Contains(t, out, "198.51.100.9")
	assert.Contains(t, out, "disabled", "no speaker behind this API")
	mustRun(t, s, "bgp", "peer", "set", "198.51.100.9", "--asn", "65001")
	assert.Contains(t, mustRun(t, s, "bgp", "peer", "show", "198.51.100.9"), "65001")
	mustRun(t, s, "bgp", "peer", "rm", "198.51.100.9")
	assert.NotContains(t, mustRun(t, s, "bgp", "peer", "list"), "198.51.100.9")
}
