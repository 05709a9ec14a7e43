//go:build integration

package flows_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowsim"
	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/topology"
)

// privateOVS is a private Open vSwitch (dummy datapath) of one test.
type privateOVS struct{ *testbed.Switch }

func startOVS(t *testing.T) *privateOVS {
	t.Helper()
	return &privateOVS{testbed.StartOVS(t, testbed.RunDir(t))}
}

// addBridge creates a secure OpenFlow 1.3 bridge on the dummy datapath with
// dummy ports at the given ofports.
func (o *privateOVS) addBridge(t *testing.T, name string, ofports ...uint32) {
	t.Helper()
	o.AddBridge(t, name)
	o.AddDummyPorts(t, name, ofports...)
}

// load replaces every flow of a bridge with fs, in one bundle.
func (o *privateOVS) load(t *testing.T, bridge string, fs []flows.Flow) {
	t.Helper()
	o.LoadFlows(t, "replace-flows", bridge, flows.Strings(fs))
}

func sortedStrings(fs []flows.Flow) []string {
	s := flows.Strings(fs)
	slices.Sort(s)
	return s
}

// ofports lists the in_ports and outputs the flows use.
func ofports(fs []flows.Flow) []uint32 {
	var out []uint32
	for _, f := range fs {
		if f.Match.InPort != nil {
			out = append(out, *f.Match.InPort)
		}
		for _, a := range f.Actions {
			if o, ok := a.(flows.Output); ok {
				out = append(out, o.Port)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestCompiledFlowSetEqualsOVSDump loads compiled FlowSets into real bridges
// and checks that OVS's canonical dump is the FlowSet's strings, line for line.
func TestCompiledFlowSetEqualsOVSDump(t *testing.T) {
	o := startOVS(t)
	scenarios := []struct {
		name string
		set  flows.FlowSet
	}{
		{"one_network_h1", flows.Compile(oneNetwork().view("h1"))},
		{"shared_segment_h2", flows.Compile(sharedSegment().view("h2"))},
		{"partial_peers_h1", flows.Compile(partialPeers().view("h1"))},
		{"remote_ports_h1", flows.Compile(remotePorts().view("h1"))},
		{"remote_ports_h3", flows.Compile(remotePorts().view("h3"))},
		{"big_4094_networks_100_peers", flows.Compile(bigView(4094, 100))},
		{"flow_partial_peers_h1", flows.Compile(partialPeers().withMode(topology.FlowTunnels).view("h1"))},
		{"flow_remote_ports_h1", flows.Compile(remotePorts().withMode(topology.FlowTunnels).view("h1"))},
	}
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			require.NoError(t, flows.Validate(sc.set))
			tun, in := fmt.Sprintf("tun%d", i), fmt.Sprintf("int%d", i)
			o.addBridge(t, tun, ofports(sc.set.BrTun)...)
			o.addBridge(t, in)
			o.load(t, tun, sc.set.BrTun)
			o.load(t, in, sc.set.BrInt)
			assert.Equal(t, sortedStrings(sc.set.BrTun), o.DumpFlows(t, tun))
			assert.Equal(t, sortedStrings(sc.set.BrInt), o.DumpFlows(t, in))
		})
	}
}

// TestFormatCasesEqualOVSDump checks the hand-written String() cases,
// including forms brtun does not install, against a real dump.
func TestFormatCasesEqualOVSDump(t *testing.T) {
	o := startOVS(t)
	o.addBridge(t, "br-fmt", 2, 3, 7, 65279)
	var fs []flows.Flow
	var want []string
	for _, c := range formatCases() {
		fs = append(fs, c.flow)
		want = append(want, c.want)
	}
	o.load(t, "br-fmt", fs)
	slices.Sort(want)
	assert.Equal(t, want, o.DumpFlows(t, "br-fmt"))
}

// traceHit is one flow ofproto/trace reports: table, priority and cookie.
type traceHit struct {
	table, priority int
	cookie          uint64
}

var traceLine = regexp.MustCompile(`^\s*(\d+)\. .*priority (\d+)(?:, cookie (0x[0-9a-f]+))?$`)

// trace runs ofproto/trace and returns the flows it went through.
func (o *privateOVS) trace(t *testing.T, bridge, flow string) []traceHit {
	t.Helper()
	out, err := o.Appctl("ofproto/trace", bridge, flow)
	require.NoError(t, err)
	var hits []traceHit
	for _, line := range strings.Split(out, "\n") {
		m := traceLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		h := traceHit{}
		h.table, _ = strconv.Atoi(m[1])
		h.priority, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			h.cookie, _ = strconv.ParseUint(m[3][2:], 16, 64)
		}
		hits = append(hits, h)
	}
	require.NotEmpty(t, hits, "trace of %s:\n%s", flow, out)
	return hits
}

