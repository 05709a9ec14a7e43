package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

// portSecurityView is one host with ports dual-stack ports (one IPv4 and one
// IPv6 address each) spread over 10 VXLAN networks, port security on or
// off: what port security costs in br-int flows is the difference.
func portSecurityView(ports int, security bool) flows.View {
	v := flows.View{Host: "h0", PatchIntOfport: 1, PatchTunOfport: 1}
	for i := range 10 {
		v.Networks = append(v.Networks, flows.NetworkView{
			Name: fmt.Sprintf("net%02d", i), Type: topology.VXLAN, SegmentID: uint32(5000 + i), LocalVLAN: uint16(i + 1), MACLearning: true,
		})
	}
	for i := range ports {
		n := i % 10
		v.LocalPorts = append(v.LocalPorts, flows.LocalPort{
			Network: fmt.Sprintf("net%02d", n), Name: fmt.Sprintf("p%04d", i), Ofport: uint32(i + 2), LocalVLAN: uint16(n + 1),
			MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff),
			IPs: []string{fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), fmt.Sprintf("2001:db8::%x", i+1)}, PortSecurity: security,
		})
	}
	return v
}

// BenchmarkCompilePortSecurity compiles a host of 500 ports with port
// security on and off; "flows/port" is br-int's flows per port (the
// bridge's fixed flows left out), the count docs/benchmarks.md quotes.
func BenchmarkCompilePortSecurity(b *testing.B) {
	const ports = 500
	base := len(flows.Compile(portSecurityView(0, false)).BrInt)
	for _, security := range []bool{false, true} {
		b.Run(fmt.Sprintf("security=%t", security), func(b *testing.B) {
			v := portSecurityView(ports, security)
			set := flows.Compile(v)
			require.NoError(b, flows.Validate(set))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				set = flows.Compile(v)
			}
			b.ReportMetric(float64(len(set.BrInt)), "brint-flows")
			b.ReportMetric(float64(len(set.BrInt)-base)/ports, "flows/port")
		})
	}
}

// TestPortSecurityFlowCounts pins the per-port flow counts the benchmark
// and docs/benchmarks.md report: a protected dual-stack port costs more
// br-int flows than an unprotected one, and every port the same.
func TestPortSecurityFlowCounts(t *testing.T) {
	base := len(flows.Compile(portSecurityView(0, false)).BrInt)
	perPort := func(ports int, security bool) float64 {
		return float64(len(flows.Compile(portSecurityView(ports, security)).BrInt)-base) / float64(ports)
	}
	off, on := perPort(100, false), perPort(100, true)
	require.Equal(t, off, perPort(10, false), "linear in ports")
	require.Equal(t, on, perPort(10, true), "linear in ports")
	require.Greater(t, on, off)
	t.Logf("br-int flows per dual-stack port: %.0f with port security, %.0f without (%.1fx); fixed: %d", on, off, on/off, base)
}
