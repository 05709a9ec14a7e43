package flows_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/flows/flowtest"
	"github.com/brtun/brtun/topology"
)

// The scenarios of the golden files.
func oneNetwork() cluster {
	return cluster{
		hosts: []string{"h1", "h2"},
		nets:  []testNet{{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: []string{"h1", "h2"}, learning: true}},
	}
}

// sharedSegment: a VXLAN and a GRE network with the same segment id on
// three hosts.
func sharedSegment() cluster {
	all := []string{"h1", "h2", "h3"}
	return cluster{
		hosts: all,
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: all, learning: true},
			{name: "red", typ: topology.GRE, seg: 5001, hosts: all, learning: true},
		},
	}
}

// partialPeers: networks present on only some hosts.
func partialPeers() cluster {
	return cluster{
		hosts: []string{"h1", "h2", "h3", "h4"},
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 100, hosts: []string{"h1", "h2", "h3"}, learning: true},
			{name: "green", typ: topology.VXLAN, seg: 200, hosts: []string{"h1", "h4"}, learning: true},
			{name: "red", typ: topology.GRE, seg: 100, hosts: []string{"h2", "h3"}, learning: true},
			{name: "solo", typ: topology.GRE, seg: 300, hosts: []string{"h1"}, learning: true},
		},
	}
}

// remotePorts: registered ports with MAC and IPs (issue 8), and a network
// without MAC learning.
func remotePorts() cluster {
	return cluster{
		hosts: []string{"h1", "h2", "h3"},
		nets: []testNet{
			{name: "blue", typ: topology.VXLAN, seg: 5001, hosts: []string{"h1", "h2", "h3"}, learning: true},
			{name: "quiet", typ: topology.GRE, seg: 7, hosts: []string{"h1", "h3"}, learning: false},
		},
		ports: []flows.RemotePort{
			{Network: "blue", Name: "vm1", Host: "h1", MAC: "02:00:00:00:01:01", IPs: []string{"198.18.0.1"}},
			{Network: "blue", Name: "vm2", Host: "h2", MAC: "02:00:00:00:02:01", IPs: []string{"198.18.0.2", "2001:db8:100::2"}},
			{Network: "blue", Name: "vm3", Host: "h3", MAC: "02:00:00:00:03:01", IPs: []string{"198.18.0.3/24"}},
			{Network: "quiet", Name: "q3", Host: "h3", MAC: "02:00:00:00:03:02", IPs: []string{"198.18.0.3", "2001:db8:100::3"}},
		},
	}
}

func TestGoldenPipelines(t *testing.T) {
	cases := []struct {
		name  string
		c     cluster
		hosts []string
	}{
		{"one_network", oneNetwork(), []string{"h1"}},
		{"shared_segment", sharedSegment(), []string{"h1", "h2", "h3"}},
		{"partial_peers", partialPeers(), []string{"h1", "h2", "h4"}},
		{"remote_ports", remotePorts(), []string{"h1", "h3"}},
		// The same scenarios with flow-based tunnel ports (--tunnel-ports flow).
		{"flow_one_network", oneNetwork().withMode(topology.FlowTunnels), []string{"h1"}},
		{"flow_partial_peers", partialPeers().withMode(topology.FlowTunnels), []string{"h1", "h4"}},
		{"flow_remote_ports", remotePorts().withMode(topology.FlowTunnels), []string{"h1", "h3"}},
	}
	for _, tc := range cases {
		for _, h := range tc.hosts {
			t.Run(tc.name+"_"+h, func(t *testing.T) {
				set := tc.c.compile(t, h)
				flowtest.Golden(t, tc.name+"_"+h, flowtest.FormatSet(set))
			})
		}
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	c := remotePorts()
	v := c.view("h1")
	want := flows.Compile(v)
	require.NoError(t, flows.Validate(want))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		s := v
		s.Tunnels = shuffled(rng, v.Tunnels)
		s.Networks = shuffled(rng, v.Networks)
		s.RemotePorts = shuffled(rng, v.RemotePorts)
		got := flows.Compile(s)
		require.NoError(t, flows.Validate(got))
		assert.Equal(t, flows.Strings(want.BrTun), flows.Strings(got.BrTun))
		assert.Equal(t, flows.Strings(want.BrInt), flows.Strings(got.BrInt))
		assert.Equal(t, want.LearnedCookies, got.LearnedCookies)
	}
}

