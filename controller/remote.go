package controller

import (
	"slices"
	"strings"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// Remote VTEPs are hosts brtun does not program and their MACs are ports
// brtun does not bind: static ones (topology.RemoteVTEP) and those the BGP
// EVPN speaker imported (topology.EVPNRoutes) enter the same view as other
// hosts and their ports, so flows.Compile needs nothing new.

// remotePeerName is the peer name of a remote VTEP in the tunnel mesh and
// the flood lists: host names cannot contain ':', so it names no host. It
// depends on the tunnel IP alone, so the tunnel's cookie and port stay the
// same whichever way the VTEP was learned.
func remotePeerName(ip string) string { return "vtep:" + ip }

// remotePortName is the name of a remote MAC as a port: its cookie derives
// from (network, MAC, VTEP), never from a route's path or origin.
func remotePortName(mac, vtep string) string { return mac + "@" + vtep }

// remoteMAC is a remote MAC of one network and where it came from.
type remoteMAC struct {
	port  flows.RemotePort
	owner string // "static:VTEPNAME" or "evpn:PEER"
}

// remoteState is the remote part of one revision, per network.
type remoteState struct {
	vteps map[string][]string    // tunnel IPs by network, sorted
	macs  map[string][]remoteMAC // by network, sorted by MAC
	// owners names the origin of each remote MAC's flows by port id.
	owners map[uint32]string
	// superseded are registered ports' MACs (by network) that moved behind
	// a remote VTEP: the EVPN speaker imports a remote route for a local
	// MAC only when it won MAC mobility (a higher sequence number), so the
	// remote entry replaces the port's on the other hosts.
	superseded map[string]map[string]bool
}

// newRemoteState collects the remote VTEPs and MACs of snap. Registered
// ports win over remote MACs, static over EVPN; remote VTEPs at a brtun
// host's tunnel IP are left out.
func newRemoteState(snap topology.Snapshot, byNetwork map[string][]*topology.Port) remoteState {
	rs := remoteState{vteps: map[string][]string{}, macs: map[string][]remoteMAC{}, owners: map[uint32]string{},
		superseded: map[string]map[string]bool{}}
	hostIPs := map[string]bool{}
	for _, h := range snap.Hosts {
		hostIPs[h.TunnelIP] = true
	}
	tunnelled := func(name string) bool {
		n, ok := snap.Network(name)
		return ok && (n.Type == topology.VXLAN || n.Type == topology.Geneve)
	}
	addVTEP := func(network, ip string) {
		if !hostIPs[ip] && !slices.Contains(rs.vteps[network], ip) {
			rs.vteps[network] = append(rs.vteps[network], ip)
		}
	}
	type netMAC struct{ network, mac string }
	ports := map[netMAC]bool{} // registered ports' MACs
	for network, list := range byNetwork {
		for _, p := range list {
			ports[netMAC{network, p.MAC}] = true
		}
	}
	isPort := func(network, mac string) bool { return ports[netMAC{network, mac}] }
	remote := map[netMAC]bool{} // a set, not a scan: an import holds hundreds of MACs
	addMAC := func(network, mac string, ips []string, vtep, owner string, overPorts bool) {
		if hostIPs[vtep] || remote[netMAC{network, mac}] {
			return
		}
		if isPort(network, mac) {
			if !overPorts {
				return
			}
			if rs.superseded[network] == nil {
				rs.superseded[network] = map[string]bool{}
			}
			rs.superseded[network][mac] = true
		}
		p := flows.RemotePort{Network: network, Name: remotePortName(mac, vtep), Host: remotePeerName(vtep), MAC: mac, IPs: ips}
		remote[netMAC{network, mac}] = true
		rs.macs[network] = append(rs.macs[network], remoteMAC{port: p, owner: owner})
		rs.owners[flows.PortID(network, p.Name)] = owner + ":" + mac + "@" + vtep
	}
	for _, v := range snap.RemoteVTEPs {
		for _, n := range v.Networks {
			if !tunnelled(n) {
				continue
			}
			addVTEP(n, v.TunnelIP)
			for _, m := range v.MACs {
				addMAC(n, m.MAC, m.IPs, v.TunnelIP, "static:"+v.Name, false) // a registered port wins
			}
		}
	}
	byVNI := map[uint32]string{}
	for _, n := range snap.Networks {
		if n.EVPN && n.Type == topology.VXLAN {
			byVNI[n.SegmentID] = n.Name
		}
	}
	for _, en := range snap.EVPN.Networks {
		n, ok := byVNI[en.VNI]
		if !ok {
			continue
		}
		for _, v := range en.VTEPs {
			addVTEP(n, v.IP)
		}
		for _, m := range en.MACs {
			addMAC(n, m.MAC, m.IPs, m.VTEP, "evpn:"+m.Peer, true) // imported only when it won MAC mobility
		}
	}
	for n, list := range rs.vteps {
		slices.SortFunc(list, compareIP)
		rs.vteps[n] = list
	}
	for n, list := range rs.macs {
		slices.SortFunc(list, func(a, b remoteMAC) int { return strings.Compare(a.port.MAC, b.port.MAC) })
		rs.macs[n] = list
	}
	return rs
}

// compareIP orders dotted addresses by length first, so 192.0.2.9 comes
// before 192.0.2.10 for IPv4 addresses of the same prefix length.
func compareIP(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// addRemote adds the remote VTEPs and MACs of network nv to v and to the
// host's remote tunnel peers.
func (rs remoteState) addRemote(v *flows.View, nv *flows.NetworkView, peers map[string][]topology.NetworkType) {
	for _, ip := range rs.vteps[nv.Name] {
		nv.Peers = append(nv.Peers, remotePeerName(ip))
		if !slices.Contains(peers[ip], nv.Type) {
			peers[ip] = append(peers[ip], nv.Type)
		}
	}
	for _, m := range rs.macs[nv.Name] {
		if ip := strings.TrimPrefix(m.port.Host, "vtep:"); !slices.Contains(peers[ip], nv.Type) {
			peers[ip] = append(peers[ip], nv.Type) // a MAC's VTEP needs a tunnel, flooded to or not
		}
		v.RemotePorts = append(v.RemotePorts, m.port)
	}
}

// remotePeers turns the host's remote tunnel peers into OVSDB peers,
// sorted by IP, each with its types in table order.
func remotePeers(peers map[string][]topology.NetworkType) []ovsdb.Peer {
	out := make([]ovsdb.Peer, 0, len(peers))
	for ip, types := range peers {
		p := ovsdb.Peer{Name: remotePeerName(ip), IP: ip}
		for _, tt := range topology.TunnelTypes() {
			if slices.Contains(types, tt.Name) {
				p.Types = append(p.Types, tt.Name)
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ovsdb.Peer) int { return compareIP(a.IP, b.IP) })
	return out
}
