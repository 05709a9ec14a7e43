package northbound

import (
	"net/http"
	"net/url"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
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

func hostPath(name string) string { return "/v1/hosts/" + url.PathEscape(name) }

func (a *API) createHost(w http.ResponseWriter, r *http.Request) {
	var req HostRequest
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h, rev, err := a.store.CreateHost(r.Context(), topology.Host{
		Name: req.Name, OVSDB: req.OVSDB, TunnelIP: req.TunnelIP, DatapathType: req.DatapathType,
		Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishCreate(w, r, p, rev, hostPath(h.Name), h.RevisionNumber, func() any { return a.hostView(h) })
}

// patchHost applies a JSON merge patch to a host (tunnel_ip, ovsdb,
// datapath_type, description, tags). status is live and ignored.
func (a *API) patchHost(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	var patch map[string]any
	if err == nil {
		patch, err = readPatch(w, r)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h, rev, err := a.store.UpdateHost(r.Context(), mux.Vars(r)["host"], p.ifMatch, func(h *topology.Host) error {
		next, err := mergePatch(HostView{Host: *h}, patch)
		*h = next.Host
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, h.RevisionNumber)
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return a.hostView(h) })
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) {
	spec := hostList()
	q, err := spec.parseList(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	hosts, err := a.store.ListHosts(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	views := make([]HostView, 0, len(hosts))
	for _, h := range hosts {
		views = append(views, a.hostView(h))
	}
	list := HostList{}
	list.Hosts, list.NextMarker = spec.apply(q, views)
	setNextLink(w, r, list.NextMarker)
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getHost(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	h, err := a.store.GetHost(r.Context(), mux.Vars(r)["host"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, h.RevisionNumber)
	writeJSON(w, http.StatusOK, a.hostView(h))
}

func (a *API) deleteHost(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeleteHost(r.Context(), mux.Vars(r)["host"], p.cascade, p.ifMatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
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
