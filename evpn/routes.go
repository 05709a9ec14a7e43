package evpn

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Route types of RFC 7432 the speaker handles.
const (
	macRoute  = bgp.EVPN_ROUTE_TYPE_MAC_IP_ADVERTISEMENT  // type 2
	vtepRoute = bgp.EVPN_INCLUSIVE_MULTICAST_ETHERNET_TAG // type 3
)

// route is one EVPN route the speaker advertises. It is comparable: the
// advertised set is diffed with ==, so an unchanged route is never resent.
type route struct {
	kind uint8
	vni  uint32
	rd   string     // type-1 RD "VTEP:VNI&0xffff"
	vtep netip.Addr // next hop; originating IP and PMSI tunnel id of type-3
	mac  string     // type-2 only
	ip   netip.Addr // type-2 only, optional
	rt   string     // route target, canonical "A:B"
	seq  uint32     // MAC mobility sequence number; 0 sends none
}

// nlriKey identifies a route's NLRI: what a new AddPath replaces in GoBGP.
type nlriKey struct {
	kind uint8
	rd   string
	vtep netip.Addr // type-3 originating IP
	mac  string
	ip   netip.Addr
}

func (r route) key() nlriKey {
	k := nlriKey{kind: r.kind, rd: r.rd, mac: r.mac, ip: r.ip}
	if r.kind == vtepRoute {
		k.vtep = r.vtep
	}
	return k
}

// macKey identifies a MAC within a network.
type macKey struct {
	vni uint32
	mac string
}

// routeTarget returns the network's route target, canonical.
func routeTarget(asn, vni uint32, override string) (string, error) {
	if override == "" {
		return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, uint16(asn&0xffff), vni, true).String(), nil
	}
	ec, err := bgp.ParseRouteTarget(override)
	if err != nil {
		return "", fmt.Errorf("route target %q of VNI %d: %w", override, vni, err)
	}
	return ec.String(), nil
}

// normalize validates d and returns a copy with canonical MACs, sorted and
// deduplicated lists, so that equal intents compare equal.
func normalize(d Desired) (Desired, error) {
	out := Desired{Networks: make(map[uint32]Network, len(d.Networks))}
	rds := map[string]uint32{} // RD -> VNI, to reject two VNIs sharing an RD on a VTEP
	for vni, n := range d.Networks {
		if vni == 0 || vni > 0xffffff {
			return Desired{}, fmt.Errorf("VNI %d out of range 1..16777215", vni)
		}
		nn := Network{RouteTarget: n.RouteTarget, VTEPs: slices.Clone(n.VTEPs)}
		if _, err := routeTarget(0, vni, n.RouteTarget); err != nil {
			return Desired{}, err
		}
		check := func(vtep netip.Addr) error {
			if !vtep.Is4() {
				return fmt.Errorf("VNI %d: VTEP %v is not an IPv4 address", vni, vtep)
			}
			rd := rdOf(vtep, vni)
			if other, ok := rds[rd]; ok && other != vni {
				return fmt.Errorf("VNIs %d and %d on VTEP %v share the route distinguisher %s (equal low 16 bits)", other, vni, vtep, rd)
			}
			rds[rd] = vni
			return nil
		}
		for _, v := range nn.VTEPs {
			if err := check(v); err != nil {
				return Desired{}, err
			}
		}
		slices.SortFunc(nn.VTEPs, netip.Addr.Compare)
		nn.VTEPs = slices.Compact(nn.VTEPs)
		seen := map[string]bool{}
		for _, m := range n.MACs {
			mac, err := normalMAC(m.MAC)
			if err != nil {
				return Desired{}, fmt.Errorf("VNI %d: %w", vni, err)
			}
			if seen[mac] {
				return Desired{}, fmt.Errorf("VNI %d: MAC %s listed twice", vni, mac)
			}
			seen[mac] = true
			if err := check(m.VTEP); err != nil {
				return Desired{}, err
			}
			ips := slices.Clone(m.IPs)
			for _, ip := range ips {
				if !ip.IsValid() {
					return Desired{}, fmt.Errorf("VNI %d: MAC %s: invalid IP", vni, mac)
				}
			}
			slices.SortFunc(ips, netip.Addr.Compare)
			nn.MACs = append(nn.MACs, MAC{MAC: mac, IPs: slices.Compact(ips), VTEP: m.VTEP, Seq: m.Seq})
		}
		slices.SortFunc(nn.MACs, func(a, b MAC) int { return cmp.Compare(a.MAC, b.MAC) })
		out.Networks[vni] = nn
	}
	return out, nil
}

