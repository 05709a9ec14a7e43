//go:build integration

package ovsdb

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// These tests run brtun's OVSDB client against real ovsdb-server and
// ovs-vswitchd processes of lab hosts (network namespaces, netdev datapath),
// reached over TCP on the management LAN as a deployed controller would.

const labController = "tcp:" + lab.ControllerIP + ":6653"

func dialHost(t *testing.T, h *lab.Host) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Options{Address: h.OVSDB, Logger: zaptest.NewLogger(t), MaxBackoff: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func ctxLab(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func vsctl(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Vsctl(args...)
	require.NoError(t, err)
	return strings.TrimSpace(out)
}

// brtunRecords counts the transactions with brtun's comment in the host's
// database log, as ovsdb-tool show-log prints them.
func brtunRecords(t *testing.T, h *lab.Host, match string) int {
	t.Helper()
	out, err := exec.Command("ovsdb-tool", "show-log", filepath.Join(h.Dir, "conf.db")).CombinedOutput()
	require.NoError(t, err, string(out))
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `"brtun: `) && strings.Contains(line, match) {
			n++
		}
	}
	return n
}

// ports lists the ports of a bridge, sorted, including its internal port.
func ports(t *testing.T, h *lab.Host, bridge string) []string {
	t.Helper()
	names := strings.Fields(vsctl(t, h, "list-ports", bridge))
	names = append(names, bridge)
	sort.Strings(names)
	return names
}

func hostSpec(h *lab.Host) HostSpec {
	return HostSpec{Name: h.Name, DatapathType: h.DatapathType, ControllerTargets: []string{labController}}
}

func TestIntegrationEnsureHost(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	c := dialHost(t, h)

	require.NoError(t, c.EnsureHost(ctxLab(t), hostSpec(h)))
	assert.Equal(t, 1, brtunRecords(t, h, "ensure host h1"), "one transaction")
	assert.Equal(t, []string{"br-int", "br-phy", "br-tun"}, strings.Fields(vsctl(t, h, "list-br")))
	for _, br := range []struct{ name, patch, peer string }{{BridgeInt, PatchTun, PatchInt}, {BridgeTun, PatchInt, PatchTun}} {
		assert.Equal(t, []string{br.name, br.patch}, ports(t, h, br.name))
		assert.Equal(t, "secure", vsctl(t, h, "get-fail-mode", br.name))
		assert.Equal(t, "netdev", vsctl(t, h, "get", "bridge", br.name, "datapath_type"))
		assert.Equal(t, "[OpenFlow10, OpenFlow13]", vsctl(t, h, "get", "bridge", br.name, "protocols"))
		dpid := FormatDatapathID(DatapathID(h.Name, br.name))
		assert.Equal(t, fmt.Sprintf(`{datapath-id="%s", disable-in-band="true"}`, dpid),
			vsctl(t, h, "get", "bridge", br.name, "other_config"))
		assert.Equal(t, `"`+dpid+`"`, vsctl(t, h, "get", "bridge", br.name, "datapath_id"), "ovs-vswitchd uses it")
		assert.Equal(t, labController, vsctl(t, h, "get-controller", br.name))
		assert.Equal(t, "out-of-band", vsctl(t, h, "get", "controller", br.name, "connection_mode"))
		assert.Equal(t, strconv.Itoa(ControllerMaxBackoffMs), vsctl(t, h, "get", "controller", br.name, "max_backoff"))
		assert.Equal(t, strconv.Itoa(ControllerInactivityProbeMs), vsctl(t, h, "get", "controller", br.name, "inactivity_probe"))
		assert.Equal(t, "patch", vsctl(t, h, "get", "interface", br.patch, "type"))
		assert.Equal(t, `{peer=`+br.peer+`}`, vsctl(t, h, "get", "interface", br.patch, "options"))
		assert.Equal(t, "internal", vsctl(t, h, "get", "interface", br.name, "type"))
		for _, row := range []string{"bridge " + br.name, "port " + br.name, "port " + br.patch, "interface " + br.patch} {
			f := strings.Fields(row)
			assert.Equal(t, "brtun", vsctl(t, h, "get", f[0], f[1], "external_ids:brtun-owner"), row)
		}
		// The switch itself reports the datapath id brtun chose.
		out, err := h.Ofctl("show", br.name)
		require.NoError(t, err)
		assert.Contains(t, out, "dpid:"+dpid)

		f := c.Facts()
		assert.Equal(t, DatapathID(h.Name, br.name), f.Bridges[br.name].DatapathID)
		assert.Equal(t, vsctl(t, h, "get", "interface", br.patch, "ofport"), strconv.Itoa(f.Bridges[br.name].PatchOFPort))
	}
	assert.Len(t, strings.Fields(vsctl(t, h, "--bare", "--columns=_uuid", "list", "controller")), 2)

	// A second call, and one from a restarted brtun, change nothing.
	nextCfg := vsctl(t, h, "get", "open_vswitch", ".", "next_cfg")
	require.NoError(t, c.EnsureHost(ctxLab(t), hostSpec(h)))
	require.NoError(t, dialHost(t, h).EnsureHost(ctxLab(t), hostSpec(h)))
	assert.Equal(t, 1, brtunRecords(t, h, ""), "no further brtun transaction")
	assert.Equal(t, nextCfg, vsctl(t, h, "get", "open_vswitch", ".", "next_cfg"))
}

