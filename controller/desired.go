package controller

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// desiredState is one revision of the desired state, indexed once when it
// arrives, so that what one host's reconcile reads costs in proportion to
// that host's share of the state, not to all of it.
type desiredState struct {
	snap      topology.Snapshot
	byHost    map[string][]*topology.Port // in snapshot order: by network, then name
	byNetwork map[string][]*topology.Port // in snapshot order: by name
	types     []topology.NetworkType      // the tunnel types some network uses, in table order
	// mesh sums every host's name and tunnel IP and the tunnel types: with
	// a host's own name it determines that host's tunnel peers, so a
	// host's digest need not go through all the others.
	mesh [32]byte
	// remote holds the remote VTEPs and MACs, static and EVPN, per network.
	remote remoteState
	// subnets are the subnets of each network, in snapshot order.
	subnets map[string][]topology.Subnet
	// tunnelPorts is the tunnel-port mode (Options.TunnelPorts).
	tunnelPorts topology.TunnelPortMode
	// networks sums, once per revision, what each network with a port
	// gives the hosts that carry it (see networkSum): a host's digest then
	// costs in proportion to its own ports and networks, not to the ports
	// of the other hosts.
	networks map[string]*networkSum
}

func newDesiredState(snap topology.Snapshot, tunnelPorts topology.TunnelPortMode) *desiredState {
	d := &desiredState{
		tunnelPorts: tunnelPorts,
		snap:        snap,
		byHost:      map[string][]*topology.Port{},
		byNetwork:   map[string][]*topology.Port{},
		subnets:     map[string][]topology.Subnet{},
	}
	for _, sn := range snap.Subnets {
		d.subnets[sn.Network] = append(d.subnets[sn.Network], sn)
	}
	for i := range snap.Ports {
		p := &snap.Ports[i]
		d.byHost[p.Host] = append(d.byHost[p.Host], p)
		d.byNetwork[p.Network] = append(d.byNetwork[p.Network], p)
	}
	used := map[topology.NetworkType]bool{}
	for _, n := range snap.Networks {
		used[n.Type] = true
	}
	for _, tt := range topology.TunnelTypes() {
		if used[tt.Name] {
			d.types = append(d.types, tt.Name)
		}
	}
	mesh := newSummer().num(uint64(len(snap.Hosts)))
	for _, h := range snap.Hosts {
		mesh.str(h.Name).str(h.TunnelIP)
	}
	mesh.num(uint64(len(d.types)))
	for _, t := range d.types {
		mesh.str(string(t))
	}
	d.mesh = mesh.sum()
	d.remote = newRemoteState(snap, d.byNetwork)
	d.networks = make(map[string]*networkSum, len(d.byNetwork))
	scratch := newSummer()
	for i := range snap.Networks {
		if n := &snap.Networks[i]; len(d.byNetwork[n.Name]) > 0 {
			d.networks[n.Name] = d.sumNetwork(n.Name, n, scratch)
		}
	}
	for name := range d.byNetwork {
		if d.networks[name] == nil { // ports of a network the snapshot lacks
			d.networks[name] = d.sumNetwork(name, nil, scratch)
		}
	}
	return d
}

// networkSum is what one network gives each host carrying it, summed once
// per revision: head covers the network itself (what addNetwork reads of
// it besides the ports) and entries each carrier's ports as the other
// carriers see them, in host order. A host's view of the network leaves
// its own entry out: prefix[i] chains entries[:i] and suffix[i]
// entries[i:], so the sum of every entry but the i-th is that of
// (prefix[i], suffix[i+1]), at the cost of two hashes per carrier once
// per revision instead of a walk over every carrier per host. (Networks
// with one or two carriers skip the chains.)
type networkSum struct {
	head     [32]byte
	carriers []string   // the hosts with a port in the network, sorted
	entries  [][32]byte // per carrier
	prefix   [][32]byte // len(carriers)+1, with more than two carriers
	suffix   [][32]byte // len(carriers)+1, with more than two carriers
}

