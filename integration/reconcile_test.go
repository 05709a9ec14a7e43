//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// blueScenario is two hosts with one VXLAN network and a VM on each,
// applied and with traffic flowing.
func blueScenario(t *testing.T, o daemonOptions) (*scenario, *tenantVM, *tenantVM) {
	s := newScenario(t, 2, o)
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(s.lab.Hosts[0], "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.vm(s.lab.Hosts[1], "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	if !o.Advertise {
		s.pointBridges()
	}
	s.waitApplied(20 * time.Second)
	ok, out := a1.Ping(a2.IP, 3)
	require.True(t, ok, "a1 -> a2 before the event: %s", out)
	return s, a1, a2
}

// flowEvents returns the flow-change lines of `ovs-ofctl monitor` output,
// leaving out changes to flows learn() made (learning is data-plane work).
func flowEvents(out string) []string {
	var events []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "event=") {
			continue
		}
		if m := eventCookie.FindStringSubmatch(line); m != nil {
			if c, err := strconv.ParseUint(m[1], 16, 64); err == nil && flows.IsLearned(c) {
				continue
			}
		}
		events = append(events, line)
	}
	return events
}

var eventCookie = regexp.MustCompile(`cookie=0x([0-9a-f]+)`)

// durations returns the duration, in seconds, of each flow of a table whose
// dump line contains substr.
func durations(t *testing.T, h *lab.Host, bridge string, table int, substr string) []float64 {
	t.Helper()
	out, err := h.Ofctl("dump-flows", bridge, fmt.Sprintf("table=%d", table))
	require.NoError(t, err)
	var ds []float64
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, substr) {
			continue
		}
		if m := durationRe.FindStringSubmatch(line); m != nil {
			d, _ := strconv.ParseFloat(m[1], 64)
			ds = append(ds, d)
		}
	}
	return ds
}

var durationRe = regexp.MustCompile(`duration=([0-9.]+)s`)

// TestRestartTouchesNoFlow: brtun killed with SIGKILL and restarted while a
// VM pings across hosts at 10/s for 8 s loses no packet and changes no flow.
func TestRestartTouchesNoFlow(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true, TunnelPorts: mode})
		h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
		learnedBefore := len(durations(t, h1, "br-tun", 20, "cookie=0xb75"))
		require.Positive(t, learnedBefore, "the pings must have taught br-tun table 20 a MAC")

		changes := watchFlows(t, h1, h2)
		pingDone := make(chan string, 1)
		go func() {
			out, _ := a1.Run("ping", "-c", "80", "-i", "0.1", "-W", "1", a2.IP)
			pingDone <- out
		}()
		time.Sleep(2 * time.Second)
		killedAt := time.Now()
		s.brtun.Kill()
		s.brtun.Start()
		s.waitApplied(20 * time.Second)
		t.Logf("brtun was back and had resynced both hosts %.2fs after the SIGKILL", time.Since(killedAt).Seconds())
		pingOut := <-pingDone
		events := changes() // with the marker-flow positive control

		require.Contains(t, pingOut, "80 packets transmitted, 80 received", "no packet may be lost across the restart:\n%s", pingOut)
		require.Empty(t, events, "the restart must not add, modify or delete any flow")
		flood := durations(t, h1, "br-tun", 21, "dl_vlan=")
		require.NotEmpty(t, flood)
		for _, d := range flood {
			assert.Greater(t, d, time.Since(killedAt).Seconds(), "the flood flow's duration must span the restart")
		}
		assert.Positive(t, len(durations(t, h1, "br-tun", 20, "cookie=0xb75")), "learned entries must survive the restart")
	})
}

