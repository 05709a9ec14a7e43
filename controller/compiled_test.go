package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// factsOf plays a host's OVSDB for inputs in: both patch ports at ofport 1,
// every binding with an ofport that depends only on its interface (plus
// shift, to move them all), and the tunnel ports of the mode.
func factsOf(in hostInputs, shift int) ovsdb.Facts {
	f := ovsdb.Facts{Connected: true, Bridges: map[string]ovsdb.BridgeFacts{
		BrInt: {Name: BrInt, PatchOFPort: 1}, BrTun: {Name: BrTun, PatchOFPort: 1}}}
	for _, b := range in.bindings {
		f.Bindings = append(f.Bindings, ovsdb.BoundPort{Interface: b.Interface, Port: b.Port, Network: b.Network, VLAN: b.VLAN,
			OFPort: 100 + int(flows.NameID(b.Interface)%1000) + shift})
	}
	spec := in.tunnels()
	if spec.Ports.Flow() {
		for i, typ := range spec.Types {
			f.Tunnels = append(f.Tunnels, ovsdb.TunnelPort{Name: topology.FlowTunnelPortName(typ), Type: typ, Flow: true, OFPort: 2 + i})
		}
		return f
	}
	for _, p := range spec.Peers {
		for _, typ := range p.Types {
			f.Tunnels = append(f.Tunnels, ovsdb.TunnelPort{Name: string(typ) + "-" + p.Name, Type: typ, PeerName: p.Name, PeerIP: p.IP,
				OFPort: 2000 + int(flows.NameID(p.Name+string(typ))%1000)})
		}
	}
	return f
}

