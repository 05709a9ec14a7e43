//go:build integration

package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// hostView is the part of GET /v1/hosts/{name} these tests read.
type hostView struct {
	Name   string `json:"name"`
	Status struct {
		OVSDB   string `json:"ovsdb"`
		Bridges map[string]struct {
			DatapathID      string `json:"datapath_id"`
			OpenFlow        string `json:"openflow"`
			AppliedRevision uint64 `json:"applied_revision"`
		} `json:"bridges"`
	} `json:"status"`
}

// portView is the part of a port these tests read.
type portView struct {
	Name                string                 `json:"name"`
	MAC                 string                 `json:"mac"`
	IPs                 []string               `json:"ips"`
	PortSecurityEnabled bool                   `json:"port_security_enabled"`
	AllowedAddressPairs []topology.AddressPair `json:"allowed_address_pairs"`
	LocalVLAN           uint16                 `json:"local_vlan"`
	Status              string                 `json:"status"`
}

// tenantVM is a VM bound to a network through the API.
type tenantVM struct {
	*lab.VM
	Network string
	Port    portView
}

// scenario is a lab with brtun managing every host.
type scenario struct {
	t     *testing.T
	lab   *lab.Lab
	brtun *daemon
}

func newScenario(t *testing.T, hosts int, o daemonOptions) *scenario {
	return newScenarioOn(t, lab.New(t, lab.Options{Hosts: hosts}), o)
}

// newScenarioOn starts brtun next to lab l and registers every host at its
// h.OVSDB address.
func newScenarioOn(t *testing.T, l *lab.Lab, o daemonOptions) *scenario {
	s := &scenario{t: t, lab: l, brtun: startBrtun(t, l, o)}
	for _, h := range l.Hosts {
		s.brtun.MustDo(201, "POST", "/v1/hosts", map[string]any{
			"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType,
		}, nil)
	}
	return s
}

func (s *scenario) network(name string, typ topology.NetworkType, segment uint32) {
	s.brtun.MustDo(201, "POST", "/v1/networks", map[string]any{"name": name, "type": typ, "segment_id": segment}, nil)
}

// vm creates a VM on host h and binds it to network through the API.
func (s *scenario) vm(h *lab.Host, name, network, mac, cidr string) *tenantVM {
	return s.bindVM(s.lab.AddVM(s.t, h, lab.VMOptions{Name: name, MAC: mac, CIDR: cidr}), network)
}

// bindVM creates the brtun port of vm (named after it) on network.
func (s *scenario) bindVM(vm *lab.VM, network string) *tenantVM {
	tv := &tenantVM{VM: vm, Network: network}
	s.brtun.MustDo(201, "POST", "/v1/networks/"+network+"/ports", map[string]any{
		"name": vm.Name, "host": vm.Host.Name, "interface": vm.HostIface, "mac": vm.MAC, "ips": []string{vm.IP},
	}, &tv.Port)
	return tv
}

// pointBridges runs `ovs-vsctl set-controller` for both bridges of every host.
func (s *scenario) pointBridges() {
	target := s.brtun.Target(s.lab)
	for _, h := range s.lab.Hosts {
		_, err := h.Vsctl("set-controller", "br-tun", target, "--", "set-controller", "br-int", target)
		require.NoError(s.t, err)
	}
}

// waitApplied waits until every bridge of the given hosts (default: every
// host) is connected and has applied the store's current revision.
func (s *scenario) waitApplied(timeout time.Duration, hosts ...*lab.Host) {
	s.t.Helper()
	if len(hosts) == 0 {
		hosts = s.lab.Hosts
	}
	var last string
	ok := waitUntil(timeout, func() bool {
		for _, h := range hosts {
			var hv hostView
			if s.brtun.Do("GET", "/v1/hosts/"+h.Name, nil, &hv) != 200 {
				return false
			}
			for _, b := range []string{"br-int", "br-tun"} {
				st := hv.Status.Bridges[b]
				last = fmt.Sprintf("%s/%s: ovsdb=%s openflow=%s applied=%d", h.Name, b, hv.Status.OVSDB, st.OpenFlow, st.AppliedRevision)
				if hv.Status.OVSDB != "connected" || st.OpenFlow != "connected" || st.AppliedRevision < s.brtun.Revision {
					return false
				}
			}
		}
		return true
	})
	require.True(s.t, ok, "bridges did not apply the desired state in %s; last: %s", timeout, last)
}

// settleDatapaths waits until every given host's (default: every host's)
// ovs-vswitchd has revalidated its datapath flows. A bundle's commit reply
// means the switch's OpenFlow tables hold the new flows; the datapath flow
// cache catches up in its next revalidation round, a few milliseconds later
// on a quiet machine, a few hundred on a loaded one. A packet sent in
// between can still take a flow the change removed, so a check that traffic
// stopped after a change settles the datapaths first.
func (s *scenario) settleDatapaths(hosts ...*lab.Host) {
	s.t.Helper()
	if len(hosts) == 0 {
		hosts = s.lab.Hosts
	}
	for _, h := range hosts {
		// revalidator/wait returns when the round under way ends, and that
		// round may have started before the change: the second wait
		// covers a whole round begun after it.
		for range 2 {
			out, err := h.Appctl("revalidator/wait")
			require.NoError(s.t, err, "%s: revalidator/wait: %s", h.Name, out)
		}
	}
}

