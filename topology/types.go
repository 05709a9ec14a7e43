// Package topology holds brtun's desired state: hosts, networks and ports,
// their validation, local VLAN allocation and the Store that persists them.
package topology

import "sort"

// Local VLAN ids a host can give to its networks.
const (
	MinLocalVLAN uint16 = 1
	MaxLocalVLAN uint16 = 4094
)

// DefaultDatapathType is the datapath type of a host registered without one.
const DefaultDatapathType = "system"

// Host is a hypervisor whose br-int and br-tun brtun manages.
type Host struct {
	Name         string `json:"name"`
	OVSDB        string `json:"ovsdb"`         // tcp:IP:PORT, unix:PATH or ssl:IP:PORT
	TunnelIP     string `json:"tunnel_ip"`     // underlay address tunnels use
	DatapathType string `json:"datapath_type"` // "system" (default), "netdev", "dummy", ...
	Meta
}

// Network is a tenant L2 segment carried over tunnels between hosts.
type Network struct {
	Name        string      `json:"name"`
	Type        NetworkType `json:"type"`
	SegmentID   uint32      `json:"segment_id"`
	MACLearning bool        `json:"mac_learning"` // false: pure L2 population, no learn() flows
	// EVPN makes brtun's BGP speaker advertise and import the network's
	// VTEPs and MACs (VXLAN only); RouteTarget overrides the default
	// ASN:VNI ("A:B" or "IP:N").
	EVPN        bool   `json:"evpn,omitempty"`
	RouteTarget string `json:"route_target,omitempty"`
	Meta
}

// Port binds a VM interface on a host to a network.
type Port struct {
	Network   string   `json:"network"`
	Name      string   `json:"name"`
	Host      string   `json:"host"`
	Interface string   `json:"interface"`
	MAC       string   `json:"mac,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	// DeviceID names what uses the port (a container id for ports made by
	// brtun-cni), so operators can find a device's ports; free-form.
	DeviceID string `json:"device_id,omitempty"`
	// PortSecurityEnabled drops, on br-int, what the port sends from other
	// addresses than its own (MAC, IPs) and its AllowedAddressPairs. It needs
	// the MAC: a port without one never has it.
	PortSecurityEnabled bool `json:"port_security_enabled"`
	// AllowedAddressPairs are further addresses the port may send from
	// (virtual IPs that move between ports); they get no ARP/ND responder.
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
	// LocalVLAN is the host-local VLAN of the port's network on the port's
	// host. The store allocates it; a value given by a caller is ignored.
	LocalVLAN uint16 `json:"local_vlan"`
	// AdminStateUp false keeps the port stored but drops its traffic and
	// withdraws its entries on other hosts. nil means up (the store always
	// stores and answers it set); read it with Up.
	AdminStateUp *bool `json:"admin_state_up"`
	Meta
}

// Up reports whether the port is administratively up.
func (p Port) Up() bool { return p.AdminStateUp == nil || *p.AdminStateUp }

// Bool returns a pointer to b, for AdminStateUp.
func Bool(b bool) *bool { return &b }

// Meta are the fields every stored object carries.
type Meta struct {
	Description string   `json:"description"`
	Tags        []string `json:"tags"` // sorted, no duplicates; never nil once stored
	// RevisionNumber is the store revision of the object's last change: it
	// grows with every change of the object and is its ETag.
	RevisionNumber uint64 `json:"revision_number"`
}

// afterDecode gives objects stored by older versions an empty tag list.
func (m *Meta) afterDecode() {
	if m.Tags == nil {
		m.Tags = []string{}
	}
}

// afterDecode gives ports stored by older versions their admin state.
func (p *Port) afterDecode() {
	p.Meta.afterDecode()
	if p.AdminStateUp == nil {
		p.AdminStateUp = Bool(true)
	}
}

// AddressPair is an address a port may send from besides its own:
// IPAddress is an IPv4 address or prefix, or an IPv6 address; MACAddress,
// when empty, is the port's MAC.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

// Snapshot is the whole desired state at one revision. Slices are sorted by
// name (ports by network, then name). Store.Snapshot shares an object that
// did not change between the snapshots that hold it, with its slices (IPs,
// Tags, allowed address pairs, a remote VTEP's networks and MACs, a
// subnet's lists) and pointers: read a snapshot's objects; a struct copy
// may change its own fields, but whatever it points into must be cloned
// before it is changed.
type Snapshot struct {
	Revision uint64    `json:"revision"`
	Hosts    []Host    `json:"hosts"`
	Networks []Network `json:"networks"`
	Ports    []Port    `json:"ports"`
	Subnets  []Subnet  `json:"subnets"` // by network, then name
	// RemoteVTEPs are the static remote VTEPs, by name; EVPN what the BGP
	// speaker imported (without the speaker's own state).
	RemoteVTEPs []RemoteVTEP `json:"remote_vteps"`
	EVPN        EVPNRoutes   `json:"evpn"`
}

// LocalVLANs maps each network that has a port on host to its local VLAN there.
func (s Snapshot) LocalVLANs(host string) map[string]uint16 {
	vlans := make(map[string]uint16)
	for _, p := range s.Ports {
		if p.Host == host {
			vlans[p.Network] = p.LocalVLAN
		}
	}
	return vlans
}

// Host returns the host called name.
func (s Snapshot) Host(name string) (Host, bool) {
	i := sort.Search(len(s.Hosts), func(i int) bool { return s.Hosts[i].Name >= name })
	if i < len(s.Hosts) && s.Hosts[i].Name == name {
		return s.Hosts[i], true
	}
	return Host{}, false
}

// Network returns the network called name.
func (s Snapshot) Network(name string) (Network, bool) {
	i := sort.Search(len(s.Networks), func(i int) bool { return s.Networks[i].Name >= name })
	if i < len(s.Networks) && s.Networks[i].Name == name {
		return s.Networks[i], true
	}
	return Network{}, false
}
