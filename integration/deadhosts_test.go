//go:build integration

package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// TestDeadHostsDoNotStallOthers: hosts whose OVSDB never answers (more of
// them than brtun has workers) do not delay a live host: a port bound on the
// live host is applied within ?wait=5s, and its VM reaches the network.
func TestDeadHostsDoNotStallOthers(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 2})
	d := startBrtun(t, l, daemonOptions{Advertise: true})
	for i := 1; i <= 12; i++ { // nothing answers at these addresses
		d.MustDo(201, "POST", "/v1/hosts", map[string]any{
			"name": fmt.Sprintf("dead%d", i), "ovsdb": fmt.Sprintf("tcp:198.51.100.%d:6640", 100+i),
			"tunnel_ip": fmt.Sprintf("192.0.2.%d", 100+i),
		}, nil)
	}
	for _, h := range l.Hosts {
		d.MustDo(201, "POST", "/v1/hosts", map[string]any{
			"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType,
		}, nil)
	}
	d.MustDo(201, "POST", "/v1/networks", map[string]any{"name": "blue", "type": topology.VXLAN, "segment_id": 5001}, nil)

	var vms []*lab.VM
	start := time.Now()
	for i, h := range l.Hosts {
		vm := l.AddVM(t, h, lab.VMOptions{Name: fmt.Sprintf("a%d", i+1), MAC: fmt.Sprintf("02:00:00:00:01:0%d", i+1), CIDR: fmt.Sprintf("198.18.0.%d/24", i+1)})
		var body map[string]any
		status := d.Do("POST", "/v1/networks/blue/ports?wait=5s", map[string]any{
			"name": vm.Name, "host": h.Name, "interface": vm.HostIface, "mac": vm.MAC, "ips": []string{vm.IP},
		}, &body)
		require.Equal(t, 201, status, "binding on live %s must apply within 5s despite 12 dead hosts: %v", h.Name, body)
		vms = append(vms, vm)
	}
	t.Logf("both live hosts applied their ports %.2fs after the first bind, with 12 dead hosts registered", time.Since(start).Seconds())
	ok, out := vms[0].Ping(vms[1].IP, 3)
	require.True(t, ok, "a1 -> a2 between the live hosts: %s", out)

	var dead hostView
	d.MustDo(200, "GET", "/v1/hosts/dead1", nil, &dead)
	require.Equal(t, "disconnected", dead.Status.OVSDB, "the dead host is reported as such")
}
