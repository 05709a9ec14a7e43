package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/brtun/brtun/evpn"
	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
)

// bgpOptions are serve's BGP EVPN flags. ASN 0 runs no speaker.
type bgpOptions struct {
	asn           uint32
	routerID      string
	listenAddress string
	listenPort    int32
	restartTime   time.Duration
}

func (o *bgpOptions) addFlags(f *pflag.FlagSet) {
	f.Uint32Var(&o.asn, "bgp-asn", 0, "AS number of the BGP EVPN speaker (0: no speaker); peers are added with `brtun bgp peer create`")
	f.StringVar(&o.routerID, "bgp-router-id", "", "BGP router id (an IPv4 address; required with --bgp-asn)")
	f.StringVar(&o.listenAddress, "bgp-listen-address", "", "address the speaker listens on and opens sessions from (empty: all addresses)")
	f.Int32Var(&o.listenPort, "bgp-listen-port", 179, "TCP port the speaker listens on (-1: no listener, only outgoing sessions)")
	f.DurationVar(&o.restartTime, "bgp-graceful-restart-time", 120*time.Second, "graceful restart time (RFC 4724) advertised to peers: how long they keep brtun's routes when its session drops; also how long a restarted brtun holds the routes it stored for a peer that sends no End-of-RIB (1s..4095s)")
}

// bgpRunner keeps the speaker's routes and peers in step with the store and
// stores what it imports, which the controller compiles like any other
// desired state.
//
// With several replicas every replica given --bgp-asn runs a speaker with
// its own sessions, all advertising the same routes (they derive from the
// shared store), so a peer keeps forwarding on the survivors' copy when
// one replica dies. Only the cluster's leader stores the imported routes;
// when it dies, the next leader stores its own (live) view.
type bgpRunner struct {
	store   topology.Store
	log     *zap.Logger
	speaker *evpn.Speaker
	states  chan evpn.State // one slot: the newest state not yet stored
	// leads tells whether this replica stores the imported routes (nil:
	// always, a single replica).
	leads func() bool
	// known is the newest store revision the speaker's routes and peers
	// were read at, or a later one made by this runner's own EVPN write
	// right after it: a watched revision up to known is skipped, so a
	// burst of imports does not make the speaker reread the store after
	// each of its own writes. Used by run's goroutine only.
	known uint64
}

// leaderCheck is how often a replica checks whether it became the one
// that stores the imported routes.
const leaderCheck = 500 * time.Millisecond

// startBGP starts the speaker with the stored state, or returns nil when
// --bgp-asn is 0. leads is nil for a single replica, else whether this
// replica currently leads the cluster.
func startBGP(ctx context.Context, o bgpOptions, store topology.Store, leads func() bool, log *zap.Logger, reg prometheus.Registerer) (*bgpRunner, error) {
	if o.asn == 0 {
		return nil, nil
	}
	if o.restartTime < time.Second || o.restartTime > 4095*time.Second {
		return nil, fmt.Errorf("--bgp-graceful-restart-time %s: want 1s..4095s", o.restartTime)
	}
	cfg := evpn.Config{ASN: o.asn, ListenPort: o.listenPort, GracefulRestart: evpn.GracefulRestart{RestartTime: o.restartTime}}
	var err error
	if cfg.RouterID, err = netip.ParseAddr(o.routerID); err != nil || !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("--bgp-router-id %q: want an IPv4 address", o.routerID)
	}
	if o.listenAddress != "" {
		if cfg.ListenAddress, err = netip.ParseAddr(o.listenAddress); err != nil {
			return nil, fmt.Errorf("--bgp-listen-address: %w", err)
		}
	}
	if o.listenPort == 0 || o.listenPort < -1 || o.listenPort > 65535 {
		return nil, fmt.Errorf("--bgp-listen-port %d: want 1..65535 or -1", o.listenPort)
	}
	stored, err := store.EVPNRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var restore *evpn.State
	if len(stored.State) > 0 {
		restore = &evpn.State{}
		if err := json.Unmarshal(stored.State, restore); err != nil {
			return nil, fmt.Errorf("decode stored EVPN state: %w", err)
		}
	}
	r := &bgpRunner{store: store, log: log.Named("bgp"), states: make(chan evpn.State, 1), leads: leads}
	desired, peers, _, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	r.speaker, err = evpn.Start(ctx, evpn.Options{
		Config: cfg, Logger: log, Metrics: reg, Restore: restore,
		OnUpdate: r.offer,
	}, desired, peers)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// offer hands st to the storing goroutine, replacing an older one.
func (r *bgpRunner) offer(st evpn.State) {
	for {
		select {
		case r.states <- st:
			return
		default:
		}
		select {
		case <-r.states:
		default:
		}
	}
}

// leader tells whether this replica stores the imported routes.
func (r *bgpRunner) leader() bool { return r.leads == nil || r.leads() }

// run stores imported routes (as the leader) and follows the store until
// ctx ends, then stops the speaker.
func (r *bgpRunner) run(ctx context.Context) error {
	defer r.speaker.Stop()
	revs := r.store.Watch(ctx)
	tick := time.NewTicker(leaderCheck)
	defer tick.Stop()
	led := r.leader()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			led = r.follow(ctx, led)
		case st := <-r.states:
			if led = r.follow(ctx, led); led {
				r.storeState(ctx, st)
			}
		case rev, ok := <-revs:
			if !ok {
				return nil
			}
			if rev <= r.known {
				continue // our own EVPN write: nothing the speaker reads changed
			}
			desired, peers, at, err := r.read(ctx)
			if err == nil {
				err = r.speaker.SetDesired(ctx, desired)
			}
			if err == nil {
				err = r.speaker.SetPeers(ctx, peers)
			}
			if err == nil {
				r.known = at
			}
			if err != nil && ctx.Err() == nil {
				r.log.Error("update BGP speaker", zap.Error(err))
			}
		}
	}
}

