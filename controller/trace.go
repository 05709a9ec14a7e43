package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/trace"
)

// ErrUnknownPort is Trace's error for a port the desired state lacks.
// Trace also returns ErrUnknownHost, ErrNotConnected, trace.ErrNotBound and
// a *trace.RequestError.
var ErrUnknownPort = errors.New("no such port")

// Trace walks the packet req describes from port network/name through the
// flows the switches hold now (dumped, not compiled), host after host as
// the packet reaches them. A host reached whose switches cannot be read
// ends its branch of the walk with the reason.
func (c *Controller) Trace(ctx context.Context, network, name string, req trace.Request) (trace.Result, error) {
	c.mu.Lock()
	snap := c.desired.snap
	c.mu.Unlock()
	i := slices.IndexFunc(snap.Ports, func(p topology.Port) bool { return p.Network == network && p.Name == name })
	if i < 0 {
		return trace.Result{}, fmt.Errorf("port %s/%s: %w", network, name, ErrUnknownPort)
	}
	src := snap.Ports[i]
	h, err := c.traceHost(ctx, src.Host)
	if err != nil {
		return trace.Result{}, err
	}
	j := slices.IndexFunc(h.Int.Ports, func(p trace.Port) bool { return p.Kind == trace.PortVM && p.Network == network && p.Port == name })
	if j < 0 {
		return trace.Result{}, fmt.Errorf("%s/%s on %s's %s: %w", network, name, src.Host, BrInt, trace.ErrNotBound)
	}
	mac := h.Int.Ports[j].MAC
	if m, err := flows.ParseMAC(src.MAC); err == nil {
		mac = m // the registered MAC is what brtun's flows expect
	}
	pkt, err := trace.NewPacket(req, src, mac, snap.Ports)
	if err != nil {
		return trace.Result{}, err
	}
	in := trace.Input{Hosts: map[string]trace.Host{src.Host: h}, Registered: snap.Ports, Owner: c.Owners(),
		TunnelIPs: make(map[string]string, len(snap.Hosts))}
	for _, sh := range snap.Hosts {
		in.TunnelIPs[sh.Name] = sh.TunnelIP
	}
	for {
		res, err := trace.Walk(in, src.Host, network, name, pkt)
		if err != nil || len(res.Missing) == 0 {
			return res, err
		}
		for _, m := range res.Missing {
			if _, ok := snap.Host(m); !ok {
				// A tunnel's peer that is no brtun host: a remote VTEP.
				in.Hosts[m] = trace.Host{Err: m + " is no brtun host (a remote VTEP): brtun does not read its flows"}
				continue
			}
			h, err := c.traceHost(ctx, m)
			if err != nil {
				h = trace.Host{Err: err.Error()}
			}
			in.Hosts[m] = h
		}
	}
}

// traceHost reads what a walk needs of a host: the flows both its bridges
// hold and their ports as OVSDB shows them.
func (c *Controller) traceHost(ctx context.Context, host string) (trace.Host, error) {
	c.mu.Lock()
	hs := c.hosts[host]
	var cl *ovsdb.Client
	if hs != nil {
		cl = hs.ovsdb.client()
	}
	c.mu.Unlock()
	if hs == nil {
		return trace.Host{}, fmt.Errorf("host %q: %w", host, ErrUnknownHost)
	}
	if cl == nil {
		return trace.Host{}, fmt.Errorf("%s's OVSDB: %w", host, ErrNotConnected)
	}
	facts := cl.Facts()
	var out trace.Host
	for _, b := range bridgeNames {
		stats, err := c.DumpFlows(ctx, host, b, -1)
		if err != nil {
			return trace.Host{}, err
		}
		fs := make([]flows.Flow, len(stats))
		for i, s := range stats {
			fs[i] = s.Flow
		}
		br := trace.Bridge{Flows: fs, Ports: tracePorts(b, facts)}
		if b == BrInt {
			out.Int = br
		} else {
			out.Tun = br
		}
	}
	return out, nil
}

// tracePorts lists a bridge's ports from the host's OVSDB facts.
func tracePorts(bridge string, facts ovsdb.Facts) []trace.Port {
	out := []trace.Port{{OFPort: flows.PortLocal, Name: bridge, Kind: trace.PortLocal}}
	if n := facts.Bridges[bridge].PatchOFPort; n > 0 {
		name := topology.PatchTun
		if bridge == BrTun {
			name = topology.PatchInt
		}
		out = append(out, trace.Port{OFPort: uint32(n), Name: name, Kind: trace.PortPatch})
	}
	if bridge == BrTun {
		for _, t := range facts.Tunnels {
			if t.OFPort > 0 {
				out = append(out, trace.Port{OFPort: uint32(t.OFPort), Name: t.Name, Kind: trace.PortTunnel, Peer: t.PeerName, Type: t.Type, Flow: t.Flow})
			}
		}
		return out
	}
	for _, b := range facts.Bindings {
		if b.OFPort <= 0 {
			continue
		}
		mac, _ := flows.ParseMAC(b.MAC) // the zero MAC when OVSDB has none
		out = append(out, trace.Port{OFPort: uint32(b.OFPort), Name: b.Interface, Kind: trace.PortVM,
			Network: b.Network, Port: b.Port, MAC: mac, VLAN: uint16(b.VLAN)})
	}
	return out
}
