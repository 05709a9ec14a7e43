package evpn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// evpnFamily is L2VPN EVPN (AFI 25, SAFI 70).
var evpnFamily = &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}

// Options configures a Speaker.
type Options struct {
	Config Config
	Logger *zap.Logger
	// Metrics registers the speaker's metrics; nil records none.
	Metrics prometheus.Registerer
	// OnUpdate receives every new State (imported routes and the sequence
	// numbers of local MACs), the first one from Start. Calls are serial;
	// it must not call back into the Speaker.
	OnUpdate func(State)
	// Restore is the State stored before a restart: its imported routes
	// are reported at once and held per peer until that peer's End-of-RIB
	// (or the restart time), and the peers are told we restarted (the
	// graceful restart R and F bits) so they keep our routes meanwhile.
	Restore *State
}

// Speaker is a running BGP EVPN speaker.
type Speaker struct {
	cfg      Config
	log      *zap.Logger
	srv      *server.BgpServer
	onUpdate func(State)
	cancel   context.CancelFunc
	// unregister removes the metrics collector (Stop); a no-op without metrics.
	unregister func()
	done       chan struct{}
	kick       chan struct{}
	down       chan netip.Addr // peers whose session left Established

	recMu sync.Mutex // serializes reconciles: RIB snapshot and apply in one step
	// rib holds the remote best path of every destination of GoBGP's EVPN
	// table, kept up to date from watch events (see rib.go). Guarded by recMu.
	rib map[string]received

	evMu    sync.Mutex // guards pending and resync
	pending []ribUpdate
	resync  bool // the next round lists GoBGP's table first

	relists atomic.Uint64 // listings of the table (metrics)
	updates atomic.Uint64 // destination updates applied from watch events (metrics)

	mu sync.Mutex // guards everything below
	// dirty is set when something the import depends on changed besides
	// the table (desired routes, held peers) or the last round failed: a
	// round with neither that nor a table change does nothing.
	dirty      bool
	desired    Desired
	advertised map[nlriKey]route
	seqs       map[macKey]LocalSeq
	restored   Imported
	held       map[netip.Addr]bool // peers whose restored routes are still held
	state      State
	reported   bool
	peers      map[netip.Addr]Peer
	stopped    bool
	runs       bool // the run goroutine was started (Stop waits for it)
}

