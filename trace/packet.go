package trace

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/topology"
)

// Kind is the kind of packet a trace sends.
type Kind string

// The packet kinds.
const (
	Unicast   Kind = "unicast"   // to DstMAC, or to the port holding DstIP
	ARP       Kind = "arp"       // an ARP request for DstIP
	DHCP      Kind = "dhcp"      // a DHCPv4 discover
	Broadcast Kind = "broadcast" // an IPv4 frame to ff:ff:ff:ff:ff:ff
)

// Request describes the packet a trace sends.
type Request struct {
	Kind   Kind
	DstMAC string // unicast
	DstIP  string // unicast (optional when DstMAC is given), arp
}

// RequestError is a request that describes no packet; Field names the
// offending part ("dst_mac", "dst_ip", "packet").
type RequestError struct {
	Field, Msg string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Msg }

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NewPacket builds the frame port src (its MAC, srcMAC) sends for req.
// registered are brtun's ports: a unicast to an IP goes to the MAC of the
// port of src's network that holds it.
func NewPacket(req Request, src topology.Port, srcMAC flows.MAC, registered []topology.Port) (flowsim.Packet, error) {
	p := flowsim.Packet{EthSrc: srcMAC}
	broadcastMAC := flows.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var dstIP netip.Addr
	if req.DstIP != "" {
		a, err := netip.ParseAddr(req.DstIP)
		if err != nil || a.Zone() != "" {
			return p, reqErr("dst_ip", "%q is no IP address", clip(req.DstIP))
		}
		dstIP = a.Unmap()
	}
	switch req.Kind {
	case Unicast:
		if req.DstMAC == "" && !dstIP.IsValid() {
			return p, reqErr("dst_mac", "a unicast needs dst_mac or dst_ip")
		}
		if req.DstMAC != "" {
			m, err := flows.ParseMAC(req.DstMAC)
			if err != nil {
				return p, reqErr("dst_mac", "%q is no MAC address", clip(req.DstMAC))
			}
			if m[0]&1 != 0 {
				return p, reqErr("dst_mac", "%s is a multicast address; use packet=broadcast", m)
			}
			p.EthDst = m
		} else {
			owner, ok := holder(registered, src.Network, dstIP)
			if !ok {
				return p, reqErr("dst_ip", "no port of network %s with a MAC has %s; give dst_mac", src.Network, dstIP)
			}
			p.EthDst = owner
		}
		p.EthType = flows.EthTypeIPv4
		if s, ok := srcAddr(src, true); ok {
			p.IPv4Src = flows.IPv4(s.As4())
		}
		if dstIP.Is6() {
			p.EthType = flows.EthTypeIPv6
			p.IPv6Dst = flows.IPv6(dstIP.As16())
			if s, ok := srcAddr(src, false); ok {
				p.IPv6Src = flows.IPv6(s.As16())
			}
		}
	case ARP:
		if req.DstMAC != "" {
			return p, reqErr("dst_mac", "an ARP request is broadcast; give dst_ip only")
		}
		if !dstIP.Is4() {
			return p, reqErr("dst_ip", "an ARP request needs the IPv4 address it asks for")
		}
		p.EthDst, p.EthType, p.ARPOp = broadcastMAC, flows.EthTypeARP, 1
		p.ARPSHA, p.ARPTPA = srcMAC, flows.IPv4(dstIP.As4())
		if s, ok := srcAddr(src, true); ok {
			p.ARPSPA = flows.IPv4(s.As4())
		}
	case DHCP, Broadcast:
		if req.DstMAC != "" || req.DstIP != "" {
			field := "dst_mac"
			if req.DstMAC == "" {
				field = "dst_ip"
			}
			return p, reqErr(field, "a %s goes to every address; give no destination", req.Kind)
		}
		p.EthDst, p.EthType = broadcastMAC, flows.EthTypeIPv4
		if req.Kind == DHCP {
			// from 0.0.0.0:68 to 255.255.255.255:67
			p.IPProto, p.UDPSrc, p.UDPDst = flows.IPProtoUDP, 68, 67
		} else if s, ok := srcAddr(src, true); ok {
			p.IPv4Src = flows.IPv4(s.As4())
		}
	default:
		return p, reqErr("packet", "%q: want unicast, arp, dhcp or broadcast", clip(string(req.Kind)))
	}
	return p, nil
}

// holder returns the MAC of the port of network that holds ip.
func holder(registered []topology.Port, network string, ip netip.Addr) (flows.MAC, bool) {
	for _, r := range registered {
		if r.Network != network || r.MAC == "" {
			continue
		}
		if slices.ContainsFunc(r.IPs, func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a == ip }) {
			m, err := flows.ParseMAC(r.MAC)
			return m, err == nil
		}
	}
	return flows.MAC{}, false
}

// srcAddr returns the port's first address of a family.
func srcAddr(p topology.Port, v4 bool) (netip.Addr, bool) {
	for _, s := range p.IPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() == v4 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// clip shortens what a client sent for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
