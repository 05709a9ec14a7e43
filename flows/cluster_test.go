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
// other host, or with flow-based ports (mode) one port of each type for
// all of them; local VLANs are allocated per host, in network order, only
// for networks present there. Host i (from 0) has tunnel IP 192.0.2.i+1.
type cluster struct {
	mode  topology.TunnelPortMode
	hosts []string
	types []topology.NetworkType
	nets  []testNet
	ports []flows.RemotePort
	// locals are each host's ports on br-int; downs its administratively
	// down ones.
	locals map[string][]flows.LocalPort
	downs  map[string][]flows.DownPort
	// sourceMeter is View.SourceMeter.
	sourceMeter bool
}

// tunnelTypes are the tunnel types of every host's ports.
func (c cluster) tunnelTypes() []topology.NetworkType {
	if c.types == nil {
		return []topology.NetworkType{topology.VXLAN, topology.GRE}
	}
	return c.types
}

// withMode returns c with tunnel-port mode m.
func (c cluster) withMode(m topology.TunnelPortMode) cluster {
	c.mode = m
	return c
}

// ip is the tunnel IP of host.
func (c cluster) ip(host string) flows.IPv4 {
	return flows.IPv4{192, 0, 2, byte(slices.Index(c.hosts, host) + 1)}
}

// tunnelOfport is the ofport on host's br-tun of its tunnel to peer: from
// 2 on, per peer one port of each type in order; with flow-based ports,
// one port of each type in order, whatever the peer.
func (c cluster) tunnelOfport(host, peer string, t topology.NetworkType) uint32 {
	if c.mode.Flow() {
		return uint32(2 + slices.Index(c.tunnelTypes(), t))
	}
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

// peerOf returns which peer and tunnel type a packet leaving host through a
// tunnel ofport goes to: the port's, or with flow-based ports the host at
// the packet's tun_dst.
func (c cluster) peerOf(host string, ofport uint32, p flowsim.Packet) (string, topology.NetworkType, bool) {
	for _, peer := range c.hosts {
		if peer == host || c.mode.Flow() && c.ip(peer) != p.TunDst {
			continue
		}
		for _, t := range c.tunnelTypes() {
			if c.tunnelOfport(host, peer, t) == ofport {
				return peer, t, true
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
	v := flows.View{Host: host, TunnelPorts: c.mode, PatchIntOfport: patchInt, RemotePorts: c.ports, PatchTunOfport: patchTun,
		LocalPorts: c.locals[host], DownPorts: c.downs[host], SourceMeter: c.sourceMeter}
	for _, p := range c.hosts {
		if p == host {
			continue
		}
		for _, t := range c.tunnelTypes() {
			v.Tunnels = append(v.Tunnels, flows.TunnelPort{
				Ofport: c.tunnelOfport(host, p, t), PeerHost: p, Type: t,
				RemoteIP: c.ip(p).String(),
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
	p.TunSrc, p.TunDst = f.c.ip(peer), f.c.ip(host)
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
		peer, typ, ok := f.c.peerOf(host, o.Port, o.Packet)
		require.True(t, ok, "%s: output to unknown port %d (tun_dst %s)", host, o.Port, o.Packet.TunDst)
		_, tagged := o.Packet.VLAN()
		require.False(t, tagged, "frames leave through a tunnel untagged")
		out.tunnels = append(out.tunnels, peer+"/"+string(typ))
		in := o.Packet
		in.Reg0 = 0 // metadata does not cross the tunnel
		in.InPort = f.c.tunnelOfport(peer, host, typ)
		in.TunSrc, in.TunDst = f.c.ip(host), f.c.ip(peer)
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
