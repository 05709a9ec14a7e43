package northbound

import (
	"net/http"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// PortRequest is the body of POST /v1/networks/{network}/ports and of
// PUT /v1/networks/{network}/ports/{port}. PUT replaces host, interface,
// mac, ips, port_security_enabled and allowed_address_pairs as a whole; its
// name may be omitted and must otherwise match the path.
type PortRequest struct {
	Name      string   `json:"name"`
	Host      string   `json:"host"`
	Interface string   `json:"interface"`
	MAC       string   `json:"mac,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	// PortSecurityEnabled defaults to true; a port without a MAC has none
	// whatever this says.
	PortSecurityEnabled *bool                  `json:"port_security_enabled,omitempty"`
	AllowedAddressPairs []topology.AddressPair `json:"allowed_address_pairs,omitempty"`
}

// port is the topology.Port a request asks for.
func (req PortRequest) port(network, name string) topology.Port {
	security := req.PortSecurityEnabled == nil || *req.PortSecurityEnabled
	return topology.Port{
		Network: network, Name: name, Host: req.Host, Interface: req.Interface, MAC: req.MAC, IPs: req.IPs,
		PortSecurityEnabled: security, AllowedAddressPairs: req.AllowedAddressPairs,
	}
}

// PortView is a port as the API shows it.
type PortView struct {
	topology.Port
	Status string `json:"status"` // PortPending or PortBound
}

// PortList is the body of GET /v1/networks/{network}/ports.
type PortList struct {
	Ports []PortView `json:"ports"`
}

func (a *API) createPort(w http.ResponseWriter, r *http.Request) {
	var req PortRequest
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	port, rev, err := a.store.CreatePort(r.Context(), req.port(mux.Vars(r)["network"], req.Name))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusCreated, func() any { return a.portView(port) })
}

func (a *API) updatePort(w http.ResponseWriter, r *http.Request) {
	var req PortRequest
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := mux.Vars(r)["port"]
	if req.Name != "" && req.Name != name {
		ae := apiErr(http.StatusBadRequest, codeInvalid, "name: %q does not match the port %q in the path (ports cannot be renamed)", req.Name, name)
		ae.detail.Field = "name"
		a.writeError(w, r, ae)
		return
	}
	port, rev, err := a.store.UpdatePort(r.Context(), req.port(mux.Vars(r)["network"], name))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return a.portView(port) })
}

func (a *API) listPorts(w http.ResponseWriter, r *http.Request) {
	ports, err := a.store.ListPorts(r.Context(), mux.Vars(r)["network"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list := PortList{Ports: make([]PortView, 0, len(ports))}
	for _, p := range ports {
		list.Ports = append(list.Ports, a.portView(p))
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getPort(w http.ResponseWriter, r *http.Request) {
	port, err := a.store.GetPort(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["port"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.portView(port))
}

func (a *API) deletePort(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeletePort(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["port"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
}

func (a *API) portView(p topology.Port) PortView {
	status := PortPending
	if a.ctrl != nil && a.ctrl.PortBound(p.Host, p.Interface) {
		status = PortBound
	}
	return PortView{Port: p, Status: status}
}