// Start runs a speaker: it announces initial before any session comes up,
// then configures peers.
func Start(ctx context.Context, o Options, initial Desired, peers []Peer) (*Speaker, error) {
	cfg := o.Config
	if cfg.ASN == 0 || !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("bgp: ASN and an IPv4 router id are required")
	}
	d, err := normalize(initial)
	if err != nil {
		return nil, fmt.Errorf("bgp: initial routes: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("evpn")
	s := &Speaker{
		cfg:        cfg,
		log:        log,
		srv:        server.NewBgpServer(server.LoggerOption(&gobgpLogger{log: log.Named("gobgp")})),
		onUpdate:   o.OnUpdate,
		done:       make(chan struct{}),
		kick:       make(chan struct{}, 1),
		down:       make(chan netip.Addr, 64),
		desired:    d,
		advertised: map[nlriKey]route{},
		seqs:       map[macKey]LocalSeq{},
		held:       map[netip.Addr]bool{},
		peers:      map[netip.Addr]Peer{},
		dirty:      true,
		rib:        map[string]received{},
		resync:     true,
	}
	if o.Restore != nil {
		for _, l := range o.Restore.Seqs {
			s.seqs[macKey{l.VNI, l.MAC}] = l
		}
	}
	if o.Restore != nil && !cfg.GracefulRestart.Disabled {
		s.restored = o.Restore.Imported
		for _, n := range s.restored.Networks {
			for _, v := range n.VTEPs {
				s.held[v.Peer] = true
			}
			for _, m := range n.MACs {
				s.held[m.Peer] = true
			}
		}
	}
	// Register first: a second speaker on the same registry fails here,
	// before its BgpServer starts (GoBGP's StartBgp writes package-level
	// settings that a running speaker reads).
	unregister := func() {}
	if o.Metrics != nil {
		c := &collector{s: s}
		if err := o.Metrics.Register(c); err != nil {
			return nil, fmt.Errorf("bgp: register metrics: %w", err)
		}
		unregister = func() { o.Metrics.Unregister(c) }
	}
	go s.srv.Serve()
	if err := s.startBGP(ctx); err != nil {
		unregister()
		s.srv.Stop()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.watch(runCtx); err != nil {
		cancel()
		unregister()
		s.srv.Stop()
		return nil, err
	}
	if err := s.reconcile(ctx); err != nil {
		cancel()
		unregister()
		s.srv.Stop()
		return nil, err
	}
	if err := s.SetPeers(ctx, peers); err != nil {
		cancel()
		unregister()
		s.srv.Stop()
		return nil, err
	}
	if len(s.held) > 0 {
		time.AfterFunc(cfg.GracefulRestart.restartTime(), func() { s.release(nil) })
	}
	s.unregister = unregister
	s.runs = true
	go s.run(runCtx)
	return s, nil
}

func (s *Speaker) startBGP(ctx context.Context) error {
	g := &api.Global{Asn: s.cfg.ASN, RouterId: s.cfg.RouterID.String(), ListenPort: s.cfg.ListenPort}
	if s.cfg.ListenAddress.IsValid() {
		g.ListenAddresses = []string{s.cfg.ListenAddress.String()}
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("bgp: start (listen %v port %d): %w", s.cfg.ListenAddress, s.cfg.ListenPort, err)
	}
	return nil
}

// watch subscribes to best-path changes, End-of-RIB markers and peer state
// changes: best paths update the speaker's copy of the table, an End-of-RIB
// releases the peer's restored routes and has the table listed again; each
// event triggers a reconcile, which applies everything queued at once.
func (s *Speaker) watch(ctx context.Context) error {
	req := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST},
			{Type: api.WatchEventRequest_Table_Filter_EOR},
		}},
	}
	err := s.srv.WatchEvent(ctx, req, func(r *api.WatchEventResponse) {
		if pe := r.GetPeer(); pe != nil && pe.Type == api.WatchEventResponse_PeerEvent_STATE &&
			pe.Peer.GetState().GetSessionState() != api.PeerState_ESTABLISHED {
			if a, err := netip.ParseAddr(pe.Peer.GetState().GetNeighborAddress()); err == nil {
				select {
				case s.down <- a:
				default:
				}
			}
		}
		if t := r.GetTable(); t != nil {
			ups, resync := updatesOf(s.log, t.Paths)
			for _, p := range t.Paths {
				if p.Nlri == nil && p.Family.GetAfi() == evpnFamily.Afi && p.Family.GetSafi() == evpnFamily.Safi {
					resync = true
					if a, err := netip.ParseAddr(p.NeighborIp); err == nil {
						s.release(&a) // End-of-RIB of EVPN from this peer
					}
				}
			}
			s.queue(ups, resync)
			return
		}
		s.poke()
	})
	if err != nil {
		return fmt.Errorf("bgp: watch events: %w", err)
	}
	return nil
}

func (s *Speaker) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// release stops holding the restored routes of one peer (nil: of all).
func (s *Speaker) release(peer *netip.Addr) {
	s.mu.Lock()
	if peer == nil {
		if len(s.held) > 0 {
			s.log.Info("restart time over: dropping restored routes of peers that did not send End-of-RIB", zap.Int("peers", len(s.held)))
		}
		clear(s.held)
		s.dirty = true
	} else if s.held[*peer] {
		s.log.Info("End-of-RIB: restored routes of peer replaced by its live ones", zap.Stringer("peer", peer))
		delete(s.held, *peer)
		s.dirty = true
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Speaker) run(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case a := <-s.down:
			s.rearm(ctx, a)
			continue
		}
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, errStopped) {
			s.log.Warn("reconcile", zap.Error(err))
			time.AfterFunc(time.Second, s.poke)
		}
	}
}

// SetDesired replaces the advertised routes: only the difference is
// announced or withdrawn.
func (s *Speaker) SetDesired(ctx context.Context, d Desired) error {
	n, err := normalize(d)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	s.mu.Lock()
	if !reflect.DeepEqual(n, s.desired) {
		s.desired, s.dirty = n, true
	}
	s.mu.Unlock()
	return s.reconcile(ctx)
}

