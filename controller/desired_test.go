package controller

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// testSnapshot: h1 carries blue (with h2) and green (alone); h2 and h3
// carry red, which h1 does not.
func testSnapshot() topology.Snapshot {
	return topology.Snapshot{
		Revision: 7,
		Hosts: []topology.Host{
			{Name: "h1", OVSDB: "tcp:192.0.2.1:6640", TunnelIP: "198.51.100.1", DatapathType: "system"},
			{Name: "h2", OVSDB: "tcp:192.0.2.2:6640", TunnelIP: "198.51.100.2", DatapathType: "system"},
			{Name: "h3", OVSDB: "tcp:192.0.2.3:6640", TunnelIP: "198.51.100.3", DatapathType: "netdev"},
		},
		Networks: []topology.Network{
			{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, MACLearning: true},
			{Name: "green", Type: topology.VXLAN, SegmentID: 5002},
			{Name: "red", Type: topology.VXLAN, SegmentID: 5003},
		},
		Ports: []topology.Port{
			{Network: "blue", Name: "a1", Host: "h1", Interface: "tap-a1", MAC: "02:00:00:00:01:01", IPs: []string{"10.0.0.1"}, LocalVLAN: 1},
			{Network: "blue", Name: "a2", Host: "h2", Interface: "tap-a2", MAC: "02:00:00:00:01:02", IPs: []string{"10.0.0.2"}, LocalVLAN: 3},
			{Network: "blue", Name: "a3", Host: "h1", Interface: "tap-a3", MAC: "02:00:00:00:01:03", LocalVLAN: 1},
			{Network: "blue", Name: "a4", Host: "h2", Interface: "tap-a4", LocalVLAN: 3}, // no MAC: no remote port
			{Network: "green", Name: "g1", Host: "h1", Interface: "tap-g1", LocalVLAN: 2},
			{Network: "red", Name: "r2", Host: "h2", Interface: "tap-r2", MAC: "02:00:00:00:03:02", IPs: []string{"10.3.0.2"}, LocalVLAN: 1},
			{Network: "red", Name: "r3", Host: "h3", Interface: "tap-r3", MAC: "02:00:00:00:03:03", IPs: []string{"10.3.0.3"}, LocalVLAN: 1},
		},
	}
}

func h1Inputs(t *testing.T, snap topology.Snapshot) hostInputs {
	t.Helper()
	h1, ok := snap.Host("h1")
	require.True(t, ok)
	return newDesiredState(snap, topology.PerPeerTunnels).inputs(h1)
}

func h1Digest(t *testing.T, snap topology.Snapshot) hostDigest {
	t.Helper()
	h1, ok := snap.Host("h1")
	require.True(t, ok)
	return newDesiredState(snap, topology.PerPeerTunnels).digest(h1)
}

func TestInputsAreWhatTheHostCarries(t *testing.T) {
	in := h1Inputs(t, testSnapshot())

	vxlan := []topology.NetworkType{topology.VXLAN}
	require.Equal(t, ovsdb.TunnelSpec{Ports: topology.PerPeerTunnels, Types: vxlan, LocalIP: "198.51.100.1", Peers: []ovsdb.Peer{
		{Name: "h2", IP: "198.51.100.2", Types: vxlan},
		{Name: "h3", IP: "198.51.100.3", Types: vxlan},
	}}, in.tunnels())
	require.Equal(t, []ovsdb.Binding{
		{Interface: "tap-a1", Port: "a1", Network: "blue", VLAN: 1},
		{Interface: "tap-a3", Port: "a3", Network: "blue", VLAN: 1},
		{Interface: "tap-g1", Port: "g1", Network: "green", VLAN: 2},
	}, in.bindings)
	require.Equal(t, flows.View{
		Host: "h1", TunnelPorts: topology.PerPeerTunnels,
		Networks: []flows.NetworkView{
			{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, LocalVLAN: 1, MACLearning: true, Peers: []string{"h2"}},
			{Name: "green", Type: topology.VXLAN, SegmentID: 5002, LocalVLAN: 2},
		},
		RemotePorts: []flows.RemotePort{
			{Network: "blue", Name: "a2", Host: "h2", MAC: "02:00:00:00:01:02", IPs: []string{"10.0.0.2"}},
		},
		LocalPorts: []flows.LocalPort{
			{Network: "blue", Name: "a1", LocalVLAN: 1, MAC: "02:00:00:00:01:01", IPs: []string{"10.0.0.1"}},
			{Network: "blue", Name: "a3", LocalVLAN: 1, MAC: "02:00:00:00:01:03"},
			{Network: "green", Name: "g1", LocalVLAN: 2},
		},
	}, in.view, "red is h2's and h3's business, not h1's")
}