// TestRestartWithOVSDBDownTouchesNoFlow: brtun restarts while h1's OVSDB
// is unreachable (ovsdb-server stopped listening on the management network;
// ovs-vswitchd runs on), so h1's switches reconnect before anything is
// known of h1's ports. brtun must leave their flows alone (compiling without the
// ofports would delete the pipeline) and, once OVSDB is back, find nothing
// to change. Traffic keeps flowing throughout.
func TestRestartWithOVSDBDownTouchesNoFlow(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	changes := watchFlows(t, h1, h2)
	const count = 60
	ping := pingInBackground(a1, a2.IP, count)
	time.Sleep(time.Second)
	s.brtun.Kill()
	h1.CloseOVSDBRemote(t)
	s.brtun.Start()
	require.True(t, waitUntil(20*time.Second, func() bool {
		hv := hostStatus(s, "h1")
		return hv.Status.Bridges["br-tun"].OpenFlow == "connected" && hv.Status.Bridges["br-int"].OpenFlow == "connected"
	}), "h1's switches must reconnect to the restarted brtun")
	time.Sleep(3 * time.Second) // several reconciles of h1 without its OVSDB
	assert.Equal(t, "disconnected", hostStatus(s, "h1").Status.OVSDB, "h1's OVSDB must still be down here")
	h1.OpenOVSDBRemote(t)
	s.waitApplied(30 * time.Second)
	requireNoLoss(t, <-ping, count, "ping across the restart with h1's OVSDB down")
	require.Empty(t, changes(), "a restart while a host's OVSDB is down must not add, modify or delete any flow")
}

// TestDriftIsRepaired: a brtun flow deleted by hand, one modified by hand
// and a stray flow are repaired within one drift period, and counted. The
// flow monitor is off: this is the periodic check, the safety net
// (TestFlowMonitorRepairsAtOnce has the monitor).
func TestDriftIsRepaired(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		const period = 2 * time.Second
		s, _, _ := blueScenario(t, daemonOptions{Advertise: true, DriftInterval: period, TunnelPorts: mode, ExtraArgs: []string{"--flow-monitor=false"}})
		h1 := s.lab.Hosts[0]
		want := dumpFlows(t, h1, "br-tun")

		// Bridges nobody changed: their dumps hold the flows brtun knows
		// they hold (ovs-vswitchd reports each flow as brtun encoded it),
		// so the checks neither decode nor diff them. The counters are
		// the whole daemon's: the positive control is the decoded dump
		// after the hand edits, below.
		const unchanged = `brtun_controller_flow_dumps_total{read="unchanged"}`
		before := metric(t, s.brtun, unchanged)
		require.Eventually(t, func() bool { return metric(t, s.brtun, unchanged) >= before+2 }, 2*period+5*time.Second, 100*time.Millisecond,
			"drift checks of unchanged bridges must find the flows brtun knows them to hold")
		decoded := metric(t, s.brtun, `brtun_controller_flow_dumps_total{read="decoded"}`)

		for _, args := range [][]string{
			{"del-flows", "br-tun", "--strict", "table=3,priority=0"},
			{"mod-flows", "br-tun", "--strict", "table=20,priority=0,actions=drop"},
			{"add-flow", "br-tun", "table=2,priority=100,actions=drop"},
		} {
			out, err := h1.Ofctl(args...)
			require.NoError(t, err, out)
		}
		require.NotEqual(t, want, dumpFlows(t, h1, "br-tun"), "the hand edits must have changed the bridge")
		start := time.Now()
		repaired := waitUntil(2*period+5*time.Second, func() bool {
			return strings.Join(dumpFlows(t, h1, "br-tun"), "\n") == strings.Join(want, "\n")
		})
		require.True(t, repaired, "drift not repaired; bridge now:\n%s", strings.Join(dumpFlows(t, h1, "br-tun"), "\n"))
		t.Logf("drift repaired %.2fs after the hand edits (drift period %s)", time.Since(start).Seconds(), period)
		require.Eventually(t, func() bool {
			return metric(t, s.brtun, `brtun_controller_drift_repaired_flows_total{bridge="br-tun",host="h1"}`) >= 3
		}, 5*time.Second, 100*time.Millisecond, "the three repairs must be counted")
		assert.Greater(t, metric(t, s.brtun, `brtun_controller_flow_dumps_total{read="decoded"}`), decoded,
			"the edited bridge's dump was decoded")
	})
}

