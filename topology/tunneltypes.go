package topology

import (
	"fmt"
	"strings"
)

// NetworkType is the tunnel encapsulation a network uses: the Name of one
// row of the tunnel-type table.
type NetworkType string

// The tunnel types brtun supports; each has a row in tunnelTypes.
const (
	VXLAN  NetworkType = "vxlan"
	GRE    NetworkType = "gre"
	Geneve NetworkType = "geneve"
)

// TunnelType is everything brtun knows about one tunnel encapsulation.
// The table of them (tunnelTypes) is the only place that knows; the API,
// the store, the flow compiler, the OVSDB layer, the CLI and the docs read
// it (TunnelTypes, NetworkType.Tunnel), and a test checks the documents.
type TunnelType struct {
	// Name is the network type of the API and the CLI, and the prefix of
	// the tunnel port names (vxlan-c0000202): at most 6 characters, so
	// that a port name fits an interface name (15).
	Name NetworkType
	// SegmentName says what the segment id is on the wire ("VNI", "key").
	SegmentName string
	// MaxSegment is the largest segment id; the smallest is 1.
	MaxSegment uint32
	// Overhead is the number of bytes the encapsulation adds to a VM
	// frame on an IPv4 underlay; a VM's MTU is the underlay MTU minus it.
	Overhead int
	// Code is the type's number in NXM_NX_REG0[0..7], which br-tun's
	// table 0 loads for frames from a tunnel port, and in flow cookies
	// (4 bits): unique, 1..15.
	Code uint8
	// OVSType is the OVSDB Interface type of the type's tunnel ports.
	OVSType string
	// UDPPort is the default UDP destination port of the encapsulation,
	// 0 for one that is not carried over UDP.
	UDPPort uint16
}

// tunnelTypes is the tunnel-type table, in the order brtun lists types.
// Nothing writes to it; read it through TunnelTypes and NetworkType.Tunnel.
var tunnelTypes = [...]TunnelType{
	// outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
	{Name: VXLAN, SegmentName: "VNI", MaxSegment: 1<<24 - 1, Overhead: 50, Code: 1, OVSType: "vxlan", UDPPort: 4789},
	// outer IPv4 20 + GRE with key 8 + inner Ethernet 14
	{Name: GRE, SegmentName: "key", MaxSegment: 1<<32 - 1, Overhead: 42, Code: 2, OVSType: "gre"},
	// outer IPv4 20 + UDP 8 + Geneve without options 8 + inner Ethernet 14
	{Name: Geneve, SegmentName: "VNI", MaxSegment: 1<<24 - 1, Overhead: 50, Code: 3, OVSType: "geneve", UDPPort: 6081},
}

// TunnelTypes returns the tunnel-type table, in the order brtun lists types.
func TunnelTypes() []TunnelType {
	out := tunnelTypes
	return out[:]
}

// Tunnel returns t's row of the tunnel-type table, or false for a type
// brtun does not support.
func (t NetworkType) Tunnel() (TunnelType, bool) {
	for _, tt := range tunnelTypes {
		if tt.Name == t {
			return tt, true
		}
	}
	return TunnelType{}, false
}

// TunnelTypeByCode returns the tunnel type of a reg0/cookie code, or false.
func TunnelTypeByCode(code uint8) (TunnelType, bool) {
	for _, tt := range tunnelTypes {
		if tt.Code == code {
			return tt, true
		}
	}
	return TunnelType{}, false
}

// TunnelTypeByOVSType returns the tunnel type whose ports have OVSDB
// Interface type ovsType, or false.
func TunnelTypeByOVSType(ovsType string) (TunnelType, bool) {
	for _, tt := range tunnelTypes {
		if tt.OVSType == ovsType {
			return tt, true
		}
	}
	return TunnelType{}, false
}

// Valid reports whether t is a tunnel type brtun supports.
func (t NetworkType) Valid() bool {
	_, ok := t.Tunnel()
	return ok
}

// MaxSegment is the largest segment id of type t (0 for an unknown type).
func (t NetworkType) MaxSegment() uint32 {
	tt, _ := t.Tunnel()
	return tt.MaxSegment
}

// Code is t's reg0 and cookie code (0 for an unknown type).
func (t NetworkType) Code() uint8 {
	tt, _ := t.Tunnel()
	return tt.Code
}

// Overhead is the number of bytes the encapsulation of type t adds to a VM
// frame (0 for an unknown type).
func (t NetworkType) Overhead() int {
	tt, _ := t.Tunnel()
	return tt.Overhead
}

// MTU is the largest VM MTU that fits an underlay MTU of underlayMTU after
// the encapsulation of type t.
func (t NetworkType) MTU(underlayMTU int) int {
	return underlayMTU - t.Overhead()
}

// TunnelTypeNames lists the supported types for messages: "vxlan, gre or
// geneve".
func TunnelTypeNames() string {
	names := make([]string, 0, len(tunnelTypes))
	for _, tt := range tunnelTypes {
		names = append(names, string(tt.Name))
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// SegmentRanges lists the segment id range of every type for messages:
// "vxlan 1..16777215, gre 1..4294967295".
func SegmentRanges() string {
	ranges := make([]string, 0, len(tunnelTypes))
	for _, tt := range tunnelTypes {
		ranges = append(ranges, fmt.Sprintf("%s 1..%d", tt.Name, tt.MaxSegment))
	}
	return strings.Join(ranges, ", ")
}

// MaxSegmentOfAnyType is the largest segment id of any tunnel type.
func MaxSegmentOfAnyType() uint32 {
	var m uint32
	for _, tt := range tunnelTypes {
		m = max(m, tt.MaxSegment)
	}
	return m
}

// TunnelPortMode says how br-tun's tunnel ports reach the other hosts
// (serve --tunnel-ports). It is one input to the flow compiler (flows.View)
// and to the tunnel ports OVSDB holds (ovsdb.TunnelSpec); nothing else
// depends on it.
type TunnelPortMode string

// The tunnel-port modes. The zero value is PerPeerTunnels.
const (
	// PerPeerTunnels: one port per other host and tunnel type, whose
	// remote_ip is the peer's tunnel IP (the original Neutron layout, the
	// default). The port says where a packet goes and where one came from.
	PerPeerTunnels TunnelPortMode = "per-peer"
	// FlowTunnels: one port per tunnel type (remote_ip=flow, key=flow).
	// Flows set tun_dst before each output, learned flows copy tun_src into
	// tun_dst, and br-tun's table 0 takes a tunnel packet only from the
	// tun_src of a known host or remote VTEP. IPv4 tunnel IPs only.
	FlowTunnels TunnelPortMode = "flow"
)

// TunnelPortModes lists the modes, the default first.
func TunnelPortModes() []TunnelPortMode { return []TunnelPortMode{PerPeerTunnels, FlowTunnels} }

// ParseTunnelPortMode parses "per-peer" or "flow".
func ParseTunnelPortMode(s string) (TunnelPortMode, error) {
	for _, m := range TunnelPortModes() {
		if s == string(m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("tunnel-port mode %q: want %q or %q", s, PerPeerTunnels, FlowTunnels)
}

// Flow reports whether m is FlowTunnels; any other value, the zero value
// included, is per-peer.
func (m TunnelPortMode) Flow() bool { return m == FlowTunnels }

// String is the mode's flag value; the zero value prints as per-peer.
func (m TunnelPortMode) String() string {
	if m.Flow() {
		return string(FlowTunnels)
	}
	return string(PerPeerTunnels)
}
