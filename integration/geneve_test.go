//go:build integration

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// geneveTx reads statistics:tx_packets of a tunnel interface from OVSDB,
// after revalidator/wait so the datapath's counts are in. ovs-vswitchd
// writes statistics every few seconds, so callers poll.
func geneveTx(t *testing.T, h *lab.Host, iface string) uint64 {
	t.Helper()
	out, err := h.Appctl("revalidator/wait")
	require.NoError(t, err, out)
	out, err = h.Vsctl("get", "Interface", iface, "statistics:tx_packets")
	require.NoError(t, err, out)
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	require.NoError(t, err, out)
	return n
}

// TestGeneveBesideVXLANAndGRE: three hosts and three tenants, VXLAN 5001,
// GRE 5001 and Geneve 5001, whose VMs use the same addresses 198.18.0.N on
// host N. Every host gets OVS type=geneve tunnel ports (UDP 6081, the
// default, so no dst_port) beside the VXLAN and GRE ones. Pings inside each
// tenant work; no tenant reaches an address only another tenant has
// (198.18.0.4 is VXLAN's, .5 Geneve's, .6 GRE's), each negative check
// beside its positive control; the Geneve tunnel's tx counter rises with
// Geneve traffic. A SIGKILL and restart of brtun changes no flow and loses
// no Geneve ping, and a Geneve flow deleted by hand is repaired.
func TestGeneveBesideVXLANAndGRE(t *testing.T) {
	const drift = 2 * time.Second
	s := newScenario(t, 3, daemonOptions{Advertise: true, DriftInterval: drift})
	h1, h2, h3 := s.lab.Hosts[0], s.lab.Hosts[1], s.lab.Hosts[2]
	tenants := []struct {
		name string
		typ  topology.NetworkType
		tag  string // VM name prefix and MAC byte
		only int    // the host-part of the address only this tenant has
	}{
		{"vx", topology.VXLAN, "0a", 4},
		{"gr", topology.GRE, "0b", 6},
		{"gn", topology.Geneve, "0c", 5},
	}
	vms := map[string][]*tenantVM{} // per tenant, on h1, h2, h3
	only := map[string]*tenantVM{}  // per tenant, its own extra address
	for _, tn := range tenants {
		s.network(tn.name, tn.typ, 5001)
		for i, h := range s.lab.Hosts {
			vms[tn.name] = append(vms[tn.name], s.quietVM(h, fmt.Sprintf("%s%d", tn.name, i+1), tn.name,
				fmt.Sprintf("02:00:00:00:%s:%02x", tn.tag, i+1), fmt.Sprintf("198.18.0.%d/24", i+1)))
		}
		// The extra VM sits on h2 (VXLAN, GRE) or h3 (Geneve).
		host := h2
		if tn.typ == topology.Geneve {
			host = h3
		}
		only[tn.name] = s.quietVM(host, fmt.Sprintf("%s%d", tn.name, tn.only), tn.name,
			fmt.Sprintf("02:00:00:00:%s:%02x", tn.tag, tn.only), fmt.Sprintf("198.18.0.%d/24", tn.only))
	}
	s.waitApplied(40 * time.Second)

	// Every host tunnels to each other host with all three types; the
	// Geneve ports are OVS geneve interfaces on the default UDP port.
	for _, h := range s.lab.Hosts {
		ports := tunnelPorts(t, h)
		for _, peer := range s.lab.Hosts {
			if peer == h {
				continue
			}
			for _, typ := range []string{"vxlan", "gre", "geneve"} {
				require.Contains(t, ports, typ+"-"+ipHex(peer.TunnelIP), "%s's br-tun", h.Name)
			}
			gn := "geneve-" + ipHex(peer.TunnelIP)
			out, err := h.Vsctl("get", "Interface", gn, "type")
			require.NoError(t, err)
			assert.Equal(t, "geneve", strings.TrimSpace(out), "%s %s", h.Name, gn)
			out, err = h.Vsctl("get", "Interface", gn, "options")
			require.NoError(t, err)
			assert.Contains(t, out, `remote_ip="`+peer.TunnelIP+`"`, "%s %s", h.Name, gn)
			assert.NotContains(t, out, "dst_port", "%s %s: 6081 is the default", h.Name, gn)
		}
	}

	// The Geneve tunnel h1 -> h2 carries Geneve traffic: its tx counter rises.
	gnToH2 := "geneve-" + ipHex(h2.TunnelIP)
	txBefore := geneveTx(t, h1, gnToH2)
	gn := vms["gn"]
	ok, out := gn[0].Ping(gn[1].IP, 5)
	require.True(t, ok, "gn1 -> gn2 inside Geneve: %s", out)
	var txAfter uint64
	require.True(t, waitUntil(20*time.Second, func() bool {
		txAfter = geneveTx(t, h1, gnToH2)
		return txAfter >= txBefore+5
	}), "%s on h1: tx_packets %d before 5 Geneve pings, %d after", gnToH2, txBefore, txAfter)
	t.Logf("%s on h1: tx_packets %d -> %d", gnToH2, txBefore, txAfter)

	// Inside each tenant, every VM reaches the others and the tenant's own
	// extra address, and resolves the shared addresses to its own tenant's VMs.
	for _, tn := range tenants {
		v := vms[tn.name]
		for _, pair := range [][2]*tenantVM{{v[0], v[1]}, {v[0], v[2]}, {v[1], v[2]}, {v[0], only[tn.name]}} {
			ok, out := pair[0].Ping(pair[1].IP, 3)
			require.True(t, ok, "%s -> %s inside %s: %s", pair[0].Name, pair[1].Name, tn.name, out)
		}
		for _, peer := range v[1:] {
			neigh, err := v[0].Run("ip", "neigh", "show", peer.IP)
			require.NoError(t, err)
			require.Contains(t, neigh, peer.MAC, "%s must resolve %s to %s", v[0].Name, peer.IP, peer.Name)
		}
	}
	// Across tenants: nobody reaches an address only another tenant has,
	// while the owner does (positive control right beside).
	for _, owner := range tenants {
		target := only[owner.name]
		for _, other := range tenants {
			if other.name == owner.name {
				continue
			}
			ok, out := vms[other.name][0].Ping(target.IP, 3)
			require.False(t, ok, "%s (%s 5001) must not reach %s's %s: %s", other.name, other.typ, owner.name, target.IP, out)
			ok, out = vms[owner.name][0].Ping(target.IP, 2)
			require.True(t, ok, "positive control %s -> %s: %s", vms[owner.name][0].Name, target.IP, out)
		}
	}

	// Restart: SIGKILL and restart brtun while gn1 pings gn2 over Geneve;
	// no flow changes, no ping is lost.
	changes := watchFlows(t, h1, h2, h3)
	const count = 80
	ping := pingInBackground(gn[0], gn[1].IP, count)
	time.Sleep(time.Second)
	s.brtun.Kill()
	s.brtun.Start()
	s.waitApplied(30 * time.Second)
	requireNoLoss(t, <-ping, count, "Geneve ping across a brtun restart")
	require.Empty(t, changes(), "the restart must not add, modify or delete any flow")

	// Drift: the Geneve network's tunnel-in flow deleted by hand on h1 is
	// put back (by the flow monitor's report, at once, else within a drift
	// period), and Geneve traffic flows again. ovs-ofctl monitor shows the
	// deletion happened: a dump may come too late to see it.
	want := dumpFlows(t, h1, "br-tun")
	cookie := flows.NetworkCookie(topology.Geneve, 5001)
	watch := h1.Monitor(t, "br-tun")
	out, err := h1.Ofctl("del-flows", "br-tun", fmt.Sprintf("table=3,cookie=0x%x/-1", cookie))
	require.NoError(t, err, out)
	require.True(t, waitUntil(2*drift+5*time.Second, func() bool {
		return strings.Join(dumpFlows(t, h1, "br-tun"), "\n") == strings.Join(want, "\n")
	}), "drift not repaired; br-tun now:\n%s", strings.Join(dumpFlows(t, h1, "br-tun"), "\n"))
	require.Contains(t, strings.Join(flowEvents(watch()), "\n"), fmt.Sprintf("event=DELETED reason=delete table=3 cookie=0x%x", cookie),
		"the hand edit must have removed the flow")
	ok, out = gn[1].Ping(gn[0].IP, 3)
	require.True(t, ok, "gn2 -> gn1 after the repair: %s", out)
}