// TestVswitchdRestartRecovers: after ovs-vswitchd restarts with empty flow
// tables, brtun reinstalls the pipeline and traffic flows again.
func TestVswitchdRestartRecovers(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true})
	h1 := s.lab.Hosts[0]
	want := dumpFlows(t, h1, "br-tun")
	h1.StopVswitchd(t)
	start := time.Now()
	h1.StartVswitchd(t)
	back := waitUntil(20*time.Second, func() bool {
		ok, _ := a1.Ping(a2.IP, 1)
		return ok
	})
	elapsed := time.Since(start)
	require.True(t, back, "connectivity did not come back after ovs-vswitchd restarted")
	t.Logf("connectivity back %.2fs after ovs-vswitchd restarted (target 3s)", elapsed.Seconds())
	require.Less(t, elapsed, 10*time.Second)
	s.waitApplied(10 * time.Second)
	require.Equal(t, want, dumpFlows(t, h1, "br-tun"), "the same pipeline must be back")
}

// metric reads one sample from brtun's /metrics (0 when absent).
func metric(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	resp, err := http.Get(d.API + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), " "); ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(t, err)
			return v
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return 0
}

// TestUntouchedHostSkipsTheReconcile: h3 carries no network. A port bound
// on h2 is applied by h1 and h2 (a1 reaches the new VM), while h3 takes
// the revision without a reconcile: its applied revision moves, `?wait`
// does not wait for more, the skip is counted, and its bridges see no flow
// change.
func TestUntouchedHostSkipsTheReconcile(t *testing.T) {
	s := newScenario(t, 3, daemonOptions{Advertise: true})
	h1, h2, h3 := s.lab.Hosts[0], s.lab.Hosts[1], s.lab.Hosts[2]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	s.waitApplied(20 * time.Second)

	changes := watchFlows(t, h3)
	skipped := metric(t, s.brtun, "brtun_controller_reconciles_skipped_total")
	vm := s.lab.AddVM(t, h2, lab.VMOptions{Name: "a3", MAC: "02:00:00:00:01:03", CIDR: "198.18.0.3/24"})
	s.brtun.MustDo(201, "POST", "/v1/networks/blue/ports?wait=10s", map[string]any{
		"name": "a3", "host": h2.Name, "interface": vm.HostIface, "mac": "02:00:00:00:01:03", "ips": []string{vm.IP},
	}, nil)
	s.waitApplied(10*time.Second, h3)
	require.Greater(t, metric(t, s.brtun, "brtun_controller_reconciles_skipped_total"), skipped, "h3 took the revision without a reconcile")
	ok, out := a1.Ping(vm.IP, 2)
	require.True(t, ok, "a1 -> a3: the carriers must have applied the port: %s", out)
	require.Empty(t, changes(), "no flow of h3 may change")
}

// TestDriftRepairsOVSDBOfAnUntouchedHost: a fail_mode changed by hand is
// no OVSDB fact, so nothing but the drift check notices it; with no
// revision touching the hosts, the drift check's full reconcile still
// writes OVSDB and puts it back, on h1 whose switches are connected (their
// dump request forces the full path) as on h2 whose are not (only the
// host's drift flag does).
func TestDriftRepairsOVSDBOfAnUntouchedHost(t *testing.T) {
	const period = 2 * time.Second
	s := newScenario(t, 2, daemonOptions{DriftInterval: period})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	failMode := func(h *lab.Host) string {
		mode, err := h.Vsctl("get-fail-mode", "br-tun")
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(mode)
	}
	require.Eventually(t, func() bool {
		return failMode(h1) == "secure" && failMode(h2) == "secure"
	}, 20*time.Second, 100*time.Millisecond, "brtun makes both hosts' br-tun")
	target := s.brtun.Target(s.lab)
	_, err := h1.Vsctl("set-controller", "br-tun", target, "--", "set-controller", "br-int", target)
	require.NoError(t, err)
	s.waitApplied(20*time.Second, h1)

	for _, h := range []*lab.Host{h1, h2} {
		_, err := h.Vsctl("set-fail-mode", "br-tun", "standalone")
		require.NoError(t, err)
	}
	for _, h := range []*lab.Host{h1, h2} {
		require.Eventually(t, func() bool { return failMode(h) == "secure" },
			2*period+5*time.Second, 200*time.Millisecond, "the drift check must put %s's fail_mode back", h.Name)
	}
}
