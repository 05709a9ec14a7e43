package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// With --tunnel-ports flow the mode reaches the OVSDB spec and the view as
// data: one port per type in use, and every peer of the mesh reached
// through its type's port, addressed by its tunnel IP.
func TestFlowTunnelPortsInputsAndView(t *testing.T) {
	snap := testSnapshot()
	h1, ok := snap.Host("h1")
	require.True(t, ok)
	in := newDesiredState(snap, topology.FlowTunnels).inputs(h1)

	vxlan := []topology.NetworkType{topology.VXLAN}
	spec := in.tunnels()
	assert.Equal(t, topology.FlowTunnels, spec.Ports)
	assert.Equal(t, vxlan, spec.Types)
	assert.Equal(t, topology.FlowTunnels, in.view.TunnelPorts)

	facts := ovsdb.Facts{
		Bridges: map[string]ovsdb.BridgeFacts{BrTun: {Name: BrTun, PatchOFPort: 1}},
		Tunnels: []ovsdb.TunnelPort{
			{Name: "vxlan-flow", Type: topology.VXLAN, Flow: true, OFPort: 5},
			// A per-peer leftover of the other mode is not used.
			{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2},
		},
	}
	v := buildView(in, facts)
	assert.Equal(t, []flows.TunnelPort{
		{Ofport: 5, PeerHost: "h2", RemoteIP: "198.51.100.2", Type: topology.VXLAN},
		{Ofport: 5, PeerHost: "h3", RemoteIP: "198.51.100.3", Type: topology.VXLAN},
	}, v.Tunnels)
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	dump := strings.Join(flows.Strings(set.BrTun), "\n")
	assert.Contains(t, dump, "tun_src=198.51.100.2,in_port=5")
	assert.Contains(t, dump, "tun_src=198.51.100.3,in_port=5")
	assert.NotContains(t, dump, "in_port=2 ", "the per-peer leftover is no way in")

	// Positive control: per-peer, the same facts give the per-peer port
	// and not the flow port.
	perPeer := newDesiredState(snap, topology.PerPeerTunnels).inputs(h1)
	assert.Equal(t, []flows.TunnelPort{{Ofport: 2, PeerHost: "h2", RemoteIP: "198.51.100.2", Type: topology.VXLAN}},
		buildView(perPeer, facts).Tunnels)
	assert.NotEqual(t, newDesiredState(snap, topology.PerPeerTunnels).digest(h1), newDesiredState(snap, topology.FlowTunnels).digest(h1), "the mode is an input of the digest")
}

// A restart with the other --tunnel-ports swaps a host's tunnel ports only
// once its br-tun switch is connected, so the flows follow at once.
func TestTunnelSwapWaitsForTheSwitch(t *testing.T) {
	c, err := New(Options{Store: topology.NewMemoryStore(), TunnelPorts: topology.FlowTunnels})
	require.NoError(t, err)
	snap := testSnapshot()
	h1, ok := snap.Host("h1")
	require.True(t, ok)
	in := newDesiredState(snap, topology.FlowTunnels).inputs(h1)
	hs := newHostState("h1")
	perPeer := ovsdb.Facts{Tunnels: []ovsdb.TunnelPort{{Name: "vxlan-c6336402", Type: topology.VXLAN, PeerName: "h2", PeerIP: "198.51.100.2", OFPort: 2}}}
	flowPorts := ovsdb.Facts{Tunnels: []ovsdb.TunnelPort{{Name: "vxlan-flow", Type: topology.VXLAN, Flow: true, OFPort: 3}}}

	assert.True(t, c.tunnelSwapWaits(hs, in, perPeer), "per-peer ports, flow mode, no switch: wait")
	assert.False(t, c.tunnelSwapWaits(hs, in, flowPorts), "the mode's own ports: nothing to wait for")
	assert.False(t, c.tunnelSwapWaits(hs, in, ovsdb.Facts{}), "a new host: nothing to wait for")
	c.mu.Lock()
	c.switches[hs.bridges[BrTun].dpid] = struct{ Switch }{}
	c.mu.Unlock()
	assert.False(t, c.tunnelSwapWaits(hs, in, perPeer), "br-tun's switch connected: swap now")
}

