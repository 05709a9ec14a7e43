package northbound

import (
	"net/http"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// HostRequest is the body of POST /v1/hosts.
type HostRequest struct {
	Name         string `json:"name"`
	OVSDB        string `json:"ovsdb"`
	TunnelIP     string `json:"tunnel_ip"`
	DatapathType string `json:"datapath_type,omitempty"` // default "system"
}

// HostView is a host as the API shows it.
type HostView struct {
	topology.Host
	Status HostStatus `json:"status"`
}

// HostList is the body of GET /v1/hosts.
type HostList struct {
	Hosts []HostView `json:"hosts"`
}

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
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusCreated, func() any { return a.hostView(h) })
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.store.ListHosts(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list := HostList{Hosts: make([]HostView, 0, len(hosts))}
	for _, h := range hosts {
		list.Hosts = append(list.Hosts, a.hostView(h))
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getHost(w http.ResponseWriter, r *http.Request) {
	h, err := a.store.GetHost(r.Context(), mux.Vars(r)["host"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.hostView(h))
}

func (a *API) deleteHost(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeleteHost(r.Context(), mux.Vars(r)["host"], p.cascade)
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