// follow returns whether this replica leads now; led is whether it led
// before. A replica that just became the leader stores its speaker's state.
func (r *bgpRunner) follow(ctx context.Context, led bool) bool {
	now := r.leader()
	switch {
	case now && !led:
		r.log.Info("this replica now stores the imported EVPN routes")
		r.storeState(ctx, r.speaker.State())
	case !now && led:
		r.log.Info("another replica now stores the imported EVPN routes")
	}
	return now
}

// storeState stores st, retrying while the store is unavailable.
func (r *bgpRunner) storeState(ctx context.Context, st evpn.State) {
	routes, err := evpnRoutes(st)
	for err == nil {
		var rev uint64
		if rev, err = r.store.PutEVPNRoutes(ctx, routes); err == nil || ctx.Err() != nil {
			if err == nil && rev != 0 && rev == r.known+1 {
				r.known = rev
			}
			return
		}
		r.log.Warn("store imported EVPN routes; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	r.log.Error("encode EVPN state", zap.Error(err))
}

// read builds the speaker's routes and peers from the store; rev is the
// revision of the snapshot they come from.
func (r *bgpRunner) read(ctx context.Context) (d evpn.Desired, peers []evpn.Peer, rev uint64, err error) {
	snap, err := r.store.Snapshot(ctx)
	if err != nil {
		return evpn.Desired{}, nil, 0, err
	}
	stored, err := r.store.ListBGPPeers(ctx)
	if err != nil {
		return evpn.Desired{}, nil, 0, err
	}
	peers = make([]evpn.Peer, 0, len(stored))
	for _, p := range stored {
		addr, err := netip.ParseAddr(p.Address)
		if err != nil {
			continue // the store validated it
		}
		peers = append(peers, evpn.Peer{Address: addr, ASN: p.ASN, Password: p.Password})
	}
	return desiredRoutes(snap, r.log), peers, snap.Revision, nil
}

// desiredRoutes is what brtun advertises: for each EVPN network, a type-3
// route per host carrying it and type-2 routes per port with a MAC that is
// up. Hosts with an IPv6 tunnel IP are left out (EVPN VTEPs here are IPv4).
func desiredRoutes(snap topology.Snapshot, log *zap.Logger) evpn.Desired {
	d := evpn.Desired{Networks: map[uint32]evpn.Network{}}
	nets := map[string]topology.Network{}
	for _, n := range snap.Networks {
		if n.EVPN && n.Type == topology.VXLAN {
			nets[n.Name] = n
			d.Networks[n.SegmentID] = evpn.Network{RouteTarget: n.RouteTarget}
		}
	}
	for _, p := range snap.Ports {
		n, ok := nets[p.Network]
		if !ok {
			continue
		}
		h, ok := snap.Host(p.Host)
		if !ok {
			continue
		}
		vtep, err := netip.ParseAddr(h.TunnelIP)
		if err != nil || !vtep.Is4() {
			log.Debug("host left out of EVPN: not an IPv4 tunnel IP", zap.String("host", h.Name))
			continue
		}
		en := d.Networks[n.SegmentID]
		if !slices.Contains(en.VTEPs, vtep) {
			en.VTEPs = append(en.VTEPs, vtep)
		}
		if p.MAC != "" && p.Up() {
			m := evpn.MAC{MAC: p.MAC, VTEP: vtep}
			for _, s := range p.IPs {
				if ip, err := netip.ParseAddr(s); err == nil {
					m.IPs = append(m.IPs, ip)
				}
			}
			en.MACs = append(en.MACs, m)
		}
		d.Networks[n.SegmentID] = en
	}
	return d
}

// evpnRoutes is the stored form of st: the imports the controller compiles
// and st itself for the next start.
func evpnRoutes(st evpn.State) (topology.EVPNRoutes, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return topology.EVPNRoutes{}, err
	}
	out := topology.EVPNRoutes{Networks: make([]topology.EVPNNetwork, 0, len(st.Imported.Networks)), State: raw}
	for _, n := range st.Imported.Networks {
		en := topology.EVPNNetwork{VNI: n.VNI}
		for _, v := range n.VTEPs {
			en.VTEPs = append(en.VTEPs, topology.EVPNVTEP{IP: v.IP.String(), Peer: v.Peer.String()})
		}
		for _, m := range n.MACs {
			em := topology.EVPNMAC{MAC: m.MAC, VTEP: m.VTEP.String(), Peer: m.Peer.String()}
			for _, ip := range m.IPs {
				em.IPs = append(em.IPs, ip.String())
			}
			en.MACs = append(en.MACs, em)
		}
		out.Networks = append(out.Networks, en)
	}
	return out, nil
}

// PeerStatus implements northbound.BGP.
func (r *bgpRunner) PeerStatus(ctx context.Context, address string) (northbound.BGPPeerStatus, bool, error) {
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return northbound.BGPPeerStatus{}, false, nil
	}
	st, ok, err := r.speaker.PeerStatus(ctx, addr)
	if err != nil || !ok {
		return northbound.BGPPeerStatus{}, ok, err
	}
	out := northbound.BGPPeerStatus{
		State: st.State, RoutesReceived: st.Received, RoutesAccepted: st.Accepted, RoutesAdvertised: st.Advertised,
	}
	if !st.Since.IsZero() {
		out.Since = st.Since.UTC().Format(time.RFC3339)
	}
	return out, true, nil
}