// The race a CI run hit: brtun restarted with the other --tunnel-ports, the
// host's reconcile leaves the tunnel swap for later (br-tun's switch not
// connected yet), and br-tun's switch connects while that reconcile waits
// for ovs-vswitchd. That reconcile must leave br-tun's flows alone, and the
// next one must swap the ports and send the new mode's flows. (Before the
// fix it sent flow-mode flows over the per-peer ports, so br-tun carried
// nothing, and took the next reconcile as clean: the swap waited for the
// drift check.)
func TestTunnelSwapWhenBrTunConnectsMidReconcile(t *testing.T) {
	l := newLab(t, "h1", "h2")
	stop := l.start(Options{TunnelPorts: topology.PerPeerTunnels})
	first := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:00:01")
	l.waitApplied(l.addPort("h2", "b1", "02:00:00:00:00:02"))
	tunnels := func() (perPeer, flow int) {
		var ifaces []vswitchd.Interface
		require.NoError(t, l.ovs["h1"].Raw().List(context.Background(), &ifaces))
		for _, i := range ifaces {
			switch {
			case i.Type != "vxlan":
			case i.Options["remote_ip"] == "flow":
				flow++
			default:
				perPeer++
			}
		}
		return perPeer, flow
	}
	perPeer, flow := tunnels()
	require.Equal(t, [2]int{1, 0}, [2]int{perPeer, flow}, "per-peer mode: h1 has a port towards h2")
	stop()

	// brtun comes back in flow mode; h1's ovs-vswitchd is slow, its br-tun
	// switch not connected yet.
	ovs := l.ovs["h1"]
	ovs.SetVswitchd(false)
	l.start(Options{TunnelPorts: topology.FlowTunnels})
	for _, ref := range []bridgeRef{{"h1", BrInt}, {"h2", BrInt}, {"h2", BrTun}} {
		l.connect(ref.host, ref.bridge, first[ref].flows()...)
	}
	l.settle()
	// A new port on h1 makes its reconcile commit a binding and wait for
	// ovs-vswitchd to apply it ...
	l.addPort("h1", "a2", "02:00:00:00:00:03")
	require.Eventually(t, func() bool {
		var roots []vswitchd.OpenvSwitch
		require.NoError(t, ovs.Raw().List(context.Background(), &roots))
		return len(roots) == 1 && roots[0].NextCfg > roots[0].CurCfg
	}, 5*time.Second, 5*time.Millisecond, "h1's reconcile commits the binding")
	// ... while br-tun's switch connects, holding the per-peer flows.
	brTun := l.connect("h1", BrTun, first[bridgeRef{"h1", BrTun}].flows()...) // registered when connect returns
	ovs.SetVswitchd(true)

	require.Eventually(t, func() bool {
		perPeer, flow := tunnels()
		return perPeer == 0 && flow == 1
	}, 5*time.Second, 10*time.Millisecond, "h1's tunnel ports are swapped without waiting for a drift check")
	require.Eventually(t, func() bool {
		return strings.Contains(strings.Join(flows.Strings(brTun.flows()), "\n"), "tun_src=192.0.2.2,")
	}, 5*time.Second, 10*time.Millisecond, "h1's br-tun takes h2's frames on the flow port")
}

// A reconcile whose tunnel swap waited leaves no synced state, even when
// it programmed the bridges: br-tun's switch may have connected during it,
// and the reconcile its connection asks for must swap the ports rather
// than find the host clean (takeIfClean, ovsdbClean). A restarted brtun
// with the other --tunnel-ports and only br-int connected shows it; once
// br-tun connects the ports are swapped.
func TestWaitedTunnelSwapIsNotSynced(t *testing.T) {
	l := newLab(t, "h1", "h2")
	stop := l.start(Options{TunnelPorts: topology.FlowTunnels})
	l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	stop()
	tunnels := func() []ovsdb.TunnelPort {
		l.ctrl.mu.Lock()
		hs := l.ctrl.hosts["h1"]
		l.ctrl.mu.Unlock()
		if hs == nil {
			return nil
		}
		cl := hs.ovsdb.client()
		if cl == nil {
			return nil
		}
		return cl.Facts().Tunnels
	}

	l.start(Options{})
	integ := l.connect("h1", BrInt)
	require.Eventually(t, func() bool {
		return l.logs.FilterMessageSnippet("swapping them once br-tun's switch is connected").FilterField(zap.String("host", "h1")).Len() > 0 &&
			integ.count("apply") > 0
	}, 10*time.Second, 10*time.Millisecond, "h1's swap waits; br-int is programmed meanwhile")
	l.settle()
	l.ctrl.mu.Lock()
	synced := l.ctrl.hosts["h1"].synced
	l.ctrl.mu.Unlock()
	assert.Nil(t, synced, "a reconcile whose swap waited is not synced")
	require.NotEmpty(t, tunnels())
	assert.True(t, tunnels()[0].Flow, "control: h1 still has the flow-based port")

	l.connect("h1", BrTun)
	require.Eventually(t, func() bool {
		ts := tunnels()
		return len(ts) == 1 && !ts[0].Flow && ts[0].PeerName == "h2"
	}, 10*time.Second, 10*time.Millisecond, "br-tun connected: h1's ports are swapped")
}
