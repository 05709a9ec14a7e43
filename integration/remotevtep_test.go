//go:build integration

package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// vtepsView is GET /v1/networks/{network}/vteps.
type vtepsView struct {
	VTEPs []struct {
		TunnelIP  string   `json:"tunnel_ip"`
		Kind      string   `json:"kind"`
		Host      string   `json:"host"`
		Name      string   `json:"name"`
		LearnedBy []string `json:"learned_by"`
		BGPPeers  []string `json:"bgp_peers"`
		MACs      int      `json:"macs"`
	} `json:"vteps"`
}

// learnedBy maps a network's VTEPs (by tunnel IP) to how they are known:
// "host:NAME" for brtun hosts, else the learned_by list.
func learnedBy(t *testing.T, d *daemon, network string) map[string]string {
	t.Helper()
	var v vtepsView
	d.MustDo(http.StatusOK, "GET", "/v1/networks/"+network+"/vteps", nil, &v)
	out := map[string]string{}
	for _, e := range v.VTEPs {
		if e.Kind == "host" {
			out[e.TunnelIP] = "host:" + e.Host
		} else {
			out[e.TunnelIP] = strings.Join(e.LearnedBy, ",")
		}
	}
	return out
}

// unicastEntry returns h's br-tun table 20 flow for mac at the priority of
// registered ports (2), or "".
func unicastEntry(t *testing.T, h *lab.Host, mac string) string {
	t.Helper()
	for _, l := range flowLines(t, h, "table=20,dl_dst="+mac) {
		if strings.Contains(l, "priority=2,") {
			return l
		}
	}
	return ""
}

// flowOwner returns the owner the flow endpoint names for h's br-tun
// table-20 flow towards mac.
func flowOwner(t *testing.T, d *daemon, h *lab.Host, mac string) string {
	t.Helper()
	var list struct {
		Flows []struct {
			Match string `json:"match"`
			Owner string `json:"owner"`
		} `json:"flows"`
	}
	d.MustDo(http.StatusOK, "GET", "/v1/hosts/"+h.Name+"/flows?table=20", nil, &list)
	for _, f := range list.Flows {
		if strings.Contains(f.Match, mac) {
			return f.Owner
		}
	}
	return ""
}

// TestStaticRemoteVTEP: a Linux host with a kernel VXLAN device (static FDB
// entries towards the OVS hosts) joins blue through POST /v1/remote-vteps.
// Both OVS hosts get a tunnel to it, flood to it and install its VM's MAC
// in table 20; pings work both ways; green, beside it, does not reach it
// while green's own VMs reach each other; deleting the remote VTEP cuts it
// off again while blue's own VMs still ping.
func TestStaticRemoteVTEP(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		s := newScenario(t, 2, daemonOptions{Advertise: true, TunnelPorts: mode})
		h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
		s.network("blue", topology.VXLAN, 5001)
		s.network("green", topology.VXLAN, 5002)
		a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
		a2 := s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
		g1 := s.vm(h1, "g1", "green", "02:00:00:00:02:01", "198.18.0.1/24")
		g2 := s.vm(h2, "g2", "green", "02:00:00:00:02:02", "198.18.0.2/24")

		k := s.lab.AddKernelHost(t, "k9", 9)
		k.AddVNI(t, 5001)
		for _, h := range []*lab.Host{h1, h2} {
			k.AddStaticFDB(t, 5001, "00:00:00:00:00:00", h.TunnelIP)
		}
		k.AddStaticFDB(t, 5001, a1.MAC, h1.TunnelIP)
		k.AddStaticFDB(t, 5001, a2.MAC, h2.TunnelIP)
		kv := k.AddVM(t, 5001, lab.VMOptions{Name: "kv", MAC: "02:00:00:00:09:01", CIDR: "198.18.0.9/24", Quiet: true})

		// A GRE network cannot take a remote VTEP.
		s.network("red", topology.GRE, 5001)
		var e map[string]any
		require.Equal(t, http.StatusBadRequest, s.brtun.Do("POST", "/v1/remote-vteps", map[string]any{
			"name": "k9", "tunnel_ip": k.TunnelIP, "networks": []string{"red"}}, &e), "GRE: %v", e)
		s.brtun.MustDo(http.StatusCreated, "POST", "/v1/remote-vteps", map[string]any{
			"name": "k9", "tunnel_ip": k.TunnelIP, "networks": []string{"blue"},
			"macs": []map[string]any{{"mac": kv.MAC, "ips": []string{kv.IP}}},
		}, nil)
		s.waitApplied(30 * time.Second)

		for _, h := range []*lab.Host{h1, h2} {
			require.NotEmpty(t, unicastEntry(t, h, kv.MAC), "%s: table 20 entry for the remote MAC", h.Name)
			require.Equal(t, "remote:static:k9:"+kv.MAC+"@"+k.TunnelIP, flowOwner(t, s.brtun, h, kv.MAC), "%s: owner of the remote MAC's flow", h.Name)
			require.True(t, hasTunnelFrom(t, h, mode, topology.VXLAN, k.TunnelIP), "%s: tunnel to the remote VTEP", h.Name)
		}
		require.Equal(t, map[string]string{h1.TunnelIP: "host:h1", h2.TunnelIP: "host:h2", k.TunnelIP: "static"},
			learnedBy(t, s.brtun, "blue"))

		for _, c := range []struct {
			from *lab.VM
			to   string
		}{{a1.VM, kv.IP}, {a2.VM, kv.IP}, {kv, a1.IP}, {kv, a2.IP}} {
			ok, out := c.from.Ping(c.to, 3)
			require.True(t, ok, "%s -> %s: %s", c.from.Name, c.to, out)
		}
		neigh, err := kv.Run("ip", "neigh", "show", a1.IP)
		require.NoError(t, err)
		require.Contains(t, neigh, a1.MAC, "kv must reach blue's a1, not green's g1 with the same address")

		// Isolation beside a positive control: green's VMs reach each other,
		// not the kernel host's VM.
		ok, out := g1.Ping(g2.IP, 3)
		require.True(t, ok, "green g1 -> g2 (control): %s", out)
		ok, out = g1.Ping(kv.IP, 3)
		require.False(t, ok, "green g1 must not reach blue's remote VM: %s", out)

		// Deleting the remote VTEP removes its tunnel, entries and flooding.
		s.brtun.MustDo(http.StatusNoContent, "DELETE", "/v1/remote-vteps/k9", nil, nil)
		s.waitApplied(30 * time.Second)
		s.settleDatapaths()
		for _, h := range []*lab.Host{h1, h2} {
			require.Empty(t, unicastEntry(t, h, kv.MAC), "%s: the remote MAC's entry must be gone", h.Name)
			require.False(t, hasTunnelFrom(t, h, mode, topology.VXLAN, k.TunnelIP), "%s: tunnel to the removed remote VTEP", h.Name)
		}
		ok, out = a1.Ping(a2.IP, 3)
		require.True(t, ok, "blue a1 -> a2 (control): %s", out)
		ok, out = a1.Ping(kv.IP, 3)
		require.False(t, ok, "a1 must not reach the removed remote VTEP's VM: %s", out)
		// The kernel host still sends to h1 and h2 (its static FDB): their
		// br-tun takes nothing from it any more (flow-based ports: table 0
		// drops its tun_src; per-peer: no port is towards it).
		ok, out = kv.Ping(a1.IP, 3)
		require.False(t, ok, "the removed remote VTEP's VM must not reach a1: %s", out)
	})
}
