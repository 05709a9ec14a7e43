package flows

import (
	"fmt"
	"hash/fnv"

	"github.com/brtun/brtun/topology"
)

// Cookie layout, the one place it is defined. A cookie names a flow's owner
// and depends only on desired state, never on a restart round, so a restarted
// brtun computes the same cookies and touches nothing that is already right.
//
//	bits 63..56  CookieTag (0xb7): the flow is brtun's
//	bits 55..52  OwnerKind
//	bits 51..0   payload, by kind:
//	  pipeline:  0
//	  tunnel:    bits 31..0  NameID(peer host name)
//	  network:   bits 51..48 tunnel type code, bits 31..0 segment id
//	  port:      bits 31..0  PortID(network, port)
//	  learned:   bits 51..48 tunnel type code, bits 47..36 local VLAN,
//	             bit 32 set for flow-based tunnel ports, bits 31..0 segment id
//
// Learned flows carry the cookie of the learn action that created them, which
// encodes (type, segment, VLAN). A learned cookie that is not in a FlowSet's
// LearnedCookies belongs to a VLAN released or reused since: it is stale.
const CookieTag uint64 = 0xb7

// Bit positions of the cookie's parts.
const (
	cookieShift = 56
	kindShift   = 52
	typeShift   = 48
	vlanShift   = 36
	// learnedFlowBit marks the learned cookies of flow-based tunnel ports,
	// whose learned flows set tun_dst: after a switch of tunnel-port modes
	// the other mode's learned flows are stale.
	learnedFlowBit uint64 = 1 << 32
)

// OwnerKind says what a flow belongs to.
type OwnerKind uint8

// The owner kinds.
const (
	OwnerPipeline OwnerKind = 1 // static pipeline: table misses, dispatch, br-int's patch-tun classification
	OwnerTunnel   OwnerKind = 2 // a tunnel port's dispatch in table 0
	OwnerNetwork  OwnerKind = 3 // a network's tun_id->VLAN, learn and flood flows
	OwnerPort     OwnerKind = 4 // a registered port: remote (unicast, ARP and ND responder, br-int delivery) or local (br-int classification, port security, delivery)
	OwnerLearned  OwnerKind = 5 // created by learn() in table 20
)