// reconcile applies the queued table updates, recomputes imports and
// sequence numbers, applies the difference of the advertised routes and
// reports a changed State.
func (s *Speaker) reconcile(ctx context.Context) error {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.isStopped() {
		return errStopped
	}
	changed, err := s.refresh(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !changed && !s.dirty && s.reported {
		return nil
	}
	s.dirty = false
	rs := make([]received, 0, len(s.rib))
	for _, r := range s.rib {
		rs = append(rs, r)
	}
	set := selectRemote(s.cfg.ASN, s.desired, rs)
	set.addHeld(s.desired, s.restored, s.held)
	seqs := resolveSeqs(s.desired, s.seqs, set.macs)
	want := buildRoutes(s.cfg.ASN, s.desired, seqs)
	announce, withdraw := diffRoutes(s.advertised, want)
	var errs []error
	for _, r := range withdraw {
		r.seq = 0 // GoBGP checks a withdrawal's sequence number against the RIB's; it names no route
		p, err := r.path()
		if err == nil {
			err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %+v: %w", r, err))
			continue
		}
		delete(s.advertised, r.key())
	}
	for _, r := range announce {
		p, err := r.path()
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %+v: %w", r, err))
			continue
		}
		s.advertised[r.key()] = r
	}
	if len(announce)+len(withdraw) > 0 {
		s.log.Debug("routes changed", zap.Int("announced", len(announce)), zap.Int("withdrawn", len(withdraw)))
	}
	s.seqs = seqs
	st := State{Imported: assemble(set, seqs), Seqs: seqList(seqs)}
	if !s.reported || !reflect.DeepEqual(st, s.state) {
		s.state, s.reported = st, true
		if s.onUpdate != nil {
			s.onUpdate(st)
		}
	}
	s.dirty = len(errs) > 0 // retried by the next round
	return errors.Join(errs...)
}

// received lists every EVPN path learned from peers, best or not.
func (s *Speaker) received(ctx context.Context) ([]received, error) {
	var out []received
	var errs []error
	err := s.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if p.IsWithdraw || p.NeighborIp == "" || p.NeighborIp == "<nil>" {
				continue // our own routes
			}
			r, ok, err := parsePath(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				out = append(out, r)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list routes: %w", err)
	}
	for _, e := range errs {
		s.log.Warn("undecodable route ignored", zap.Error(e))
	}
	return out, nil
}

// State returns the last State reported.
func (s *Speaker) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

var errStopped = errors.New("bgp: speaker stopped")

func (s *Speaker) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// SetPeers makes the configured neighbors exactly peers: new ones are
// added, gone ones removed, changed ones replaced.
func (s *Speaker) SetPeers(ctx context.Context, peers []Peer) error {
	want := map[netip.Addr]Peer{}
	for _, p := range peers {
		if !p.Address.IsValid() || p.ASN == 0 {
			return fmt.Errorf("bgp: peer %v: address and ASN are required", p.Address)
		}
		if _, dup := want[p.Address]; dup {
			return fmt.Errorf("bgp: peer %v listed twice", p.Address)
		}
		want[p.Address] = p
	}
	if s.isStopped() {
		return errStopped
	}
	s.mu.Lock()
	have := maps.Clone(s.peers)
	s.mu.Unlock()
	var errs []error
	for a, p := range have {
		if w, ok := want[a]; ok && w == p {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: remove peer %v: %w", a, err))
			continue
		}
		s.mu.Lock()
		delete(s.peers, a)
		if s.held[a] {
			delete(s.held, a)
			s.dirty = true
		}
		s.mu.Unlock()
		s.log.Info("peer removed", zap.Stringer("peer", a))
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		p := want[a]
		if h, ok := have[a]; ok && h == p {
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add peer %v: %w", a, err))
			continue
		}
		s.mu.Lock()
		s.peers[a] = p
		s.mu.Unlock()
		s.log.Info("peer added", zap.Stringer("peer", a), zap.Uint32("asn", p.ASN))
	}
	s.poke()
	return errors.Join(errs...)
}