func TestBuildViewAddsTheOfportsOVSDBReports(t *testing.T) {
	in := h1Inputs(t, testSnapshot())
	facts := ovsdb.Facts{
		Bridges: map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}},
		Tunnels: []ovsdb.TunnelPort{
			{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2},
			{Name: "vxlan-c6336403", Type: topology.VXLAN, PeerName: "h3", PeerIP: "198.51.100.3", OFPort: 0}, // not assigned yet
		},
	}
	v := buildView(in, facts)
	require.Equal(t, uint32(1), v.PatchIntOfport)
	require.Equal(t, []flows.TunnelPort{{Ofport: 2, PeerHost: "h2", RemoteIP: "198.51.100.2", Type: topology.VXLAN}}, v.Tunnels)
	require.Equal(t, in.view.Networks, v.Networks)
	require.Empty(t, in.view.Tunnels, "the inputs stay without facts")
}

// TestDigestFollowsEveryInputOfTheHost: any change to what h1's reconcile
// reads changes h1's digest, and the bridge part it belongs to.
func TestDigestFollowsEveryInputOfTheHost(t *testing.T) {
	const tun, brint = "br-tun", "br-int"
	cases := []struct {
		name    string
		change  func(s *topology.Snapshot)
		bridges []string // whose digest part must change
	}{
		{"own OVSDB address", func(s *topology.Snapshot) { s.Hosts[0].OVSDB = "tcp:192.0.2.9:6640" }, nil},
		{"own tunnel IP", func(s *topology.Snapshot) { s.Hosts[0].TunnelIP = "198.51.100.9" }, []string{tun}},
		{"own datapath type", func(s *topology.Snapshot) { s.Hosts[0].DatapathType = "netdev" }, []string{tun, brint}},
		{"a peer's tunnel IP", func(s *topology.Snapshot) { s.Hosts[2].TunnelIP = "198.51.100.33" }, []string{tun}},
		{"a new host", func(s *topology.Snapshot) {
			s.Hosts = append(s.Hosts, topology.Host{Name: "h4", TunnelIP: "198.51.100.4"})
		}, []string{tun}},
		{"a host leaves", func(s *topology.Snapshot) { s.Hosts = s.Hosts[:2] }, []string{tun}},
		{"a first GRE network anywhere", func(s *topology.Snapshot) {
			s.Networks = append(s.Networks, topology.Network{Name: "yellow", Type: topology.GRE, SegmentID: 1})
		}, []string{tun}},
		{"a carried network's segment", func(s *topology.Snapshot) { s.Networks[0].SegmentID = 6001 }, []string{tun}},
		{"a carried network's MAC learning", func(s *topology.Snapshot) { s.Networks[1].MACLearning = true }, []string{tun}},
		{"own port's local VLAN", func(s *topology.Snapshot) { s.Ports[4].LocalVLAN = 9 }, []string{tun, brint}},
		{"own port's interface", func(s *topology.Snapshot) { s.Ports[0].Interface = "tap-x" }, []string{brint}},
		{"own port's name", func(s *topology.Snapshot) { s.Ports[0].Name = "a0" }, []string{brint}},
		{"own new port on a carried network", func(s *topology.Snapshot) {
			s.Ports = slices.Insert(s.Ports, 1, topology.Port{Network: "blue", Name: "a10", Host: "h1", Interface: "tap-a10", LocalVLAN: 1})
		}, []string{brint}},
		{"own first port on red", func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r1", Host: "h1", Interface: "tap-r1", LocalVLAN: 3})
		}, []string{tun, brint}},
		{"own port deleted", func(s *topology.Snapshot) { s.Ports = slices.Delete(s.Ports, 4, 5) }, []string{tun, brint}},
		{"a remote port's MAC", func(s *topology.Snapshot) { s.Ports[1].MAC = "02:00:00:00:01:22" }, []string{tun}},
		{"a remote port's IPs", func(s *topology.Snapshot) { s.Ports[1].IPs = []string{"10.0.0.2", "fd00::2"} }, []string{tun}},
		{"a remote port gains a MAC", func(s *topology.Snapshot) { s.Ports[3].MAC = "02:00:00:00:01:04" }, []string{tun}},
		{"a new carrier of a carried network", func(s *topology.Snapshot) {
			s.Ports = slices.Insert(s.Ports, 4, topology.Port{Network: "blue", Name: "a5", Host: "h3", Interface: "tap-a5", LocalVLAN: 2})
		}, []string{tun}},
		{"the last remote port of a carried network deleted", func(s *topology.Snapshot) {
			s.Ports = slices.Delete(s.Ports, 1, 2)
			s.Ports = slices.Delete(s.Ports, 2, 3) // a4
		}, []string{tun}},
	}
	base := h1Digest(t, testSnapshot())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := testSnapshot()
			tc.change(&snap)
			got := h1Digest(t, snap)
			require.NotEqual(t, base.all, got.all)
			require.Equal(t, slices.Contains(tc.bridges, tun), base.brTun != got.brTun, "br-tun part changed")
			require.Equal(t, slices.Contains(tc.bridges, brint), base.brInt != got.brInt, "br-int part changed")
		})
	}
}

