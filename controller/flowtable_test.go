package controller

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/topology"
)

func tableFlow(vlan uint16, port uint32) flows.Flow {
	return flows.Flow{Table: flows.TableUnicast, Priority: 2, Cookie: 7,
		Match:   flows.Match{VLANTCI: flows.VLANMatch(vlan), EthDst: flows.ExactMAC(flows.MAC{2, 0, 0, 0, 0, 1})},
		Actions: []flows.Action{flows.PopVLAN{}, flows.Output{Port: port}}}
}

func TestFlowTableSharesTheSameFlowAndKeepsAnotherApart(t *testing.T) {
	ft := newFlowTable()
	h1 := []flows.Flow{tableFlow(1, 2), tableFlow(2, 2)}
	h2 := []flows.Flow{tableFlow(1, 2), tableFlow(2, 3)} // the second: the same key, other actions
	s1, s2 := ft.share(h1, keysOf(h1)), ft.share(h2, keysOf(h2))

	assert.Same(t, s1[0], s2[0], "the same flow on two hosts is one value")
	assert.NotSame(t, s1[1], s2[1], "control: a flow with other actions under the same key is not shared")
	assert.Equal(t, h1, plainFlows(s1), "h1's flows as compiled")
	assert.Equal(t, h2, plainFlows(s2), "h2's flows as compiled")
	assert.Equal(t, keysOf(h2), keysOfKeyed(s2), "h2's keys")
	s3 := ft.share(h2[1:], keysOf(h2[1:]))
	assert.Same(t, s1[1], ft.share(h1[1:], keysOf(h1[1:]))[0], "the table keeps the first host's flow of a key")
	assert.NotSame(t, s2[1], s3[0], "and not the other")
	assert.Equal(t, 2, ft.size())
}

func TestFlowTableForgetsAFlowNoHostHolds(t *testing.T) {
	ft := newFlowTable()
	held := []flows.Flow{tableFlow(1, 2)}
	kept := ft.share(held, keysOf(held))
	dropped := []flows.Flow{tableFlow(2, 2), tableFlow(3, 2)}
	ft.share(dropped, keysOf(dropped))
	require.Equal(t, 3, ft.size())

	assert.Eventually(t, func() bool {
		runtime.GC()
		return ft.size() == 1
	}, 10*time.Second, 10*time.Millisecond, "the flows nobody holds leave the table")
	assert.Same(t, kept[0], ft.share(held, keysOf(held))[0], "control: the flow a host holds stays shared")
	runtime.KeepAlive(kept)
}

// TestCompiledFlowsAreSharedBetweenHosts: four hosts in flow tunnel mode
// with a port each in one network compile, through compileFor, flows of
// which each one that two hosts have with the same key and content is one
// value (the remote ports' entries, responders and tun_src dispatch), and
// the ones that differ (each host's flood list) are their own; each host's
// flows are those of its compile.
func TestCompiledFlowsAreSharedBetweenHosts(t *testing.T) {
	snap := topology.Snapshot{Revision: 1, Networks: []topology.Network{{Name: "wide", Type: topology.VXLAN, SegmentID: 5000}}}
	for i := 1; i <= 4; i++ {
		h := fmt.Sprintf("h%d", i)
		snap.Hosts = append(snap.Hosts, topology.Host{Name: h, OVSDB: fmt.Sprintf("tcp:192.0.2.%d:6640", i), TunnelIP: fmt.Sprintf("198.51.100.%d", i)})
		snap.Ports = append(snap.Ports, topology.Port{Network: "wide", Name: "p" + h, Host: h, Interface: "tap-" + h,
			MAC: fmt.Sprintf("02:00:00:00:00:%02x", i), IPs: []string{fmt.Sprintf("198.18.0.%d", i)}, LocalVLAN: 1})
	}
	c, err := New(Options{Store: topology.NewMemoryStore(), TunnelPorts: topology.FlowTunnels})
	require.NoError(t, err)
	d := newDesiredState(snap, topology.FlowTunnels)
	byKey := map[flows.Key][]*keyedFlow{}
	for _, h := range snap.Hosts {
		in := d.inputs(h)
		view := buildView(in, factsOf(in, 0))
		cs, compiled := c.compileFor(nil, view, bridgePrints(d.digest(h), view))
		require.True(t, compiled)
		require.NoError(t, cs.err())
		want := flows.Compile(view)
		for _, b := range bridgeNames {
			require.Equal(t, want.Flows(flowsBridge(b)), plainFlows(cs.bridges[b].flows), "%s's %s flows as compiled", h.Name, b)
			for _, kf := range cs.bridges[b].flows {
				byKey[kf.key] = append(byKey[kf.key], kf)
			}
		}
	}
	shared, apart := 0, 0
	for k, kfs := range byKey {
		for _, kf := range kfs[1:] {
			if kf.flow.SameValues(kfs[0].flow) {
				assert.Same(t, kfs[0], kf, "%s: the same flow on two hosts", k)
				shared++
			} else {
				assert.NotSame(t, kfs[0], kf, "%s", k)
				apart++
			}
		}
	}
	t.Logf("flows shared with another host: %d, the same key with other content: %d", shared, apart)
	assert.Greater(t, shared, 20, "the remote ports' flows are shared")
	assert.GreaterOrEqual(t, apart, 3, "each host's flood list is its own: the other three differ from h1's")
}

// plainFlows returns the flows of kfs, in order.
func plainFlows(kfs []*keyedFlow) []flows.Flow {
	out := make([]flows.Flow, len(kfs))
	for i, kf := range kfs {
		out[i] = kf.flow
	}
	return out
}

// size is the number of entries, collected flows whose cleanup has not run
// yet included.
func (t *flowTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.flows)
}
