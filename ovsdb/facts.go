package ovsdb

import (
	"maps"
	"slices"
	"sort"

	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// Facts is what the controller needs to know about a host's switches. An
// OFPort is 0 while ovs-vswitchd has not assigned one yet and -1 when it
// failed to (see Error).
type Facts struct {
	// Connected is false while the client has no session; the other fields
	// then hold the last facts seen.
	Connected bool
	// Bridges holds br-int and br-tun, when they exist, by name.
	Bridges map[string]BridgeFacts
	// Tunnels are the brtun tunnel ports on br-tun, sorted by name.
	Tunnels []TunnelPort
	// Bindings are the br-int ports carrying a brtun binding, sorted by
	// interface name.
	Bindings []BoundPort
	// Marked are the interfaces an operator marked with
	// external_ids:brtun-network, sorted by name, bound or not.
	Marked []MarkedInterface
}

// Equal reports whether f and o hold the same facts (a nil and an empty
// list are the same). Unlike reflect.DeepEqual it compares the lists'
// elements as values, which costs little even with thousands of tunnel
// ports: the controller compares a host's facts on every store revision.
func (f Facts) Equal(o Facts) bool {
	return f.Connected == o.Connected && maps.Equal(f.Bridges, o.Bridges) && slices.Equal(f.Tunnels, o.Tunnels) &&
		slices.Equal(f.Bindings, o.Bindings) && slices.Equal(f.Marked, o.Marked)
}

// BridgeFacts describes one of brtun's bridges.
type BridgeFacts struct {
	Name         string
	DatapathType string
	// DatapathID is the id ovs-vswitchd reports (Bridge.datapath_id); 0
	// until it has created the bridge.
	DatapathID uint64
	// PatchOFPort is the ofport of the bridge's patch port: patch-tun on
	// br-int, patch-int on br-tun.
	PatchOFPort int
}

// TunnelPort is a tunnel port brtun owns on br-tun.
type TunnelPort struct {
	Name string
	Type topology.NetworkType
	// PeerName and PeerIP are the peer of a per-peer port; a flow-based
	// port (Flow, remote_ip=flow) has none.
	PeerName string
	PeerIP   string
	Flow     bool
	OFPort   int
	Error    string
}

// BoundPort is a br-int port carrying a brtun binding.
type BoundPort struct {
	Interface string
	Port      string // brtun port name (other_config:brtun-port)
	Network   string
	VLAN      int // the port's tag; 0 when someone removed it
	OFPort    int
	MAC       string // external_ids:attached-mac, else mac_in_use
	Error     string
}

// MarkedInterface is an interface an operator marked for automatic binding
// (ovs-vsctl ... set interface tap0 external_ids:brtun-network=blue).
type MarkedInterface struct {
	Interface string
	Network   string // external_ids:brtun-network
	Port      string // external_ids:brtun-port, else the interface name
	MAC       string // external_ids:attached-mac, else mac_in_use
	// MACAttached says MAC is external_ids:attached-mac (the VM's own), not
	// mac_in_use (which, for a tap or veth, is the host side's).
	MACAttached bool
	Bridge      string // bridge holding it, "" when on none
	OFPort      int
}

// factsOf derives Facts from a snapshot.
func factsOf(st *state) Facts {
	f := Facts{Connected: true, Bridges: map[string]BridgeFacts{}}
	for _, p := range []struct{ bridge, patch string }{{BridgeInt, PatchTun}, {BridgeTun, PatchInt}} {
		b := st.bridgeByName[p.bridge]
		if b == nil {
			continue
		}
		bf := BridgeFacts{Name: b.Name, DatapathType: b.DatapathType}
		if b.DatapathID != nil {
			// An id OVS reports in an unexpected form stays 0 (unknown).
			bf.DatapathID, _ = ParseDatapathID(*b.DatapathID)
		}
		if i := st.ifaceByName[p.patch]; i != nil {
			if port := st.portOfIface(i); port != nil && st.portBridge[port.UUID] == b.UUID {
				bf.PatchOFPort = ofport(i)
			}
		}
		f.Bridges[b.Name] = bf
	}
	if b := st.bridgeByName[BridgeTun]; b != nil {
		for _, p := range st.portsOn(b) {
			if tp, ok := tunnelOf(p, st.firstIface(p)); ok {
				f.Tunnels = append(f.Tunnels, tp)
			}
		}
	}
	if b := st.bridgeByName[BridgeInt]; b != nil {
		for _, p := range st.portsOn(b) {
			network, bound := p.OtherConfig[KeyNetwork]
			i := st.firstIface(p)
			if !bound || i == nil {
				continue
			}
			bp := BoundPort{
				Interface: i.Name,
				Port:      p.OtherConfig[KeyPort],
				Network:   network,
				OFPort:    ofport(i),
				MAC:       macOf(i),
				Error:     deref(i.Error),
			}
			if p.Tag != nil {
				bp.VLAN = *p.Tag
			}
			f.Bindings = append(f.Bindings, bp)
		}
		sort.Slice(f.Bindings, func(a, b int) bool { return f.Bindings[a].Interface < f.Bindings[b].Interface })
	}
	for _, i := range st.ifaces {
		network, marked := i.ExternalIDs[KeyNetwork]
		if !marked {
			continue
		}
		m := MarkedInterface{
			Interface:   i.Name,
			Network:     network,
			Port:        i.ExternalIDs[KeyPort],
			MAC:         macOf(i),
			MACAttached: i.ExternalIDs[KeyAttachedMAC] != "",
			OFPort:      ofport(i),
		}
		if m.Port == "" {
			m.Port = i.Name
		}
		if p := st.portOfIface(i); p != nil {
			if b := st.bridgeOfPort(p); b != nil {
				m.Bridge = b.Name
			}
		}
		f.Marked = append(f.Marked, m)
	}
	sort.Slice(f.Marked, func(a, b int) bool { return f.Marked[a].Interface < f.Marked[b].Interface })
	return f
}

func ofport(i *vswitchd.Interface) int {
	if i == nil || i.Ofport == nil {
		return 0
	}
	return *i.Ofport
}

func macOf(i *vswitchd.Interface) string {
	if mac := i.ExternalIDs[KeyAttachedMAC]; mac != "" {
		return mac
	}
	return deref(i.MACInUse)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
