package evpn

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	hostA = netip.MustParseAddr("192.0.2.1")
	hostB = netip.MustParseAddr("192.0.2.2")
	frr   = netip.MustParseAddr("192.0.2.9")
	peer1 = netip.MustParseAddr("198.51.100.9")
	peer2 = netip.MustParseAddr("198.51.100.10")
)

func blue(macs ...MAC) Desired {
	return Desired{Networks: map[uint32]Network{5001: {VTEPs: []netip.Addr{hostB, hostA}, MACs: macs}}}
}

func mustNormalize(t *testing.T, d Desired) Desired {
	t.Helper()
	n, err := normalize(d)
	require.NoError(t, err)
	return n
}

func TestBuildRoutes(t *testing.T) {
	d := mustNormalize(t, blue(MAC{MAC: "02:00:00:00:00:0A", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("2001:db8::a")}, VTEP: hostA}))
	got := buildRoutes(65000, d, map[macKey]LocalSeq{{5001, "02:00:00:00:00:0a"}: {Seq: 3}})
	require.Len(t, got, 5, "two type-3 and three type-2 (MAC, MAC+IPv4, MAC+IPv6)")
	var t3, t2 int
	for _, r := range got {
		assert.Equal(t, "65000:5001", r.rt)
		assert.Equal(t, uint32(5001), r.vni)
		switch r.kind {
		case vtepRoute:
			t3++
			assert.Equal(t, rdOf(r.vtep, 5001), r.rd)
		case macRoute:
			t2++
			assert.Equal(t, hostA, r.vtep)
			assert.Equal(t, "192.0.2.1:5001", r.rd)
			assert.Equal(t, uint32(3), r.seq)
			assert.Equal(t, "02:00:00:00:00:0a", r.mac)
		}
	}
	assert.Equal(t, 2, t3)
	assert.Equal(t, 3, t2)

	// A superseded MAC gets no route; the VTEPs stay.
	got = buildRoutes(65000, d, map[macKey]LocalSeq{{5001, "02:00:00:00:00:0a"}: {Seq: 3, Superseded: true}})
	assert.Len(t, got, 2)

	// Overridden route target, and a 4-byte ASN keeps its low 16 bits like FRR.
	d2 := mustNormalize(t, Desired{Networks: map[uint32]Network{7: {RouteTarget: "64512:99", VTEPs: []netip.Addr{hostA}}}})
	for _, r := range buildRoutes(65000, d2, nil) {
		assert.Equal(t, "64512:99", r.rt)
	}
	rt, err := routeTarget(4200000001, 5001, "")
	require.NoError(t, err)
	assert.Equal(t, "59905:5001", rt) // 4200000001 = 0xfa56ea01
}

func TestNormalizeRejects(t *testing.T) {
	_, err := normalize(Desired{Networks: map[uint32]Network{5001: {VTEPs: []netip.Addr{hostA}}, 5001 + 65536: {VTEPs: []netip.Addr{hostA}}}})
	assert.ErrorContains(t, err, "share the route distinguisher")
	_, err = normalize(Desired{Networks: map[uint32]Network{5001: {VTEPs: []netip.Addr{hostA}}, 5001 + 65536: {VTEPs: []netip.Addr{hostB}}}})
	assert.NoError(t, err, "the same low bits on different VTEPs are distinct RDs")
	_, err = normalize(blue(MAC{MAC: "zz", VTEP: hostA}))
	assert.ErrorContains(t, err, "invalid MAC")
	_, err = normalize(blue(MAC{MAC: "02:00:00:00:00:01", VTEP: hostA}, MAC{MAC: "02-00-00-00-00-01", VTEP: hostB}))
	assert.ErrorContains(t, err, "listed twice")
	_, err = normalize(Desired{Networks: map[uint32]Network{1 << 24: {}}})
	assert.ErrorContains(t, err, "out of range")
	_, err = normalize(Desired{Networks: map[uint32]Network{5: {RouteTarget: "nonsense"}}})
	assert.ErrorContains(t, err, "route target")
	_, err = normalize(Desired{Networks: map[uint32]Network{5: {VTEPs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}}})
	assert.ErrorContains(t, err, "not an IPv4")
}

