// Package trace walks a packet through the flows brtun's switches hold,
// across hosts: from a port on its host's br-int, through br-tun, a tunnel,
// the remote br-tun and br-int, to the ports it reaches or the flow that
// drops it. It follows whatever tables and flows the bridges hold (driven by
// their goto_table, resubmit and output actions, not by knowledge of
// brtun's pipeline), so a flow changed behind brtun's back shows.
//
// It is pure: the caller reads the flows from the switches and the ports
// from OVSDB and hands them in (Input). br-int's NORMAL action forwards by a
// MAC table that neither flows nor OVSDB show; the walker stands in for it
// with the ports brtun knows of and says so on the hop.
package trace

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
)

// The bridges of a host.
const (
	BridgeInt = topology.BridgeInt
	BridgeTun = topology.BridgeTun
)

// maxHops bounds a walk whatever the flows say (a flood to every peer of a
// large network stays far below it).
const maxHops = 1024

// ErrNotBound is the error of a walk from a port that is not bound on its
// host's br-int: there is nowhere to start.
var ErrNotBound = errors.New("port not bound")

// PortKind says what is behind a bridge port.
type PortKind string

// The port kinds.
const (
	PortVM     PortKind = "vm"     // a brtun port bound on br-int
	PortPatch  PortKind = "patch"  // patch-tun on br-int, patch-int on br-tun
	PortTunnel PortKind = "tunnel" // a tunnel port on br-tun
	PortLocal  PortKind = "local"  // the bridge's internal port (flows.PortLocal): the host's own stack
	PortOther  PortKind = "other"  // anything else the bridge holds
)

// Port is one port of a bridge as OVSDB shows it.
type Port struct {
	OFPort uint32
	Name   string // the interface name
	Kind   PortKind
	// A VM port: the brtun port bound to it, its MAC and its tag (0: none).
	Network, Port string
	MAC           flows.MAC
	VLAN          uint16
	// A tunnel port: the peer host it leads to and its type. A flow-based
	// one (Flow, --tunnel-ports flow) leads to every peer of its type: a
	// copy goes to the host at its tun_dst.
	Peer string
	Type topology.NetworkType
	Flow bool
}

// Bridge is what one bridge holds: the flows dumped from the switch and
// its ports.
type Bridge struct {
	Flows []flows.Flow
	Ports []Port
}

// port returns the port with the given ofport.
func (b Bridge) port(ofport uint32) (Port, bool) {
	i := slices.IndexFunc(b.Ports, func(p Port) bool { return p.OFPort == ofport })
	if i < 0 {
		return Port{}, false
	}
	return b.Ports[i], true
}

// Host is one host's two bridges. Err says why they could not be read
// ("" when they were); the walk stops there.
type Host struct {
	Int, Tun Bridge
	Err      string
}

func (h Host) bridge(name string) Bridge {
	if name == BridgeInt {
		return h.Int
	}
	return h.Tun
}

// Input is what a walk reads.
type Input struct {
	// Hosts are the hosts read so far, by name. A walk that reaches a host
	// not in the map lists it in Result.Missing: read it and walk again.
	Hosts map[string]Host
	// Registered are brtun's ports (the desired state), which stand in for
	// br-int's MAC table at NORMAL.
	Registered []topology.Port
	// Owner names a flow's owner by its cookie; nil: flows.DecodeOwner.
	Owner func(cookie uint64) string
	// TunnelIPs are every brtun host's tunnel IP, by name: a copy sent
	// through a flow-based tunnel port goes to the host at its tun_dst
	// (an address no host has is a remote VTEP, "vtep:IP"), and arrives
	// with the sender's address as tun_src.
	TunnelIPs map[string]string
}

// Lookup is one table lookup of a hop.
type Lookup struct {
	Table uint8
	Flow  string // ovs-ofctl form; "" on a miss
	Owner string // "" on a miss
}

// Out is one copy of the packet leaving a hop's bridge.
type Out struct {
	Port string // the interface name (the port number when the bridge has no such port)
	// Next is the index of the hop the copy enters (a patch port's peer
	// bridge, a tunnel's remote br-tun), -1 when it leaves brtun's bridges.
	Next int
	// Reached is set when the copy is delivered to a brtun port.
	Reached *Endpoint
	Note    string
}