func shuffled[T any](rng *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestCompileTablesEndInDrop(t *testing.T) {
	set := sharedSegment().compile(t, "h1")
	for _, table := range []uint8{flows.TableDispatch, flows.TableTunnelIn, flows.TableFlood} {
		var miss []flows.Flow
		for _, f := range set.BrTun {
			if f.Table == table && f.Priority == 0 {
				miss = append(miss, f)
			}
		}
		require.Len(t, miss, 1, "table %d", table)
		assert.Empty(t, miss[0].Match.Fields(), "table %d miss matches everything", table)
		assert.Empty(t, miss[0].Actions, "table %d miss drops", table)
	}
	last := set.BrInt[len(set.BrInt)-1]
	assert.Equal(t, "cookie=0xb710000000000000, table=30, priority=0 actions=NORMAL", last.String(), "br-int ends in NORMAL")
	assert.Equal(t, []string{
		"cookie=0xb710000000000000, priority=1,in_port=1 actions=goto_table:30",
		"cookie=0xb710000000000000, priority=0 actions=drop",
	}, []string{set.BrInt[0].String(), set.BrInt[1].String()}, "br-int table 0: patch-tun goes on, an unknown port is dropped")
}

func TestCompileSkipsWhatItCannotCompile(t *testing.T) {
	v := flows.View{
		Host:           "h1",
		PatchIntOfport: 1,
		Tunnels: []flows.TunnelPort{
			{Ofport: 0, PeerHost: "h2", Type: topology.VXLAN}, // no ofport yet
			{Ofport: 3, PeerHost: "h3", Type: "stt"},          // unknown type
			{Ofport: 4, PeerHost: "h3", Type: topology.VXLAN}, // fine
			{Ofport: 4, PeerHost: "h4", Type: topology.VXLAN}, // ofport reused
			{Ofport: 1, PeerHost: "h5", Type: topology.VXLAN}, // patch-int's ofport
			{Ofport: 9, PeerHost: "h3", Type: topology.VXLAN}, // second tunnel to h3
			{Ofport: 0xfffffffe, PeerHost: "h6", Type: topology.GRE},
		},
		Networks: []flows.NetworkView{
			{Name: "a", Type: topology.VXLAN, SegmentID: 1, LocalVLAN: 1, Peers: []string{"h2", "h3", "h1", "h2"}},
			{Name: "b", Type: topology.VXLAN, SegmentID: 2, LocalVLAN: 1},        // VLAN taken
			{Name: "c", Type: topology.VXLAN, SegmentID: 1, LocalVLAN: 2},        // segment taken
			{Name: "d", Type: topology.VXLAN, SegmentID: 1 << 24, LocalVLAN: 3},  // VNI too big
			{Name: "e", Type: topology.GRE, SegmentID: 1 << 24, LocalVLAN: 4095}, // VLAN out of range
			{Name: "f", Type: "stt", SegmentID: 5, LocalVLAN: 5},                 // unknown type
			{Name: "g", Type: topology.GRE, SegmentID: 1 << 31, LocalVLAN: 6},    // fine, no peers
			{Name: "a", Type: topology.GRE, SegmentID: 9, LocalVLAN: 7},          // name twice
		},
		RemotePorts: []flows.RemotePort{
			{Network: "a", Name: "p1", Host: "h3", MAC: "02:00:00:00:00:01", IPs: []string{"198.18.0.1", "bogus", "ff02::1"}},
			{Network: "a", Name: "p2", Host: "h3", MAC: "02:00:00:00:00:01"},                              // MAC taken
			{Network: "a", Name: "p3", Host: "h3", MAC: "01:00:5e:00:00:01"},                              // multicast MAC
			{Network: "a", Name: "p4", Host: "h3", MAC: "zz", IPs: []string{"198.18.0.4"}},                // bad MAC
			{Network: "a", Name: "p5", Host: "h2", MAC: "02:00:00:00:00:05"},                              // h2 has no tunnel
			{Network: "a", Name: "p6", Host: "h9", MAC: "02:00:00:00:00:06"},                              // not a peer
			{Network: "a", Name: "p7", Host: "h3", MAC: "02:00:00:00:00:07", IPs: []string{"198.18.0.1"}}, // IP taken
			{Network: "zz", Name: "p8", Host: "h3", MAC: "02:00:00:00:00:08"},                             // network not here
			{Network: "a", Name: "p9", Host: "h1", MAC: "02:00:00:00:00:09"},                              // local port
		},
	}
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	flowtest.Golden(t, "skipped", flowtest.FormatSet(set))

	// What was skipped is said, each once.
	skipped := strings.Join(set.Skipped, "\n")
	for _, want := range []string{
		"tunnel to h2 (vxlan): no usable ofport (0) yet",
		`tunnel to h3 at ofport 3: unknown type "stt"`,
		"tunnel to h4: ofport 4 used twice",
		"tunnel to h5: ofport 1 is patch-int's",
		"tunnel to h3 (vxlan) at ofport 9: another one has a lower ofport",
		"tunnel to h6 (gre): no usable ofport (4294967294) yet",
		"network b: local VLAN 1 already used by a",
		"network c: vxlan segment 1 already used by a",
		"network d: vxlan segment 16777216 out of range",
		"network e: local VLAN 4095 out of 1..4094",
		`network f: unknown type "stt"`,
		"network a: listed twice",
		`network a: peer "h2" has no vxlan tunnel port yet`,
		"port a/p2: MAC 02:00:00:00:00:01 already used by port p1",
		`port a/p3: MAC "01:00:5e:00:00:01" is not a unicast Ethernet address`,
		`port a/p4: MAC "zz" is not a unicast Ethernet address`,
		"port a/p5: host h2 has no vxlan tunnel port yet",
		"port a/p6: host h9 is not a peer of the network here",
		"port a/p7: IP 198.18.0.1 already used by port p1",
		`port a/p1: IP "bogus"`,
		`port a/p1: IP "ff02::1": not a unicast host address`,
	} {
		assert.Equal(t, 1, strings.Count(skipped, want), "skipped should say %q once:\n%s", want, skipped)
	}
	assert.Len(t, set.Skipped, 21)
}

func TestCompileWithoutPatchPort(t *testing.T) {
	v := oneNetwork().view("h1")
	v.PatchIntOfport = 0
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	for _, f := range set.BrTun {
		for _, a := range f.Actions {
			assert.NotEqual(t, flows.Output{Port: 0}, a, "no output to an unknown patch port: %s", f)
		}
		if f.Table == flows.TableLearn {
			assert.Zero(t, f.Priority, "table 10 keeps only its miss: %s", f)
		}
	}
	assert.Contains(t, set.Skipped, "patch-int has no usable ofport (0): no traffic to or from br-int")
}

func TestLearnedCookiesMarkReleasedVLANsStale(t *testing.T) {
	// h1 has networks blue (VLAN 1) and red (VLAN 2).
	before := sharedSegment()
	setBefore := before.compile(t, "h1")
	blueOnVLAN1 := flows.LearnedCookie(topology.VXLAN, 5001, 1)
	require.Equal(t, []uint64{blueOnVLAN1, flows.LearnedCookie(topology.GRE, 5001, 2)}, setBefore.LearnedCookies)
	assert.False(t, setBefore.StaleLearned(blueOnVLAN1))

	// Learn a MAC on blue's VLAN 1 at h1.
	sim := flowsim.New(setBefore.BrTun)
	_, err := sim.Run(flowsim.Packet{
		InPort: before.tunnelOfport("h1", "h2", topology.VXLAN), TunID: 5001,
		EthSrc: mac(t, "02:00:00:00:02:01"), EthDst: mac(t, "ff:ff:ff:ff:ff:ff"), EthType: flows.EthTypeARP,
	})
	require.NoError(t, err)
	learned := sim.Learned()
	require.Len(t, learned, 1)
	assert.Equal(t, blueOnVLAN1, learned[0].Cookie)
	assert.Equal(t, "learned:vxlan:5001:vlan=1", flows.DecodeOwner(learned[0].Cookie))

	// blue leaves h1, VLAN 1 is released and reused by a new network green.
	after := cluster{hosts: before.hosts, nets: []testNet{
		{name: "green", typ: topology.VXLAN, seg: 6000, hosts: before.hosts, learning: true},
		{name: "red", typ: topology.GRE, seg: 5001, hosts: before.hosts, learning: true},
	}}
	require.Equal(t, uint16(1), after.vlan("h1", "green"))
	setAfter := after.compile(t, "h1")
	assert.True(t, setAfter.StaleLearned(learned[0].Cookie), "blue's learned entry on VLAN 1 must go")
	assert.False(t, setAfter.StaleLearned(flows.LearnedCookie(topology.GRE, 5001, 2)), "red keeps its entries")
	assert.False(t, setAfter.StaleLearned(flows.PipelineCookie()), "only learned flows are stale learned flows")

	// A network that stops learning invalidates its learned entries too.
	quiet := sharedSegment()
	quiet.nets[0].learning = false
	assert.True(t, quiet.compile(t, "h1").StaleLearned(blueOnVLAN1))
}

func TestCompileIsStableAcrossRestarts(t *testing.T) {
	// Two compiles of the same desired state (as before and after a restart
	// of brtun) give identical flows, cookies included.
	a := flows.Compile(remotePorts().view("h1"))
	b := flows.Compile(remotePorts().view("h1"))
	assert.Equal(t, flows.Strings(a.BrTun), flows.Strings(b.BrTun))
	for i := range a.BrTun {
		assert.True(t, a.BrTun[i].Equal(b.BrTun[i]))
		assert.Equal(t, a.BrTun[i].Key(), b.BrTun[i].Key())
	}
}
