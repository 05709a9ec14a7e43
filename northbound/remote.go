package northbound

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/brtun/brtun/topology"
)

// RemoteVTEPRequest is the body of POST /v1/remote-vteps.
type RemoteVTEPRequest struct {
	Name        string               `json:"name"`
	TunnelIP    string               `json:"tunnel_ip"`
	Networks    []string             `json:"networks"`
	MACs        []topology.RemoteMAC `json:"macs,omitempty"`
	Description string               `json:"description,omitempty"`
	Tags        []string             `json:"tags,omitempty"`
}

// RemoteVTEPList is the body of GET /v1/remote-vteps.
type RemoteVTEPList struct {
	RemoteVTEPs []topology.RemoteVTEP `json:"remote_vteps"`
	NextMarker  string                `json:"next_marker,omitempty"`
}

func remoteVTEPList() listSpec[topology.RemoteVTEP] {
	return listSpec[topology.RemoteVTEP]{
		key: func(v topology.RemoteVTEP) string { return v.Name },
		fields: withMeta(map[string]listField[topology.RemoteVTEP]{
			"name":      textField(func(v topology.RemoteVTEP) string { return v.Name }),
			"tunnel_ip": textField(func(v topology.RemoteVTEP) string { return v.TunnelIP }),
			"network":   setField(func(v topology.RemoteVTEP) []string { return v.Networks }),
		}, func(v topology.RemoteVTEP) topology.Meta { return v.Meta }),
	}
}

// remoteVTEPResource is the spec of /v1/remote-vteps.
func (a *API) remoteVTEPResource() resource[topology.RemoteVTEP, topology.RemoteVTEP, RemoteVTEPRequest] {
	return resource[topology.RemoteVTEP, topology.RemoteVTEP, RemoteVTEPRequest]{
		collection: "/v1/remote-vteps", item: "vtep",
		key:  func(v topology.RemoteVTEP) objKey { return objKey{name: v.Name} },
		rev:  func(v topology.RemoteVTEP) uint64 { return v.RevisionNumber },
		view: asIs[topology.RemoteVTEP],
		list: remoteVTEPList(),
		page: func(vteps []topology.RemoteVTEP, next string) any {
			return RemoteVTEPList{RemoteVTEPs: vteps, NextMarker: next}
		},
		fromRequest: func(_ string, req RemoteVTEPRequest) (topology.RemoteVTEP, error) {
			return topology.RemoteVTEP{
				Name: req.Name, TunnelIP: req.TunnelIP, Networks: req.Networks, MACs: req.MACs,
				Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
			}, nil
		},
		patch:  mergeInto[topology.RemoteVTEP], // tunnel_ip, networks, macs, description, tags
		create: a.store.CreateRemoteVTEP,
		get: func(ctx context.Context, k objKey) (topology.RemoteVTEP, error) {
			return a.store.GetRemoteVTEP(ctx, k.name)
		},
		all: func(ctx context.Context, _ string) ([]topology.RemoteVTEP, error) {
			return a.store.ListRemoteVTEPs(ctx)
		},
		update: func(ctx context.Context, k objKey, m topology.IfMatch, change func(*topology.RemoteVTEP) error) (topology.RemoteVTEP, uint64, error) {
			return a.store.UpdateRemoteVTEP(ctx, k.name, m, change)
		},
		remove: func(ctx context.Context, k objKey, _ bool, m topology.IfMatch) (uint64, error) {
			return a.store.DeleteRemoteVTEP(ctx, k.name, m)
		},
	}
}

// BGP is brtun's BGP EVPN speaker as the API needs it; safe for concurrent
// use.
type BGP interface {
	// PeerStatus reports the session with the neighbor at address (false
	// when the speaker does not know it, e.g. just added).
	PeerStatus(ctx context.Context, address string) (BGPPeerStatus, bool, error)
}

// BGPPeerStatus is the live session of one neighbor.
type BGPPeerStatus struct {
	// State is the BGP FSM state (idle, connect, active, opensent,
	// openconfirm, established), or "disabled" when brtun runs without
	// --bgp-asn, "unknown" while the speaker has not taken the peer yet.
	State string `json:"state"`
	// Since is when the session last came up (RFC 3339; empty when never).
	Since            string `json:"since,omitempty"`
	RoutesReceived   uint64 `json:"routes_received"`
	RoutesAccepted   uint64 `json:"routes_accepted"`
	RoutesAdvertised uint64 `json:"routes_advertised"`
}