// Hop is the packet's visit to one bridge.
type Hop struct {
	Host, Bridge string
	InPort       string // the interface it entered on
	// Packet is the packet as it entered, in the flow syntax of
	// `ovs-appctl ofproto/trace`.
	Packet  string
	From    int // the hop that sent it here; -1 for the first
	Lookups []Lookup
	Outputs []Out
	// Dropped says why nothing (more) left the bridge, "" when something did.
	Dropped string
	Notes   []string
}

// Endpoint is a brtun port the packet reached.
type Endpoint struct {
	Host, Network, Port, Interface string
}

// Result is the walk of one packet.
type Result struct {
	Hops    []Hop
	Reached []Endpoint
	// Missing are hosts the packet reached that Input.Hosts lacks.
	Missing []string
}

// Walk sends p from the port network/port bound on host's br-int through
// the bridges of in and returns the hops. p.InPort is set from the port.
func Walk(in Input, host, network, port string, p flowsim.Packet) (Result, error) {
	h, ok := in.Hosts[host]
	if !ok {
		return Result{}, fmt.Errorf("host %s was not read", host)
	}
	if h.Err != "" {
		return Result{}, fmt.Errorf("host %s: %s", host, h.Err)
	}
	i := slices.IndexFunc(h.Int.Ports, func(q Port) bool { return q.Kind == PortVM && q.Network == network && q.Port == port })
	if i < 0 {
		return Result{}, fmt.Errorf("%s/%s on %s's %s: %w", network, port, host, BridgeInt, ErrNotBound)
	}
	if in.Owner == nil {
		in.Owner = flows.DecodeOwner
	}
	p.InPort = h.Int.Ports[i].OFPort
	w := &walker{in: in}
	w.visit(host, BridgeInt, p, -1)
	return w.res, nil
}

type walker struct {
	in  Input
	res Result
}

// visit runs p through one bridge and follows every copy that leaves it.
// It returns the new hop's index, or -1 when the host was not read.
func (w *walker) visit(host, bridge string, p flowsim.Packet, from int) int {
	h, ok := w.in.Hosts[host]
	if !ok {
		if !slices.Contains(w.res.Missing, host) {
			w.res.Missing = append(w.res.Missing, host)
		}
		return -1
	}
	b := h.bridge(bridge)
	idx := len(w.res.Hops)
	hop := Hop{Host: host, Bridge: bridge, InPort: portName(b, p.InPort), Packet: p.TraceFlow(), From: from}
	switch {
	case h.Err != "":
		hop.Dropped = "the host's switches could not be read: " + h.Err
		w.res.Hops = append(w.res.Hops, hop)
		return idx
	case idx >= maxHops:
		hop.Dropped = fmt.Sprintf("the walk stops after %d hops", maxHops)
		w.res.Hops = append(w.res.Hops, hop)
		return idx
	}
	res, err := flowsim.New(b.Flows).Run(p)
	for _, s := range res.Steps {
		l := Lookup{Table: s.Table}
		if !s.Miss {
			l.Flow, l.Owner = s.Flow.String(), w.in.Owner(s.Flow.Cookie)
		}
		hop.Lookups = append(hop.Lookups, l)
	}
	hop.Notes = res.Notes
	switch {
	case err != nil:
		hop.Dropped = "the walk cannot follow the flows: " + err.Error()
	case len(res.Outputs) == 0 && len(res.Notes) > 0:
		hop.Dropped = res.Notes[len(res.Notes)-1]
	case len(res.Outputs) == 0 && len(res.Steps) > 0 && res.Steps[len(res.Steps)-1].Miss:
		hop.Dropped = fmt.Sprintf("no flow of table %d matches", res.Steps[len(res.Steps)-1].Table)
	case len(res.Outputs) == 0 && len(res.Steps) > 0:
		hop.Dropped = fmt.Sprintf("table %d drops it", res.Steps[len(res.Steps)-1].Table)
	}
	w.res.Hops = append(w.res.Hops, hop)
	if err != nil {
		return idx
	}
	for _, o := range res.Outputs {
		if o.Port != flows.PortNormal {
			w.output(idx, host, bridge, b, o.Port, o.Packet, "")
			continue
		}
		outs, why := w.normal(host, b, p.InPort, o.Packet)
		for _, n := range outs {
			w.output(idx, host, bridge, b, n.port, n.packet, n.note)
		}
		if len(outs) == 0 {
			w.res.Hops[idx].Notes = append(w.res.Hops[idx].Notes, "NORMAL sends it nowhere: "+why)
		}
	}
	if hop := &w.res.Hops[idx]; len(hop.Outputs) == 0 && hop.Dropped == "" {
		hop.Dropped = "nothing leaves the bridge"
		if len(hop.Notes) > 0 {
			hop.Dropped = hop.Notes[len(hop.Notes)-1]
		}
	}
	return idx
}

