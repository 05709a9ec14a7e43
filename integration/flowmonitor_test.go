//go:build integration

package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// TestFlowMonitorRepairsAtOnce: with the periodic drift check 10 minutes
// away, an operator's ovs-ofctl del-flows, mod-flows and add-flow on
// brtun's bridges are each repaired within 2 s, because brtun's flow
// monitor reports them. An independent `ovs-ofctl monitor` shows each
// edit really happened before brtun undid it. The learned MAC entries
// (added by learn() while the VMs ping) ask for no repair and are left
// alone.
func TestFlowMonitorRepairsAtOnce(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true, DriftInterval: 10 * time.Minute, TunnelPorts: mode})
		h1 := s.lab.Hosts[0]
		ok, out := a1.Ping(a2.IP, 2)
		require.True(t, ok, out)
		learned := durations(t, h1, "br-tun", 20, "cookie=0xb75")
		require.NotEmpty(t, learned, "control: learn() added entries to br-tun's table 20")
		time.Sleep(time.Second)
		changed := `brtun_openflow_flow_monitor_events_total{event="changed"}`
		require.Zero(t, metric(t, s.brtun, changed), "learned entries are no drift")

		want := map[string][]string{"br-tun": dumpFlows(t, h1, "br-tun"), "br-int": dumpFlows(t, h1, "br-int")}
		intCookie := cookieOf(want["br-int"][len(want["br-int"])/2])
		edits := []struct {
			bridge string
			args   []string
			seen   string // the event the edit itself shows in ovs-ofctl monitor
		}{
			{"br-tun", []string{"del-flows", "br-tun", "--strict", "table=3,priority=0"}, "event=DELETED reason=delete table=3 "},
			{"br-tun", []string{"mod-flows", "br-tun", "--strict", "table=20,priority=0,actions=drop"}, "event=MODIFIED table=20 "},
			{"br-tun", []string{"add-flow", "br-tun", "table=2,priority=100,actions=drop"}, "event=ADDED table=2 "},
			{"br-int", []string{"del-flows", "br-int", fmt.Sprintf("cookie=%#x/-1", intCookie)}, "event=DELETED reason=delete "},
		}
		for i, e := range edits {
			watch := h1.Monitor(t, e.bridge)
			start := time.Now()
			out, err := h1.Ofctl(e.args...)
			require.NoError(t, err, out)
			repaired := waitUntil(10*time.Second, func() bool {
				return strings.Join(dumpFlows(t, h1, e.bridge), "\n") == strings.Join(want[e.bridge], "\n")
			})
			took := time.Since(start)
			events := flowEvents(watch())
			require.True(t, repaired, "%v not repaired; %s now:\n%s", e.args, e.bridge, strings.Join(dumpFlows(t, h1, e.bridge), "\n"))
			require.NotEmpty(t, events, "control: ovs-ofctl monitor saw the edit")
			t.Logf("%s repaired %.3fs after the edit (drift interval 10m); %d flow events, the first %q", strings.Join(e.args, " "), took.Seconds(), len(events), events[0])
			assert.Contains(t, events[0], e.seen, "control: the edit itself changed the bridge first")
			assert.Greater(t, len(events), 1, "and brtun changed it back")
			assert.Less(t, took, 2*time.Second, "repaired at once, not at the next periodic check")
			assert.GreaterOrEqual(t, metric(t, s.brtun, changed), float64(i+1), "counted")
		}
		assert.GreaterOrEqual(t, metric(t, s.brtun, `brtun_controller_drift_repaired_flows_total{bridge="br-tun",host="h1"}`), 3.0)
		assert.GreaterOrEqual(t, metric(t, s.brtun, `brtun_controller_drift_repaired_flows_total{bridge="br-int",host="h1"}`), 1.0)

		after := durations(t, h1, "br-tun", 20, "cookie=0xb75")
		require.GreaterOrEqual(t, len(after), len(learned), "the learned entries are left alone")
		assert.Greater(t, slices.Max(after), slices.Max(learned), "the oldest learned entry lives on")
	})
}
