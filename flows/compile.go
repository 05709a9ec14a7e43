package flows

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/brtun/brtun/topology"
)

// FlowSet is the complete desired flow set of one host, per bridge, in a
// deterministic order (table by table as the table files emit them).
type FlowSet struct {
	BrTun []Flow
	BrInt []Flow
	// LearnedCookies are the cookies learned flows may validly carry on this
	// host now, sorted: one per network with MAC learning, encoding (tunnel
	// type, segment id, local VLAN). A learned flow with any other cookie is
	// stale (its VLAN was released or reused) and must be deleted.
	LearnedCookies []uint64
	// Skipped says which parts of the view were left out and why (a tunnel
	// port without an ofport yet, a remote port with a bad MAC, ...).
	Skipped []string
}

// Flows returns the flows of one bridge.
func (s FlowSet) Flows(b Bridge) []Flow {
	if b == BrInt {
		return s.BrInt
	}
	return s.BrTun
}

// ValidLearned reports whether cookie is one of LearnedCookies.
func (s FlowSet) ValidLearned(cookie uint64) bool {
	_, found := slices.BinarySearch(s.LearnedCookies, cookie)
	return found
}

// StaleLearned reports whether a flow with this cookie was created by
// learn() for a (type, segment, VLAN) that this host no longer has: such a
// flow must be deleted. Non-learned cookies are never stale learned flows.
func (s FlowSet) StaleLearned(cookie uint64) bool {
	return IsLearned(cookie) && !s.ValidLearned(cookie)
}

// Compile returns the complete desired flows of one host's br-tun and br-int.
// It is pure and deterministic and never fails: parts of the view that
// cannot be compiled (a tunnel port with no ofport yet, a duplicate local
// VLAN, a malformed MAC) are left out and listed in FlowSet.Skipped.
func Compile(v View) FlowSet {
	c := newCompiler(v)
	var set FlowSet
	set.BrTun = append(set.BrTun, c.table0()...)
	set.BrTun = append(set.BrTun, c.table1()...)
	set.BrTun = append(set.BrTun, c.table2()...)
	set.BrTun = append(set.BrTun, c.table3()...)
	set.BrTun = append(set.BrTun, c.table10()...)
	set.BrTun = append(set.BrTun, c.table20()...)
	set.BrTun = append(set.BrTun, c.table21()...)
	set.BrTun = append(set.BrTun, c.table22()...)
	set.BrInt = c.brInt()
	set.LearnedCookies = c.learnedCookies()
	set.Skipped = c.skipped
	return set
}

// compiler holds one host's view, checked and indexed.
type compiler struct {
	host     string
	pipeline Pipeline
	patch    uint32 // 0: unknown
	// flowPorts: the tunnel ports are flow-based (View.TunnelPorts).
	flowPorts bool
	tunnels   []tunnel
	// tunnelOf maps type, then peer, to the tunnel used to reach the peer.
	tunnelOf map[topology.NetworkType]map[string]tunnel
	networks []NetworkView // valid ones, by local VLAN
	// netByName indexes networks.
	netByName map[string]int
	ports     []remotePort // valid, by network then name
	intPatch  uint32       // patch-tun on br-int; 0: unknown
	local     []localPort  // valid, by network then name
	downPorts []DownPort   // with a usable ofport, by ofport; checked before local
	skipped   []string

	// sourceMeter: View.SourceMeter.
	sourceMeter bool
}

// typedSegment identifies a network on the wire.
type typedSegment struct {
	typ     topology.NetworkType
	segment uint32
}

// tunnel is a usable TunnelPort: its ofport and, for a flow-based port,
// the peer's address (tun_dst out, tun_src in).
type tunnel struct {
	peer   string
	typ    topology.NetworkType
	ofport uint32
	ip     IPv4 // flow-based ports only
}

// remotePort is a RemotePort with parsed addresses, on a network of this host.
type remotePort struct {
	network NetworkView
	name    string
	tunnel  tunnel
	mac     MAC
	ipv4    []IPv4
	ipv6    []IPv6
}