// output follows one copy of a packet leaving hop idx on ofport.
func (w *walker) output(idx int, host, bridge string, b Bridge, ofport uint32, p flowsim.Packet, note string) {
	out := Out{Port: portName(b, ofport), Next: -1, Note: note}
	port, ok := b.port(ofport)
	switch {
	case !ok:
		out.Note = join(note, "the bridge has no such port: the copy is lost")
	case port.Kind == PortVM:
		e := Endpoint{Host: host, Network: port.Network, Port: port.Port, Interface: port.Name}
		out.Reached = &e
		w.res.Reached = append(w.res.Reached, e)
	case port.Kind == PortPatch:
		other := BridgeTun
		if bridge == BridgeTun {
			other = BridgeInt
		}
		peer, found := patchOf(w.in.Hosts[host].bridge(other))
		if !found {
			out.Note = join(note, fmt.Sprintf("%s has no patch port: the copy is lost", other))
			break
		}
		// OVS clears the registers and tunnel metadata across a patch port.
		p.InPort, p.Reg0, p.TunID = peer.OFPort, 0, 0
		out.Next = w.visit(host, other, p, idx)
	case port.Kind == PortTunnel:
		out.Next = w.tunnel(idx, host, port, p, &out)
	case port.Kind == PortLocal:
		out.Note = join(note, "to the bridge's internal port: the host's own stack")
	default:
		out.Note = join(note, "leaves brtun's bridges on a port that is no brtun port")
	}
	w.res.Hops[idx].Outputs = append(w.res.Hops[idx].Outputs, out)
}

// tunnel carries a copy through a tunnel port to the peer's br-tun: the
// port's peer, or for a flow-based port the host at the copy's tun_dst. It
// arrives on the peer's port of the type towards this host (a flow-based
// one takes every host), with this host's tunnel IP as tun_src.
func (w *walker) tunnel(idx int, host string, port Port, p flowsim.Packet, out *Out) int {
	to := port.Peer
	if port.Flow {
		to = w.hostAt(p.TunDst)
	}
	peer, ok := w.in.Hosts[to]
	if !ok {
		return w.visit(to, BridgeTun, p, idx) // listed as missing
	}
	i := slices.IndexFunc(peer.Tun.Ports, func(q Port) bool {
		return q.Kind == PortTunnel && (q.Flow || q.Peer == host) && q.Type == port.Type
	})
	if peer.Err == "" && i < 0 {
		out.Note = join(out.Note, fmt.Sprintf("%s has no %s tunnel port towards %s: it drops the copy", to, port.Type, host))
		return -1
	}
	if i >= 0 {
		p.InPort = peer.Tun.Ports[i].OFPort
	}
	if ip, err := netip.ParseAddr(w.in.TunnelIPs[host]); err == nil && ip.Unmap().Is4() && i >= 0 && peer.Tun.Ports[i].Flow {
		p.TunSrc = ip.Unmap().As4() // what a flow-based port's table 0 checks
	}
	p.Reg0 = 0 // registers do not cross a tunnel; tun_id does
	return w.visit(to, BridgeTun, p, idx)
}

// hostAt names the host whose tunnel IP is ip, or "vtep:IP" (a remote
// VTEP, as the controller names it) when no host has it.
func (w *walker) hostAt(ip flows.IPv4) string {
	for name, s := range w.in.TunnelIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap() == netip.AddrFrom4(ip) {
			return name
		}
	}
	return "vtep:" + ip.String()
}