func TestDiffRoutes(t *testing.T) {
	mac := MAC{MAC: "02:00:00:00:00:0a", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.10")}, VTEP: hostA}
	seqs := map[macKey]LocalSeq{}
	have := buildRoutes(65000, mustNormalize(t, blue(mac)), seqs)

	add, del := diffRoutes(nil, have)
	assert.Len(t, add, 4)
	assert.Empty(t, del)

	// The same intent, written differently (order, MAC case), is no change.
	same := blue(MAC{MAC: "02:00:00:00:00:0A", IPs: mac.IPs, VTEP: hostA})
	same.Networks[5001] = Network{VTEPs: []netip.Addr{hostA, hostB, hostA}, MACs: same.Networks[5001].MACs}
	add, del = diffRoutes(have, buildRoutes(65000, mustNormalize(t, same), seqs))
	assert.Empty(t, add, "unchanged routes are not resent")
	assert.Empty(t, del)

	// Dropping the IP withdraws exactly the MAC+IP route.
	noIP := mac
	noIP.IPs = nil
	add, del = diffRoutes(have, buildRoutes(65000, mustNormalize(t, blue(noIP)), seqs))
	assert.Empty(t, add)
	require.Len(t, del, 1)
	assert.Equal(t, netip.MustParseAddr("198.18.0.10"), del[0].ip)

	// A new sequence number re-announces the MAC's routes (replacing them), nothing else.
	add, del = diffRoutes(have, buildRoutes(65000, mustNormalize(t, blue(mac)), map[macKey]LocalSeq{{5001, mac.MAC}: {Seq: 1}}))
	assert.Len(t, add, 2)
	assert.Empty(t, del)
	for _, r := range add {
		assert.Equal(t, macRoute, int(r.kind))
	}
}

func TestPathRoundTrip(t *testing.T) {
	for _, r := range []route{
		{kind: vtepRoute, vni: 5001, rd: "192.0.2.1:5001", vtep: hostA, rt: "65000:5001"},
		{kind: macRoute, vni: 5001, rd: "192.0.2.1:5001", vtep: hostA, mac: "02:00:00:00:00:0a", rt: "65000:5001"},
		{kind: macRoute, vni: 70000, rd: "192.0.2.1:4464", vtep: hostA, mac: "02:00:00:00:00:0a", ip: netip.MustParseAddr("198.18.0.10"), rt: "65000:70000", seq: 7},
		{kind: macRoute, vni: 5001, rd: "192.0.2.1:5001", vtep: hostA, mac: "02:00:00:00:00:0a", ip: netip.MustParseAddr("2001:db8::a"), rt: "65000:5001", seq: 1},
	} {
		p, err := r.path()
		require.NoError(t, err)
		p.NeighborIp = peer1.String()
		got, ok, err := parsePath(p)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, received{kind: r.kind, rd: r.rd, rts: []string{r.rt}, vxlan: true, vni: r.vni, vtep: r.vtep,
			mac: r.mac, ip: r.ip, seq: r.seq, peer: peer1}, got, "%+v", r)
	}
}

func rx(kind uint8, vni uint32, vtep netip.Addr, mac string, seq uint32, peer netip.Addr) received {
	return received{kind: kind, rd: vtep.String() + ":1", rts: []string{"65000:5001"}, vxlan: true, vni: vni, vtep: vtep, mac: mac, seq: seq, peer: peer}
}

