//go:build integration && linux

package examples_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTwoTenantsScriptOnLab runs two-tenants.sh as its header says, against
// three real OVS hosts with the VM interfaces it expects, and checks that the
// dataplane it builds works: every VM reaches the VMs of its own tenant at
// the overlapping addresses, and only those.
func TestTwoTenantsScriptOnLab(t *testing.T) {
	lookTool(t, "curl", "curl")
	l := lab.New(t, lab.Options{Hosts: 3})
	bin := testbed.BrtunBinary(t)
	openflow := fmt.Sprintf("tcp:%s:%d", l.ControllerIP, testbed.FreePort(t, l.ControllerIP))
	server := startServe(t, bin, "BRTUN_OPENFLOW_LISTEN="+openflow, "BRTUN_OPENFLOW_ADVERTISE="+openflow)

	// The VMs the script binds: aN (tenant-a) and bN (tenant-b) on host hN,
	// interfaces taN and tbN, both at 198.18.0.N.
	vms := make(map[string]*lab.VM)
	for i, h := range l.Hosts {
		n := i + 1
		for _, tenant := range []string{"a", "b"} {
			name := fmt.Sprintf("%s%d", tenant, n)
			vms[name] = l.AddVM(t, h, lab.VMOptions{
				Name: name, MAC: fmt.Sprintf("02:00:00:00:0%s:0%d", tenant, n), CIDR: fmt.Sprintf("198.18.0.%d/24", n),
			})
		}
	}

	// Every write waits until every bridge it touches has applied it.
	out := runScript(t, bin, server, []string{"WAIT=30s", "DATAPATH_TYPE=netdev"}, "up")
	t.Logf("two-tenants.sh up:\n%s", out)

	var hosts struct {
		Hosts []struct {
			Name   string `json:"name"`
			Status struct {
				OVSDB   string `json:"ovsdb"`
				Bridges map[string]struct {
					OpenFlow string `json:"openflow"`
				} `json:"bridges"`
			} `json:"status"`
		} `json:"hosts"`
	}
	getJSON(t, server+"/v1/hosts", &hosts)
	require.Len(t, hosts.Hosts, 3)
	for _, h := range hosts.Hosts {
		assert.Equal(t, "connected", h.Status.OVSDB, h.Name)
		for _, br := range []string{"br-int", "br-tun"} {
			assert.Equal(t, "connected", h.Status.Bridges[br].OpenFlow, "%s %s", h.Name, br)
		}
	}
	for _, tenant := range []string{"a", "b"} {
		var ports struct {
			Ports []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"ports"`
		}
		getJSON(t, server+"/v1/networks/tenant-"+tenant+"/ports", &ports)
		require.Len(t, ports.Ports, 3)
		for _, p := range ports.Ports {
			assert.Equal(t, "bound", p.Status, "port %s", p.Name)
		}
	}

	// Each VM pings the other two hosts' addresses. Both tenants use the same
	// addresses, so the answer must come from the VM of the pinger's own
	// tenant (its MAC in the neighbour table) and only from it (no DUP!).
	for _, tenant := range []string{"a", "b"} {
		for from := 1; from <= 3; from++ {
			vm := vms[fmt.Sprintf("%s%d", tenant, from)]
			for to := 1; to <= 3; to++ {
				if to == from {
					continue
				}
				ip := fmt.Sprintf("198.18.0.%d", to)
				ok, out := vm.Ping(ip, 3)
				require.True(t, ok, "%s -> %s: %s", vm.Name, ip, out)
				assert.NotContains(t, out, "DUP!", "%s -> %s answered twice: %s", vm.Name, ip, out)
				neigh, err := vm.Run("ip", "neigh", "show", ip, "dev", "eth0")
				require.NoError(t, err, neigh)
				assert.Contains(t, neigh, fmt.Sprintf("lladdr 02:00:00:00:0%s:0%d", tenant, to),
					"%s resolved %s to the VM of its own tenant: %s", vm.Name, ip, strings.TrimSpace(neigh))
			}
		}
	}

	runScript(t, bin, server, []string{"WAIT=30s"}, "down")
	getJSON(t, server+"/v1/hosts", &hosts)
	assert.Empty(t, hosts.Hosts)
}