// normalOut is one copy NORMAL sends.
type normalOut struct {
	port   uint32
	packet flowsim.Packet
	note   string
}

// normal stands in for br-int's NORMAL action: VM ports are access ports of
// their tag, patch ports and the bridge's internal port trunks. Broadcast and multicast flood the VLAN; a
// unicast goes where brtun's registered ports say the MAC is, and floods
// when brtun knows no port with that MAC. The switch's MAC table is not
// visible: it may not have learned the MAC yet (then NORMAL floods).
// It returns why it sends nothing when it does not.
func (w *walker) normal(host string, b Bridge, inPort uint32, p flowsim.Packet) ([]normalOut, string) {
	in, _ := b.port(inPort)
	vid, tagged := p.VLAN()
	vlan := uint16(0)
	switch {
	case in.Kind == PortVM && in.VLAN != 0:
		if tagged {
			return nil, fmt.Sprintf("%s is an access port of VLAN %d and the frame is tagged", in.Name, in.VLAN)
		}
		vlan = in.VLAN
	case tagged:
		vlan = vid
	}
	var candidates []Port // every port of the VLAN but the input
	for _, q := range b.Ports {
		if q.OFPort == inPort {
			continue
		}
		if q.Kind == PortPatch || q.Kind == PortLocal || q.Kind == PortVM && q.VLAN == vlan {
			candidates = append(candidates, q)
		}
	}
	send := func(q Port, note string) normalOut {
		c := p
		c.VLANTCI = 0
		if q.Kind != PortVM && vlan != 0 {
			c.VLANTCI = flows.VLANCFI | vlan
		}
		return normalOut{port: q.OFPort, packet: c, note: note}
	}
	flood := func(why string) ([]normalOut, string) {
		var out []normalOut
		for _, q := range candidates {
			out = append(out, send(q, fmt.Sprintf("NORMAL floods VLAN %d: %s", vlan, why)))
		}
		return out, fmt.Sprintf("no other port is on VLAN %d", vlan)
	}
	if p.EthDst[0]&1 != 0 {
		return flood("broadcast or multicast destination")
	}
	for _, q := range candidates {
		if q.Kind == PortVM && q.MAC == p.EthDst {
			return []normalOut{send(q, fmt.Sprintf("NORMAL: %s is port %s/%s here (brtun's ports; the switch's MAC table is not visible)", p.EthDst, q.Network, q.Port))}, ""
		}
	}
	network := in.Network
	if network == "" {
		if i := slices.IndexFunc(b.Ports, func(q Port) bool { return q.Kind == PortVM && q.VLAN == vlan }); i >= 0 {
			network = b.Ports[i].Network
		}
	}
	for _, r := range w.in.Registered {
		if r.Network != network || r.Host == host || !sameMAC(r.MAC, p.EthDst) {
			continue
		}
		where := fmt.Sprintf("%s is port %s/%s on %s", p.EthDst, r.Network, r.Name, r.Host)
		i := slices.IndexFunc(candidates, func(q Port) bool { return q.Kind == PortPatch })
		if i < 0 {
			return nil, where + ", behind the port it came in on: NORMAL does not send it back"
		}
		return []normalOut{send(candidates[i], "NORMAL: "+where+
			" (brtun's ports; the switch's MAC table is not visible: until it learns the MAC there, NORMAL floods VLAN "+fmt.Sprint(vlan)+")")}, ""
	}
	return flood(fmt.Sprintf("no port brtun knows has %s, unless the switch learned it", p.EthDst))
}

// patchOf returns a bridge's patch port.
func patchOf(b Bridge) (Port, bool) {
	i := slices.IndexFunc(b.Ports, func(q Port) bool { return q.Kind == PortPatch })
	if i < 0 {
		return Port{}, false
	}
	return b.Ports[i], true
}

func portName(b Bridge, ofport uint32) string {
	if p, ok := b.port(ofport); ok {
		return p.Name
	}
	return fmt.Sprint(ofport)
}

func sameMAC(s string, m flows.MAC) bool {
	a, err := flows.ParseMAC(s)
	return err == nil && a == m
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