// waitUntil checks cond every 100 ms until it holds or d has passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	return testbed.Poll(d, 100*time.Millisecond, cond)
}

// dumpFlows returns a bridge's canonical dump, one flow a line, sorted,
// without learned flows.
func dumpFlows(t *testing.T, h *lab.Host, bridge string) []string {
	t.Helper()
	out, err := h.Ofctl("dump-flows", bridge, "--no-stats", "--no-names")
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") || strings.HasPrefix(line, "NXST_FLOW") {
			continue
		}
		if c := cookieOf(line); flows.IsLearned(c) {
			continue
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return lines
}

// cookieOf reads the cookie of a dump line (0 when it has none).
func cookieOf(line string) uint64 {
	var c uint64
	if strings.HasPrefix(line, "cookie=0x") {
		_, _ = fmt.Sscanf(line, "cookie=0x%x", &c)
	}
	return c
}

// expectedFlows compiles the flows of one host with flows.Compile from facts
// this test reads itself: ofports from OVSDB, local VLANs from the API.
func expectedFlows(t *testing.T, l *lab.Lab, h *lab.Host, nets []topology.Network, vms []*tenantVM) (brTun, brInt []string) {
	t.Helper()
	v := flows.View{Host: h.Name, PatchIntOfport: uint32(h.Ofport(t, "patch-int")), PatchTunOfport: uint32(h.Ofport(t, "patch-tun"))}
	for _, vm := range vms {
		if vm.Host == h {
			v.LocalPorts = append(v.LocalPorts, flows.LocalPort{
				Network: vm.Network, Name: vm.Name, Ofport: uint32(h.Ofport(t, vm.HostIface)), LocalVLAN: vm.Port.LocalVLAN,
				MAC: vm.Port.MAC, IPs: vm.Port.IPs, PortSecurity: vm.Port.PortSecurityEnabled, AllowedAddressPairs: vm.Port.AllowedAddressPairs,
			})
		}
	}
	types := map[topology.NetworkType]bool{}
	for _, n := range nets {
		types[n.Type] = true
	}
	for _, peer := range l.Hosts {
		if peer == h {
			continue
		}
		for typ := range types {
			name := fmt.Sprintf("%s-%s", typ, ipHex(peer.TunnelIP))
			v.Tunnels = append(v.Tunnels, flows.TunnelPort{Ofport: uint32(h.Ofport(t, name)), PeerHost: peer.Name, RemoteIP: peer.TunnelIP, Type: typ})
		}
	}
	for _, n := range nets {
		nv := flows.NetworkView{Name: n.Name, Type: n.Type, SegmentID: n.SegmentID, MACLearning: true}
		peers := map[string]bool{}
		for _, vm := range vms {
			if vm.Network != n.Name {
				continue
			}
			if vm.Host == h {
				nv.LocalVLAN = vm.Port.LocalVLAN
			} else {
				peers[vm.Host.Name] = true
			}
		}
		if nv.LocalVLAN == 0 {
			continue
		}
		for p := range peers {
			nv.Peers = append(nv.Peers, p)
		}
		sort.Strings(nv.Peers)
		v.Networks = append(v.Networks, nv)
		for _, vm := range vms {
			if vm.Network == n.Name && vm.Host != h {
				v.RemotePorts = append(v.RemotePorts, flows.RemotePort{Network: n.Name, Name: vm.Name, Host: vm.Host.Name, MAC: vm.Port.MAC, IPs: vm.Port.IPs})
			}
		}
	}
	set := flows.Compile(v)
	require.NoError(t, flows.Validate(set))
	brTun, brInt = flows.Strings(set.BrTun), flows.Strings(set.BrInt)
	sort.Strings(brTun)
	sort.Strings(brInt)
	return brTun, brInt
}

// TestSwitchGetsCompiledPipeline: bridges pointed at brtun with ovs-vsctl
// set-controller get exactly the pipeline flows.Compile makes for the
// host's live ofports, and tenant traffic crosses the tunnel.
func TestSwitchGetsCompiledPipeline(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	s.pointBridges()
	s.waitApplied(20 * time.Second)

	nets := []topology.Network{{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, MACLearning: true}}
	for _, h := range s.lab.Hosts {
		wantTun, wantInt := expectedFlows(t, s.lab, h, nets, []*tenantVM{a1, a2})
		require.Equal(t, wantTun, dumpFlows(t, h, "br-tun"), "%s br-tun", h.Name)
		require.Equal(t, wantInt, dumpFlows(t, h, "br-int"), "%s br-int", h.Name)
	}
	ok, out := a1.Ping(a2.IP, 5)
	require.True(t, ok, "a1 -> a2 over brtun's VXLAN pipeline: %s", out)
}