// rdOf is the route distinguisher of a VTEP's routes in a VNI (type 1,
// like FRR's router-id:N, with the host's tunnel IP).
func rdOf(vtep netip.Addr, vni uint32) string {
	return fmt.Sprintf("%s:%d", vtep, vni&0xffff)
}

// buildRoutes returns the routes of a normalized Desired, keyed by NLRI.
// seqs holds the sequence number of every local MAC (see resolveSeqs); a
// superseded MAC gets no route.
func buildRoutes(asn uint32, d Desired, seqs map[macKey]LocalSeq) map[nlriKey]route {
	out := map[nlriKey]route{}
	add := func(r route) { out[r.key()] = r }
	for vni, n := range d.Networks {
		rt, _ := routeTarget(asn, vni, n.RouteTarget) // validated by normalize
		for _, v := range n.VTEPs {
			add(route{kind: vtepRoute, vni: vni, rd: rdOf(v, vni), vtep: v, rt: rt})
		}
		for _, m := range n.MACs {
			s := seqs[macKey{vni, m.MAC}]
			if s.Superseded {
				continue
			}
			base := route{kind: macRoute, vni: vni, rd: rdOf(m.VTEP, vni), vtep: m.VTEP, mac: m.MAC, rt: rt, seq: s.Seq}
			add(base)
			for _, ip := range m.IPs {
				r := base
				r.ip = ip
				add(r)
			}
		}
	}
	return out
}

// diffRoutes returns the routes to (re)announce and the ones to withdraw to
// go from have to want. A route whose attributes changed is announced again
// (it replaces the old one); an unchanged route is in neither list.
func diffRoutes(have, want map[nlriKey]route) (announce, withdraw []route) {
	for k, w := range want {
		if h, ok := have[k]; !ok || h != w {
			announce = append(announce, w)
		}
	}
	for k, h := range have {
		if _, ok := want[k]; !ok {
			withdraw = append(withdraw, h)
		}
	}
	order := func(a, b route) int {
		return cmp.Or(cmp.Compare(a.vni, b.vni), cmp.Compare(a.kind, b.kind), a.vtep.Compare(b.vtep),
			cmp.Compare(a.mac, b.mac), a.ip.Compare(b.ip))
	}
	slices.SortFunc(announce, order)
	slices.SortFunc(withdraw, order)
	return announce, withdraw
}

