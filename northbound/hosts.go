package northbound

import (
	"context"

	"github.com/brtun/brtun/topology"
)

// HostRequest is the body of POST /v1/hosts.
type HostRequest struct {
	Name         string   `json:"name"`
	OVSDB        string   `json:"ovsdb"`
	TunnelIP     string   `json:"tunnel_ip"`
	DatapathType string   `json:"datapath_type,omitempty"` // default "system"
	Description  string   `json:"description,omitempty"`
	Tags         []string `json:"tags,omitempty"`
}

// HostView is a host as the API shows it.
type HostView struct {
	topology.Host
	Status HostStatus `json:"status"`
}

// HostList is the body of GET /v1/hosts.
type HostList struct {
	Hosts []HostView `json:"hosts"`
	// NextMarker is the ?marker of the next page; absent on the last page.
	NextMarker string `json:"next_marker,omitempty"`
}

// hostList is what GET /v1/hosts filters and sorts by.
func hostList() listSpec[HostView] {
	return listSpec[HostView]{
		key: func(h HostView) string { return h.Name },
		fields: withMeta(map[string]listField[HostView]{
			"name":          textField(func(h HostView) string { return h.Name }),
			"ovsdb":         textField(func(h HostView) string { return h.OVSDB }),
			"tunnel_ip":     textField(func(h HostView) string { return h.TunnelIP }),
			"datapath_type": textField(func(h HostView) string { return h.DatapathType }),
		}, func(h HostView) topology.Meta { return h.Meta }),
	}
}

// hostResource is the spec of /v1/hosts.
func (a *API) hostResource() resource[topology.Host, HostView, HostRequest] {
	return resource[topology.Host, HostView, HostRequest]{
		collection: "/v1/hosts", item: "host",
		key:  func(h topology.Host) objKey { return objKey{name: h.Name} },
		rev:  func(h topology.Host) uint64 { return h.RevisionNumber },
		view: func(_ context.Context, h topology.Host) HostView { return a.hostView(h) },
		list: hostList(),
		page: func(hosts []HostView, next string) any { return HostList{Hosts: hosts, NextMarker: next} },
		fromRequest: func(_ string, req HostRequest) (topology.Host, error) {
			return topology.Host{
				Name: req.Name, OVSDB: req.OVSDB, TunnelIP: req.TunnelIP, DatapathType: req.DatapathType,
				Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
			}, nil
		},
		// tunnel_ip, ovsdb, datapath_type, description and tags change;
		// status is live and ignored.
		patch: func(h *topology.Host, patch map[string]any) error {
			next, err := mergePatch(HostView{Host: *h}, patch)
			*h = next.Host
			return err
		},
		create: a.store.CreateHost,
		get:    func(ctx context.Context, k objKey) (topology.Host, error) { return a.store.GetHost(ctx, k.name) },
		all:    func(ctx context.Context, _ string) ([]topology.Host, error) { return a.store.ListHosts(ctx) },
		update: func(ctx context.Context, k objKey, m topology.IfMatch, change func(*topology.Host) error) (topology.Host, uint64, error) {
			return a.store.UpdateHost(ctx, k.name, m, change)
		},
		remove: func(ctx context.Context, k objKey, cascade bool, m topology.IfMatch) (uint64, error) {
			return a.store.DeleteHost(ctx, k.name, cascade, m)
		},
	}
}

// hostView adds the live status; both managed bridges always appear.
func (a *API) hostView(h topology.Host) HostView {
	var st HostStatus
	if a.ctrl != nil {
		st = a.ctrl.HostStatus(h.Name)
	}
	if st.OVSDB == "" {
		st.OVSDB = Disconnected
	}
	bridges := make(map[string]BridgeStatus, 2)
	for name, b := range st.Bridges {
		bridges[name] = b
	}
	for _, name := range []string{BridgeInt, BridgeTun} {
		b := bridges[name]
		if b.OpenFlow == "" {
			b.OpenFlow = Disconnected
		}
		bridges[name] = b
	}
	st.Bridges = bridges
	return HostView{Host: h, Status: st}
}