// TestDigestIgnoresWhatTheHostDoesNotCarry: changes on networks h1 does
// not carry, and to what of a remote port h1 never reads, leave h1's
// digest alone.
func TestDigestIgnoresWhatTheHostDoesNotCarry(t *testing.T) {
	cases := []struct {
		name   string
		change func(s *topology.Snapshot)
	}{
		{"another host's port on red changes", func(s *topology.Snapshot) {
			s.Ports[5].MAC, s.Ports[5].IPs = "02:00:00:00:03:22", []string{"10.3.0.22"}
		}},
		{"another host's new port on red", func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r4", Host: "h3", Interface: "tap-r4", MAC: "02:00:00:00:03:04", LocalVLAN: 1})
		}},
		{"another host's port on red deleted", func(s *topology.Snapshot) { s.Ports = slices.Delete(s.Ports, 6, 7) }},
		{"red's segment", func(s *topology.Snapshot) { s.Networks[2].SegmentID = 7003 }},
		{"a new VXLAN network", func(s *topology.Snapshot) {
			s.Networks = append(s.Networks, topology.Network{Name: "white", Type: topology.VXLAN, SegmentID: 5009})
		}},
		{"a remote port's interface and local VLAN on its own host", func(s *topology.Snapshot) {
			s.Ports[1].Interface, s.Ports[1].LocalVLAN = "tap-moved", 7
		}},
		{"a peer's OVSDB address and datapath type", func(s *topology.Snapshot) {
			s.Hosts[1].OVSDB, s.Hosts[1].DatapathType = "tcp:192.0.2.22:6640", "netdev"
		}},
		{"the revision", func(s *topology.Snapshot) { s.Revision++ }},
	}
	base := h1Digest(t, testSnapshot())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := testSnapshot()
			tc.change(&snap)
			require.Equal(t, base, h1Digest(t, snap))
		})
	}
}

