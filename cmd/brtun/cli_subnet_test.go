package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCLISubnets(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")

	out := mustRun(t, s, "subnet", "create", "blue", "v4", "--cidr", "198.18.0.0/24", "--dns", "198.51.100.53",
		"--route", "198.18.8.0/24,198.18.0.254", "--pool", "198.18.0.10-198.18.0.19", "--tag", "lab")
	assert.Contains(t, out, "CIDR:         198.18.0.0/24")
	assert.Contains(t, out, "Gateway:      198.18.0.1")
	assert.Contains(t, out, "Pools:        198.18.0.10-198.18.0.19")
	assert.Contains(t, out, "DNS servers:  198.51.100.53")
	assert.Contains(t, out, "Host routes:  198.18.8.0/24 via 198.18.0.254")
	assert.Contains(t, out, "DHCP:         true")
	assert.NotContains(t, out, "IPv6 mode", "IPv4 subnets have none")
	out = mustRun(t, s, "subnet", "create", "blue", "v6", "--cidr", "2001:db8::/64", "--no-gateway", "--no-dhcp")
	assert.Contains(t, out, "Gateway:      -")
	assert.Contains(t, out, "DHCP:         false")
	assert.Contains(t, out, "IPv6 mode:    slaac")
	assert.NotContains(t, out, "DHCP server")
	// An IPv4 subnet without a gateway shows the address DHCP answers from.
	mustRun(t, s, "net", "create", "red", "--type", "vxlan")
	out = mustRun(t, s, "subnet", "create", "red", "v4", "--cidr", "198.18.0.0/24", "--no-gateway")
	assert.Contains(t, out, "Gateway:      -")
	assert.Contains(t, out, "DHCP server:  198.18.0.1")

	out = mustRun(t, s, "subnet", "list", "blue")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^NAME\s+CIDR\s+GATEWAY\s+POOLS\s+DHCP\s+IPV6-MODE$`, lines[0])
	assert.Regexp(t, `^v4\s+198.18.0.0/24\s+198.18.0.1\s+198.18.0.10-198.18.0.19\s+true\s+-$`, lines[1])
	assert.Regexp(t, `^v6\s+2001:db8::/64\s+-\s+2001:db8::1-2001:db8::ffff:ffff:ffff:ffff\s+false\s+slaac$`, lines[2])
	out = mustRun(t, s, "subnet", "list", "blue", "--tag", "lab")
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2, "only v4 carries the tag")

	// A port needs neither MAC nor IP: brtun picks and prints them.
	out = mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0")
	assert.Contains(t, out, "MAC:          02:62:74:00:00:01")
	assert.Contains(t, out, "IPs:          198.18.0.10, 2001:db8::62:74ff:fe00:1")
	raw := mustRun(t, s, "-o", "json", "port", "add", "blue", "vm2", "--host", "h1", "--interface", "tap1")
	var p northbound.PortView
	require.NoError(t, json.Unmarshal([]byte(raw), &p))
	assert.Equal(t, []string{"198.18.0.11", "2001:db8::62:74ff:fe00:2"}, p.IPs)

	// set changes pools, DNS, routes and DHCP; only the flags given.
	out = mustRun(t, s, "subnet", "set", "blue", "v4", "--pool", "", "--dns", "", "--dhcp=false")
	assert.Contains(t, out, "Pools:        198.18.0.2-198.18.0.254", "--pool '' restores the default")
	assert.Contains(t, out, "DNS servers:  -")
	assert.Contains(t, out, "Host routes:  198.18.8.0/24 via 198.18.0.254", "kept")
	assert.Contains(t, out, "DHCP:         false")
	_, _, err := run(t, s, "subnet", "set", "blue", "v4")
	require.ErrorContains(t, err, "nothing to change")
	_, _, err = run(t, s, "subnet", "set", "blue", "v4", "--route", "198.18.8.0/24")
	require.ErrorContains(t, err, "want DESTINATION,NEXTHOP")
	_, _, err = run(t, s, "subnet", "create", "blue", "x", "--cidr", "198.18.1.0/24", "--pool", "198.18.1.5")
	require.ErrorContains(t, err, "want START-END")
	_, _, err = run(t, s, "subnet", "create", "blue", "x", "--cidr", "198.18.1.0/24", "--gateway", "198.18.1.1", "--no-gateway")
	require.ErrorContains(t, err, "exclude each other")
	_, _, err = run(t, s, "subnet", "create", "blue", "x", "--cidr", "198.18.0.0/16")
	require.ErrorContains(t, err, "HTTP 409")

	out = mustRun(t, s, "subnet", "show", "blue", "v6")
	assert.Contains(t, out, "Name:         v6")
	_, _, err = run(t, s, "subnet", "rm", "blue", "v4")
	require.ErrorContains(t, err, "HTTP 409", "ports hold addresses of it")
	mustRun(t, s, "port", "rm", "blue", "vm1")
	mustRun(t, s, "port", "rm", "blue", "vm2")
	assert.Equal(t, "deleted subnet blue/v4\n", mustRun(t, s, "subnet", "rm", "blue", "v4"))
	var list northbound.SubnetList
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, s, "-o", "json", "subnet", "list", "blue")), &list))
	assert.Equal(t, []string{"v6"}, func() []string {
		var names []string
		for _, sub := range list.Subnets {
			names = append(names, sub.Name)
		}
		return names
	}())
	assert.Equal(t, topology.IPv6SLAAC, list.Subnets[0].IPv6AddressMode)
}