// String names the kind as the flow-dump endpoint shows it.
func (k OwnerKind) String() string {
	switch k {
	case OwnerPipeline:
		return "pipeline"
	case OwnerTunnel:
		return "tunnel"
	case OwnerNetwork:
		return "network"
	case OwnerPort:
		return "port"
	case OwnerLearned:
		return "learned"
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// Owner is a decoded cookie.
type Owner struct {
	Kind    OwnerKind
	Type    topology.NetworkType // network and learned
	Segment uint32               // network and learned
	VLAN    uint16               // learned
	// FlowTunnels: a learned flow of flow-based tunnel ports (it sets tun_dst).
	FlowTunnels bool
	ID          uint32 // tunnel: NameID(peer host); port: PortID(network, port)
}

// String renders the owner: "pipeline", "tunnel:0x1a2b3c4d",
// "network:vxlan:5001", "port:0x1a2b3c4d", "learned:vxlan:5001:vlan=1".
func (o Owner) String() string {
	switch o.Kind {
	case OwnerPipeline:
		return "pipeline"
	case OwnerTunnel, OwnerPort:
		return fmt.Sprintf("%s:0x%08x", o.Kind, o.ID)
	case OwnerNetwork:
		return fmt.Sprintf("network:%s:%d", o.Type, o.Segment)
	case OwnerLearned:
		if o.FlowTunnels {
			return fmt.Sprintf("learned:%s:%d:vlan=%d:flow", o.Type, o.Segment, o.VLAN)
		}
		return fmt.Sprintf("learned:%s:%d:vlan=%d", o.Type, o.Segment, o.VLAN)
	}
	return o.Kind.String()
}

// typeOfCode is the tunnel type of a cookie's type code ("" for an unknown
// code): the codes are topology.TunnelType.Code, shared with reg0[0..7].
func typeOfCode(c uint8) topology.NetworkType {
	tt, _ := topology.TunnelTypeByCode(c)
	return tt.Name
}

// NameID is the stable 32-bit id (FNV-1a) of a name, used in tunnel cookies.
func NameID(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32()
}

// PortID is the stable 32-bit id of a port, used in port cookies. A caller
// that knows the topology resolves "port:0x..." by computing it.
func PortID(network, port string) uint32 { return NameID(network + "\x00" + port) }

// makeCookie assembles a cookie.
func makeCookie(k OwnerKind, payload uint64) uint64 {
	return CookieTag<<cookieShift | uint64(k)<<kindShift | payload&(1<<kindShift-1)
}

// PipelineCookie is the cookie of the static pipeline flows.
func PipelineCookie() uint64 { return makeCookie(OwnerPipeline, 0) }

// TunnelCookie is the cookie of a tunnel port's dispatch flow.
func TunnelCookie(peerHost string) uint64 {
	return makeCookie(OwnerTunnel, uint64(NameID(peerHost)))
}

// NetworkCookie is the cookie of a network's flows.
func NetworkCookie(t topology.NetworkType, segment uint32) uint64 {
	return makeCookie(OwnerNetwork, uint64(t.Code())<<typeShift|uint64(segment))
}

// PortCookie is the cookie of a known remote port's flows.
func PortCookie(network, port string) uint64 {
	return makeCookie(OwnerPort, uint64(PortID(network, port)))
}

// LearnedCookie is the cookie learn() gives the flows it creates for a
// network of type t and segment id segment on local VLAN vlan.
func LearnedCookie(t topology.NetworkType, segment uint32, vlan uint16) uint64 {
	return makeCookie(OwnerLearned,
		uint64(t.Code())<<typeShift|uint64(vlan&0x0fff)<<vlanShift|uint64(segment))
}

// IsBrtun reports whether the cookie carries brtun's tag.
func IsBrtun(cookie uint64) bool { return cookie>>cookieShift == CookieTag }

// IsLearned reports whether a cookie is that of a flow created by learn().
func IsLearned(cookie uint64) bool {
	o, ok := DecodeCookie(cookie)
	return ok && o.Kind == OwnerLearned
}

// DecodeCookie splits a brtun cookie into its owner. ok is false for a
// cookie brtun did not make.
func DecodeCookie(cookie uint64) (o Owner, ok bool) {
	if !IsBrtun(cookie) {
		return Owner{}, false
	}
	o.Kind = OwnerKind(cookie >> kindShift & 0xf)
	switch o.Kind {
	case OwnerPipeline:
		return o, cookie&(1<<kindShift-1) == 0
	case OwnerTunnel, OwnerPort:
		o.ID = uint32(cookie)
		return o, cookie>>32&(1<<(kindShift-32)-1) == 0
	case OwnerNetwork:
		o.Type = typeOfCode(uint8(cookie >> typeShift & 0xf))
		o.Segment = uint32(cookie)
		return o, o.Type != "" && cookie>>32&0xffff == 0
	case OwnerLearned:
		o.Type = typeOfCode(uint8(cookie >> typeShift & 0xf))
		o.VLAN = uint16(cookie >> vlanShift & 0x0fff)
		o.Segment = uint32(cookie)
		o.FlowTunnels = cookie&learnedFlowBit != 0
		return o, o.Type != "" && cookie>>33&0x7 == 0
	}
	return Owner{}, false
}

// DecodeOwner renders a cookie's owner for the flow-dump endpoint:
// "pipeline", "tunnel:0x...", "network:vxlan:5001", "port:0x...",
// "learned:gre:7:vlan=3", or "foreign:0x..." for a cookie brtun did not make.
func DecodeOwner(cookie uint64) string {
	o, ok := DecodeCookie(cookie)
	if !ok {
		return "foreign:" + hexU64(cookie)
	}
	return o.String()
}

// RouterMAC is the MAC of a network's virtual router: the source of brtun's
// DHCP and router advertisement answers and the ARP answer for the
// network's gateways. Locally administered (0a:b7, then the name's hash), so
// it is the same on every host and replica and after a restart.
func RouterMAC(network string) MAC {
	id := NameID(network)
	return MAC{0x0a, 0xb7, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}