func newCompiler(v View) *compiler {
	c := &compiler{
		host:      v.Host,
		pipeline:  Declared(),
		patch:     v.PatchIntOfport,
		flowPorts: v.TunnelPorts.Flow(),
		tunnelOf:  map[topology.NetworkType]map[string]tunnel{},
		netByName: map[string]int{},
	}
	if c.patch == 0 || c.patch >= PortMax {
		c.skip("patch-int has no usable ofport (%d): no traffic to or from br-int", c.patch)
		c.patch = 0
	}
	c.indexTunnels(v.Tunnels)
	c.indexNetworks(v.Networks)
	c.indexPorts(v.RemotePorts)
	c.intPatch = v.PatchTunOfport
	if c.intPatch >= PortMax {
		c.skip("patch-tun has no usable ofport (%d): no traffic between br-int and br-tun", c.intPatch)
		c.intPatch = 0
	}
	c.indexDownPorts(v.DownPorts)
	c.sourceMeter = v.SourceMeter // before indexLocalPorts, which reads it
	c.indexLocalPorts(v.LocalPorts)
	return c
}

func (c *compiler) skip(format string, args ...any) {
	c.skipped = append(c.skipped, fmt.Sprintf(format, args...))
}

// indexTunnels keeps tunnel ports with a usable ofport and known type, sorted
// by ofport, then peer; for each (peer, type) the lowest ofport is the one
// used. A per-peer port is one peer's alone; a flow-based port is shared by
// the peers of its type, each with an IPv4 address no other peer of the
// port has.
func (c *compiler) indexTunnels(in []TunnelPort) {
	ts := slices.Clone(in)
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Ofport != ts[j].Ofport {
			return ts[i].Ofport < ts[j].Ofport
		}
		return ts[i].PeerHost < ts[j].PeerHost
	})
	type use struct {
		ofport uint32
		ip     IPv4 // flow-based ports: one use per peer address
	}
	portType := map[uint32]topology.NetworkType{}
	seen := map[use]bool{}
	for _, t := range ts {
		tn := tunnel{peer: t.PeerHost, typ: t.Type, ofport: t.Ofport}
		var ipErr error
		if c.flowPorts {
			tn.ip, ipErr = parseTunnelIPv4(t.RemoteIP)
		}
		prevType, typed := portType[t.Ofport]
		switch {
		case t.Ofport == 0 || t.Ofport >= PortMax:
			c.skip("tunnel to %s (%s): no usable ofport (%d) yet", t.PeerHost, t.Type, t.Ofport)
			continue
		case !t.Type.Valid():
			c.skip("tunnel to %s at ofport %d: unknown type %q", t.PeerHost, t.Ofport, t.Type)
			continue
		case t.Ofport == c.patch:
			c.skip("tunnel to %s: ofport %d is patch-int's", t.PeerHost, t.Ofport)
			continue
		case ipErr != nil:
			c.skip("tunnel to %s (%s): %v", t.PeerHost, t.Type, ipErr)
			continue
		case c.flowPorts && typed && prevType != t.Type:
			c.skip("tunnel to %s (%s): ofport %d is a %s port", t.PeerHost, t.Type, t.Ofport, prevType)
			continue
		case seen[use{tn.ofport, tn.ip}] && c.flowPorts:
			c.skip("tunnel to %s: %s at ofport %d used twice", t.PeerHost, tn.ip, t.Ofport)
			continue
		case seen[use{tn.ofport, tn.ip}]:
			c.skip("tunnel to %s: ofport %d used twice", t.PeerHost, t.Ofport)
			continue
		}
		seen[use{tn.ofport, tn.ip}] = true
		portType[t.Ofport] = t.Type
		c.tunnels = append(c.tunnels, tn)
		byPeer := c.tunnelOf[t.Type]
		if byPeer == nil {
			byPeer = map[string]tunnel{}
			c.tunnelOf[t.Type] = byPeer
		}
		if _, dup := byPeer[t.PeerHost]; dup {
			c.skip("tunnel to %s (%s) at ofport %d: another one has a lower ofport, flooding uses that", t.PeerHost, t.Type, t.Ofport)
			continue
		}
		byPeer[t.PeerHost] = tn
	}
}