// meshSpec is the tunnel mesh of h towards peers, VXLAN and GRE to each.
func meshSpec(h *lab.Host, peers []*lab.Host) TunnelSpec {
	s := TunnelSpec{LocalIP: h.TunnelIP}
	for _, p := range peers {
		if p != h {
			s.Peers = append(s.Peers, Peer{Name: p.Name, IP: p.TunnelIP, Types: []topology.NetworkType{topology.VXLAN, topology.GRE}})
		}
	}
	return s
}

func tunnelNamesTo(h *lab.Host, peers []*lab.Host) []string {
	var names []string
	for _, p := range peers {
		if p != h {
			var a, b, c, d int
			_, _ = fmt.Sscanf(p.TunnelIP, "%d.%d.%d.%d", &a, &b, &c, &d)
			hex := fmt.Sprintf("%02x%02x%02x%02x", a, b, c, d)
			names = append(names, "vxlan-"+hex, "gre-"+hex)
		}
	}
	return names
}

func TestIntegrationTunnelMesh(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 3})
	clients := map[*lab.Host]*Client{}
	for _, h := range l.Hosts {
		clients[h] = dialHost(t, h)
		require.NoError(t, clients[h].EnsureHost(ctxLab(t), hostSpec(h)))
	}
	h1 := l.Hosts[0]
	// An operator's port on h1's br-tun, which brtun does not own.
	vsctl(t, h1, "add-port", "br-tun", "manual0", "--", "set", "interface", "manual0", "type=vxlan",
		"options:remote_ip=192.0.2.99", "options:key=7")

	check := func(members []*lab.Host) {
		t.Helper()
		for _, h := range l.Hosts {
			want := []string{BridgeTun, PatchInt}
			isMember := false
			for _, m := range members {
				isMember = isMember || m == h
			}
			if isMember {
				want = append(want, tunnelNamesTo(h, members)...)
			}
			if h == h1 {
				want = append(want, "manual0")
			}
			sort.Strings(want)
			assert.Equal(t, want, ports(t, h, BridgeTun), h.Name)

			f := clients[h].Facts()
			assert.Len(t, f.Tunnels, len(want)-2-map[bool]int{true: 1}[h == h1], h.Name)
			for _, tp := range f.Tunnels {
				assert.Equal(t, vsctl(t, h, "get", "interface", tp.Name, "ofport"), strconv.Itoa(tp.OFPort), tp.Name)
				assert.Equal(t, string(tp.Type), vsctl(t, h, "get", "interface", tp.Name, "type"))
			}
		}
		assert.Equal(t, `{key="7", remote_ip="192.0.2.99"}`, vsctl(t, h1, "get", "interface", "manual0", "options"))
	}

	for _, h := range l.Hosts {
		require.NoError(t, clients[h].EnsureTunnels(ctxLab(t), meshSpec(h, l.Hosts)))
		assert.Equal(t, 1, brtunRecords(t, h, "ensure tunnels"), h.Name)
	}
	check(l.Hosts)
	i := "vxlan-c0000202"
	assert.Equal(t, `{df_default="true", in_key=flow, local_ip="192.0.2.1", out_key=flow, remote_ip="192.0.2.2"}`,
		vsctl(t, h1, "get", "interface", i, "options"))
	assert.Equal(t, "h2", vsctl(t, h1, "get", "port", i, "external_ids:brtun-peer"))

	// Applying the same mesh again sends nothing.
	for _, h := range l.Hosts {
		require.NoError(t, clients[h].EnsureTunnels(ctxLab(t), meshSpec(h, l.Hosts)))
		assert.Equal(t, 1, brtunRecords(t, h, "ensure tunnels"), h.Name)
	}

	// h3 leaves: every host drops exactly its ports to h3.
	members := l.Hosts[:2]
	for _, h := range l.Hosts {
		spec := meshSpec(h, members)
		if h == l.Hosts[2] {
			spec = TunnelSpec{LocalIP: h.TunnelIP}
		}
		require.NoError(t, clients[h].EnsureTunnels(ctxLab(t), spec))
	}
	check(members)

	// A port deleted by hand is noticed, and the next Ensure restores it.
	vsctl(t, h1, "del-port", "br-tun", "gre-c0000202")
	waitFacts(t, clients[h1], func(f Facts) bool { return len(f.Tunnels) == 1 })
	require.NoError(t, clients[h1].EnsureTunnels(ctxLab(t), meshSpec(h1, members)))
	f := waitFacts(t, clients[h1], func(f Facts) bool { return len(f.Tunnels) == 2 })
	assert.Equal(t, "gre-c0000202", f.Tunnels[0].Name)
	assert.Positive(t, f.Tunnels[0].OFPort)
	check(members)

	// A non-default VXLAN port is written as dst_port, in place.
	spec := meshSpec(h1, members)
	spec.UDPPorts = map[topology.NetworkType]uint16{topology.VXLAN: 4790}
	require.NoError(t, clients[h1].EnsureTunnels(ctxLab(t), spec))
	assert.Equal(t, `"4790"`, vsctl(t, h1, "get", "interface", i, "options:dst_port"))
	_, err := h1.Vsctl("get", "interface", "gre-c0000202", "options:dst_port")
	assert.Error(t, err, "GRE gets no dst_port")
}

