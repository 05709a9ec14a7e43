//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// TestThreeTenantsEndToEnd drives everything through the REST API: three
// hosts; blue (VXLAN 5001), red (GRE 5001) and green (VXLAN 5002) all use
// 198.18.0.0/24. Pings inside each network succeed, none crosses networks
// (each negative check beside its positive control), red and blue share a
// segment id and stay apart; the flow endpoint shows the learn flow;
// deleting a host removes its tunnel ports everywhere; deleting a network
// removes its flows and its tags.
func TestThreeTenantsEndToEnd(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		s := newScenario(t, 3, daemonOptions{Advertise: true, TunnelPorts: mode})
		h1, h2, h3 := s.lab.Hosts[0], s.lab.Hosts[1], s.lab.Hosts[2]
		s.network("blue", topology.VXLAN, 5001)
		s.network("red", topology.GRE, 5001)
		s.network("green", topology.VXLAN, 5002)

		b1 := s.vm(h1, "b1", "blue", "02:00:00:00:0b:01", "198.18.0.1/24")
		b2 := s.vm(h2, "b2", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
		b3 := s.vm(h3, "b3", "blue", "02:00:00:00:0b:03", "198.18.0.3/24")
		r1 := s.vm(h1, "r1", "red", "02:00:00:00:0e:01", "198.18.0.1/24")
		r2 := s.vm(h2, "r2", "red", "02:00:00:00:0e:02", "198.18.0.2/24")
		g1 := s.vm(h1, "g1", "green", "02:00:00:00:06:01", "198.18.0.1/24")
		g3 := s.vm(h3, "g3", "green", "02:00:00:00:06:03", "198.18.0.3/24")
		s.waitApplied(30 * time.Second)

		for _, pair := range [][2]*tenantVM{{b1, b2}, {b1, b3}, {r1, r2}, {g1, g3}} {
			ok, out := pair[0].Ping(pair[1].IP, 3)
			require.True(t, ok, "%s -> %s inside %s: %s", pair[0].Name, pair[1].Name, pair[0].Network, out)
		}
		neigh, err := b1.Run("ip", "neigh", "show", "198.18.0.2")
		require.NoError(t, err)
		require.Contains(t, neigh, b2.MAC, "b1 must resolve 198.18.0.2 to b2 (blue), never to r2 (red)")

		// red and blue share segment 5001 (GRE key vs VXLAN VNI): only blue has .3.
		ok, out := r1.Ping(b3.IP, 3)
		require.False(t, ok, "red (GRE 5001) must not reach blue's b3 (VXLAN 5001): %s", out)
		ok, out = b1.Ping(b3.IP, 2)
		require.True(t, ok, "positive control b1 -> b3: %s", out)
		// green has no .2: only blue and red do.
		ok, out = g1.Ping(b2.IP, 3)
		require.False(t, ok, "green must not reach blue's or red's 198.18.0.2: %s", out)
		ok, out = r1.Ping(r2.IP, 2)
		require.True(t, ok, "positive control r1 -> r2: %s", out)

		// The flow endpoint reads the switch: table 10 holds the learn flows.
		var dump struct {
			Flows []struct {
				Table   int    `json:"table"`
				Cookie  string `json:"cookie"`
				Actions string `json:"actions"`
				Owner   string `json:"owner"`
			} `json:"flows"`
		}
		s.brtun.MustDo(200, "GET", "/v1/hosts/h1/flows?bridge=br-tun&table=10", nil, &dump)
		var learn int
		for _, f := range dump.Flows {
			require.Equal(t, 10, f.Table)
			if strings.HasPrefix(f.Actions, "learn(") {
				learn++
			}
		}
		require.Equal(t, 3, learn, "one learn flow per network on h1: %+v", dump.Flows)
		s.brtun.MustDo(200, "GET", "/v1/hosts/h1/flows?bridge=br-tun&table=20", nil, &dump)
		owners := map[string]bool{}
		for _, f := range dump.Flows {
			owners[f.Owner] = true
		}
		assert.True(t, owners["learned"], "the pings must have left learned entries: %v", owners)
		assert.True(t, owners["port:b2"], "b2 is a known remote port on h1: %v", owners)

		// Deleting h3 removes its tunnels (per-peer: its ports; flow-based:
		// the table-0 flows taking its frames) on every other host.
		require.True(t, hasTunnelFrom(t, h1, mode, topology.VXLAN, h3.TunnelIP), "positive control: h1 tunnels to h3 before")
		s.brtun.MustDo(204, "DELETE", "/v1/hosts/h3?cascade=true&wait=20s", nil, nil)
		for _, h := range s.lab.Hosts[:2] {
			assert.False(t, hasTunnelFrom(t, h, mode, topology.VXLAN, h3.TunnelIP), "%s still tunnels to h3", h.Name)
		}
		require.True(t, hasTunnelFrom(t, h1, mode, topology.VXLAN, h2.TunnelIP), "positive control: h1 keeps its tunnel to h2")

		// Deleting green removes its flows and its tag on h1.
		greenCookie := fmt.Sprintf("cookie=0x%x", flows.NetworkCookie(topology.VXLAN, 5002))
		require.Contains(t, strings.Join(dumpFlows(t, h1, "br-tun"), "\n"), greenCookie, "positive control: green's flows are there")
		s.brtun.MustDo(204, "DELETE", "/v1/networks/green?cascade=true&wait=20s", nil, nil)
		require.NotContains(t, strings.Join(dumpFlows(t, h1, "br-tun"), "\n"), greenCookie, "green's flows must be gone")
		tag, _ := h1.Vsctl("--if-exists", "get", "port", g1.HostIface, "tag")
		require.Empty(t, strings.TrimSpace(strings.Trim(strings.TrimSpace(tag), "[]")), "g1's port must carry no tag any more")
		tag, err = h1.Vsctl("get", "port", b1.HostIface, "tag")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(b1.Port.LocalVLAN), strings.TrimSpace(tag), "positive control: b1 keeps its tag")
	})
}