// parseTunnelIPv4 parses the remote IP of a tunnel behind a flow-based port.
func parseTunnelIPv4(s string) (IPv4, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return IPv4{}, fmt.Errorf("remote IP %q: %w", s, err)
	case !a.Unmap().Is4():
		return IPv4{}, fmt.Errorf("remote IP %s: flow-based tunnel ports carry IPv4 tunnel IPs only", a)
	}
	return a.Unmap().As4(), nil
}

// send is the actions that send a frame, untagged and with its tun_id
// set, through tunnel t: output to its port, after setting tun_dst to the
// peer's address when the port is flow-based.
func (c *compiler) send(t tunnel) []Action {
	if c.flowPorts {
		return []Action{SetIPv4(FieldTunIPv4Dst, t.ip), Output{Port: t.ofport}}
	}
	return []Action{Output{Port: t.ofport}}
}

// from is table 0's match of a frame that came through tunnel t: its port
// and, when the port is flow-based, the peer's address as tun_src.
func (c *compiler) from(t tunnel) Match {
	m := Match{InPort: Ptr(t.ofport)}
	if c.flowPorts {
		m.TunSrc = Ptr(t.ip)
	}
	return m
}

// indexNetworks keeps networks with a valid type, segment id and local VLAN,
// sorted by VLAN; the first of duplicates (by VLAN order, then name) wins.
func (c *compiler) indexNetworks(in []NetworkView) {
	ns := slices.Clone(in)
	sort.SliceStable(ns, func(i, j int) bool {
		if ns[i].LocalVLAN != ns[j].LocalVLAN {
			return ns[i].LocalVLAN < ns[j].LocalVLAN
		}
		return ns[i].Name < ns[j].Name
	})
	vlans := map[uint16]string{}
	segments := map[typedSegment]string{}
	for _, n := range ns {
		segKey := typedSegment{n.Type, n.SegmentID}
		vlanOwner, vlanTaken := vlans[n.LocalVLAN]
		segOwner, segTaken := segments[segKey]
		_, nameTaken := c.netByName[n.Name]
		switch {
		case !n.Type.Valid():
			c.skip("network %s: unknown type %q", n.Name, n.Type)
			continue
		case n.SegmentID > n.Type.MaxSegment():
			c.skip("network %s: %s segment %d out of range", n.Name, n.Type, n.SegmentID)
			continue
		case n.LocalVLAN < 1 || n.LocalVLAN > 4094:
			c.skip("network %s: local VLAN %d out of 1..4094", n.Name, n.LocalVLAN)
			continue
		case vlanTaken:
			c.skip("network %s: local VLAN %d already used by %s", n.Name, n.LocalVLAN, vlanOwner)
			continue
		case segTaken:
			c.skip("network %s: %s segment %d already used by %s", n.Name, n.Type, n.SegmentID, segOwner)
			continue
		case nameTaken:
			c.skip("network %s: listed twice", n.Name)
			continue
		}
		vlans[n.LocalVLAN] = n.Name
		segments[segKey] = n.Name
		c.netByName[n.Name] = len(c.networks)
		c.networks = append(c.networks, n)
	}
}

// floodTunnels returns the tunnels of the peers carrying n, by ofport (then
// address) and without repeats (this host and unknown peers left out).
func (c *compiler) floodTunnels(n NetworkView) []tunnel {
	out := make([]tunnel, 0, len(n.Peers))
	byPeer := c.tunnelOf[n.Type]
	var missing map[string]bool
	for _, p := range n.Peers {
		if p == c.host {
			continue
		}
		of, ok := byPeer[p]
		if !ok {
			if !missing[p] {
				c.skip("network %s: peer %q has no %s tunnel port yet", n.Name, p, n.Type)
			}
			if missing == nil {
				missing = map[string]bool{}
			}
			missing[p] = true
			continue
		}
		out = append(out, of)
	}
	slices.SortFunc(out, func(a, b tunnel) int {
		if c := cmp.Compare(a.ofport, b.ofport); c != 0 {
			return c
		}
		return slices.Compare(a.ip[:], b.ip[:])
	})
	return slices.CompactFunc(out, func(a, b tunnel) bool { return a.ofport == b.ofport && a.ip == b.ip })
}