func TestIntegration200Peers(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	c1, c2 := dialHost(t, h1), dialHost(t, h2)
	require.NoError(t, c1.EnsureHost(ctxLab(t), hostSpec(h1)))
	require.NoError(t, c2.EnsureHost(ctxLab(t), hostSpec(h2)))

	// 200 peers that need not exist: 192.0.2.11 .. 192.0.2.210.
	spec := TunnelSpec{LocalIP: h1.TunnelIP}
	for i := 11; i <= 210; i++ {
		spec.Peers = append(spec.Peers, Peer{Name: fmt.Sprintf("p%d", i), IP: fmt.Sprintf("192.0.2.%d", i),
			Types: []topology.NetworkType{topology.VXLAN}})
	}
	start := time.Now()
	require.NoError(t, c1.EnsureTunnels(ctxLab(t), spec))
	brtunTook := time.Since(start)
	assert.Equal(t, 1, brtunRecords(t, h1, "ensure tunnels (200 ports)"), "one transaction in ovsdb-server's log")
	f := c1.Facts()
	require.Len(t, f.Tunnels, 200)
	for _, tp := range f.Tunnels {
		require.Positive(t, tp.OFPort, tp.Name)
	}

	// The same 200 ports on h2 with one ovs-vsctl transaction (which also
	// waits for ovs-vswitchd).
	args := []string{}
	for _, p := range spec.Peers {
		name := TunnelPortName(topology.VXLAN, netip.MustParseAddr(p.IP))
		args = append(args, "--", "add-port", "br-tun", name, "--", "set", "interface", name, "type=vxlan",
			"options:remote_ip="+p.IP, "options:local_ip="+h2.TunnelIP, "options:in_key=flow",
			"options:out_key=flow", "options:df_default=true")
	}
	start = time.Now()
	vsctl(t, h2, args[1:]...)
	vsctlTook := time.Since(start)
	assert.Len(t, strings.Fields(vsctl(t, h2, "list-ports", "br-tun")), 201)
	t.Logf("200 tunnel ports in one transaction: brtun %v, ovs-vsctl %v (ratio %.2f)",
		brtunTook.Round(time.Millisecond), vsctlTook.Round(time.Millisecond), brtunTook.Seconds()/vsctlTook.Seconds())

	// Shrinking to 100 peers is again one transaction.
	spec.Peers = spec.Peers[:100]
	require.NoError(t, c1.EnsureTunnels(ctxLab(t), spec))
	assert.Equal(t, 1, brtunRecords(t, h1, "ensure tunnels (100 ports)"))
	assert.Len(t, strings.Fields(vsctl(t, h1, "list-ports", "br-tun")), 101)
}