func TestBridgeDigestFollowsTheOfports(t *testing.T) {
	in := h1Inputs(t, testSnapshot())
	sum := h1Digest(t, testSnapshot())
	facts := ovsdb.Facts{
		Bridges: map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}, BrInt: {Name: BrInt, PatchOFPort: 1}},
		Tunnels: []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
		Bindings: []ovsdb.BoundPort{
			{Interface: "tap-a1", Port: "a1", Network: "blue", VLAN: 1, OFPort: 2},
			{Interface: "tap-a3", Port: "a3", Network: "blue", VLAN: 1, OFPort: 3},
		},
	}
	base := buildView(in, facts)
	require.Equal(t, []uint32{2, 3, 0}, []uint32{base.LocalPorts[0].Ofport, base.LocalPorts[1].Ofport, base.LocalPorts[2].Ofport},
		"a local port takes the ofport of its interface's binding")
	require.Equal(t, uint32(1), base.PatchTunOfport)
	tunChanges := map[string]func(f *ovsdb.Facts){
		"tunnel ofport": func(f *ovsdb.Facts) { f.Tunnels[0].OFPort = 5 },
		"tunnel gone":   func(f *ovsdb.Facts) { f.Tunnels = nil },
		"patch ofport": func(f *ovsdb.Facts) {
			f.Bridges = map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 3}, BrInt: facts.Bridges[BrInt]}
		},
	}
	for name, change := range tunChanges {
		t.Run(name, func(t *testing.T) {
			f := facts
			f.Tunnels = slices.Clone(facts.Tunnels)
			change(&f)
			v := buildView(in, f)
			require.NotEqual(t, sum.bridge(BrTun, base), sum.bridge(BrTun, v))
			require.NotEqual(t, sum.bridge(BrInt, base), sum.bridge(BrInt, v), "br-int forwards to the remote ports br-tun reaches")
		})
	}
	intChanges := map[string]func(f *ovsdb.Facts){
		"port ofport": func(f *ovsdb.Facts) { f.Bindings[1].OFPort = 7 },
		"port gone":   func(f *ovsdb.Facts) { f.Bindings = f.Bindings[:1] },
		"patch-tun ofport": func(f *ovsdb.Facts) {
			f.Bridges = map[string]ovsdb.BridgeFacts{BrTun: facts.Bridges[BrTun], BrInt: {Name: BrInt, PatchOFPort: 9}}
		},
	}
	for name, change := range intChanges {
		t.Run(name, func(t *testing.T) {
			f := facts
			f.Bindings = slices.Clone(facts.Bindings)
			change(&f)
			v := buildView(in, f)
			require.Equal(t, sum.bridge(BrTun, base), sum.bridge(BrTun, v))
			require.NotEqual(t, sum.bridge(BrInt, base), sum.bridge(BrInt, v))
		})
	}
}

// TestBrIntDigestFollowsPortSecurity: a local port's addresses, port
// security and allowed pairs change br-int's flows, so its digest.
func TestBrIntDigestFollowsPortSecurity(t *testing.T) {
	base := h1Digest(t, testSnapshot())
	changes := map[string]func(p *topology.Port){
		"security": func(p *topology.Port) { p.PortSecurityEnabled = true },
		"pairs":    func(p *topology.Port) { p.AllowedAddressPairs = []topology.AddressPair{{IPAddress: "10.0.0.100"}} },
		"ips":      func(p *topology.Port) { p.IPs = []string{"10.0.0.9"} },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			snap := testSnapshot()
			change(&snap.Ports[0]) // a1, on h1
			d := h1Digest(t, snap)
			require.NotEqual(t, base.brInt, d.brInt)
			require.NotEqual(t, base.all, d.all)
		})
	}
}

// TestPairsGetNoResponder: an address only in a remote port's allowed
// pairs is not in the view's remote ports, so br-tun answers no ARP for it.
func TestPairsGetNoResponder(t *testing.T) {
	snap := testSnapshot()
	snap.Ports[1].PortSecurityEnabled = true // a2, on h2
	snap.Ports[1].AllowedAddressPairs = []topology.AddressPair{{IPAddress: "10.0.0.100"}}
	in := h1Inputs(t, snap)
	require.Equal(t, []flows.RemotePort{{Network: "blue", Name: "a2", Host: "h2", MAC: "02:00:00:00:01:02", IPs: []string{"10.0.0.2"}}}, in.view.RemotePorts)
	set := flows.Compile(buildView(in, ovsdb.Facts{
		Bridges: map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}},
		Tunnels: []ovsdb.TunnelPort{{Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}},
	}))
	var responders []string
	for _, f := range set.BrTun {
		if f.Table == flows.TableFlood && f.Match.ARPTPA != nil {
			responders = append(responders, f.Match.ARPTPA.Value.String())
		}
	}
	require.Equal(t, []string{"10.0.0.2"}, responders, "the port's own IP is answered (control), the pair's is not")
}

