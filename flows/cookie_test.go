package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

func TestCookiesDecode(t *testing.T) {
	cases := []struct {
		cookie uint64
		owner  flows.Owner
		text   string
	}{
		{flows.PipelineCookie(), flows.Owner{Kind: flows.OwnerPipeline}, "pipeline"},
		{flows.TunnelCookie("h2"), flows.Owner{Kind: flows.OwnerTunnel, ID: flows.NameID("h2")},
			fmt.Sprintf("tunnel:0x%08x", flows.NameID("h2"))},
		{flows.NetworkCookie(topology.VXLAN, topology.VXLAN.MaxSegment()),
			flows.Owner{Kind: flows.OwnerNetwork, Type: topology.VXLAN, Segment: topology.VXLAN.MaxSegment()}, "network:vxlan:16777215"},
		{flows.NetworkCookie(topology.GRE, topology.GRE.MaxSegment()),
			flows.Owner{Kind: flows.OwnerNetwork, Type: topology.GRE, Segment: topology.GRE.MaxSegment()}, "network:gre:4294967295"},
		{flows.NetworkCookie(topology.Geneve, 5001),
			flows.Owner{Kind: flows.OwnerNetwork, Type: topology.Geneve, Segment: 5001}, "network:geneve:5001"},
		{flows.PortCookie("blue", "vm1"), flows.Owner{Kind: flows.OwnerPort, ID: flows.PortID("blue", "vm1")},
			fmt.Sprintf("port:0x%08x", flows.PortID("blue", "vm1"))},
		{flows.LearnedCookie(topology.GRE, topology.GRE.MaxSegment(), 4094),
			flows.Owner{Kind: flows.OwnerLearned, Type: topology.GRE, Segment: topology.GRE.MaxSegment(), VLAN: 4094},
			"learned:gre:4294967295:vlan=4094"},
		{flows.LearnedCookie(topology.Geneve, topology.Geneve.MaxSegment(), 3),
			flows.Owner{Kind: flows.OwnerLearned, Type: topology.Geneve, Segment: topology.Geneve.MaxSegment(), VLAN: 3},
			"learned:geneve:16777215:vlan=3"},
		{flows.LearnedCookie(topology.VXLAN, 0, 1),
			flows.Owner{Kind: flows.OwnerLearned, Type: topology.VXLAN, Segment: 0, VLAN: 1}, "learned:vxlan:0:vlan=1"},
	}
	for _, tc := range cases {
		o, ok := flows.DecodeCookie(tc.cookie)
		require.True(t, ok, "%#x", tc.cookie)
		assert.Equal(t, tc.owner, o)
		assert.Equal(t, tc.text, flows.DecodeOwner(tc.cookie))
		assert.True(t, flows.IsBrtun(tc.cookie))
		assert.Equal(t, tc.owner.Kind == flows.OwnerLearned, flows.IsLearned(tc.cookie))
	}
}

func TestCookiesNotBrtuns(t *testing.T) {
	for _, c := range []uint64{
		0,
		0x1,
		0xb600000000000000, // another tag
		0xb700000000000000, // no kind
		0xb790000000000000, // unknown kind
		0xb710000000000001, // pipeline with a payload
		0xb73f000000000001, // network with an unknown type
		0xb730000000000001, // network with type code 0
		0xb731000100000001, // network with reserved bits set
		0xb720000100000001, // tunnel with reserved bits set
		0xb751000200000001, // learned with reserved bits set
	} {
		o, ok := flows.DecodeCookie(c)
		assert.False(t, ok, "%#x decoded as %v", c, o)
		assert.False(t, flows.IsLearned(c))
	}
	assert.Equal(t, "foreign:0x1234", flows.DecodeOwner(0x1234))
	assert.Equal(t, "foreign:0", flows.DecodeOwner(0))
}

func TestCookiesDistinguishOwners(t *testing.T) {
	// The same numbers under different owners or types never collide.
	seen := map[uint64]string{}
	add := func(name string, c uint64) {
		if other, dup := seen[c]; dup {
			t.Errorf("%s and %s share cookie %#x", name, other, c)
		}
		seen[c] = name
	}
	add("pipeline", flows.PipelineCookie())
	for _, tt := range topology.TunnelTypes() {
		typ := tt.Name
		for _, seg := range []uint32{1, 5001} {
			add(fmt.Sprint("network ", typ, seg), flows.NetworkCookie(typ, seg))
			for _, vlan := range []uint16{1, 2, 4094} {
				add(fmt.Sprint("learned ", typ, seg, vlan), flows.LearnedCookie(typ, seg, vlan))
			}
		}
	}
	add("tunnel h1", flows.TunnelCookie("h1"))
	add("tunnel h2", flows.TunnelCookie("h2"))
	add("port blue/vm1", flows.PortCookie("blue", "vm1"))
	add("port blue/vm2", flows.PortCookie("blue", "vm2"))
	add("port bluev/m1", flows.PortCookie("bluev", "m1"))
}
