package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrtunAddressing: dual stack, one default route per family via the
// first gateway, none for a subnet without a gateway, host routes and DNS
// servers without duplicates; an address outside every subnet is refused.
func TestBrtunAddressing(t *testing.T) {
	subnets := []subnet{
		{Name: "v4", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1", DNSServers: []string{"198.18.0.53"},
			HostRoutes: []hostRoute{{Destination: "198.19.0.0/16", Nexthop: "198.18.0.254"}}},
		{Name: "v4b", CIDR: "198.18.1.0/24", GatewayIP: "198.18.1.1", DNSServers: []string{"198.18.0.53"}},
		{Name: "v6", CIDR: "2001:db8:100::/64", DNSServers: []string{"2001:db8:100::53"}},
	}
	ips, routes, dns, err := brtunAddressing([]string{"198.18.0.7", "198.18.1.9", "2001:db8:100:0:62:74ff:fe00:1"}, subnets)
	require.NoError(t, err)
	var got []string
	for _, ipc := range ips {
		assert.Equal(t, containerIfIndex, *ipc.Interface)
		got = append(got, ipc.Address.String()+" gw "+ipc.Gateway.String())
	}
	assert.Equal(t, []string{"198.18.0.7/24 gw 198.18.0.1", "198.18.1.9/24 gw 198.18.1.1", "2001:db8:100:0:62:74ff:fe00:1/64 gw <nil>"}, got)
	got = nil
	for _, r := range routes {
		got = append(got, r.Dst.String()+" via "+r.GW.String())
	}
	assert.Equal(t, []string{"0.0.0.0/0 via 198.18.0.1", "198.19.0.0/16 via 198.18.0.254"}, got,
		"one IPv4 default route; no IPv6 one without a gateway")
	assert.Equal(t, []string{"198.18.0.53", "2001:db8:100::53"}, dns.Nameservers)

	_, _, _, err = brtunAddressing([]string{"198.18.9.1"}, subnets)
	assert.ErrorContains(t, err, "no subnet")
	ips, routes, _, err = brtunAddressing(nil, subnets)
	require.NoError(t, err)
	assert.Empty(t, ips)
	assert.Empty(t, routes)
}
