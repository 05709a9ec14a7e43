package northbound

import (
	"context"
	"net/http"

	"github.com/brtun/brtun/topology"
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

// networkResource is the spec of /v1/networks.
func (a *API) networkResource() resource[topology.Network, NetworkView, NetworkRequest] {
	return resource[topology.Network, NetworkView, NetworkRequest]{
		collection: "/v1/networks", item: "network",
		key:  func(n topology.Network) objKey { return objKey{name: n.Name} },
		rev:  func(n topology.Network) uint64 { return n.RevisionNumber },
		view: func(_ context.Context, n topology.Network) NetworkView { return a.networkView(n) },
		list: networkList(),
		page: func(networks []NetworkView, next string) any {
			return NetworkList{Networks: networks, NextMarker: next}
		},
		fromRequest: networkFromRequest,
		// mac_learning, description and tags change; type and segment_id
		// cannot (the store names them), mtu is computed.
		patch: func(n *topology.Network, patch map[string]any) error {
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
		},
		create: a.store.CreateNetwork,
		get:    func(ctx context.Context, k objKey) (topology.Network, error) { return a.store.GetNetwork(ctx, k.name) },
		all:    func(ctx context.Context, _ string) ([]topology.Network, error) { return a.store.ListNetworks(ctx) },
		update: func(ctx context.Context, k objKey, m topology.IfMatch, change func(*topology.Network) error) (topology.Network, uint64, error) {
			return a.store.UpdateNetwork(ctx, k.name, m, change)
		},
		remove: func(ctx context.Context, k objKey, cascade bool, m topology.IfMatch) (uint64, error) {
			return a.store.DeleteNetwork(ctx, k.name, cascade, m)
		},
	}
}

// networkFromRequest is the network a create asks for: MAC learning by
// default, the segment allocated when absent.
func networkFromRequest(_ string, req NetworkRequest) (topology.Network, error) {
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
			return n, ae
		}
		n.SegmentID = uint32(seg)
	}
	return n, nil
}

func (a *API) networkView(n topology.Network) NetworkView {
	return NetworkView{Network: n, MTU: n.Type.MTU(a.underlayMTU)}
}