// path turns a route into a GoBGP path: the NLRI, origin IGP, the next hop,
// the route target, the VXLAN encapsulation (RFC 9012 tunnel type 8) and,
// per type, the PMSI tunnel attribute (ingress replication, label = VNI)
// or the MAC mobility extended community (when seq > 0).
func (r route) path() (*api.Path, error) {
	rd, err := bgp.ParseRouteDistinguisher(r.rd)
	if err != nil {
		return nil, fmt.Errorf("route distinguisher %s: %w", r.rd, err)
	}
	rt, err := bgp.ParseRouteTarget(r.rt)
	if err != nil {
		return nil, fmt.Errorf("route target %s: %w", r.rt, err)
	}
	comms := []bgp.ExtendedCommunityInterface{rt, bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN)}
	var nlri *bgp.EVPNNLRI
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	switch r.kind {
	case vtepRoute:
		nlri = bgp.NewEVPNMulticastEthernetTagRoute(rd, 0, r.vtep.String())
		attrs = append(attrs, bgp.NewPathAttributePmsiTunnel(bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL, false, r.vni,
			bgp.NewIngressReplTunnelID(r.vtep.String())))
	case macRoute:
		ip := ""
		if r.ip.IsValid() {
			ip = r.ip.String()
		}
		nlri = bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, r.mac, ip, []uint32{r.vni})
		if r.seq > 0 {
			comms = append(comms, bgp.NewMacMobilityExtended(r.seq, false))
		}
	default:
		return nil, fmt.Errorf("route type %d", r.kind)
	}
	attrs = append(attrs,
		bgp.NewPathAttributeMpReachNLRI(r.vtep.String(), []bgp.AddrPrefixInterface{nlri}),
		bgp.NewPathAttributeExtendedCommunities(comms))
	p, err := apiutil.NewPath(nlri, false, attrs, time.Now())
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", nlri, err)
	}
	return p, nil
}

// received is one route learned from a peer, decoded.
type received struct {
	kind  uint8
	rd    string
	rts   []string
	vxlan bool   // carries the VXLAN encapsulation extended community
	vni   uint32 // type-2 label / type-3 PMSI label
	vtep  netip.Addr
	mac   string
	ip    netip.Addr
	seq   uint32
	peer  netip.Addr
}

// parsePath decodes a path from GoBGP's RIB; ok is false for anything that
// is not a type-2 or type-3 route.
func parsePath(p *api.Path) (received, bool, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return received{}, false, fmt.Errorf("decode NLRI: %w", err)
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return received{}, false, fmt.Errorf("decode attributes of %s: %w", nlri, err)
	}
	e, ok := nlri.(*bgp.EVPNNLRI)
	if !ok {
		return received{}, false, nil
	}
	var rc received
	rc.peer, _ = netip.ParseAddr(p.NeighborIp)
	switch d := e.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		rc.kind = macRoute
		rc.rd = d.RD.String()
		rc.mac = d.MacAddress.String()
		if ip, ok := netip.AddrFromSlice(d.IPAddress); ok && d.IPAddressLength > 0 {
			rc.ip = ip.Unmap()
		}
		if len(d.Labels) > 0 {
			rc.vni = d.Labels[0]
		}
	case *bgp.EVPNMulticastEthernetTagRoute:
		rc.kind = vtepRoute
		rc.rd = d.RD.String()
	default:
		return received{}, false, nil
	}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			if ip, ok := netip.AddrFromSlice(a.Nexthop); ok {
				rc.vtep = ip.Unmap()
			}
		case *bgp.PathAttributePmsiTunnel:
			if rc.kind == vtepRoute {
				rc.vni = a.Label
			}
		case *bgp.PathAttributeExtendedCommunities:
			for _, c := range a.Value {
				switch c := c.(type) {
				case *bgp.EncapExtended:
					rc.vxlan = rc.vxlan || c.TunnelType == bgp.TUNNEL_TYPE_VXLAN
				case *bgp.MacMobilityExtended:
					rc.seq = c.Sequence
				default:
					if isRouteTarget(c) {
						rc.rts = append(rc.rts, c.String())
					}
				}
			}
		}
	}
	return rc, true, nil
}

// isRouteTarget tells a route target from the other extended communities
// with the same subtype (the EVPN ES-Import route target is one).
func isRouteTarget(c bgp.ExtendedCommunityInterface) bool {
	typ, sub := c.GetTypes()
	switch typ {
	case bgp.EC_TYPE_TRANSITIVE_TWO_OCTET_AS_SPECIFIC, bgp.EC_TYPE_TRANSITIVE_IP4_SPECIFIC,
		bgp.EC_TYPE_TRANSITIVE_FOUR_OCTET_AS_SPECIFIC:
		return sub == bgp.EC_SUBTYPE_ROUTE_TARGET
	}
	return false
}
