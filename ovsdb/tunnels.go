package ovsdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// TunnelSpec is the complete tunnel mesh of one host.
type TunnelSpec struct {
	// LocalIP is this host's underlay address (options:local_ip).
	LocalIP string
	// VXLANPort is the UDP port of VXLAN tunnels; 0 means DefaultVXLANPort,
	// and only another port is written as options:dst_port.
	VXLANPort uint16
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

// TunnelPortName returns the br-tun port name of a tunnel: the type, a dash
// and 8 hex digits, which for an IPv4 peer are its address (vxlan-c0000202,
// as Neutron names them) and for an IPv6 peer a hash of it.
func TunnelPortName(typ topology.NetworkType, peer netip.Addr) string {
	peer = peer.Unmap()
	if peer.Is4() {
		a := peer.As4()
		return string(typ) + "-" + hex.EncodeToString(a[:])
	}
	a := peer.As16()
	sum := sha256.Sum256(a[:])
	return string(typ) + "-" + hex.EncodeToString(sum[:4])
}

// EnsureTunnels makes br-tun hold exactly the tunnel ports of spec, in one
// transaction: missing ports are created, wrong ones repaired, and tunnel
// ports brtun created for peers no longer listed are removed. Ports brtun
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
	vxlanPort := spec.VXLANPort
	if vxlanPort == 0 {
		vxlanPort = DefaultVXLANPort
	}
	out := map[string]portSpec{}
	for _, peer := range spec.Peers {
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
			switch typ {
			case topology.VXLAN:
				if vxlanPort != DefaultVXLANPort {
					options[optDstPort] = strconv.Itoa(int(vxlanPort))
				}
			case topology.GRE:
			default:
				return nil, fmt.Errorf("peer %s: unsupported tunnel type %q", peer.Name, typ)
			}
			name := TunnelPortName(typ, ip)
			if prev, dup := out[name]; dup {
				return nil, fmt.Errorf("peers %s and %s both map to tunnel port %s", prev.portIDs[KeyPeer], peer.Name, name)
			}
			out[name] = portSpec{
				bridge: BridgeTun, name: name, ifaceType: string(typ), options: options,
				role: roleTunnel, portIDs: map[string]string{KeyPeer: peer.Name},
			}
		}
	}
	return out, nil
}

// tunnelOf describes an owned tunnel port, or returns false.
func tunnelOf(p *vswitchd.Port, i *vswitchd.Interface) (TunnelPort, bool) {
	if !owned(p.ExternalIDs) || p.ExternalIDs[KeyRole] != roleTunnel || i == nil {
		return TunnelPort{}, false
	}
	return TunnelPort{
		Name:     p.Name,
		Type:     topology.NetworkType(i.Type),
		PeerName: p.ExternalIDs[KeyPeer],
		PeerIP:   i.Options[optRemoteIP],
		OFPort:   ofport(i),
		Error:    deref(i.Error),
	}, true
}
