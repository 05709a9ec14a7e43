package northbound

import (
	"net/http"
	"net/url"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// NetworkRequest is the body of POST /v1/networks.
type NetworkRequest struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`                   // a topology.TunnelTypes name
	SegmentID   *int64   `json:"segment_id,omitempty"`   // allocated when absent
	MACLearning *bool    `json:"mac_learning,omitempty"` // default true
	EVPN        bool     `json:"evpn,omitempty"`         // VXLAN only: BGP EVPN advertises and imports it
	RouteTarget string   `json:"route_target,omitempty"` // EVPN route target; default ASN:VNI
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// NetworkView is a network as the API shows it.
type NetworkView struct {
	topology.Network
	// MTU is the largest VM MTU that fits the underlay after encapsulation.
	MTU int `json:"mtu"`
}

// NetworkList is the body of GET /v1/networks.
type NetworkList struct {
	Networks []NetworkView `json:"networks"`
	// NextMarker is the ?marker of the next page; absent on the last page.
	NextMarker string `json:"next_marker,omitempty"`
}

// networkList is what GET /v1/networks filters and sorts by.
func networkList() listSpec[NetworkView] {
	return listSpec[NetworkView]{
		key: func(n NetworkView) string { return n.Name },
		fields: withMeta(map[string]listField[NetworkView]{
			"name":         textField(func(n NetworkView) string { return n.Name }),
			"type":         textField(func(n NetworkView) string { return string(n.Type) }),
			"segment_id":   numberField(func(n NetworkView) uint64 { return uint64(n.SegmentID) }),
			"mac_learning": boolField(func(n NetworkView) bool { return n.MACLearning }),
			"evpn":         boolField(func(n NetworkView) bool { return n.EVPN }),
			"route_target": textField(func(n NetworkView) string { return n.RouteTarget }),
			"mtu":          numberField(func(n NetworkView) uint64 { return uint64(n.MTU) }),
		}, func(n NetworkView) topology.Meta { return n.Meta }),
	}
}

func networkPath(name string) string { return "/v1/networks/" + url.PathEscape(name) }

func (a *API) createNetwork(w http.ResponseWriter, r *http.Request) {
	var req NetworkRequest
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	n := topology.Network{Name: req.Name, Type: topology.NetworkType(req.Type), MACLearning: true,
		EVPN: req.EVPN, RouteTarget: req.RouteTarget,
		Meta: topology.Meta{Description: req.Description, Tags: req.Tags}}
	if req.MACLearning != nil {
		n.MACLearning = *req.MACLearning
	}
	if req.SegmentID != nil {
		// 0 would mean "allocate" to the store; the store checks the per-type maximum.
		seg := *req.SegmentID
		if seg < 1 || seg > int64(topology.MaxSegmentOfAnyType()) {
			ae := apiErr(http.StatusBadRequest, codeInvalid, "segment_id: %d is out of range (%s)", seg, topology.SegmentRanges())
			ae.detail.Field = "segment_id"
			a.writeError(w, r, ae)
			return
		}
		n.SegmentID = uint32(seg)
	}
	n, rev, err := a.store.CreateNetwork(r.Context(), n)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishCreate(w, r, p, rev, networkPath(n.Name), n.RevisionNumber, func() any { return a.networkView(n) })
}

// patchNetwork applies a JSON merge patch to a network (mac_learning,
// description, tags); type and segment_id cannot change, mtu is computed.
func (a *API) patchNetwork(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	var patch map[string]any
	if err == nil {
		patch, err = readPatch(w, r)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	n, rev, err := a.store.UpdateNetwork(r.Context(), mux.Vars(r)["network"], p.ifMatch, func(n *topology.Network) error {
		before := a.networkView(*n)
		next, err := mergePatch(before, patch)
		if err != nil {
			return err
		}
		*n = next.Network
		if n.Type != before.Type {
			return nil // the store names "type"
		}
		return answerOnly("mtu", before.MTU, next.MTU)
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, n.RevisionNumber)
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return a.networkView(n) })
}

func (a *API) listNetworks(w http.ResponseWriter, r *http.Request) {
	spec := networkList()
	q, err := spec.parseList(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	networks, err := a.store.ListNetworks(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	views := make([]NetworkView, 0, len(networks))
	for _, n := range networks {
		views = append(views, a.networkView(n))
	}
	list := NetworkList{}
	list.Networks, list.NextMarker = spec.apply(q, views)
	setNextLink(w, r, list.NextMarker)
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	n, err := a.store.GetNetwork(r.Context(), mux.Vars(r)["network"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, n.RevisionNumber)
	writeJSON(w, http.StatusOK, a.networkView(n))
}

func (a *API) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeleteNetwork(r.Context(), mux.Vars(r)["network"], p.cascade, p.ifMatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
}

func (a *API) networkView(n topology.Network) NetworkView {
	return NetworkView{Network: n, MTU: n.Type.MTU(a.underlayMTU)}
}
