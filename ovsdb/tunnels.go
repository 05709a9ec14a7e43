package ovsdb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// TunnelSpec is the complete tunnel mesh of one host.
type TunnelSpec struct {
	// Ports is the tunnel-port mode (serve --tunnel-ports). Per-peer (the
	// zero value): one port per peer and type, remote_ip the peer's
	// address. Flow: one port per type in Types (remote_ip=flow,
	// key=flow), whatever the peers; the flows address each peer, so the
	// ports do not change when hosts come and go.
	Ports topology.TunnelPortMode
	// Types are the tunnel types in use; with flow-based ports, each gets
	// its port, peers or not.
	Types []topology.NetworkType
	// LocalIP is this host's underlay address (options:local_ip).
	LocalIP string
	// UDPPorts overrides the UDP port of the tunnels of a type. A type
	// absent (or 0) uses its topology.TunnelType.UDPPort, and only another
	// port is written as options:dst_port. A type not carried over UDP
	// cannot have one.
	UDPPorts map[topology.NetworkType]uint16
	// Peers are every other host this host tunnels to.
	Peers []Peer
}

// Peer is another host and the tunnel types this host needs towards it.
type Peer struct {
	// Name is the peer's host name, recorded in external_ids:brtun-peer.
	Name string
	// IP is the peer's underlay address (options:remote_ip).
	IP string
	// Types lists the tunnel types in use towards the peer; each gets one
	// port. An empty list means no port to that peer.
	Types []topology.NetworkType
}

// TunnelPortName returns the br-tun port name of a tunnel (vxlan-c0000202);
// topology.TunnelPortName says how it is formed.
func TunnelPortName(typ topology.NetworkType, peer netip.Addr) string {
	return topology.TunnelPortName(typ, peer)
}

// EnsureTunnels makes br-tun hold exactly the tunnel ports of spec, in one
// transaction: missing ports are created, wrong ones repaired, and tunnel
// ports brtun created for peers no longer listed (or of the other
// tunnel-port mode) are removed. Ports brtun
// does not own are never touched; a desired port whose name one of them
// already uses is skipped and reported in a *ConflictError after the rest
// was applied.
func (c *Client) EnsureTunnels(ctx context.Context, spec TunnelSpec) error {
	return c.Update(ctx, func(t *Txn) error { return t.EnsureTunnels(spec) })
}

// EnsureTunnels adds to t what brings br-tun's tunnel ports to spec.
func (t *Txn) EnsureTunnels(spec TunnelSpec) error {
	desired, err := tunnelPorts(spec)
	if err != nil {
		return fmt.Errorf("ensure tunnels: %w", err)
	}
	if !t.bridgeExists(BridgeTun) {
		return fmt.Errorf("ensure tunnels: bridge %s does not exist (EnsureHost first)", BridgeTun)
	}
	t.note("ensure tunnels (%d ports)", len(desired))
	for _, name := range sortedKeys(desired) {
		if err := t.ensurePort(desired[name]); err != nil {
			return fmt.Errorf("ensure tunnel %s: %w", name, err)
		}
	}
	if b := t.st.bridgeByName[BridgeTun]; b != nil {
		for _, p := range t.st.portsOn(b) {
			if _, ok := desired[p.Name]; ok {
				continue
			}
			if owned(p.ExternalIDs) && p.ExternalIDs[KeyRole] == roleTunnel {
				t.removePort(b, p)
			}
		}
	}
	return nil
}