func TestUnboundMarks(t *testing.T) {
	d := newDesiredState(testSnapshot(), topology.PerPeerTunnels)
	require.False(t, d.unboundMarks("h1", nil))
	require.False(t, d.unboundMarks("h1", []ovsdb.MarkedInterface{{Interface: "tap-a1", Network: "blue"}}), "tap-a1 is bound")
	require.True(t, d.unboundMarks("h1", []ovsdb.MarkedInterface{
		{Interface: "tap-a1", Network: "blue"},
		{Interface: "tap-new", Network: "white"},
	}), "tap-new waits for its network")
}

// manyHosts is the shape of the many-hosts benchmark: n hosts, networks
// networks each with a port on h1 and on one other host in turn.
func manyHosts(n, networks int) topology.Snapshot {
	var snap topology.Snapshot
	for i := 1; i <= n; i++ {
		snap.Hosts = append(snap.Hosts, topology.Host{Name: fmt.Sprintf("h%02d", i), TunnelIP: fmt.Sprintf("198.51.100.%d", i)})
	}
	for i := 1; i <= networks; i++ {
		name := fmt.Sprintf("n%04d", i)
		peer := snap.Hosts[1+i%(n-1)].Name
		snap.Networks = append(snap.Networks, topology.Network{Name: name, Type: topology.VXLAN, SegmentID: uint32(i)})
		snap.Ports = append(snap.Ports,
			topology.Port{Network: name, Name: "p-" + name + "-1", Host: "h01", Interface: "tap" + name, MAC: mac(2 * i), LocalVLAN: uint16(i)},
			topology.Port{Network: name, Name: "p-" + name + "-2", Host: peer, Interface: "tap" + name, MAC: mac(2*i + 1), LocalVLAN: 1},
		)
	}
	return snap
}

func mac(i int) string { return fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8&0xff, i&0xff) }

// TestPortCreateTouchesOnlyTheCarriers: on 50 hosts with 4094 networks, a
// port created on one host changes the digest of the hosts carrying its
// network and of no other, so only they get a full reconcile.
func TestPortCreateTouchesOnlyTheCarriers(t *testing.T) {
	before := manyHosts(50, 4094)
	after := manyHosts(50, 4094)
	after.Ports = append(after.Ports, topology.Port{Network: "n0100", Name: "zz", Host: "h30", Interface: "tap-zz", MAC: "02:00:00:00:ff:ff", LocalVLAN: 1})
	slices.SortFunc(after.Ports, func(a, b topology.Port) int {
		return cmp.Or(cmp.Compare(a.Network, b.Network), cmp.Compare(a.Name, b.Name))
	})
	db, da := newDesiredState(before, topology.PerPeerTunnels), newDesiredState(after, topology.PerPeerTunnels)
	var touched []string
	for _, h := range after.Hosts {
		if db.digest(h) != da.digest(h) {
			touched = append(touched, h.Name)
		}
	}
	// n0100 has ports on h01 and h04 (snap.Hosts[1+100%49]); h30 is its new carrier.
	require.Equal(t, []string{"h01", "h04", "h30"}, touched)
}

// BenchmarkRevisionOnAHost compares, for one revision on 50 hosts with
// 4094 networks, what a host's full reconcile computes (besides its I/O)
// with what deciding that the host was not touched costs. h01 carries
// every network, h02 about 84.
func BenchmarkRevisionOnAHost(b *testing.B) {
	snap := manyHosts(50, 4094)
	d := newDesiredState(snap, topology.PerPeerTunnels)
	facts := ovsdb.Facts{Bridges: map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}}}
	for i, h := range snap.Hosts[1:] {
		facts.Tunnels = append(facts.Tunnels, ovsdb.TunnelPort{Type: topology.VXLAN, PeerName: h.Name, PeerIP: h.TunnelIP, OFPort: i + 2})
	}
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			newDesiredState(snap, topology.PerPeerTunnels)
		}
	})
	for _, host := range []string{"h01", "h02"} {
		h, _ := snap.Host(host)
		b.Run("compile/"+host, func(b *testing.B) {
			for b.Loop() {
				in := d.inputs(h)
				v := buildView(in, facts)
				flows.Compile(v)
				d.digest(h).bridge(BrTun, v)
			}
		})
		b.Run("digest/"+host, func(b *testing.B) {
			for b.Loop() {
				d.digest(h)
			}
		})
	}
}

