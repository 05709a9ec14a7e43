package flows_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
)

// patchInt is patch-int's ofport on every test host's br-tun, patchTun
// patch-tun's on its br-int.
const (
	patchInt = 1
	patchTun = 1
)

// testNet is a network and the hosts it has ports on.
type testNet struct {
	name     string
	typ      topology.NetworkType
	seg      uint32
	hosts    []string
	learning bool
	routers  []string // NetworkView.RouterIPs
	nd       bool     // NetworkView.RouterND
}

// cluster is a small topology from which each host's View is derived the
// way the controller derives it: every host has a tunnel port of each of
// the cluster's types (VXLAN and GRE unless types says otherwise) to every
// other host; local VLANs are allocated per host, in network order, only
// for networks present there.
type cluster struct {
	hosts []string
	types []topology.NetworkType
	nets  []testNet
	ports []flows.RemotePort
	// locals are each host's ports on br-int; downs its administratively
	// down ones.
	locals map[string][]flows.LocalPort
	downs  map[string][]flows.DownPort
}

// tunnelTypes are the tunnel types of every host's ports.
func (c cluster) tunnelTypes() []topology.NetworkType {
	if c.types == nil {
		return []topology.NetworkType{topology.VXLAN, topology.GRE}
	}
	return c.types
}

// tunnelOfport is the ofport on host's br-tun of its tunnel to peer: from
// 2 on, per peer one port of each type in order.
func (c cluster) tunnelOfport(host, peer string, t topology.NetworkType) uint32 {
	k := 0
	for _, h := range c.hosts {
		if h == host {
			continue
		}
		if h == peer {
			break
		}
		k++
	}
	types := c.tunnelTypes()
	return uint32(2 + len(types)*k + slices.Index(types, t))
}

// peerOf returns which peer and tunnel type a tunnel ofport of host leads to.
func (c cluster) peerOf(host string, ofport uint32) (string, topology.NetworkType, bool) {
	for _, p := range c.hosts {
		if p == host {
			continue
		}
		for _, t := range c.tunnelTypes() {
			if c.tunnelOfport(host, p, t) == ofport {
				return p, t, true
			}
		}
	}
	return "", "", false
}

// vlan returns the local VLAN of network name on host (0: not present).
func (c cluster) vlan(host, name string) uint16 {
	var v uint16
	for _, n := range c.nets {
		if !slices.Contains(n.hosts, host) {
			continue
		}
		v++
		if n.name == name {
			return v
		}
	}
	return 0
}

// view is host's View.
func (c cluster) view(host string) flows.View {
	v := flows.View{Host: host, PatchIntOfport: patchInt, RemotePorts: c.ports, PatchTunOfport: patchTun,
		LocalPorts: c.locals[host], DownPorts: c.downs[host]}
	for _, p := range c.hosts {
		if p == host {
			continue
		}
		for _, t := range c.tunnelTypes() {
			v.Tunnels = append(v.Tunnels, flows.TunnelPort{
				Ofport: c.tunnelOfport(host, p, t), PeerHost: p, Type: t,
				RemoteIP: fmt.Sprintf("192.0.2.%d", slices.Index(c.hosts, p)+1),
			})
		}
	}
	for _, n := range c.nets {
		if !slices.Contains(n.hosts, host) {
			continue
		}
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: n.name, Type: n.typ, SegmentID: n.seg, LocalVLAN: c.vlan(host, n.name),
			MACLearning: n.learning, Peers: n.hosts, RouterIPs: n.routers, RouterND: n.nd,
		})
	}
	return v
}

// compile compiles host's view and validates the result.
func (c cluster) compile(t *testing.T, host string) flows.FlowSet {
	t.Helper()
	set := flows.Compile(c.view(host))
	require.NoError(t, flows.Validate(set))
	return set
}

// fabric simulates every host's br-tun and the tunnels between them.
type fabric struct {
	c    cluster
	sims map[string]*flowsim.Sim
}

func newFabric(t *testing.T, c cluster) *fabric {
	f := &fabric{c: c, sims: map[string]*flowsim.Sim{}}
	for _, h := range c.hosts {
		f.sims[h] = flowsim.New(c.compile(t, h).BrTun)
	}
	return f
}

// delivery is a frame that br-tun handed to br-int on host.
type delivery struct {
	host   string
	vlan   uint16
	packet flowsim.Packet
}

// result is what happened to a frame sent into one host's br-tun.
type result struct {
	local      []flowsim.Output // outputs of the first br-tun
	tunnels    []string         // "peer/type" the frame was tunnelled to
	deliveries []delivery       // frames handed to br-int, on any host
}

// fromVM sends a frame from a VM on host and network net: br-int tags it with
// the network's local VLAN and hands it to br-tun over the patch port.
func (f *fabric) fromVM(t *testing.T, host, net string, p flowsim.Packet) result {
	t.Helper()
	vid := f.c.vlan(host, net)
	require.NotZero(t, vid, "network %s is not on %s", net, host)
	p.InPort = patchInt
	p.VLANTCI = flows.VLANCFI | vid
	return f.inject(t, host, p)
}

// fromTunnel sends a frame that arrived at host through its tunnel of type
// typ from peer.
func (f *fabric) fromTunnel(t *testing.T, host, peer string, typ topology.NetworkType, p flowsim.Packet) result {
	t.Helper()
	p.InPort = f.c.tunnelOfport(host, peer, typ)
	return f.inject(t, host, p)
}

// inject runs p through host's br-tun and carries tunnelled copies to their
// peers' br-tun.
func (f *fabric) inject(t *testing.T, host string, p flowsim.Packet) result {
	t.Helper()
	res, err := f.sims[host].Run(p)
	require.NoError(t, err, "trace:\n%v", res.Trace)
	out := result{local: res.Outputs}
	for _, o := range res.Outputs {
		if o.Port == patchInt {
			vid, tagged := o.Packet.VLAN()
			require.True(t, tagged, "frame to br-int on %s must carry the local VLAN", host)
			out.deliveries = append(out.deliveries, delivery{host: host, vlan: vid, packet: o.Packet})
			continue
		}
		peer, typ, ok := f.c.peerOf(host, o.Port)
		require.True(t, ok, "%s: output to unknown port %d", host, o.Port)
		_, tagged := o.Packet.VLAN()
		require.False(t, tagged, "frames leave through a tunnel untagged")
		out.tunnels = append(out.tunnels, peer+"/"+string(typ))
		in := o.Packet
		in.Reg0 = 0 // metadata does not cross the tunnel
		in.InPort = f.c.tunnelOfport(peer, host, typ)
		res, err := f.sims[peer].Run(in)
		require.NoError(t, err, "trace on %s:\n%v", peer, res.Trace)
		for _, o2 := range res.Outputs {
			require.Equal(t, uint32(patchInt), o2.Port, "a frame from a tunnel only goes to br-int")
			vid, tagged := o2.Packet.VLAN()
			require.True(t, tagged)
			out.deliveries = append(out.deliveries, delivery{host: peer, vlan: vid, packet: o2.Packet})
		}
	}
	return out
}

// deliveredTo lists "host:vlan" for every delivery, sorted.
func (r result) deliveredTo() []string {
	var out []string
	for _, d := range r.deliveries {
		out = append(out, fmt.Sprintf("%s:%d", d.host, d.vlan))
	}
	slices.Sort(out)
	return out
}

func mac(t testing.TB, s string) flows.MAC {
	m, err := flows.ParseMAC(s)
	require.NoError(t, err)
	return m
}
