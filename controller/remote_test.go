package controller

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// remoteSnapshot is testSnapshot with blue on EVPN, a static remote VTEP
// in blue and green, and imported EVPN routes.
func remoteSnapshot() topology.Snapshot {
	snap := testSnapshot()
	snap.Networks[0].EVPN = true
	snap.RemoteVTEPs = []topology.RemoteVTEP{{
		Name: "k9", TunnelIP: "198.51.100.9", Networks: []string{"blue", "green"},
		MACs: []topology.RemoteMAC{
			{MAC: "02:00:00:00:09:01", IPs: []string{"10.0.0.9"}},
			{MAC: "02:00:00:00:01:02"}, // a2's, a registered port: the port wins
		},
	}}
	snap.EVPN = topology.EVPNRoutes{Networks: []topology.EVPNNetwork{
		{VNI: 5001, VTEPs: []topology.EVPNVTEP{
			{IP: "198.51.100.9", Peer: "203.0.113.1"},  // also static
			{IP: "198.51.100.20", Peer: "203.0.113.1"}, // EVPN only
			{IP: "198.51.100.2", Peer: "203.0.113.1"},  // h2's own: ignored
		}, MACs: []topology.EVPNMAC{
			{MAC: "02:00:00:00:20:01", IPs: []string{"10.0.0.20"}, VTEP: "198.51.100.20", Peer: "203.0.113.1"},
			{MAC: "02:00:00:00:09:01", VTEP: "198.51.100.20", Peer: "203.0.113.1"}, // static has it
		}},
		{VNI: 5002, VTEPs: []topology.EVPNVTEP{{IP: "198.51.100.30", Peer: "203.0.113.1"}}}, // green is not EVPN
	}}
	return snap
}

func TestRemoteVTEPsAreHostsAndTheirMACsPorts(t *testing.T) {
	in := h1Inputs(t, remoteSnapshot())
	vxlan := []topology.NetworkType{topology.VXLAN}
	assert.Equal(t, []ovsdb.Peer{
		{Name: "vtep:198.51.100.9", IP: "198.51.100.9", Types: vxlan},
		{Name: "vtep:198.51.100.20", IP: "198.51.100.20", Types: vxlan},
	}, in.remotes)
	spec := in.tunnels()
	assert.Equal(t, in.remotes, spec.Peers[2:], "remote VTEPs join the host's tunnel mesh")

	peers := map[string][]string{}
	for _, n := range in.view.Networks {
		peers[n.Name] = n.Peers
	}
	assert.Equal(t, []string{"h2", "vtep:198.51.100.20", "vtep:198.51.100.9"}, peers["blue"])
	assert.Equal(t, []string{"vtep:198.51.100.9"}, peers["green"], "static only: green is not EVPN")

	var remote []flows.RemotePort
	for _, p := range in.view.RemotePorts {
		if p.Host != "h2" {
			remote = append(remote, p)
		}
	}
	assert.Equal(t, []flows.RemotePort{
		{Network: "blue", Name: "02:00:00:00:09:01@198.51.100.9", Host: "vtep:198.51.100.9", MAC: "02:00:00:00:09:01", IPs: []string{"10.0.0.9"}},
		{Network: "blue", Name: "02:00:00:00:20:01@198.51.100.20", Host: "vtep:198.51.100.20", MAC: "02:00:00:00:20:01", IPs: []string{"10.0.0.20"}},
		{Network: "green", Name: "02:00:00:00:01:02@198.51.100.9", Host: "vtep:198.51.100.9", MAC: "02:00:00:00:01:02"}, // a2 is blue's
		{Network: "green", Name: "02:00:00:00:09:01@198.51.100.9", Host: "vtep:198.51.100.9", MAC: "02:00:00:00:09:01", IPs: []string{"10.0.0.9"}},
	}, remote)

	// Compiled: the remote MAC goes to the VTEP's tunnel port, and
	// flooding includes it.
	v := buildView(in, ovsdb.Facts{
		Bridges: map[string]ovsdb.BridgeFacts{BrTun: {PatchOFPort: 1}},
		Tunnels: []ovsdb.TunnelPort{
			{PeerName: "h2", PeerIP: "198.51.100.2", Type: topology.VXLAN, OFPort: 2},
			{PeerName: "vtep:198.51.100.9", PeerIP: "198.51.100.9", Type: topology.VXLAN, OFPort: 3},
			{PeerName: "vtep:198.51.100.20", PeerIP: "198.51.100.20", Type: topology.VXLAN, OFPort: 4},
		},
	})
	fs := flows.Compile(v)
	var unicast, flood []string
	for _, f := range fs.BrTun {
		switch {
		case f.Table == flows.TableUnicast && f.Priority == 2:
			unicast = append(unicast, f.String())
		case f.Table == flows.TableFlood && f.Priority == 1 && f.Cookie == flows.NetworkCookie(topology.VXLAN, 5001):
			flood = append(flood, f.String())
		}
	}
	assert.Contains(t, unicast, fmt.Sprintf("cookie=0x%x, table=20, priority=2,dl_vlan=1,dl_dst=02:00:00:00:09:01 actions=pop_vlan,set_field:0x1389->tun_id,output:3",
		flows.PortCookie("blue", "02:00:00:00:09:01@198.51.100.9")))
	assert.Len(t, flood, 1)
	assert.Contains(t, flood[0], "output:2,output:3,output:4")
}