// sumNetwork sums network name and its ports: exactly what addNetwork and
// addRemote read, so a change the carriers do not see (a port's interface
// or local VLAN on its own host) leaves the sum alone.
// n is the network (nil when the snapshot has none of that name); s is a
// scratch summer.
func (d *desiredState) sumNetwork(name string, n *topology.Network, s *summer) *networkSum {
	if n != nil {
		s.flag(true).str(n.Name).str(string(n.Type)).num(uint64(n.SegmentID)).flag(n.MACLearning)
		s.strs(d.routerIPs(name)).flag(d.routerND(name))
		s.strs(d.remote.vteps[name])
	} else {
		s.flag(false)
	}
	macs := d.remote.macs[name]
	s.num(uint64(len(macs)))
	for _, m := range macs {
		s.str(m.port.Name).str(m.port.Host).str(m.port.MAC).strs(m.port.IPs)
	}
	ns := &networkSum{head: s.sum()}

	// Each carrier's ports, as the others read them (addNetwork): the
	// carrier (a flood peer) and its ports with a remote entry, which
	// addNetwork lists in name order, summed here by host, then name.
	ports := d.byNetwork[name]
	byHost := func(a, b *topology.Port) int { return strings.Compare(a.Host, b.Host) }
	if !slices.IsSortedFunc(ports, byHost) {
		ports = slices.Clone(ports)
		slices.SortStableFunc(ports, byHost)
	}
	ns.carriers = make([]string, 0, len(ports))
	ns.entries = make([][32]byte, 0, len(ports))
	for i, p := range ports {
		if i == 0 || ports[i-1].Host != p.Host {
			s.str(p.Host)
			ns.carriers = append(ns.carriers, p.Host)
		}
		if p.MAC != "" && p.Up() && !d.remote.superseded[name][p.MAC] {
			s.str(p.Name).str(p.MAC).strs(p.IPs) // a remote port on the other carriers
		}
		if i == len(ports)-1 || ports[i+1].Host != p.Host {
			ns.entries = append(ns.entries, s.sum())
		}
	}
	k := len(ns.entries)
	if k <= 2 {
		return ns // others goes through the entries themselves
	}
	chains := make([][32]byte, 2*(k+1))
	ns.prefix, ns.suffix = chains[:k+1], chains[k+1:]
	for i := range k {
		ns.prefix[i+1] = sumPair(0, ns.prefix[i], ns.entries[i])
	}
	for i := k - 1; i >= 0; i-- {
		ns.suffix[i] = sumPair(0, ns.entries[i], ns.suffix[i+1])
	}
	return ns
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// sumPair sums a tag and two sums.
func sumPair(tag byte, a, b [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = tag
	copy(buf[1:], a[:])
	copy(buf[33:], b[:])
	return sha256.Sum256(buf[:])
}

// others sums the entries of every carrier but host.
func (ns *networkSum) others(host string) [32]byte {
	i, found := slices.BinarySearch(ns.carriers, host)
	if len(ns.entries) <= 2 {
		// Most networks have one or two carriers: the chains would cost
		// more than going through the entries.
		var rest [2][32]byte
		n := 0
		for j, e := range ns.entries {
			if !found || j != i {
				rest[n] = e
				n++
			}
		}
		return sumPair(byte(16+4*n)+boolByte(found), rest[0], rest[1])
	}
	if found {
		return sumPair(1, ns.prefix[i], ns.suffix[i+1])
	}
	return sumPair(2, ns.prefix[i], ns.suffix[i])
}

// hostInputs is everything a reconcile of one host reads from the desired
// state. desiredState.digest sums it without collecting it, and tells
// whether a revision touched the host.
type hostInputs struct {
	host topology.Host
	// hosts and types are every host and the tunnel types in use, shared
	// with the desired state: tunnels derives the host's mesh from them
	// when the OVSDB transaction needs it.
	hosts []topology.Host
	types []topology.NetworkType
	// bindings are the host's ports, by network then name.
	bindings []ovsdb.Binding
	// view is the host's flows.View without what OVSDB reports (the
	// ofports); buildView adds that.
	view flows.View
	// remotes are the remote VTEPs the host tunnels to: those of the
	// networks it carries.
	remotes []ovsdb.Peer
}

// inputs collects what a reconcile of host reads.
func (d *desiredState) inputs(host topology.Host) hostInputs {
	in := hostInputs{
		host:  host,
		hosts: d.snap.Hosts,
		types: d.types,
		view:  flows.View{Host: host.Name, TunnelPorts: d.tunnelPorts},
	}
	own := d.byHost[host.Name]
	in.bindings = make([]ovsdb.Binding, 0, len(own))
	in.view.Networks = make([]flows.NetworkView, 0, len(own))
	in.view.LocalPorts = make([]flows.LocalPort, 0, len(own))
	remotes := map[string][]topology.NetworkType{}
	for i, p := range own {
		if !p.Up() { // bound on the dead VLAN: nothing is delivered to it; br-int drops its frames
			in.bindings = append(in.bindings, ovsdb.Binding{Interface: p.Interface, Port: p.Name, Network: p.Network, VLAN: ovsdb.DeadVLAN})
			in.view.DownPorts = append(in.view.DownPorts, flows.DownPort{Network: p.Network, Name: p.Name})
		} else {
			in.bindings = append(in.bindings, ovsdb.Binding{Interface: p.Interface, Port: p.Name, Network: p.Network, VLAN: int(p.LocalVLAN)})
			in.view.LocalPorts = append(in.view.LocalPorts, flows.LocalPort{
				Network: p.Network, Name: p.Name, LocalVLAN: p.LocalVLAN, MAC: p.MAC, IPs: p.IPs,
				PortSecurity: p.PortSecurityEnabled, AllowedAddressPairs: p.AllowedAddressPairs,
				DHCP: d.dhcpEnabled(p.Network),
			})
		}
		if i == 0 || own[i-1].Network != p.Network { // ports sort by network: once per network
			d.addNetwork(&in.view, p.Network, p.LocalVLAN, remotes)
		}
	}
	in.remotes = remotePeers(remotes)
	return in
}

// addNetwork adds a network the host carries on local VLAN vlan to v: the
// other hosts carrying it and their ports with a MAC.
func (d *desiredState) addNetwork(v *flows.View, name string, vlan uint16, remotes map[string][]topology.NetworkType) {
	ports := d.byNetwork[name]
	if n, ok := d.snap.Network(name); ok {
		nv := flows.NetworkView{Name: n.Name, Type: n.Type, SegmentID: n.SegmentID, LocalVLAN: vlan, MACLearning: n.MACLearning}
		for _, p := range ports {
			if p.Host != v.Host {
				nv.Peers = append(nv.Peers, p.Host)
			}
		}
		nv.RouterIPs, nv.RouterND = d.routerIPs(name), d.routerND(name)
		d.remote.addRemote(v, &nv, remotes)
		slices.Sort(nv.Peers)
		nv.Peers = slices.Compact(nv.Peers)
		v.Networks = append(v.Networks, nv)
	}
	for _, p := range ports {
		// A down port's entries are withdrawn; so are those of a port whose
		// MAC moved behind a remote VTEP (EVPN MAC mobility).
		if p.Host != v.Host && p.MAC != "" && p.Up() && !d.remote.superseded[p.Network][p.MAC] {
			v.RemotePorts = append(v.RemotePorts, flows.RemotePort{Network: p.Network, Name: p.Name, Host: p.Host, MAC: p.MAC, IPs: p.IPs})
		}
	}
}

// dhcpEnabled reports whether network has a subnet with DHCP enabled: its
// VM ports' DHCP, DHCPv6 and router solicitations go to brtun.
func (d *desiredState) dhcpEnabled(network string) bool {
	for _, sn := range d.subnets[network] {
		if sn.EnableDHCP {
			return true
		}
	}
	return false
}

// routerIPs are the DHCP server identifiers of network that br-int answers
// ARP for: the gateways of its DHCP-enabled IPv4 subnets, or their DHCP
// server addresses when they have no gateway, that no port holds.
func (d *desiredState) routerIPs(network string) []string {
	var out []string
	for _, sn := range d.subnets[network] {
		gw, err := netip.ParseAddr(dhcpServerIP(sn))
		if !sn.EnableDHCP || err != nil || !gw.Is4() || slices.Contains(out, gw.String()) {
			continue
		}
		held := false
		for _, p := range d.byNetwork[network] {
			if slices.Contains(p.IPs, gw.String()) {
				held = true
				break
			}
		}
		if !held {
			out = append(out, gw.String())
		}
	}
	return out
}

// routerND reports whether network has a DHCP-enabled IPv6 subnet with an
// address mode: brtun sends RAs from the router's link-local address, and
// br-int answers neighbour solicitations for it.
func (d *desiredState) routerND(network string) bool {
	for _, sn := range d.subnets[network] {
		if sn.EnableDHCP && sn.IPv6AddressMode != "" {
			return true
		}
	}
	return false
}

// tunnels is the host's tunnel mesh: per-peer, one port per other host and
// tunnel type in use by any network; with flow-based ports, one port per
// type in use, and the same peers for the flows to address.
func (in hostInputs) tunnels() ovsdb.TunnelSpec {
	spec := ovsdb.TunnelSpec{Ports: in.view.TunnelPorts, Types: in.types, LocalIP: in.host.TunnelIP,
		Peers: make([]ovsdb.Peer, 0, len(in.hosts))}
	for _, h := range in.hosts {
		if h.Name != in.host.Name {
			spec.Peers = append(spec.Peers, ovsdb.Peer{Name: h.Name, IP: h.TunnelIP, Types: in.types})
		}
	}
	spec.Peers = append(spec.Peers, in.remotes...)
	return spec
}

// ovsdbSum sums what the host's OVSDB transaction (syncOVSDB) writes,
// besides the controller's options: the host (its bridges' setup), the
// tunnel mesh and the bindings. With the same sum and the same OVSDB
// facts as after the last successful transaction, the next one would find
// nothing to write that the facts show.
func (in hostInputs) ovsdbSum() [32]byte {
	s := newSummer()
	s.str(in.host.Name).str(in.host.OVSDB).str(in.host.DatapathType)
	spec := in.tunnels()
	s.str(spec.Ports.String()).str(spec.LocalIP).num(uint64(len(spec.UDPPorts)))
	for _, t := range slices.Sorted(maps.Keys(spec.UDPPorts)) {
		s.str(string(t)).num(uint64(spec.UDPPorts[t]))
	}
	s.num(uint64(len(spec.Types)))
	for _, t := range spec.Types {
		s.str(string(t))
	}
	s.num(uint64(len(spec.Peers)))
	for _, p := range spec.Peers {
		s.str(p.Name).str(p.IP).num(uint64(len(p.Types)))
		for _, t := range p.Types {
			s.str(string(t))
		}
	}
	s.num(uint64(len(in.bindings)))
	for _, b := range in.bindings {
		s.str(b.Interface).str(b.Port).str(b.Network).num(uint64(b.VLAN))
	}
	return s.sum()
}

// boundInterfaces is the set of the host's interfaces the desired state
// binds.
func (in hostInputs) boundInterfaces() map[string]bool {
	bound := make(map[string]bool, len(in.bindings))
	for _, b := range in.bindings {
		bound[b.Interface] = true
	}
	return bound
}

// unboundMarks reports whether an operator marked an interface of host
// for autobind that no port binds yet: such a host must be reconciled
// whenever the desired state changes, since the network it names may have
// appeared.
func (d *desiredState) unboundMarks(host string, marked []ovsdb.MarkedInterface) bool {
	if len(marked) == 0 {
		return false
	}
	bound := make(map[string]bool, len(d.byHost[host]))
	for _, p := range d.byHost[host] {
		bound[p.Interface] = true
	}
	for _, m := range marked {
		if !bound[m.Interface] {
			return true
		}
	}
	return false
}

// buildView is what flows.Compile needs to know about one host: the host's
// view from the desired state plus the ofports its OVSDB reports.
func buildView(in hostInputs, facts ovsdb.Facts) flows.View {
	v := in.view
	if br, ok := facts.Bridges[BrTun]; ok && br.PatchOFPort > 0 {
		v.PatchIntOfport = uint32(br.PatchOFPort)
	}
	if br, ok := facts.Bridges[BrInt]; ok && br.PatchOFPort > 0 {
		v.PatchTunOfport = uint32(br.PatchOFPort)
	}
	// A local or down port's ofport is that of its interface, once OVSDB
	// shows the interface bound to the port (on br-int, as the binding
	// says).
	ofports := make(map[string]uint32, len(facts.Bindings))
	for _, b := range facts.Bindings {
		if b.OFPort > 0 {
			ofports[b.Network+"\x00"+b.Port+"\x00"+b.Interface] = uint32(b.OFPort)
		}
	}
	bound := make(map[string]uint32, len(in.bindings))
	for _, b := range in.bindings {
		bound[b.Network+"\x00"+b.Port] = ofports[b.Network+"\x00"+b.Port+"\x00"+b.Interface]
	}
	v.LocalPorts = slices.Clone(v.LocalPorts)
	for i := range v.LocalPorts {
		lp := &v.LocalPorts[i]
		lp.Ofport = bound[lp.Network+"\x00"+lp.Name]
	}
	v.DownPorts = slices.Clone(v.DownPorts)
	for i := range v.DownPorts {
		dp := &v.DownPorts[i]
		dp.Ofport = bound[dp.Network+"\x00"+dp.Name]
	}
	v.Tunnels = viewTunnels(in, facts.Tunnels)
	return v
}

// viewTunnels are the ways to the host's peers that OVSDB shows ports for,
// in the view's tunnel-port mode: per-peer, each port of the mode is one
// peer's; flow-based, each peer of the mesh is reached, for each of its
// types, through that type's one port.
func viewTunnels(in hostInputs, ports []ovsdb.TunnelPort) []flows.TunnelPort {
	var out []flows.TunnelPort
	if !in.view.TunnelPorts.Flow() {
		for _, t := range ports {
			if t.OFPort > 0 && !t.Flow {
				out = append(out, flows.TunnelPort{Ofport: uint32(t.OFPort), PeerHost: t.PeerName, RemoteIP: t.PeerIP, Type: t.Type})
			}
		}
		return out
	}
	flowPort := map[topology.NetworkType]uint32{}
	for _, t := range ports {
		if t.OFPort > 0 && t.Flow {
			flowPort[t.Type] = uint32(t.OFPort)
		}
	}
	for _, p := range in.tunnels().Peers {
		for _, typ := range p.Types {
			if of, ok := flowPort[typ]; ok {
				out = append(out, flows.TunnelPort{Ofport: of, PeerHost: p.Name, RemoteIP: p.IP, Type: typ})
			}
		}
	}
	return out
}

// hostDigest sums a host's inputs without compiling or rendering a flow:
// brTun covers what br-tun's flows and OVSDB configuration are made of
// from the desired state, brInt the same for br-int, and all every input.
type hostDigest struct {
	all, brTun, brInt [32]byte
}

// digest sums host's inputs without collecting them (inputs), compiling
// or rendering a flow: from the host's own ports and, for each network it
// carries, that network's sum without the host's own entry, so it costs in
// proportion to the host's share of the state.
func (d *desiredState) digest(host topology.Host) hostDigest {
	var out hostDigest
	own := d.byHost[host.Name]

	tun := newSummer()
	tun.str(host.Name).str(host.DatapathType).str(d.tunnelPorts.String())
	// The peers are every host but this one, with the types in use: the
	// mesh sum and the host's name (above) determine them.
	tun.str(host.TunnelIP).bytes(d.mesh[:])
	for i, p := range own {
		if i > 0 && own[i-1].Network == p.Network {
			continue // ports sort by network: once per network, with its first port's VLAN as inputs takes it
		}
		// The network, its remote VTEPs and MACs (so the host's remote
		// tunnel peers), and the other carriers' ports.
		ns := d.networks[p.Network]
		others := ns.others(host.Name)
		tun.str(p.Network).num(uint64(p.LocalVLAN)).bytes(ns.head[:]).bytes(others[:])
	}
	out.brTun = tun.sum()

	// br-int's OVSDB configuration is the host row and the bindings (a
	// down port's on the dead VLAN); its flows are the local ports'
	// addresses and port security, the down ports, and the remote ports
	// (in brTun), which bridge adds.
	br := newSummer()
	br.str(host.Name).str(host.DatapathType).num(uint64(len(own)))
	for _, p := range own {
		vlan := int(p.LocalVLAN)
		if !p.Up() {
			vlan = ovsdb.DeadVLAN
		}
		br.str(p.Interface).str(p.Name).str(p.Network).num(uint64(vlan))
	}
	for _, p := range own {
		if !p.Up() {
			continue
		}
		br.str(p.MAC).strs(p.IPs).flag(p.PortSecurityEnabled).flag(d.dhcpEnabled(p.Network)).num(uint64(len(p.AllowedAddressPairs)))
		for _, ap := range p.AllowedAddressPairs {
			br.str(ap.IPAddress).str(ap.MACAddress)
		}
	}
	downs := 0
	for _, p := range own {
		if !p.Up() {
			downs++
		}
	}
	br.num(uint64(downs))
	for _, p := range own {
		if !p.Up() {
			br.str(p.Network).str(p.Name)
		}
	}
	out.brInt = br.sum()

	all := newSummer()
	all.bytes(out.brTun[:]).bytes(out.brInt[:]).str(host.OVSDB).str(host.TunnelIP)
	out.all = all.sum()
	return out
}

// bridge sums what one bridge's desired flows and OVSDB configuration are
// made of, view's ofports included, for the bridge's desired revision.
func (d hostDigest) bridge(b string, view flows.View) [32]byte {
	s := newSummer()
	s.bytes(d.brTun[:]).num(uint64(view.PatchIntOfport)).num(uint64(len(view.Tunnels)))
	for _, t := range view.Tunnels {
		s.num(uint64(t.Ofport)).str(t.PeerHost).str(t.RemoteIP).str(string(t.Type))
	}
	if b == BrInt {
		// br-int forwards to the remote ports br-tun can reach, so it
		// reads all of br-tun's inputs, and its own ofports.
		s.bytes(d.brInt[:]).num(uint64(view.PatchTunOfport)).num(uint64(len(view.LocalPorts)))
		for _, p := range view.LocalPorts {
			s.num(uint64(p.Ofport))
		}
		s.num(uint64(len(view.DownPorts)))
		for _, p := range view.DownPorts {
			s.num(uint64(p.Ofport))
		}
	}
	return s.sum()
}

// summer is a SHA-256 over length-prefixed fields, so no two different
// sequences of fields sum alike by concatenation. Fields go into a buffer,
// hashed in one go when it stays small (most sums: a network, a host's
// ports in it) and in 4 KiB steps otherwise.
type summer struct {
	h   hash.Hash // nil until the buffer first fills
	buf []byte
}

func newSummer() *summer {
	return &summer{buf: make([]byte, 0, 256)}
}

// reset empties s for a new sum.
func (s *summer) reset() {
	s.h = nil
	s.buf = s.buf[:0]
}

func (s *summer) bytes(b []byte) *summer {
	s.buf = binary.AppendUvarint(s.buf, uint64(len(b)))
	s.buf = append(s.buf, b...)
	return s.flushFull()
}

func (s *summer) str(v string) *summer {
	s.buf = binary.AppendUvarint(s.buf, uint64(len(v)))
	s.buf = append(s.buf, v...)
	return s.flushFull()
}

func (s *summer) strs(vs []string) *summer {
	s.num(uint64(len(vs)))
	for _, v := range vs {
		s.str(v)
	}
	return s
}

func (s *summer) num(v uint64) *summer {
	s.buf = binary.AppendUvarint(s.buf, v)
	return s.flushFull()
}

func (s *summer) flag(v bool) *summer {
	if v {
		return s.num(1)
	}
	return s.num(0)
}

// flushFull hashes the buffer once it has grown past its capacity.
func (s *summer) flushFull() *summer {
	if len(s.buf) >= 4096 {
		if s.h == nil {
			s.h = sha256.New()
		}
		s.h.Write(s.buf)
		s.buf = s.buf[:0]
	}
	return s
}

// sum returns the sum and leaves s empty for the next one.
func (s *summer) sum() [32]byte {
	var out [32]byte
	if s.h == nil {
		out = sha256.Sum256(s.buf)
	} else {
		s.h.Write(s.buf)
		s.h.Sum(out[:0])
	}
	s.reset()
	return out
}

// DefaultMACLearnLimit is serve --mac-learn-limit's default: room in br-tun
// table 20 for the registered remote ports (never evicted) and the learned
// MACs of many networks, while one network's flood of new source MACs
// stays bounded.
const DefaultMACLearnLimit = 16384

// hostSpec is the OVSDB setup of a host's bridges: a Flow_Table row naming
// every declared table (ovs-ofctl --names). brtun owns the limits of the
// tables learn() writes into: bounded to the MAC learning limit (evicting by
// the table's eviction groups), or unbounded when it is 0; other tables'
// limits are the operator's. br-int's MAC table gets the same size.
func hostSpec(host topology.Host, opts Options) ovsdb.HostSpec {
	limit := max(opts.MACLearnLimit, 0)
	pipe := flows.Declared()
	tables := map[string][]ovsdb.TableSpec{}
	for _, b := range []flows.Bridge{flows.BrInt, flows.BrTun} {
		for _, t := range pipe.Tables(b) {
			s := ovsdb.TableSpec{ID: t.ID, Name: t.Name, OwnLimit: t.Learned != 0}
			if s.OwnLimit && limit > 0 {
				s.FlowLimit = limit
				for _, g := range t.EvictionGroups {
					s.EvictionGroups = append(s.EvictionGroups, g.String())
				}
			}
			tables[string(b)] = append(tables[string(b)], s)
		}
	}
	return ovsdb.HostSpec{
		Name:              host.Name,
		DatapathType:      host.DatapathType,
		ControllerTargets: opts.ControllerTargets,
		Tables:            tables,
		MACTableSize:      limit,
	}
}
