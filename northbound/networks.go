package northbound

import (
	"net/http"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// NetworkRequest is the body of POST /v1/networks.
type NetworkRequest struct {
	Name        string `json:"name"`
	Type        string `json:"type"`                   // a topology.TunnelTypes name
	SegmentID   *int64 `json:"segment_id,omitempty"`   // allocated when absent
	MACLearning *bool  `json:"mac_learning,omitempty"` // default true
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
}

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
	n := topology.Network{Name: req.Name, Type: topology.NetworkType(req.Type), MACLearning: true}
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
	a.finishWrite(w, r, p, rev, http.StatusCreated, func() any { return a.networkView(n) })
}

func (a *API) listNetworks(w http.ResponseWriter, r *http.Request) {
	networks, err := a.store.ListNetworks(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list := NetworkList{Networks: make([]NetworkView, 0, len(networks))}
	for _, n := range networks {
		list.Networks = append(list.Networks, a.networkView(n))
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := a.store.GetNetwork(r.Context(), mux.Vars(r)["network"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.networkView(n))
}

func (a *API) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeleteNetwork(r.Context(), mux.Vars(r)["network"], p.cascade)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
}

func (a *API) networkView(n topology.Network) NetworkView {
	return NetworkView{Network: n, MTU: n.Type.MTU(a.underlayMTU)}
}
