package evpn

import (
	"cmp"
	"net/netip"
	"slices"
)

// vtepKey identifies a remote VTEP within a network.
type vtepKey struct {
	vni uint32
	ip  netip.Addr
}

// remoteSet is the deduplicated import before MAC mobility is applied.
type remoteSet struct {
	vteps map[vtepKey]RemoteVTEP
	macs  map[macKey]RemoteMAC // the winning remote route per MAC
}

// selectRemote attributes received routes to the networks of a normalized
// Desired and deduplicates them. A route belongs to network VNI when it
// carries the network's route target, the VXLAN encapsulation and label
// VNI; routes whose next hop is one of the caller's own VTEPs are dropped
// (our own routes reflected back). Of several routes for one MAC the highest
// sequence number wins, then the lowest VTEP IP (RFC 7432 section 15.1);
// the MAC's IPs are those of the winner's MAC+IP routes. Equal candidates
// from several peers or RDs keep the lowest (peer, RD).
func selectRemote(asn uint32, d Desired, rs []received) remoteSet {
	own := map[netip.Addr]bool{}
	rts := map[uint32]string{}
	for vni, n := range d.Networks {
		rts[vni], _ = routeTarget(asn, vni, n.RouteTarget)
		for _, v := range n.VTEPs {
			own[v] = true
		}
		for _, m := range n.MACs {
			own[m.VTEP] = true
		}
	}
	type macVTEP struct {
		macKey
		vtep netip.Addr
	}
	// Sized up front: a round of a large import would spend most of its
	// time growing these maps.
	set := remoteSet{vteps: map[vtepKey]RemoteVTEP{}, macs: make(map[macKey]RemoteMAC, len(rs))}
	groups := make(map[macVTEP]RemoteMAC, len(rs))
	for _, r := range rs {
		rt, ok := rts[r.vni]
		if !ok || !r.vxlan || !r.vtep.IsValid() || own[r.vtep] || !slices.Contains(r.rts, rt) {
			continue
		}
		switch r.kind {
		case vtepRoute:
			k := vtepKey{r.vni, r.vtep}
			c := RemoteVTEP{IP: r.vtep, Peer: r.peer, RD: r.rd}
			if old, ok := set.vteps[k]; !ok || lessOrigin(c.Peer, c.RD, old.Peer, old.RD) {
				set.vteps[k] = c
			}
		case macRoute:
			k := macVTEP{macKey{r.vni, r.mac}, r.vtep}
			g, ok := groups[k]
			if !ok {
				g = RemoteMAC{MAC: r.mac, VTEP: r.vtep, Seq: r.seq, Peer: r.peer, RD: r.rd}
			}
			g.Seq = max(g.Seq, r.seq)
			if lessOrigin(r.peer, r.rd, g.Peer, g.RD) {
				g.Peer, g.RD = r.peer, r.rd
			}
			if r.ip.IsValid() && !slices.Contains(g.IPs, r.ip) {
				g.IPs = append(g.IPs, r.ip)
			}
			groups[k] = g
		}
	}
	for k, g := range groups {
		slices.SortFunc(g.IPs, netip.Addr.Compare)
		if old, ok := set.macs[k.macKey]; !ok || beats(g.Seq, g.VTEP, old.Seq, old.VTEP) {
			set.macs[k.macKey] = g
		}
	}
	return set
}

// beats tells whether a MAC route (seq a, VTEP va) wins over (b, vb).
func beats(a uint32, va netip.Addr, b uint32, vb netip.Addr) bool {
	if a != b {
		return a > b
	}
	return va.Less(vb)
}

func lessOrigin(peerA netip.Addr, rdA string, peerB netip.Addr, rdB string) bool {
	return cmp.Or(peerA.Compare(peerB), cmp.Compare(rdA, rdB)) < 0
}

// addHeld adds restored routes of peers still held (graceful restart) for
// the networks of d, where the live import has nothing for the same key.
func (set remoteSet) addHeld(d Desired, restored Imported, held map[netip.Addr]bool) {
	for _, n := range restored.Networks {
		if _, ok := d.Networks[n.VNI]; !ok {
			continue
		}
		for _, v := range n.VTEPs {
			k := vtepKey{n.VNI, v.IP}
			if _, live := set.vteps[k]; !live && held[v.Peer] {
				set.vteps[k] = v
			}
		}
		for _, m := range n.MACs {
			k := macKey{n.VNI, m.MAC}
			if _, live := set.macs[k]; !live && held[m.Peer] {
				set.macs[k] = m
			}
		}
	}
}

// resolveSeqs applies RFC 7432 MAC mobility to the local MACs of a
// normalized Desired. prev is what was advertised before, remote the
// winning remote route per MAC. A MAC that is new here, or moved to another
// of our VTEPs, is advertised above everything seen for it (the remote's
// seq+1, our previous seq+1 after a move), never below the caller's Seq.
// A local MAC is superseded (withdrawn) while a remote route has a sequence
// number at least as high: the remote wins ties (RFC 7432 would pick the
// lower VTEP IP), because GoBGP refuses to originate a MAC route whose
// number is not above every remote one for the same MAC and route target.
func resolveSeqs(d Desired, prev map[macKey]LocalSeq, remote map[macKey]RemoteMAC) map[macKey]LocalSeq {
	out := map[macKey]LocalSeq{}
	for vni, n := range d.Networks {
		for _, m := range n.MACs {
			k := macKey{vni, m.MAC}
			p, had := prev[k]
			r, hasRemote := remote[k]
			seq := m.Seq
			if had {
				seq = max(seq, p.Seq)
				if p.VTEP != m.VTEP {
					seq = max(seq, p.Seq+1)
				}
			}
			if hasRemote && (!had || p.VTEP != m.VTEP) {
				seq = max(seq, r.Seq+1)
			}
			out[k] = LocalSeq{VNI: vni, MAC: m.MAC, VTEP: m.VTEP, Seq: seq,
				Superseded: hasRemote && r.Seq >= seq}
		}
	}
	return out
}

// assemble builds the sorted Imported: remote VTEPs, and the remote MACs no
// local MAC beats.
func assemble(set remoteSet, seqs map[macKey]LocalSeq) Imported {
	nets := map[uint32]*ImportedNetwork{}
	get := func(vni uint32) *ImportedNetwork {
		if nets[vni] == nil {
			nets[vni] = &ImportedNetwork{VNI: vni}
		}
		return nets[vni]
	}
	for k, v := range set.vteps {
		n := get(k.vni)
		n.VTEPs = append(n.VTEPs, v)
	}
	for k, m := range set.macs {
		if l, ok := seqs[k]; ok && !l.Superseded {
			continue
		}
		m.IPs = slices.Clone(m.IPs)
		n := get(k.vni)
		n.MACs = append(n.MACs, m)
	}
	var im Imported
	for _, n := range nets {
		slices.SortFunc(n.VTEPs, func(a, b RemoteVTEP) int { return a.IP.Compare(b.IP) })
		slices.SortFunc(n.MACs, func(a, b RemoteMAC) int { return cmp.Compare(a.MAC, b.MAC) })
		im.Networks = append(im.Networks, *n)
	}
	slices.SortFunc(im.Networks, func(a, b ImportedNetwork) int { return cmp.Compare(a.VNI, b.VNI) })
	return im
}

// seqList returns seqs sorted by VNI and MAC, as State stores them.
func seqList(seqs map[macKey]LocalSeq) []LocalSeq {
	var out []LocalSeq
	for _, s := range seqs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b LocalSeq) int { return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.MAC, b.MAC)) })
	return out
}