// TestCompiledSetReuseGivesWhatACompileGives: for every host, a dozen
// changes of the desired state and of the host's OVSDB, in both tunnel-port
// modes, with the real compiler and with one whose br-tun fails validation
// on h1, the flows, keys and validation a reconcile gets from compileFor,
// given the set of the revision before, are exactly those of a compile
// and validation from scratch; and the set is reused as a whole, br-tun
// reused alone, and compiled anew, each for some change (the positive
// controls of the reuse).
func TestCompiledSetReuseGivesWhatACompileGives(t *testing.T) {
	type change struct {
		snap  func(s *topology.Snapshot)
		shift int // the host's ofports move
	}
	changes := map[string]change{
		"nothing":                 {},
		"remote port's MAC":       {snap: func(s *topology.Snapshot) { s.Ports[1].MAC = "02:00:00:00:01:22" }},
		"remote port's interface": {snap: func(s *topology.Snapshot) { s.Ports[1].Interface = "tap-x" }},
		"local port's IP":         {snap: func(s *topology.Snapshot) { s.Ports[0].IPs = []string{"198.18.0.9"} }},
		"port down":               {snap: func(s *topology.Snapshot) { s.Ports[5].AdminStateUp = topology.Bool(false) }},
		"port security on a1": {snap: func(s *topology.Snapshot) {
			s.Ports[0].PortSecurityEnabled = true
			s.Ports[0].AllowedAddressPairs = []topology.AddressPair{{IPAddress: "198.18.0.77"}}
		}},
		"new port on green, h1 only": {snap: func(s *topology.Snapshot) {
			s.Ports = slices.Insert(s.Ports, 5, topology.Port{Network: "green", Name: "g2", Host: "h1", Interface: "tap-g2", MAC: "02:00:00:00:02:02", LocalVLAN: 2})
		}},
		"new port on red, h3": {snap: func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r4", Host: "h3", Interface: "tap-r4", MAC: "02:00:00:00:03:04", LocalVLAN: 1})
		}},
		"h1 joins red": {snap: func(s *topology.Snapshot) {
			s.Ports = append(s.Ports, topology.Port{Network: "red", Name: "r1", Host: "h1", Interface: "tap-r1", MAC: "02:00:00:00:03:01", LocalVLAN: 3})
		}},
		"red's last port on h2 deleted": {snap: func(s *topology.Snapshot) { s.Ports = slices.Delete(s.Ports, 5, 6) }},
		"blue's MAC learning off":       {snap: func(s *topology.Snapshot) { s.Networks[0].MACLearning = false }},
		"red's segment":                 {snap: func(s *topology.Snapshot) { s.Networks[2].SegmentID = 7003 }},
		"a DHCP subnet on blue": {snap: func(s *topology.Snapshot) {
			s.Subnets = append(s.Subnets, topology.Subnet{Network: "blue", Name: "s", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.254", EnableDHCP: true})
		}},
		"a remote VTEP on red": {snap: func(s *topology.Snapshot) {
			s.RemoteVTEPs = append(s.RemoteVTEPs, topology.RemoteVTEP{Name: "v", TunnelIP: "198.51.100.77", Networks: []string{"red"},
				MACs: []topology.RemoteMAC{{MAC: "02:00:00:00:77:01"}}})
		}},
		"h3's tunnel IP": {snap: func(s *topology.Snapshot) { s.Hosts[2].TunnelIP = "198.51.100.33" }},
		"a host joins the mesh": {snap: func(s *topology.Snapshot) {
			s.Hosts = append(s.Hosts, topology.Host{Name: "h4", TunnelIP: "198.51.100.4"})
		}},
		"the ofports move": {shift: 7},
	}
	compilers := map[string]func(flows.View) flows.FlowSet{"flows.Compile": flows.Compile, "broken for h1": compileBrokenForH1}
	counts := map[string]int{}
	for _, mode := range []topology.TunnelPortMode{topology.PerPeerTunnels, topology.FlowTunnels} {
		for cname, compile := range compilers {
			c, err := New(Options{Store: topology.NewMemoryStore(), TunnelPorts: mode, compile: compile})
			require.NoError(t, err)
			base := testSnapshot()
			db := newDesiredState(base, mode)
			for name, ch := range changes {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, cname, name), func(t *testing.T) {
					snap := testSnapshot()
					if ch.snap != nil {
						ch.snap(&snap)
					}
					da := newDesiredState(snap, mode)
					for _, h := range snap.Hosts {
						var prev *compiledSet
						if hb, ok := base.Host(h.Name); ok {
							in := db.inputs(hb)
							view := buildView(in, factsOf(in, 0))
							prev, _ = c.compileFor(nil, view, bridgePrints(db.digest(hb), view))
						}
						in := da.inputs(h)
						view := buildView(in, factsOf(in, ch.shift))
						fp := bridgePrints(da.digest(h), view)
						got, compiled := c.compileFor(prev, view, fp)

						want := compile(view)
						rest := want
						rest.BrTun, rest.BrInt = nil, nil
						assert.Equal(t, rest, got.set, "host %s: the learned cookies and skipped parts of a compile", h.Name)
						assert.Equal(t, errText(flows.Validate(want)), errText(got.err()), "host %s: the validation of a compile", h.Name)
						for _, b := range bridgeNames {
							wantFlows := want.Flows(flowsBridge(b))
							assert.Equal(t, wantFlows, plainFlows(got.bridges[b].flows), "host %s: %s's flows of a compile", h.Name, b)
							assert.Equal(t, keysOf(wantFlows), keysOfKeyed(got.bridges[b].flows), "host %s: the keys of %s's flows", h.Name, b)
							assert.Equal(t, fp[b], got.bridges[b].fp, "host %s: %s's fingerprint", h.Name, b)
						}
						switch {
						case !compiled:
							counts["reused"]++
						case prev != nil && prev.bridges[BrTun].fp == fp[BrTun]:
							counts["br-tun reused"]++
						default:
							counts["compiled"]++
						}
						if cname == "broken for h1" && h.Name == "h1" {
							assert.Error(t, got.err(), "control: h1's set is invalid")
						}
					}
				})
			}
		}
	}
	for _, k := range []string{"reused", "br-tun reused", "compiled"} {
		assert.Positive(t, counts[k], "some host's set is %s", k)
		t.Logf("%s: %d", k, counts[k])
	}
}

// bridgePrints are the bridge fingerprints of a host with digest sum and
// view, as reconcileFull computes them.
func bridgePrints(sum hostDigest, view flows.View) map[string][32]byte {
	return map[string][32]byte{BrInt: sum.bridge(BrInt, view), BrTun: sum.bridge(BrTun, view)}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func keysOfKeyed(kfs []*keyedFlow) []flows.Key {
	out := make([]flows.Key, len(kfs))
	for i, kf := range kfs {
		out[i] = kf.key
	}
	return out
}