func TestSelectRemote(t *testing.T) {
	d := mustNormalize(t, blue(MAC{MAC: "02:00:00:00:00:0a", VTEP: hostA}))
	other := netip.MustParseAddr("192.0.2.20")
	noVXLAN := rx(vtepRoute, 5001, netip.MustParseAddr("192.0.2.30"), "", 0, peer1)
	noVXLAN.vxlan = false
	wrongRT := rx(vtepRoute, 5001, netip.MustParseAddr("192.0.2.31"), "", 0, peer1)
	wrongRT.rts = []string{"65000:5002"}
	withIP := rx(macRoute, 5001, frr, "02:00:00:00:00:09", 0, peer1)
	withIP.ip = netip.MustParseAddr("198.18.0.9")
	set := selectRemote(65000, d, []received{
		rx(vtepRoute, 5001, frr, "", 0, peer2),
		rx(vtepRoute, 5001, frr, "", 0, peer1),   // same VTEP via a second peer: one entry, lowest peer
		rx(vtepRoute, 5002, other, "", 0, peer1), // VNI not in Desired
		rx(vtepRoute, 5001, hostA, "", 0, peer1), // our own VTEP reflected back
		noVXLAN, wrongRT,
		rx(macRoute, 5001, frr, "02:00:00:00:00:09", 0, peer1), withIP,
		rx(macRoute, 5001, frr, "02:00:00:00:00:0b", 1, peer1), // moved: seq 1 at frr beats seq 0 at other
		rx(macRoute, 5001, other, "02:00:00:00:00:0b", 0, peer1),
	})
	assert.Equal(t, map[vtepKey]RemoteVTEP{{5001, frr}: {IP: frr, Peer: peer1, RD: "192.0.2.9:1"}}, set.vteps)
	assert.Equal(t, map[macKey]RemoteMAC{
		{5001, "02:00:00:00:00:09"}: {MAC: "02:00:00:00:00:09", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.9")}, VTEP: frr, Peer: peer1, RD: "192.0.2.9:1"},
		{5001, "02:00:00:00:00:0b"}: {MAC: "02:00:00:00:00:0b", VTEP: frr, Seq: 1, Peer: peer1, RD: "192.0.2.9:1"},
	}, set.macs)

	// Equal sequence numbers: the lower VTEP IP wins (RFC 7432 15.1).
	set = selectRemote(65000, d, []received{
		rx(macRoute, 5001, other, "02:00:00:00:00:0c", 2, peer1),
		rx(macRoute, 5001, frr, "02:00:00:00:00:0c", 2, peer1),
	})
	assert.Equal(t, frr, set.macs[macKey{5001, "02:00:00:00:00:0c"}].VTEP)
}

func TestResolveSeqs(t *testing.T) {
	const m = "02:00:00:00:00:0a"
	k := macKey{5001, m}
	d := mustNormalize(t, blue(MAC{MAC: m, VTEP: hostA}))

	// No remote: the caller's Seq (0).
	s := resolveSeqs(d, nil, nil)
	assert.Equal(t, LocalSeq{VNI: 5001, MAC: m, VTEP: hostA, Seq: 0}, s[k])

	// The MAC appears here while the fabric still has it at seq 4: it moved
	// away from the fabric, advertise 5 and win.
	remote := map[macKey]RemoteMAC{k: {MAC: m, VTEP: frr, Seq: 4}}
	s = resolveSeqs(d, nil, remote)
	assert.Equal(t, LocalSeq{VNI: 5001, MAC: m, VTEP: hostA, Seq: 5}, s[k])
	assert.Empty(t, assemble(remoteSet{macs: remote}, s).Networks, "the beaten remote MAC is not imported")

	// Later the fabric advertises seq 6: the MAC moved into the fabric; ours is superseded.
	remote = map[macKey]RemoteMAC{k: {MAC: m, VTEP: frr, Seq: 6}}
	s2 := resolveSeqs(d, s, remote)
	assert.Equal(t, LocalSeq{VNI: 5001, MAC: m, VTEP: hostA, Seq: 5, Superseded: true}, s2[k])
	im := assemble(remoteSet{macs: remote}, s2)
	require.Len(t, im.Networks, 1)
	assert.Equal(t, frr, im.Networks[0].MACs[0].VTEP)
	assert.Empty(t, buildRoutes(65000, mustNormalize(t, Desired{Networks: map[uint32]Network{5001: {MACs: d.Networks[5001].MACs}}}), s2),
		"a superseded MAC is withdrawn")

	// It moves to host B (the caller's Desired says so): above the fabric's 6.
	dB := mustNormalize(t, blue(MAC{MAC: m, VTEP: hostB}))
	s3 := resolveSeqs(dB, s2, remote)
	assert.Equal(t, LocalSeq{VNI: 5001, MAC: m, VTEP: hostB, Seq: 7}, s3[k])

	// A move between our own hosts with no remote still counts: seq+1.
	s4 := resolveSeqs(d, s3, nil)
	assert.Equal(t, uint32(8), s4[k].Seq)
	// Unchanged: unchanged seq (no churn).
	assert.Equal(t, s4, resolveSeqs(d, s4, nil))

	// Equal seq without a move: the remote wins the tie (GoBGP would refuse
	// ours), whatever the VTEP IPs; a lower remote seq does not.
	tie := map[macKey]RemoteMAC{k: {MAC: m, VTEP: frr, Seq: 8}}
	assert.True(t, resolveSeqs(d, s4, tie)[k].Superseded)
	lower := map[macKey]RemoteMAC{k: {MAC: m, VTEP: netip.MustParseAddr("192.0.1.1"), Seq: 7}}
	assert.False(t, resolveSeqs(d, s4, lower)[k].Superseded)
}

func TestAssembleSortedAndHeld(t *testing.T) {
	d := mustNormalize(t, Desired{Networks: map[uint32]Network{5001: {}, 5002: {}}})
	set := selectRemote(65000, d, []received{
		rx(macRoute, 5001, frr, "02:00:00:00:00:0b", 0, peer1),
		rx(macRoute, 5001, frr, "02:00:00:00:00:09", 0, peer1),
	})
	restored := Imported{Networks: []ImportedNetwork{
		{VNI: 5001, VTEPs: []RemoteVTEP{{IP: frr, Peer: peer1}}, MACs: []RemoteMAC{{MAC: "02:00:00:00:00:0b", VTEP: hostB, Seq: 9, Peer: peer2}}},
		{VNI: 5003, VTEPs: []RemoteVTEP{{IP: frr, Peer: peer1}}}, // network no longer desired
		{VNI: 5002, VTEPs: []RemoteVTEP{{IP: frr, Peer: peer2}}}, // peer2 sent End-of-RIB already
	}}
	set.addHeld(d, restored, map[netip.Addr]bool{peer1: true})
	im := assemble(set, nil)
	want := Imported{Networks: []ImportedNetwork{{VNI: 5001,
		VTEPs: []RemoteVTEP{{IP: frr, Peer: peer1}},
		MACs: []RemoteMAC{
			{MAC: "02:00:00:00:00:09", VTEP: frr, Peer: peer1, RD: "192.0.2.9:1"},
			{MAC: "02:00:00:00:00:0b", VTEP: frr, Peer: peer1, RD: "192.0.2.9:1"}, // live beats held
		}}}}
	assert.Equal(t, want, im)
}
