//go:build integration

package integration

import (
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// brtun trace against ovs-appctl ofproto/trace: for each host a traced
// packet enters, the flows the walk says it goes through on that host
// (bridge, table, priority, cookie, in order) are the ones ofproto/trace
// reports for the same packet on the same host, and the ports the walk says
// it reaches there are the ones ofproto/trace's datapath actions output to.

// hit is one table lookup: in ofproto/trace's words or the walk's.
type hit struct {
	bridge   string
	table    int
	priority int    // -1: no flow matched
	cookie   uint64 // 0 when none matched
}

func (h hit) String() string {
	return fmt.Sprintf("%s:%d/p%d/%#x", h.bridge, h.table, h.priority, h.cookie)
}

var (
	ofTraceBridge = regexp.MustCompile(`^(\s*)bridge\("([^"]+)"\)`)
	ofTraceTable  = regexp.MustCompile(`^(\s*)(\d+)\. (?:(No match)|.*priority (\d+)(?:, cookie (0x[0-9a-f]+))?)`)
	ofTraceDP     = regexp.MustCompile(`(?m)^Datapath actions: (.*)$`)
	dpifBridge    = regexp.MustCompile(`^  (\S+):$`)
	dpifPort      = regexp.MustCompile(`^\s+(\S+) (\d+)/(\d+):`)
	parenthesised = regexp.MustCompile(`\([^()]*\)`)
	walkPriority  = regexp.MustCompile(`(?:^|, )priority=(\d+)`)
	walkCookie    = regexp.MustCompile(`^cookie=(0x[0-9a-f]+)`)
)

// ofprotoTrace runs ofproto/trace on h's bridge and returns the lookups on
// br-int and br-tun (not the underlay bridge a tunnelled copy goes through)
// and the interfaces its datapath actions output to.
func ofprotoTrace(t *testing.T, h *lab.Host, bridge, flow string) ([]hit, []string, string) {
	t.Helper()
	out, err := h.Appctl("ofproto/trace", bridge, flow)
	require.NoError(t, err, "ofproto/trace %s %s", bridge, flow)
	type level struct {
		indent int
		bridge string
	}
	var stack []level
	var hits []hit
	for _, line := range strings.Split(out, "\n") {
		if m := ofTraceBridge.FindStringSubmatch(line); m != nil {
			for len(stack) > 0 && stack[len(stack)-1].indent >= len(m[1]) {
				stack = stack[:len(stack)-1]
			}
			stack = append(stack, level{len(m[1]), m[2]})
			continue
		}
		m := ofTraceTable.FindStringSubmatch(line)
		if m == nil || len(stack) == 0 {
			continue
		}
		for len(stack) > 1 && stack[len(stack)-1].indent > len(m[1]) {
			stack = stack[:len(stack)-1]
		}
		b := stack[len(stack)-1].bridge
		if b != "br-int" && b != "br-tun" {
			continue
		}
		h := hit{bridge: b, priority: -1}
		h.table, _ = strconv.Atoi(m[2])
		if m[3] == "" {
			h.priority, _ = strconv.Atoi(m[4])
			if m[5] != "" {
				h.cookie, _ = strconv.ParseUint(m[5][2:], 16, 64)
			}
		}
		hits = append(hits, h)
	}
	dp := ofTraceDP.FindStringSubmatch(out)
	require.NotNil(t, dp, "ofproto/trace %s %s:\n%s", bridge, flow, out)
	return hits, datapathOutputs(t, h, dp[1]), out
}

// datapathOutputs names the ports a datapath action list outputs to
// directly (tunnel pushes and their underlay output are left out).
func datapathOutputs(t *testing.T, h *lab.Host, actions string) []string {
	t.Helper()
	show, err := h.Appctl("dpif/show")
	require.NoError(t, err)
	// dpif/show lists each bridge ("  br-phy:") and under it its ports.
	names, underlay := map[string]string{}, map[string]bool{}
	bridge := ""
	for _, line := range strings.Split(show, "\n") {
		if m := dpifBridge.FindStringSubmatch(line); m != nil {
			bridge = m[1]
		}
		if m := dpifPort.FindStringSubmatch(line); m != nil {
			names[m[3]] = m[1]
			underlay[m[3]] = bridge != "br-int" && bridge != "br-tun"
		}
	}
	for parenthesised.MatchString(actions) {
		actions = parenthesised.ReplaceAllString(actions, "")
	}
	var out []string
	for _, a := range strings.Split(actions, ",") {
		if _, err := strconv.Atoi(a); err == nil {
			require.Contains(t, names, a, "datapath port %s of %s", a, h.Name)
			if !underlay[a] { // where a tunnelled copy leaves br-phy
				out = append(out, names[a])
			}
		}
	}
	slices.Sort(out)
	return out
}

// walkHits lists the lookups of the hops under hop i that stay on its
// host, in the walk's order, and the ports where copies leave the bridges
// there (VM ports, a bridge's internal port; not tunnels).
func walkHits(t *testing.T, v northbound.TraceView, i int) ([]hit, []string) {
	t.Helper()
	var hits []hit
	var reached []string
	var visit func(i int)
	visit = func(i int) {
		hop := v.Hops[i]
		for _, l := range hop.Lookups {
			h := hit{bridge: hop.Bridge, table: int(l.Table), priority: -1}
			if l.Flow != "" {
				m := walkPriority.FindStringSubmatch(l.Flow)
				require.NotNil(t, m, l.Flow)
				h.priority, _ = strconv.Atoi(m[1])
				if c := walkCookie.FindStringSubmatch(l.Flow); c != nil {
					h.cookie, _ = strconv.ParseUint(c[1][2:], 16, 64)
				}
			}
			hits = append(hits, h)
		}
		for _, o := range hop.Outputs {
			if o.Next < 0 {
				reached = append(reached, o.Port) // a VM port, the bridge's own port
			}
			if o.Next >= 0 && v.Hops[o.Next].Host == hop.Host {
				visit(o.Next)
			}
		}
	}
	visit(i)
	slices.Sort(reached)
	return hits, reached
}

// traceVia asks brtun for a trace.
func (s *scenario) traceVia(network, port string, q url.Values) northbound.TraceView {
	s.t.Helper()
	var v northbound.TraceView
	s.brtun.MustDo(200, "GET", "/v1/networks/"+network+"/ports/"+port+"/trace?"+q.Encode(), nil, &v)
	require.NotEmpty(s.t, v.Hops)
	return v
}

// compareWithOFProto checks every host the traced packet enters against
// ofproto/trace of the same packet there, and returns the hosts checked in
// order.
func (s *scenario) compareWithOFProto(v northbound.TraceView) []string {
	s.t.Helper()
	var hosts []string
	for i, hop := range v.Hops {
		if hop.From >= 0 && v.Hops[hop.From].Host == hop.Host {
			continue // inside a host: part of that host's ofproto/trace
		}
		h := s.lab.Host(hop.Host)
		want, wantReached := walkHits(s.t, v, i)
		got, gotReached, out := ofprotoTrace(s.t, h, hop.Bridge, hop.Packet)
		assert.Equal(s.t, fmt.Sprint(want), fmt.Sprint(got), "%s: the walk's lookups vs ofproto/trace %s %s:\n%s", hop.Host, hop.Bridge, hop.Packet, out)
		assert.Equal(s.t, wantReached, gotReached, "%s: ports reached vs ofproto/trace's datapath actions:\n%s", hop.Host, out)
		hosts = append(hosts, hop.Host)
	}
	return hosts
}

// TestTraceAgreesWithOFProtoTrace: on two lab hosts, brtun trace's hops of
// a unicast to a remote port, an ARP request answered by h1's responder, a
// broadcast flood, a DHCP discover and a drop (an isolated network's frame to another
// network's MAC) are what ofproto/trace says on each host. A flow deleted
// by hand shows in the trace until the drift check puts it back. It runs
// once per tunnel-port mode.
func TestTraceAgreesWithOFProtoTrace(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		// The flow monitor would put a flow deleted by hand back before a
		// trace could show it missing: drift is left to the periodic check.
		s := newScenario(t, 2, daemonOptions{Advertise: true, DriftInterval: 20 * time.Second, TunnelPorts: mode, ExtraArgs: []string{"--flow-monitor=false"}})
		h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
		s.network("blue", topology.VXLAN, 5001)
		s.network("lone", topology.VXLAN, 5002) // only on h1: nowhere to flood
		a1 := s.quietVM(h1, "a1", "blue", "02:00:00:00:0a:01", "198.18.0.1/24")
		s.quietVM(h1, "b1", "blue", "02:00:00:00:0a:03", "198.18.0.3/24")
		a2 := s.quietVM(h2, "a2", "blue", "02:00:00:00:0a:02", "198.18.0.2/24")
		s.quietVM(h1, "l1", "lone", "02:00:00:00:0c:01", "198.18.0.1/24")
		s.waitApplied(30 * time.Second)
		require.True(t, waitUntil(20*time.Second, func() bool {
			var p portView
			return s.brtun.Do("GET", "/v1/networks/blue/ports/a2", nil, &p) == 200 && p.Status == "bound"
		}))

		reached := func(v northbound.TraceView) []string {
			var out []string
			for _, e := range v.Reached {
				out = append(out, e.Host+":"+e.Port)
			}
			slices.Sort(out)
			return out
		}

		// Unicast a1 -> a2: h1's br-int and br-tun, the tunnel, h2's br-tun and br-int.
		v := s.traceVia("blue", "a1", url.Values{"dst_ip": {a2.IP}})
		assert.Equal(t, []string{"h2:a2"}, reached(v))
		assert.Equal(t, []string{"h1", "h2"}, s.compareWithOFProto(v))
		assert.Equal(t, []string{"h1/br-int", "h1/br-tun", "h2/br-tun", "h2/br-int"}, hopBridges(v))
		toH2, fromH1 := "vxlan-"+ipHex(h2.TunnelIP), "vxlan-"+ipHex(h1.TunnelIP)
		if mode.Flow() {
			toH2, fromH1 = "vxlan-flow", "vxlan-flow"
			assert.Contains(t, v.Hops[2].Packet, "tun_src="+h1.TunnelIP, "h2's table 0 checks where the copy came from")
		}
		assert.Equal(t, toH2, v.Hops[1].Outputs[0].Port)
		assert.Equal(t, fromH1, v.Hops[2].InPort)

		// ARP for a2's address: h1's br-tun answers; nothing crosses the tunnel.
		arp := url.Values{"packet": {"arp"}, "dst_ip": {a2.IP}}
		v = s.traceVia("blue", "a1", arp)
		assert.Equal(t, []string{"h1:a1", "h1:b1"}, reached(v), "the request floods to b1, the answer comes back to a1")
		assert.Equal(t, []string{"h1"}, s.compareWithOFProto(v))
		assert.Contains(t, v.Hops[1].Lookups[len(v.Hops[1].Lookups)-1].Flow, "arp_tpa="+a2.IP)

		// A broadcast floods blue on both hosts, and only blue.
		v = s.traceVia("blue", "a1", url.Values{"packet": {"broadcast"}})
		assert.Equal(t, []string{"h1:b1", "h2:a2"}, reached(v))
		assert.Equal(t, []string{"h1", "h2"}, s.compareWithOFProto(v))

		// A DHCP discover passes a1's port security and floods like a broadcast.
		v = s.traceVia("blue", "a1", url.Values{"packet": {"dhcp"}})
		assert.Equal(t, []string{"h1:b1", "h2:a2"}, reached(v))
		assert.Equal(t, []string{"h1", "h2"}, s.compareWithOFProto(v))
		assert.Contains(t, v.Hops[0].Packet, "udp,nw_src=0.0.0.0,udp_src=68,udp_dst=67")

		// A drop: lone's l1 sends to a2's MAC; lone has nobody else. The
		// unicast above (a1 -> a2) is its positive control.
		v = s.traceVia("lone", "l1", url.Values{"dst_mac": {a2.MAC}})
		assert.Empty(t, reached(v))
		assert.Equal(t, []string{"h1"}, s.compareWithOFProto(v))
		last := v.Hops[len(v.Hops)-1]
		assert.Equal(t, "h1/br-tun", last.Host+"/"+last.Bridge)
		assert.Equal(t, "table 21 drops it", last.Dropped)

		// Drift: delete h1's ARP answer for a2 by hand. The trace shows the
		// request crossing the tunnel (and ofproto/trace agrees) until the
		// drift check puts the flow back.
		responder := fmt.Sprintf("table=21,arp,dl_vlan=%d,arp_tpa=%s,arp_op=1", a1.Port.LocalVLAN, a2.IP)
		_, err := h1.Ofctl("del-flows", "br-tun", "--strict", "priority=2,"+responder)
		require.NoError(t, err)
		require.Empty(t, flowLines(t, h1, responder), "the responder is gone")
		v = s.traceVia("blue", "a1", arp)
		assert.Equal(t, []string{"h1:b1", "h2:a2"}, reached(v), "nobody answers on h1: the request reaches a2 through the tunnel")
		assert.Equal(t, []string{"h1", "h2"}, s.compareWithOFProto(v))
		require.True(t, waitUntil(45*time.Second, func() bool { return len(flowLines(t, h1, responder)) == 1 }),
			"the drift check puts the responder back")
		v = s.traceVia("blue", "a1", arp)
		assert.Equal(t, []string{"h1:a1", "h1:b1"}, reached(v), "answered on h1 again")
		assert.Equal(t, []string{"h1"}, s.compareWithOFProto(v))

		// The CLI prints the same walk.
		cli, err := exec.Command(testbed.BrtunBinary(t), "--server", s.brtun.API, "trace", "blue", "a1", "--arp", "--dst-ip", a2.IP).CombinedOutput()
		out := string(cli)
		require.NoError(t, err, out)
		assert.Contains(t, out, "hop 0: h1/br-int")
		assert.Contains(t, out, "reached: blue/a1 on h1 (")
	})
}

func hopBridges(v northbound.TraceView) []string {
	var out []string
	for _, h := range v.Hops {
		out = append(out, h.Host+"/"+h.Bridge)
	}
	return out
}