func TestIntegrationOVSDBRestart(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 2})
	h1 := l.Hosts[0]
	c := dialHost(t, h1)
	require.NoError(t, c.EnsureHost(ctxLab(t), hostSpec(h1)))
	require.NoError(t, c.EnsureTunnels(ctxLab(t), meshSpec(h1, l.Hosts)))

	h1.StopOVSDB(t)
	waitFacts(t, c, func(f Facts) bool { return !f.Connected })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := c.EnsureHost(ctx, hostSpec(h1))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	h1.StartOVSDB(t)
	waitFacts(t, c, func(f Facts) bool { return f.Connected })
	// The next Ensure converges without duplicating anything.
	require.NoError(t, c.EnsureHost(ctxLab(t), hostSpec(h1)))
	require.NoError(t, c.EnsureTunnels(ctxLab(t), meshSpec(h1, l.Hosts)))
	assert.Equal(t, []string{"br-int", "br-phy", "br-tun"}, strings.Fields(vsctl(t, h1, "list-br")))
	assert.Equal(t, []string{BridgeTun, "gre-c0000202", PatchInt, "vxlan-c0000202"}, ports(t, h1, BridgeTun))
	assert.Equal(t, []string{BridgeInt, PatchTun}, ports(t, h1, BridgeInt))
	// br-phy's eth1 and internal port, br-int's 2 and br-tun's 4: no duplicates.
	assert.Len(t, strings.Fields(vsctl(t, h1, "--bare", "--columns=_uuid", "list", "controller")), 2)
	assert.Len(t, strings.Fields(vsctl(t, h1, "--bare", "--columns=name", "list", "interface")), 8)
	assert.Equal(t, 2, brtunRecords(t, h1, ""), "nothing was missing after the restart")

	// The tunnels still carry the facts of the running switch.
	f := c.Facts()
	require.Len(t, f.Tunnels, 2)
	for _, tp := range f.Tunnels {
		assert.Positive(t, tp.OFPort)
	}
}

func waitFacts(t *testing.T, c *Client, cond func(Facts) bool) Facts {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		f := c.Facts()
		if cond(f) {
			return f
		}
		select {
		case <-c.Changes():
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatalf("facts never matched; last: %+v", f)
		}
	}
}

