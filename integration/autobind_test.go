//go:build integration

package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// TestOperatorMarkedInterfaceIsBound: an interface an operator adds to
// br-int with external_ids:brtun-network=blue (and brtun-port, attached-mac)
// becomes a port of blue without any API call, gets its tag, and carries
// traffic to a VM bound through the API on another host.
func TestOperatorMarkedInterfaceIsBound(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.lab.AddVM(t, h2, lab.VMOptions{Name: "a2", MAC: "02:00:00:00:01:02", CIDR: "198.18.0.2/24"})

	_, err := h2.Vsctl("add-port", "br-int", a2.HostIface, "--", "set", "interface", a2.HostIface,
		"external_ids:brtun-network=blue", "external_ids:brtun-port=vm2", "external_ids:attached-mac="+a2.MAC)
	require.NoError(t, err)

	var port struct {
		Host      string `json:"host"`
		Interface string `json:"interface"`
		MAC       string `json:"mac"`
		Security  bool   `json:"port_security_enabled"`
		LocalVLAN int    `json:"local_vlan"`
		Status    string `json:"status"`
	}
	require.Eventually(t, func() bool {
		return s.brtun.Do("GET", "/v1/networks/blue/ports/vm2", nil, &port) == 200 && port.Status == "bound"
	}, 20*time.Second, 200*time.Millisecond, "the marked interface must become port vm2 of blue, bound; last: %+v", port)
	require.Equal(t, "h2", port.Host)
	require.Equal(t, a2.HostIface, port.Interface)
	require.Equal(t, a2.MAC, port.MAC, "the MAC comes from external_ids:attached-mac")
	require.True(t, port.Security, "with the VM's MAC (attached-mac) the port gets port security")
	tag, err := h2.Vsctl("get", "port", a2.HostIface, "tag")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(port.LocalVLAN), strings.TrimSpace(tag), "the interface is tagged with blue's local VLAN")

	require.Eventually(t, func() bool {
		ok, _ := a1.Ping(a2.IP, 1)
		return ok
	}, 15*time.Second, 200*time.Millisecond, "a1 (bound through the API) must reach the operator-bound a2")

	// Without attached-mac brtun only knows the host side's mac_in_use:
	// no port security, and the VM still talks.
	a3 := s.lab.AddVM(t, h2, lab.VMOptions{Name: "a3", MAC: "02:00:00:00:01:03", CIDR: "198.18.0.3/24"})
	_, err = h2.Vsctl("add-port", "br-int", a3.HostIface, "--", "set", "interface", a3.HostIface, "external_ids:brtun-network=blue")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return s.brtun.Do("GET", "/v1/networks/blue/ports/"+a3.HostIface, nil, &port) == 200 && port.Status == "bound"
	}, 20*time.Second, 200*time.Millisecond, "the marked interface must become a port; last: %+v", port)
	require.NotEqual(t, a3.MAC, port.MAC, "mac_in_use is the host side's")
	require.False(t, port.Security, "no attached-mac, no port security")
	require.Eventually(t, func() bool {
		ok, _ := a1.Ping(a3.IP, 1)
		return ok
	}, 15*time.Second, 200*time.Millisecond, "a1 must reach a3, whose port has no port security")
}