// indexPorts keeps remote ports of this host's networks whose peer has a
// tunnel port, with parsed MAC and IPs, by network then name. Ports of this
// host and of networks not present here are not this host's business.
func (c *compiler) indexPorts(in []RemotePort) {
	ps := slices.Clone(in)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Network != ps[j].Network {
			return ps[i].Network < ps[j].Network
		}
		return ps[i].Name < ps[j].Name
	})
	type netMAC struct {
		net string
		mac MAC
	}
	type netIP struct {
		net string
		ip  netip.Addr
	}
	macs := map[netMAC]string{}
	ips := map[netIP]string{}
	// The peers of each network as a set, made when its first port is
	// checked: a network on every host has as many ports as peers.
	peers := map[string]map[string]bool{}
	for _, p := range ps {
		i, ok := c.netByName[p.Network]
		if !ok || p.Host == c.host {
			continue
		}
		n := c.networks[i]
		if peers[n.Name] == nil {
			peers[n.Name] = make(map[string]bool, len(n.Peers))
			for _, h := range n.Peers {
				peers[n.Name][h] = true
			}
		}
		if !peers[n.Name][p.Host] {
			c.skip("port %s/%s: host %s is not a peer of the network here", p.Network, p.Name, p.Host)
			continue
		}
		tunnel, ok := c.tunnelOf[n.Type][p.Host]
		if !ok {
			c.skip("port %s/%s: host %s has no %s tunnel port yet", p.Network, p.Name, p.Host, n.Type)
			continue
		}
		mac, err := ParseMAC(p.MAC)
		if err != nil || mac.IsMulticast() || mac == (MAC{}) {
			c.skip("port %s/%s: MAC %q is not a unicast Ethernet address", p.Network, p.Name, p.MAC)
			continue
		}
		if other, taken := macs[netMAC{p.Network, mac}]; taken {
			c.skip("port %s/%s: MAC %s already used by port %s", p.Network, p.Name, mac, other)
			continue
		}
		macs[netMAC{p.Network, mac}] = p.Name
		rp := remotePort{network: n, name: p.Name, tunnel: tunnel, mac: mac}
		for _, s := range p.IPs {
			a, err := parseHostIP(s)
			if err != nil {
				c.skip("port %s/%s: IP %q: %v", p.Network, p.Name, s, err)
				continue
			}
			if other, taken := ips[netIP{p.Network, a}]; taken {
				c.skip("port %s/%s: IP %s already used by port %s", p.Network, p.Name, a, other)
				continue
			}
			ips[netIP{p.Network, a}] = p.Name
			if a.Is4() {
				rp.ipv4 = append(rp.ipv4, a.As4())
			} else {
				rp.ipv6 = append(rp.ipv6, a.As16())
			}
		}
		c.ports = append(c.ports, rp)
	}
}

// parseHostIP accepts "198.18.0.2", "198.18.0.2/24" or an IPv6 equivalent
// and returns the address.
func parseHostIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return netip.Addr{}, err
		}
		a = p.Addr()
	}
	a = a.Unmap()
	if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("not a unicast host address")
	}
	return a, nil
}

// learnedCookies lists the valid learned cookies, sorted.
func (c *compiler) learnedCookies() []uint64 {
	var out []uint64
	for _, n := range c.networks {
		if n.MACLearning {
			out = append(out, c.learnedCookie(n))
		}
	}
	slices.Sort(out)
	return out
}

// miss returns the declared miss flow of a br-tun or br-int table.
func (c *compiler) miss(b Bridge, table uint8) []Flow {
	t, ok := c.pipeline.Lookup(b, table)
	if !ok {
		return nil
	}
	return []Flow{t.missFlow()}
}