// TestIntegrationBindingsCarryTraffic binds VM interfaces on two hosts, one
// marked by an operator and one unknown to OVSDB, installs a minimal
// forwarding pipeline with the ofports from Facts, and pings across the
// VXLAN tunnel brtun created.
func TestIntegrationBindingsCarryTraffic(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	a1 := l.AddVM(t, h1, lab.VMOptions{Name: "a1", MAC: "02:00:00:00:01:01", CIDR: "198.18.0.1/24"})
	a2 := l.AddVM(t, h2, lab.VMOptions{Name: "a2", MAC: "02:00:00:00:01:02", CIDR: "198.18.0.2/24"})
	c1, c2 := dialHost(t, h1), dialHost(t, h2)
	for h, c := range map[*lab.Host]*Client{h1: c1, h2: c2} {
		require.NoError(t, c.EnsureHost(ctxLab(t), hostSpec(h)))
		spec := meshSpec(h, l.Hosts)
		spec.Peers[0].Types = []topology.NetworkType{topology.VXLAN}
		require.NoError(t, c.EnsureTunnels(ctxLab(t), spec))
	}

	// h1: the operator attaches the VM and marks it for brtun.
	vsctl(t, h1, "add-port", "br-int", a1.HostIface, "--", "set", "interface", a1.HostIface,
		"external_ids:brtun-network=blue", "external_ids:attached-mac="+a1.MAC)
	m := waitFacts(t, c1, func(f Facts) bool { return len(f.Marked) == 1 && f.Marked[0].OFPort > 0 })
	assert.Equal(t, MarkedInterface{Interface: a1.HostIface, Network: "blue", Port: a1.HostIface, MAC: a1.MAC,
		MACAttached: true, Bridge: BridgeInt, OFPort: m.Marked[0].OFPort}, m.Marked[0])
	require.NoError(t, c1.BindPort(ctxLab(t), Binding{Interface: a1.HostIface, Port: m.Marked[0].Port, Network: "blue", VLAN: 5}))
	// h2: brtun attaches the VM itself.
	require.NoError(t, c2.BindPort(ctxLab(t), Binding{Interface: a2.HostIface, Port: "a2", Network: "blue", VLAN: 9}))
	assert.Equal(t, "5", vsctl(t, h1, "get", "port", a1.HostIface, "tag"))
	assert.Equal(t, "9", vsctl(t, h2, "get", "port", a2.HostIface, "tag"))
	assert.Equal(t, "br-int", vsctl(t, h2, "port-to-br", a2.HostIface))

	for h, vlan := range map[*lab.Host]int{h1: 5, h2: 9} {
		c := map[*lab.Host]*Client{h1: c1, h2: c2}[h]
		f := c.Facts()
		require.Len(t, f.Bindings, 1)
		require.Len(t, f.Tunnels, 1)
		b := f.Bindings[0]
		assert.Equal(t, vlan, b.VLAN)
		assert.Equal(t, "blue", b.Network)
		assert.Equal(t, vsctl(t, h, "get", "interface", b.Interface, "ofport"), strconv.Itoa(b.OFPort))
		installMinimalPipeline(t, h, vlan, f.Bridges[BridgeTun].PatchOFPort, f.Tunnels[0].OFPort)
	}
	ok, out := a1.Ping(a2.IP, 5)
	require.True(t, ok, "a1 -> a2 through brtun's bridges, patch ports and VXLAN tunnel: %s", out)

	// brtun restarted: the bindings are read back from OVSDB.
	c1.Close()
	f := dialHost(t, h1).Facts()
	require.Len(t, f.Bindings, 1)
	assert.Equal(t, Binding{Interface: a1.HostIface, Port: a1.HostIface, Network: "blue", VLAN: 5},
		Binding{Interface: f.Bindings[0].Interface, Port: f.Bindings[0].Port, Network: f.Bindings[0].Network, VLAN: f.Bindings[0].VLAN})
	assert.Equal(t, a1.MAC, f.Bindings[0].MAC)

	// Unbinding: brtun's own port goes, the operator's port stays, dead-tagged.
	require.NoError(t, c2.UnbindPort(ctxLab(t), a2.HostIface))
	_, err := h2.Vsctl("port-to-br", a2.HostIface)
	assert.Error(t, err, "removed from br-int")
	c1b := dialHost(t, h1)
	require.NoError(t, c1b.UnbindPort(ctxLab(t), a1.HostIface))
	assert.Equal(t, strconv.Itoa(DeadVLAN), vsctl(t, h1, "get", "port", a1.HostIface, "tag"))
	assert.Equal(t, "{}", vsctl(t, h1, "get", "port", a1.HostIface, "other_config"))
	assert.Empty(t, c1b.Facts().Bindings)
	ok, out = a1.Ping(a2.IP, 2)
	assert.False(t, ok, "no path once unbound: %s", out)
}

// installMinimalPipeline forwards one VLAN over one tunnel (tun_id 0x64):
// NORMAL on br-int, and on br-tun patch-int <-> tunnel with the VLAN
// translated to and from the tunnel id.
func installMinimalPipeline(t *testing.T, h *lab.Host, vlan, patch, tunnel int) {
	t.Helper()
	require.Positive(t, patch)
	require.Positive(t, tunnel)
	lines := []string{
		fmt.Sprintf("table=0,priority=1,in_port=%d,dl_vlan=%d,actions=strip_vlan,set_tunnel:0x64,output:%d", patch, vlan, tunnel),
		fmt.Sprintf("table=0,priority=1,in_port=%d,tun_id=0x64,actions=mod_vlan_vid:%d,output:%d", tunnel, vlan, patch),
	}
	h.LoadFlows(t, "add-flows", "br-tun", lines)
	out, err := h.Ofctl("add-flow", "br-int", "table=0,priority=0,actions=NORMAL")
	require.NoError(t, err, out)
}