func TestRemoteMACCookieDependsOnNetworkMACAndVTEPOnly(t *testing.T) {
	static := remoteSnapshot()
	evpn := remoteSnapshot()
	evpn.RemoteVTEPs = nil
	evpn.EVPN.Networks[0].MACs = append(evpn.EVPN.Networks[0].MACs[:1],
		topology.EVPNMAC{MAC: "02:00:00:00:09:01", IPs: []string{"10.0.0.9"}, VTEP: "198.51.100.9", Peer: "203.0.113.7"})
	port := func(snap topology.Snapshot) flows.RemotePort {
		for _, p := range h1Inputs(t, snap).view.RemotePorts {
			if p.Network == "blue" && p.MAC == "02:00:00:00:09:01" {
				return p
			}
		}
		t.Fatal("no remote port")
		return flows.RemotePort{}
	}
	assert.Equal(t, port(static), port(evpn), "a MAC learned statically or over EVPN, from any peer, is the same port")
	d := newDesiredState(evpn, topology.PerPeerTunnels)
	assert.Equal(t, "evpn:203.0.113.7:02:00:00:00:09:01@198.51.100.9",
		d.remote.owners[flows.PortID("blue", "02:00:00:00:09:01@198.51.100.9")])
}

func TestRemoteStateChangesTheDigest(t *testing.T) {
	base := h1Digest(t, testSnapshot())
	with := h1Digest(t, remoteSnapshot())
	assert.NotEqual(t, base.brTun, with.brTun)
	assert.Equal(t, base.brInt, with.brInt, "br-int does not depend on remote VTEPs")
	again := h1Digest(t, remoteSnapshot())
	assert.Equal(t, with, again)
}

// TestEVPNMACMobilitySupersedesAPort: the speaker imports a route for a
// registered port's MAC only when the remote side won MAC mobility (the VM
// moved behind the fabric): the other hosts then send that MAC to the
// remote VTEP instead of the port's host, with one entry, not two.
func TestEVPNMACMobilitySupersedesAPort(t *testing.T) {
	snap := remoteSnapshot()
	snap.EVPN.Networks[0].MACs = append(snap.EVPN.Networks[0].MACs,
		topology.EVPNMAC{MAC: "02:00:00:00:01:02", VTEP: "198.51.100.20", Peer: "203.0.113.1"}) // a2 (h2) moved
	var a2 []flows.RemotePort
	for _, p := range h1Inputs(t, snap).view.RemotePorts {
		if p.Network == "blue" && p.MAC == "02:00:00:00:01:02" {
			a2 = append(a2, p)
		}
	}
	assert.Equal(t, []flows.RemotePort{{Network: "blue", Name: "02:00:00:00:01:02@198.51.100.20", Host: "vtep:198.51.100.20", MAC: "02:00:00:00:01:02"}}, a2)

	// Without the import (the port won back), h1 sends it to h2 again.
	a2 = nil
	for _, p := range h1Inputs(t, remoteSnapshot()).view.RemotePorts {
		if p.Network == "blue" && p.MAC == "02:00:00:00:01:02" {
			a2 = append(a2, p)
		}
	}
	require.Len(t, a2, 1)
	assert.Equal(t, "h2", a2[0].Host)
}