// TestDigestKnowsEveryField fails when a type the digest sums gains or
// loses a field: a field the digest does not sum would let a revision that
// changes it be skipped. Add the field to desiredState.digest (or networkSum for what the carriers of a network see) (or to
// hostDigest.bridge for ofports), then here.
func TestDigestKnowsEveryField(t *testing.T) {
	// View.SourceMeter is serve's --appliance-source-rate, the same for
	// every revision of a process (reconcileFull sets it): not summed.
	summed := map[reflect.Type][]string{
		// Meta (description, tags, revision_number) never reaches a switch.
		reflect.TypeFor[topology.Host]():        {"Name", "OVSDB", "TunnelIP", "DatapathType", "Meta"},
		reflect.TypeFor[ovsdb.TunnelSpec]():     {"Ports", "Types", "LocalIP", "UDPPorts", "Peers"},
		reflect.TypeFor[ovsdb.Peer]():           {"Name", "IP", "Types"},
		reflect.TypeFor[ovsdb.Binding]():        {"Interface", "Port", "Network", "VLAN"},
		reflect.TypeFor[flows.View]():           {"Host", "TunnelPorts", "PatchIntOfport", "Tunnels", "Networks", "RemotePorts", "PatchTunOfport", "LocalPorts", "DownPorts", "SourceMeter"},
		reflect.TypeFor[flows.LocalPort]():      {"Network", "Name", "Ofport", "LocalVLAN", "MAC", "IPs", "PortSecurity", "AllowedAddressPairs", "DHCP"},
		reflect.TypeFor[topology.AddressPair](): {"IPAddress", "MACAddress"},
		reflect.TypeFor[flows.DownPort]():       {"Network", "Name", "Ofport"},
		reflect.TypeFor[flows.TunnelPort]():     {"Ofport", "PeerHost", "RemoteIP", "Type"},
		reflect.TypeFor[flows.NetworkView]():    {"Name", "Type", "SegmentID", "LocalVLAN", "MACLearning", "Peers", "RouterIPs", "RouterND"},
		reflect.TypeFor[flows.RemotePort]():     {"Network", "Name", "Host", "MAC", "IPs"},
	}
	for typ, want := range summed {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		require.Equal(t, want, got, "%s changed: make desiredState.digest sum its fields", typ)
	}
}

func TestHostSpecNamesEveryDeclaredTableAndBoundsLearning(t *testing.T) {
	host := topology.Host{Name: "h1", DatapathType: "netdev"}
	spec := hostSpec(host, Options{ControllerTargets: []string{"tcp:198.51.100.254:6653"}, MACLearnLimit: 500})
	assert.Equal(t, "h1", spec.Name)
	assert.Equal(t, "netdev", spec.DatapathType)
	assert.Equal(t, []string{"tcp:198.51.100.254:6653"}, spec.ControllerTargets)
	assert.Equal(t, 500, spec.MACTableSize)

	p := flows.Declared()
	for _, b := range []flows.Bridge{flows.BrTun, flows.BrInt} {
		tables := spec.Tables[string(b)]
		require.Len(t, tables, len(p.Tables(b)), b)
		for i, decl := range p.Tables(b) {
			assert.Equal(t, decl.ID, tables[i].ID)
			assert.Equal(t, decl.Name, tables[i].Name)
			assert.Equal(t, decl.Learned != 0, tables[i].OwnLimit, "table %d", decl.ID)
			if decl.Learned != 0 {
				assert.Equal(t, 500, tables[i].FlowLimit, "table %d takes learned flows", decl.ID)
				assert.Equal(t, []string{"NXM_OF_VLAN_TCI[0..11]"}, tables[i].EvictionGroups)
			} else {
				assert.Zero(t, tables[i].FlowLimit, "table %d", decl.ID)
				assert.Empty(t, tables[i].EvictionGroups)
			}
		}
	}
	unicast := spec.Tables[ovsdb.BridgeTun][5]
	require.Equal(t, flows.TableUnicast, unicast.ID, "the bounded table is table 20")
	assert.Equal(t, "unicast", unicast.Name)

	// 0: nothing bounded, the names stay.
	open := hostSpec(host, Options{})
	assert.Zero(t, open.MACTableSize)
	for _, tables := range open.Tables {
		for _, tab := range tables {
			assert.NotEmpty(t, tab.Name)
			assert.Zero(t, tab.FlowLimit)
		}
	}
	assert.Len(t, open.Tables[ovsdb.BridgeTun], 8)
}