// apiPeer is the GoBGP neighbor of p. With graceful restart on, every
// session is opened as a restarting speaker (R and F bits set): brtun keeps
// forwarding across its own restarts (the switches keep their flows), and
// FRR only retains the routes of address families whose F bit it saw in the
// OPEN of the session that dropped. As a restarting speaker, GoBGP sends its
// routes once the peer's End-of-RIB arrived (or DeferralTime passed).
func (s *Speaker) apiPeer(p Peer) *api.Peer {
	gr := s.cfg.GracefulRestart
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(s.cfg.HoldTime / time.Second),
			KeepaliveInterval: uint64(s.cfg.KeepaliveInterval / time.Second),
			ConnectRetry:      uint64(s.cfg.ConnectRetry / time.Second),
		}},
		Transport: &api.Transport{},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: evpnFamily, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: !gr.Disabled}},
		}},
	}
	if s.cfg.ListenAddress.IsValid() {
		ap.Transport.LocalAddress = s.cfg.ListenAddress.String()
	}
	if !gr.Disabled {
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(gr.restartTime() / time.Second),
			DeferralTime:    uint32(gr.deferralTime() / time.Second),
			LocalRestarting: true,
		}
	}
	return ap
}

// rearm re-adds a peer whose session went down so that its next OPEN
// carries the F bit again (GoBGP clears it once a restart sync finished).
// A peer that is itself restarting and whose stale routes we still hold (it
// set the F bit) is left alone: re-adding it would drop them.
func (s *Speaker) rearm(ctx context.Context, a netip.Addr) {
	s.mu.Lock()
	p, ok := s.peers[a]
	s.mu.Unlock()
	if !ok || s.cfg.GracefulRestart.Disabled {
		return
	}
	var skip, restarting bool
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: a.String()}, func(ap *api.Peer) {
		gr := ap.GetGracefulRestart()
		skip = ap.GetState().GetSessionState() == api.PeerState_ESTABLISHED || gr.GetLocalRestarting()
		restarting = gr.GetPeerRestarting()
	})
	if err != nil || skip {
		return
	}
	if restarting {
		rs, err := s.received(ctx)
		if err != nil || slices.ContainsFunc(rs, func(r received) bool { return r.peer == a }) {
			return
		}
	}
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
		s.log.Warn("re-arming graceful restart: remove peer", zap.Stringer("peer", a), zap.Error(err))
		return
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
		s.log.Error("re-arming graceful restart: add peer", zap.Stringer("peer", a), zap.Error(err))
		return
	}
	s.log.Debug("peer re-added for its next session to carry the graceful restart F bit", zap.Stringer("peer", a))
}

// Peers returns the status of every configured neighbor, sorted by address.
func (s *Speaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	return s.listPeers(ctx, "")
}

// PeerStatus returns one neighbor's status; ok is false when it is not
// configured.
func (s *Speaker) PeerStatus(ctx context.Context, addr netip.Addr) (PeerStatus, bool, error) {
	s.mu.Lock()
	_, ok := s.peers[addr]
	s.mu.Unlock()
	if !ok {
		return PeerStatus{}, false, nil
	}
	l, err := s.listPeers(ctx, addr.String())
	if err != nil || len(l) == 0 {
		return PeerStatus{}, false, err
	}
	return l[0], true, nil
}

func (s *Speaker) listPeers(ctx context.Context, addr string) ([]PeerStatus, error) {
	var out []PeerStatus
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr, EnableAdvertised: true}, func(p *api.Peer) {
		st := PeerStatus{State: "idle"}
		if c := p.GetConf(); c != nil {
			st.Address, _ = netip.ParseAddr(c.NeighborAddress)
			st.ASN = c.PeerAsn
		}
		if ps := p.GetState(); ps != nil {
			st.State = strings.ToLower(strings.TrimPrefix(ps.SessionState.String(), "SESSION_STATE_"))
			if st.State == "unknown" {
				st.State = "idle"
			}
		}
		if st.State == "established" {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				st.Since = up.AsTime()
			}
		}
		for _, a := range p.AfiSafis {
			if f := a.GetState().GetFamily(); f.GetAfi() == evpnFamily.Afi && f.GetSafi() == evpnFamily.Safi {
				st.Received = a.State.Received
				st.Accepted = a.State.Accepted
				st.Advertised = a.State.Advertised
			}
		}
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list peers: %w", err)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// Stop closes every session (peers see a Cease) and stops the speaker.
// Later calls of SetDesired and SetPeers return an error.
func (s *Speaker) Stop() {
	s.mu.Lock()
	was := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if was {
		return
	}
	if s.unregister != nil {
		s.unregister()
	}
	s.cancel()
	if s.runs {
		<-s.done
	}
	s.recMu.Lock() // let a SetDesired in flight finish
	s.srv.Stop()
	s.recMu.Unlock()
}
