package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// bigView is one host with 100 peers (a VXLAN tunnel port each) and 4094
// VXLAN networks, every one carried by all 100 peers: the most a host can
// hold (one local VLAN per network).
func bigView(networks, peers int) flows.View {
	v := flows.View{Host: "h0", PatchIntOfport: 1}
	names := make([]string, peers)
	for i := range peers {
		names[i] = fmt.Sprintf("h%d", i+1)
		v.Tunnels = append(v.Tunnels, flows.TunnelPort{
			Ofport: uint32(i + 2), PeerHost: names[i], Type: topology.VXLAN,
			RemoteIP: fmt.Sprintf("192.0.2.%d", i+1),
		})
	}
	for i := range networks {
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: fmt.Sprintf("net%04d", i), Type: topology.VXLAN, SegmentID: uint32(10000 + i),
			LocalVLAN: uint16(i + 1), MACLearning: true, Peers: names,
		})
	}
	return v
}

func BenchmarkCompile4094Networks100Peers(b *testing.B) {
	v := bigView(4094, 100)
	set := flows.Compile(v)
	require.NoError(b, flows.Validate(set))
	// table 0: patch, 100 tunnels, miss; 1: 3; 2: 1; 3, 10, 21: one per network and a miss; 20, 22: miss
	require.Equal(b, (1+100+1)+3+1+3*(4094+1)+1+1, len(set.BrTun))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		set = flows.Compile(v)
	}
	b.ReportMetric(float64(len(set.BrTun)), "flows")
}

func BenchmarkCompileAndRender4094Networks100Peers(b *testing.B) {
	v := bigView(4094, 100)
	b.ReportAllocs()
	for b.Loop() {
		set := flows.Compile(v)
		for _, f := range set.BrTun {
			_ = f.String()
		}
	}
}

// BenchmarkValidate4094Networks100Peers is what the controller adds to
// every full reconcile of the biggest host, beside Compile's cost above.
func BenchmarkValidate4094Networks100Peers(b *testing.B) {
	set := flows.Compile(bigView(4094, 100))
	b.ReportAllocs()
	for b.Loop() {
		if err := flows.Validate(set); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(set.BrTun)+len(set.BrInt)), "flows")
}