// TestDigestMatchesTheInputs: for every host and each change, the digest
// changes exactly when what the host's reconcile reads (its inputs, with
// the tunnel mesh in place of the host list) changes. It checks the
// per-network sums against the inputs they stand for, for hosts that
// carry the changed network, share it, or do not carry it.
func TestDigestMatchesTheInputs(t *testing.T) {
	type read struct {
		host     topology.Host
		tunnels  ovsdb.TunnelSpec
		bindings []ovsdb.Binding
		view     flows.View
	}
	reads := func(d *desiredState, h topology.Host) read {
		in := d.inputs(h)
		return read{in.host, in.tunnels(), in.bindings, in.view}
	}
	changes := map[string]func(s *topology.Snapshot){
		"remote port's MAC":       func(s *topology.Snapshot) { s.Ports[1].MAC = "02:00:00:00:01:22" },
		"remote port's interface": func(s *topology.Snapshot) { s.Ports[1].Interface = "tap-x" },
		"port down":               func(s *topology.Snapshot) { s.Ports[5].AdminStateUp = topology.Bool(false) },
		"new port on red, h3": func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r4", Host: "h3", Interface: "tap-r4", MAC: "02:00:00:00:03:04", LocalVLAN: 1})
		},
		"h1 joins red": func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r1", Host: "h1", Interface: "tap-r1", MAC: "02:00:00:00:03:01", LocalVLAN: 3})
		},
		"red's last port on h2 deleted": func(s *topology.Snapshot) { s.Ports = slices.Delete(s.Ports, 5, 6) },
		"a port without a MAC moves":    func(s *topology.Snapshot) { s.Ports[3].Host = "h3" },
		"red's segment":                 func(s *topology.Snapshot) { s.Networks[2].SegmentID = 7003 },
		"a DHCP subnet on blue": func(s *topology.Snapshot) {
			s.Subnets = append(s.Subnets, topology.Subnet{Network: "blue", Name: "s", CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.254", EnableDHCP: true})
		},
		"a remote VTEP on red": func(s *topology.Snapshot) {
			s.RemoteVTEPs = append(s.RemoteVTEPs, topology.RemoteVTEP{Name: "v", TunnelIP: "198.51.100.77", Networks: []string{"red"},
				MACs: []topology.RemoteMAC{{MAC: "02:00:00:00:77:01"}}})
		},
		"h2's OVSDB address": func(s *topology.Snapshot) { s.Hosts[1].OVSDB = "tcp:192.0.2.22:6640" },
		"h3's tunnel IP":     func(s *topology.Snapshot) { s.Hosts[2].TunnelIP = "198.51.100.33" },
	}
	// wider: blue on four hosts, so its sums go through the chains.
	wider := func() topology.Snapshot {
		s := testSnapshot()
		s.Hosts = append(s.Hosts, topology.Host{Name: "h4", OVSDB: "tcp:192.0.2.4:6640", TunnelIP: "198.51.100.4"})
		s.Ports = slices.Insert(s.Ports, 4,
			topology.Port{Network: "blue", Name: "a5", Host: "h3", Interface: "tap-a5", MAC: "02:00:00:00:01:05", LocalVLAN: 2},
			topology.Port{Network: "blue", Name: "a6", Host: "h4", Interface: "tap-a6", MAC: "02:00:00:00:01:06", LocalVLAN: 1})
		return s
	}
	for baseName, newBase := range map[string]func() topology.Snapshot{"three hosts": testSnapshot, "blue on four": wider} {
		t.Run(baseName, func(t *testing.T) { digestMatchesTheInputs(t, newBase, changes, reads) })
	}
}

