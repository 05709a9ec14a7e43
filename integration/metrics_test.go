//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// TestMetricsReportFlowsAndConnections: /metrics reports the connection
// state of every OVSDB session and bridge, the flows brtun installed per
// table equal to what `ovs-ofctl dump-flows` finds there, the MACs learn()
// taught the network, and the API requests made. When h1's ovs-vswitchd
// stops, h1's bridges read disconnected while h2's (the positive control)
// still read connected.
func TestMetricsReportFlowsAndConnections(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true, DriftInterval: time.Second})
	h1 := s.lab.Hosts[0]

	for _, h := range []string{"h1", "h2"} {
		require.Equal(t, 1.0, metric(t, s.brtun, fmt.Sprintf(`brtun_ovsdb_connected{host=%q}`, h)), h)
		for _, b := range []string{"br-int", "br-tun"} {
			require.Equal(t, 1.0, metric(t, s.brtun, fmt.Sprintf(`brtun_openflow_connected{bridge=%q,host=%q}`, b, h)), "%s/%s", h, b)
		}
	}
	require.Equal(t, 4.0, metric(t, s.brtun, "brtun_openflow_switches_connected"))
	connections := metric(t, s.brtun, "brtun_openflow_connections_total")
	require.GreaterOrEqual(t, connections, 4.0, "every bridge connected at least once")

	// Flows per table: what the switch holds, counted by ovs-ofctl.
	for _, b := range []string{"br-int", "br-tun"} {
		perTable := map[string]int{}
		for _, line := range dumpFlows(t, h1, b) {
			perTable[tableOf(line)]++
		}
		require.NotEmpty(t, perTable)
		for table, n := range perTable {
			require.Equal(t, float64(n), metric(t, s.brtun, fmt.Sprintf(`brtun_openflow_flows{bridge=%q,host="h1",table=%q}`, b, table)), "%s table %s", b, table)
		}
	}
	require.Positive(t, metric(t, s.brtun, `brtun_openflow_flow_mods_total{bridge="br-tun",op="add"}`))
	require.Positive(t, metric(t, s.brtun, `brtun_openflow_bundles_total{result="committed"}`))
	require.Positive(t, metric(t, s.brtun, `brtun_controller_reconciles_total{result="ok"}`))

	// Learned MACs: the pings taught h1 a2's MAC; the next drift dump reports it.
	ok, out := a1.Ping(a2.IP, 2)
	require.True(t, ok, out)
	learned := len(durations(t, h1, "br-tun", 20, "cookie=0xb75"))
	require.Positive(t, learned)
	require.Eventually(t, func() bool {
		return metric(t, s.brtun, `brtun_learned_macs{host="h1",network="blue"}`) == float64(learned)
	}, 10*time.Second, 200*time.Millisecond, "want %d learned MACs for blue on h1", learned)

	// API requests by route and status: the scenario made exactly one network.
	require.Equal(t, 1.0, metric(t, s.brtun, `brtun_api_requests_total{code="201",method="POST",route="/v1/networks"}`))
	require.Equal(t, 2.0, metric(t, s.brtun, `brtun_api_requests_total{code="201",method="POST",route="/v1/networks/{network}/ports"}`))

	// Connection state follows the switch: h1 down, h2 (control) up.
	h1.StopVswitchd(t)
	require.Eventually(t, func() bool {
		return metric(t, s.brtun, `brtun_openflow_connected{bridge="br-tun",host="h1"}`) == 0 &&
			metric(t, s.brtun, `brtun_openflow_connected{bridge="br-int",host="h1"}`) == 0
	}, 10*time.Second, 100*time.Millisecond, "h1's bridges must read disconnected")
	require.Equal(t, 1.0, metric(t, s.brtun, `brtun_openflow_connected{bridge="br-tun",host="h2"}`))
	require.Equal(t, 2.0, metric(t, s.brtun, "brtun_openflow_switches_connected"))
	h1.StartVswitchd(t)
	require.Eventually(t, func() bool {
		return metric(t, s.brtun, `brtun_openflow_connected{bridge="br-tun",host="h1"}`) == 1
	}, 20*time.Second, 100*time.Millisecond, "h1's br-tun must reconnect")
	require.Greater(t, metric(t, s.brtun, "brtun_openflow_connections_total"), connections, "the reconnection is counted")
}

// tableOf returns the table of a dump line ("0" when the line names none).
func tableOf(line string) string {
	for _, field := range strings.Split(line, ", ") {
		if v, ok := strings.CutPrefix(field, "table="); ok {
			return v
		}
	}
	return "0"
}

// TestPprofOnlyBehindTheFlag: with --pprof the API listener serves Go
// profiles of the running daemon (a one-second CPU profile while it serves
// a real host); restarted without the flag, the same paths are not found.
func TestPprofOnlyBehindTheFlag(t *testing.T) {
	s := newScenario(t, 1, daemonOptions{Advertise: true, ExtraArgs: []string{"--pprof"}})
	s.network("blue", topology.VXLAN, 5001)
	s.waitApplied(20 * time.Second)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		require.Equal(t, http.StatusOK, s.brtun.Do("GET", path, nil, nil), "with --pprof: GET %s", path)
	}

	s.brtun.Kill()
	s.brtun.Args = slices.DeleteFunc(s.brtun.Args, func(a string) bool { return a == "--pprof" })
	s.brtun.Start()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		require.Equal(t, http.StatusNotFound, s.brtun.Do("GET", path, nil, nil), "without --pprof: GET %s", path)
	}
}
