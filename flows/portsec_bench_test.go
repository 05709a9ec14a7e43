package flows_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowtest"
)

// BenchmarkCompilePortSecurity compiles a host of 500 ports with port
// security on and off; "flows/port" is br-int's flows per port (the
// bridge's fixed flows left out), the count docs/benchmarks.md quotes.
func BenchmarkCompilePortSecurity(b *testing.B) {
	const ports = 500
	base := len(flows.Compile(flowtest.PortSecurityView(0, false)).BrInt)
	for _, security := range []bool{false, true} {
		b.Run(fmt.Sprintf("security=%t", security), func(b *testing.B) {
			v := flowtest.PortSecurityView(ports, security)
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
	base := len(flows.Compile(flowtest.PortSecurityView(0, false)).BrInt)
	perPort := func(ports int, security bool) float64 {
		return float64(len(flows.Compile(flowtest.PortSecurityView(ports, security)).BrInt)-base) / float64(ports)
	}
	off, on := perPort(100, false), perPort(100, true)
	require.Equal(t, off, perPort(10, false), "linear in ports")
	require.Equal(t, on, perPort(10, true), "linear in ports")
	require.Greater(t, on, off)
	t.Logf("br-int flows per dual-stack port: %.0f with port security, %.0f without (%.1fx); fixed: %d", on, off, on/off, base)
}