func digestMatchesTheInputs[R any](t *testing.T, newBase func() topology.Snapshot, changes map[string]func(s *topology.Snapshot), reads func(*desiredState, topology.Host) R) {
	base := newBase()
	db := newDesiredState(base, topology.PerPeerTunnels)
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			snap := newBase()
			change(&snap)
			da := newDesiredState(snap, topology.PerPeerTunnels)
			changedAny := false
			for _, h := range snap.Hosts {
				hb, ok := base.Host(h.Name)
				require.True(t, ok)
				same := reflect.DeepEqual(reads(db, hb), reads(da, h))
				changedAny = changedAny || !same
				assert.Equal(t, same, db.digest(hb) == da.digest(h), "host %s: inputs the same: %v", h.Name, same)
			}
			assert.True(t, changedAny, "control: the change reaches some host")
		})
	}
}

// wideSnapshot is the shape of the scale benchmark (bench/scale_test.go):
// n hosts, the network "wide" with a port on every host and the network
// "solo" with ports on h0001 only.
func wideSnapshot(n, soloPorts int) topology.Snapshot {
	var snap topology.Snapshot
	snap.Networks = []topology.Network{
		{Name: "solo", Type: topology.VXLAN, SegmentID: 2},
		{Name: "wide", Type: topology.VXLAN, SegmentID: 1, MACLearning: true},
	}
	for i := 1; i <= soloPorts; i++ {
		snap.Ports = append(snap.Ports, topology.Port{Network: "solo", Name: fmt.Sprintf("s%04d", i), Host: "h0001",
			Interface: fmt.Sprintf("tap-s%d", i), MAC: mac(100000 + i), LocalVLAN: 2})
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%04d", i)
		snap.Hosts = append(snap.Hosts, topology.Host{Name: name, TunnelIP: fmt.Sprintf("198.19.%d.%d", i/256, i%256)})
		snap.Ports = append(snap.Ports, topology.Port{Network: "wide", Name: fmt.Sprintf("w%04d", i), Host: name,
			Interface: "tap-w", MAC: mac(i), LocalVLAN: 1})
	}
	return snap
}

// BenchmarkRevisionAtScale is what one store revision costs the
// controller before any host's I/O: the snapshot indexed once, and every
// host's inputs summed to find the hosts the revision touched
// (reconcileHost; takeIfClean takes the revision on the others).
// hosts=N: a port added to a network only h0001 carries, on N hosts that
// all carry one other network (bench/scale_test.go's shape); 4094nets: a
// port added on 50 hosts with 4094 networks (TestPortCreateTouchesOnlyTheCarriers).
func BenchmarkRevisionAtScale(b *testing.B) {
	type shape struct {
		name          string
		before, after topology.Snapshot
		touched       int
	}
	shapes := []shape{
		{"hosts=200", wideSnapshot(200, 1), wideSnapshot(200, 2), 1},
		{"hosts=1000", wideSnapshot(1000, 1), wideSnapshot(1000, 2), 1},
	}
	nets := shape{name: "4094nets", before: manyHosts(50, 4094), after: manyHosts(50, 4094), touched: 3}
	nets.after.Ports = append(nets.after.Ports, topology.Port{Network: "n0100", Name: "zz", Host: "h30", Interface: "tap-zz", MAC: "02:00:00:00:ff:ff", LocalVLAN: 1})
	slices.SortFunc(nets.after.Ports, func(a, b topology.Port) int {
		return cmp.Or(cmp.Compare(a.Network, b.Network), cmp.Compare(a.Name, b.Name))
	})
	shapes = append(shapes, nets)
	for _, sh := range shapes {
		old := newDesiredState(sh.before, topology.PerPeerTunnels)
		sums := map[string]hostDigest{}
		for _, h := range sh.before.Hosts {
			sums[h.Name] = old.digest(h)
		}
		b.Run(sh.name, func(b *testing.B) {
			touched := 0
			for b.Loop() {
				d := newDesiredState(sh.after, topology.PerPeerTunnels)
				touched = 0
				for _, h := range sh.after.Hosts {
					if d.digest(h) != sums[h.Name] {
						touched++
					}
				}
			}
			require.Equal(b, sh.touched, touched, "only the carriers of the network that changed")
		})
	}
}