// BGPPeerRequest is the body of POST /v1/bgp/peers.
type BGPPeerRequest struct {
	Address     string   `json:"address"`
	ASN         uint32   `json:"asn"`
	Password    string   `json:"password,omitempty"` // TCP MD5; never answered
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// BGPPeerView is a BGP peer as the API shows it: without its password, with
// its session.
type BGPPeerView struct {
	topology.BGPPeer
	PasswordSet bool          `json:"password_set"`
	Session     BGPPeerStatus `json:"session"`
}

// BGPPeerList is the body of GET /v1/bgp/peers.
type BGPPeerList struct {
	Peers      []BGPPeerView `json:"peers"`
	NextMarker string        `json:"next_marker,omitempty"`
}

func bgpPeerList() listSpec[BGPPeerView] {
	return listSpec[BGPPeerView]{
		key: func(p BGPPeerView) string { return p.Address },
		fields: withMeta(map[string]listField[BGPPeerView]{
			"address": textField(func(p BGPPeerView) string { return p.Address }),
			"asn":     numberField(func(p BGPPeerView) uint64 { return uint64(p.ASN) }),
			"state":   textField(func(p BGPPeerView) string { return p.Session.State }),
		}, func(p BGPPeerView) topology.Meta { return p.Meta }),
	}
}

// bgpPeerView hides the password and adds the live session.
func (a *API) bgpPeerView(ctx context.Context, p topology.BGPPeer) BGPPeerView {
	v := BGPPeerView{BGPPeer: p, PasswordSet: p.Password != ""}
	v.Password = ""
	v.Session.State = "disabled"
	if a.bgp != nil {
		st, ok, err := a.bgp.PeerStatus(ctx, p.Address)
		switch {
		case err != nil:
			v.Session.State = "unknown"
			a.log.Debug("read BGP peer status", zap.String("peer", p.Address), zap.Error(err))
		case !ok:
			v.Session.State = "unknown"
		default:
			v.Session = st
		}
	}
	return v
}

// bgpPeerResource is the spec of /v1/bgp/peers.
func (a *API) bgpPeerResource() resource[topology.BGPPeer, BGPPeerView, BGPPeerRequest] {
	return resource[topology.BGPPeer, BGPPeerView, BGPPeerRequest]{
		collection: "/v1/bgp/peers", item: "address",
		key:  func(p topology.BGPPeer) objKey { return objKey{name: p.Address} },
		rev:  func(p topology.BGPPeer) uint64 { return p.RevisionNumber },
		view: a.bgpPeerView,
		list: bgpPeerList(),
		page: func(peers []BGPPeerView, next string) any { return BGPPeerList{Peers: peers, NextMarker: next} },
		fromRequest: func(_ string, req BGPPeerRequest) (topology.BGPPeer, error) {
			return topology.BGPPeer{
				Address: req.Address, ASN: req.ASN, Password: req.Password,
				Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
			}, nil
		},
		// asn, password, description and tags change; password_set and
		// session are answer-only.
		patch: func(bp *topology.BGPPeer, patch map[string]any) error {
			cur := BGPPeerView{BGPPeer: *bp}
			cur.Password = "" // absent unless the patch sets it
			next, err := mergePatch(cur, patch)
			if err != nil {
				return err
			}
			if _, ok := patch["password"]; !ok {
				next.Password = bp.Password
			}
			*bp = next.BGPPeer
			return nil
		},
		create: a.store.CreateBGPPeer,
		get:    func(ctx context.Context, k objKey) (topology.BGPPeer, error) { return a.store.GetBGPPeer(ctx, k.name) },
		all:    func(ctx context.Context, _ string) ([]topology.BGPPeer, error) { return a.store.ListBGPPeers(ctx) },
		update: func(ctx context.Context, k objKey, m topology.IfMatch, change func(*topology.BGPPeer) error) (topology.BGPPeer, uint64, error) {
			return a.store.UpdateBGPPeer(ctx, k.name, m, change)
		},
		remove: func(ctx context.Context, k objKey, _ bool, m topology.IfMatch) (uint64, error) {
			return a.store.DeleteBGPPeer(ctx, k.name, m)
		},
	}
}

// VTEPView is one VTEP of a network: a brtun host carrying it, or a remote
// VTEP and how it was learned.
type VTEPView struct {
	TunnelIP string `json:"tunnel_ip"`
	// Kind is "host" (a brtun host with a port on the network) or "remote".
	Kind string `json:"kind"`
	// Host names the brtun host; Name the static remote VTEP.
	Host string `json:"host,omitempty"`
	Name string `json:"name,omitempty"`
	// LearnedBy lists how a remote VTEP is known: "static", "evpn".
	LearnedBy []string `json:"learned_by,omitempty"`
	// BGPPeers are the neighbors an EVPN-learned VTEP came from.
	BGPPeers []string `json:"bgp_peers,omitempty"`
	// MACs counts the MACs installed behind the VTEP (remote ports, or the
	// host's ports with a MAC).
	MACs int `json:"macs"`
}

// VTEPList is the body of GET /v1/networks/{network}/vteps.
type VTEPList struct {
	VTEPs []VTEPView `json:"vteps"`
}

// listVTEPs serves GET /v1/networks/{network}/vteps from the desired state:
// the hosts with a port on the network, the static remote VTEPs that joined
// it and the VTEPs and MACs the EVPN speaker imported for it.
func (a *API) listVTEPs(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	snap, err := a.store.Snapshot(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := mux.Vars(r)["network"]
	n, ok := snap.Network(name)
	if !ok {
		_, err := a.store.GetNetwork(r.Context(), name) // the store's own not-found error
		a.writeError(w, r, err)
		return
	}
	byIP := map[string]*VTEPView{}
	var order []string
	get := func(ip string) *VTEPView {
		if v, ok := byIP[ip]; ok {
			return v
		}
		byIP[ip] = &VTEPView{TunnelIP: ip, Kind: "remote"}
		order = append(order, ip)
		return byIP[ip]
	}
	learned := func(v *VTEPView, how string) {
		if !slices.Contains(v.LearnedBy, how) {
			v.LearnedBy = append(v.LearnedBy, how)
		}
	}
	for _, p := range snap.Ports {
		if p.Network != n.Name {
			continue
		}
		if h, ok := snap.Host(p.Host); ok {
			v := get(h.TunnelIP)
			v.Kind, v.Host = "host", h.Name
			if p.MAC != "" && p.Up() {
				v.MACs++
			}
		}
	}
	for _, rv := range snap.RemoteVTEPs {
		if !slices.Contains(rv.Networks, n.Name) {
			continue
		}
		if v := get(rv.TunnelIP); v.Kind == "remote" {
			v.Name = rv.Name
			learned(v, "static")
			v.MACs += len(rv.MACs)
		}
	}
	if n.EVPN {
		for _, en := range snap.EVPN.Networks {
			if en.VNI != n.SegmentID {
				continue
			}
			for _, ev := range en.VTEPs {
				if v := get(ev.IP); v.Kind == "remote" {
					learned(v, "evpn")
					if !slices.Contains(v.BGPPeers, ev.Peer) {
						v.BGPPeers = append(v.BGPPeers, ev.Peer)
					}
				}
			}
			for _, m := range en.MACs {
				if v := get(m.VTEP); v.Kind == "remote" {
					learned(v, "evpn")
					v.MACs++
				}
			}
		}
	}
	list := VTEPList{VTEPs: make([]VTEPView, 0, len(order))}
	for _, ip := range order {
		list.VTEPs = append(list.VTEPs, *byIP[ip])
	}
	slices.SortFunc(list.VTEPs, func(x, y VTEPView) int {
		if x.Kind != y.Kind {
			return strings.Compare(x.Kind, y.Kind) // hosts first
		}
		return strings.Compare(x.TunnelIP, y.TunnelIP)
	})
	writeJSON(w, http.StatusOK, list)
}