// tunnelPorts validates spec and returns the desired ports by name.
func tunnelPorts(spec TunnelSpec) (map[string]portSpec, error) {
	local, err := netip.ParseAddr(spec.LocalIP)
	if err != nil {
		return nil, fmt.Errorf("local IP %q: %w", spec.LocalIP, err)
	}
	local = local.Unmap()
	for typ, port := range spec.UDPPorts {
		tt, ok := typ.Tunnel()
		switch {
		case !ok:
			return nil, fmt.Errorf("UDP port %d for unsupported tunnel type %q", port, typ)
		case tt.UDPPort == 0 && port != 0:
			return nil, fmt.Errorf("UDP port %d for tunnel type %s, which is not carried over UDP", port, typ)
		}
	}
	if spec.Ports.Flow() && !local.Is4() {
		return nil, fmt.Errorf("local IP %s: flow-based tunnel ports (--tunnel-ports flow) carry IPv4 tunnel IPs only", local)
	}
	out := map[string]portSpec{}
	peers := spec.Peers
	if spec.Ports.Flow() {
		peers = nil // no port per peer: the flows address the peers (and leave out one they cannot)
	}
	for _, peer := range peers {
		ip, err := netip.ParseAddr(peer.IP)
		if err != nil {
			return nil, fmt.Errorf("peer %s: IP %q: %w", peer.Name, peer.IP, err)
		}
		ip = ip.Unmap()
		if ip.Is4() != local.Is4() {
			return nil, fmt.Errorf("peer %s: %s and local IP %s are of different families", peer.Name, ip, local)
		}
		if ip == local {
			return nil, fmt.Errorf("peer %s: IP %s is the local IP", peer.Name, ip)
		}
		var types []topology.NetworkType
		for _, typ := range peer.Types {
			if !slices.Contains(types, typ) {
				types = append(types, typ)
			}
		}
		for _, typ := range types {
			options := map[string]string{
				optRemoteIP:  ip.String(),
				optLocalIP:   local.String(),
				optInKey:     "flow",
				optOutKey:    "flow",
				optDFDefault: "true",
			}
			tt, ok := typ.Tunnel()
			if !ok {
				return nil, fmt.Errorf("peer %s: unsupported tunnel type %q", peer.Name, typ)
			}
			addDstPort(options, spec, tt)
			name := TunnelPortName(typ, ip)
			if prev, dup := out[name]; dup {
				return nil, fmt.Errorf("peers %s and %s both map to tunnel port %s", prev.portIDs[KeyPeer], peer.Name, name)
			}
			out[name] = portSpec{
				bridge: BridgeTun, name: name, ifaceType: tt.OVSType, options: options,
				role: roleTunnel, portIDs: map[string]string{KeyPeer: peer.Name},
			}
		}
	}
	if spec.Ports.Flow() {
		for _, typ := range spec.Types {
			tt, ok := typ.Tunnel()
			if !ok {
				return nil, fmt.Errorf("unsupported tunnel type %q", typ)
			}
			options := map[string]string{
				optRemoteIP:  remoteFlow,
				optLocalIP:   local.String(),
				optKey:       "flow",
				optDFDefault: "true",
			}
			addDstPort(options, spec, tt)
			name := topology.FlowTunnelPortName(typ)
			out[name] = portSpec{bridge: BridgeTun, name: name, ifaceType: tt.OVSType, options: options, role: roleTunnel}
		}
	}
	return out, nil
}

// remoteFlow is options:remote_ip of a flow-based tunnel port: the flows
// set the destination (tun_dst), and it takes packets from any source.
const remoteFlow = "flow"

// addDstPort adds options:dst_port when spec gives type tt another UDP port
// than its own.
func addDstPort(options map[string]string, spec TunnelSpec, tt topology.TunnelType) {
	if port := spec.UDPPorts[tt.Name]; port != 0 && port != tt.UDPPort {
		options[optDstPort] = strconv.Itoa(int(port))
	}
}

// tunnelOf describes an owned tunnel port, or returns false.
func tunnelOf(p *vswitchd.Port, i *vswitchd.Interface) (TunnelPort, bool) {
	if !owned(p.ExternalIDs) || p.ExternalIDs[KeyRole] != roleTunnel || i == nil {
		return TunnelPort{}, false
	}
	// An interface type of no tunnel type stays as it is: the flow
	// compiler skips (and reports) the port, EnsureTunnels repairs it.
	typ := topology.NetworkType(i.Type)
	if tt, ok := topology.TunnelTypeByOVSType(i.Type); ok {
		typ = tt.Name
	}
	tp := TunnelPort{
		Name:   p.Name,
		Type:   typ,
		OFPort: ofport(i),
		Error:  deref(i.Error),
		Flow:   i.Options[optRemoteIP] == remoteFlow,
	}
	if !tp.Flow {
		tp.PeerName, tp.PeerIP = p.ExternalIDs[KeyPeer], i.Options[optRemoteIP]
	}
	return tp, true
}