// simHits walks the same packet through the simulator.
func simHits(t *testing.T, set flows.FlowSet, p flowsim.Packet) []traceHit {
	t.Helper()
	res, err := flowsim.New(set.BrTun).Run(p)
	require.NoError(t, err)
	byText := map[string]flows.Flow{}
	for _, f := range set.BrTun {
		byText[f.String()] = f
	}
	var hits []traceHit
	for _, line := range res.Trace {
		f, ok := byText[line]
		require.True(t, ok, "simulator ran a flow not in the set: %s", line)
		hits = append(hits, traceHit{table: int(f.Table), priority: int(f.Priority), cookie: f.Cookie})
	}
	return hits
}

// TestSimulatorAgreesWithOVSTrace walks packets through the simulator and
// through ofproto/trace on a bridge holding the same flows, and checks both
// went through the same flows (table, priority, cookie) in the same order.
func TestSimulatorAgreesWithOVSTrace(t *testing.T) {
	o := startOVS(t)
	for _, mode := range topology.TunnelPortModes() {
		t.Run(mode.String(), func(t *testing.T) { simulatorAgreesWithOVSTrace(t, o, mode) })
	}
}

func simulatorAgreesWithOVSTrace(t *testing.T, o *privateOVS, mode topology.TunnelPortMode) {
	c := remotePorts().withMode(mode)
	set := flows.Compile(c.view("h1"))
	require.NoError(t, flows.Validate(set))
	bridge := "tun-" + mode.String()
	o.addBridge(t, bridge, ofports(set.BrTun)...)
	o.load(t, bridge, set.BrTun)

	m := func(s string) flows.MAC { return mac(t, s) }
	vm1 := m("02:00:00:00:01:01")
	blue := flows.VLANCFI | c.vlan("h1", "blue")
	vxlanH2 := c.tunnelOfport("h1", "h2", topology.VXLAN)
	greH3 := c.tunnelOfport("h1", "h3", topology.GRE)
	packets := map[string]flowsim.Packet{
		"ARP request for a known IP": {InPort: patchInt, VLANTCI: blue, EthSrc: vm1, EthDst: m("ff:ff:ff:ff:ff:ff"),
			EthType: flows.EthTypeARP, ARPOp: 1, ARPSHA: vm1, ARPSPA: flows.IPv4{198, 18, 0, 1}, ARPTPA: flows.IPv4{198, 18, 0, 2}},
		"ARP request for an unknown IP": {InPort: patchInt, VLANTCI: blue, EthSrc: vm1, EthDst: m("ff:ff:ff:ff:ff:ff"),
			EthType: flows.EthTypeARP, ARPOp: 1, ARPSHA: vm1, ARPSPA: flows.IPv4{198, 18, 0, 1}, ARPTPA: flows.IPv4{198, 18, 0, 99}},
		"ND solicitation for a known IP": {InPort: patchInt, VLANTCI: blue, EthSrc: vm1, EthDst: m("33:33:ff:00:00:02"),
			EthType: flows.EthTypeIPv6, IPProto: flows.IPProtoICMPv6, ICMPv6Type: 135,
			IPv6Src: ip6("2001:db8:100::1"), IPv6Dst: ip6("ff02::1:ff00:2"), NDTarget: ip6("2001:db8:100::2")},
		"unicast to a known port":   {InPort: patchInt, VLANTCI: blue, EthSrc: vm1, EthDst: m("02:00:00:00:02:01"), EthType: flows.EthTypeIPv4},
		"unicast to an unknown MAC": {InPort: patchInt, VLANTCI: blue, EthSrc: vm1, EthDst: m("02:00:00:00:09:09"), EthType: flows.EthTypeIPv4},
		"VXLAN frame of blue": {InPort: vxlanH2, TunID: 5001, EthSrc: m("02:00:00:00:02:01"), EthDst: vm1,
			EthType: flows.EthTypeIPv4},
		"GRE frame with blue's number": {InPort: greH3, TunID: 5001, EthSrc: m("02:00:00:00:03:01"), EthDst: vm1,
			EthType: flows.EthTypeIPv4},
		"GRE frame of quiet": {InPort: greH3, TunID: 7, EthSrc: m("02:00:00:00:03:02"), EthDst: vm1, EthType: flows.EthTypeIPv4},
		"unknown port":       {InPort: 99, EthSrc: vm1, EthDst: m("ff:ff:ff:ff:ff:ff"), EthType: flows.EthTypeIPv4},
		"VXLAN frame from an unknown address": {InPort: vxlanH2, TunSrc: flows.IPv4{192, 0, 2, 99}, TunID: 5001,
			EthSrc: m("02:00:00:00:02:01"), EthDst: vm1, EthType: flows.EthTypeIPv4},
	}
	for name, p := range packets {
		if p.InPort == vxlanH2 && p.TunSrc == (flows.IPv4{}) {
			p.TunSrc = c.ip("h2")
		}
		if p.InPort == greH3 {
			p.TunSrc = c.ip("h3")
		}
		packets[name] = p
	}
	o.AddDummyPorts(t, bridge, 99)
	for name, p := range packets {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, o.trace(t, bridge, p.TraceFlow()), simHits(t, set, p))
		})
	}
}
