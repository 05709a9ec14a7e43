package flows

import "github.com/brtun/brtun/topology"

// View is what Compile needs to know about one host: its br-tun ofports (read
// from OVSDB, never assumed), the networks present on it and who else carries
// them, and the remote ports it should know about.
type View struct {
	Host string
	// TunnelPorts is how br-tun's tunnel ports reach the peers (serve
	// --tunnel-ports). Per-peer (the zero value): a port per peer and type,
	// which alone says where a packet goes and came from. Flow: one port
	// per type for every peer, so outputs set tun_dst to the peer's
	// RemoteIP, learned entries copy tun_src into tun_dst, and table 0
	// takes a tunnel packet only from the tun_src of a listed tunnel.
	TunnelPorts topology.TunnelPortMode
	// PatchIntOfport is the ofport of patch-int on br-tun (0: not known yet).
	PatchIntOfport uint32
	Tunnels        []TunnelPort
	Networks       []NetworkView
	RemotePorts    []RemotePort
	// PatchTunOfport is the ofport of patch-tun on br-int (0: not known yet).
	PatchTunOfport uint32
	// LocalPorts are this host's ports on br-int that are up.
	LocalPorts []LocalPort
	// DownPorts are this host's ports that are administratively down:
	// br-int drops every frame they send and delivers them nothing.
	DownPorts []DownPort
	// SourceMeter: frames that a port without port security (an
	// appliance) sends from a source MAC other than its own or an allowed
	// pair's go through the port's own OpenFlow meter, SourceMeterID
	// (serve --appliance-source-rate; false when that is 0).
	SourceMeter bool
}

// LocalPort is a port of this host, bound to an interface on br-int as a
// VLAN access port. Port security needs its MAC.
type LocalPort struct {
	Network   string
	Name      string
	Ofport    uint32 // 0: not known yet, the port is left out (its frames are dropped)
	LocalVLAN uint16
	MAC       string // "": no forwarding flow, no port security
	IPs       []string
	// PortSecurity drops what the port sends from other addresses.
	PortSecurity        bool
	AllowedAddressPairs []topology.AddressPair
	// DHCP: the port's network has a DHCP-enabled subnet, so br-int sends
	// the port's DHCP, DHCPv6 and router solicitations to the controller.
	DHCP bool
}

// DownPort is a port of this host with admin_state_up false.
type DownPort struct {
	Network string
	Name    string
	Ofport  uint32 // on br-int; 0: not known yet, the port is left out
}

// TunnelPort is one way to a peer on br-tun: the port of one tunnel type
// towards PeerHost at RemoteIP. Per-peer, each has a port (ofport) of its
// own; with flow-based ports, every tunnel of a type has that type's one
// port's ofport, and RemoteIP (IPv4) is what flows put in tun_dst and what
// table 0 accepts as tun_src.
type TunnelPort struct {
	Ofport   uint32 // 0: not known yet, the port is left out
	PeerHost string
	RemoteIP string
	Type     topology.NetworkType
}

// NetworkView is a network that has a port on this host.
type NetworkView struct {
	Name        string
	Type        topology.NetworkType
	SegmentID   uint32
	LocalVLAN   uint16 // 1..4094, allocated on this host
	MACLearning bool
	// Peers are the other hosts with a port on this network: flooding goes
	// to their tunnel ports of the network's type, and only to them.
	Peers []string
	// RouterIPs are the IPv4 DHCP server identifiers (gateways, or the
	// DHCP server addresses of subnets without one) of the network's
	// DHCP-enabled subnets that no port holds: br-int answers
	// its VM ports' ARP requests for them with RouterMAC(network).
	RouterIPs []string
	// RouterND: the network has a DHCP-enabled IPv6 subnet, so its VMs
	// route via the router's link-local address (the RA's source):
	// br-int answers their neighbour solicitations for it.
	RouterND bool
}

// RemotePort is a port on another host, registered with MAC and IPs (IPv4
// and IPv6, as strings); the compiler installs it in table 20 and answers
// ARP and ND for its addresses locally.
type RemotePort struct {
	Network string
	Name    string
	Host    string
	MAC     string
	IPs     []string
}
