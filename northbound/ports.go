package northbound

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// PortRequest is the body of POST /v1/networks/{network}/ports.
type PortRequest struct {
	Name         string   `json:"name"`
	Host         string   `json:"host"`
	Interface    string   `json:"interface"`
	MAC          string   `json:"mac,omitempty"`
	IPs          []string `json:"ips,omitempty"`
	AdminStateUp *bool    `json:"admin_state_up,omitempty"` // default true
	// PortSecurityEnabled defaults to true; a port without a MAC has none
	// whatever this says.
	PortSecurityEnabled *bool                  `json:"port_security_enabled,omitempty"`
	DeviceID            string                 `json:"device_id,omitempty"`
	AllowedAddressPairs []topology.AddressPair `json:"allowed_address_pairs,omitempty"`
	Description         string                 `json:"description,omitempty"`
	Tags                []string               `json:"tags,omitempty"`
}

// port is the topology.Port a request asks for (absent fields take their
// defaults).
func (req PortRequest) port(network, name string) topology.Port {
	return topology.Port{
		Network: network, Name: name, Host: req.Host, Interface: req.Interface, MAC: req.MAC, IPs: req.IPs,
		PortSecurityEnabled: req.PortSecurityEnabled == nil || *req.PortSecurityEnabled,
		AllowedAddressPairs: req.AllowedAddressPairs,
		AdminStateUp:        topology.Bool(req.AdminStateUp == nil || *req.AdminStateUp),
		DeviceID:            req.DeviceID,
		Meta:                topology.Meta{Description: req.Description, Tags: req.Tags},
	}
}

// PortUpdate is the body of PUT /v1/networks/{network}/ports/{port}: it
// replaces the port's writable fields as a whole (absent ones take their
// defaults). name may be omitted and must otherwise match the path. The
// answer-only fields let a GET's answer be sent back: network, local_vlan
// and revision_number are accepted when they equal the stored value
// (otherwise 400 naming the field); status is live and ignored.
type PortUpdate struct {
	PortRequest
	Network        string  `json:"network,omitempty"`
	LocalVLAN      *uint16 `json:"local_vlan,omitempty"`
	RevisionNumber *uint64 `json:"revision_number,omitempty"`
	Status         string  `json:"status,omitempty"`
	Message        string  `json:"message,omitempty"`
}

// PortView is a port as the API shows it.
type PortView struct {
	topology.Port
	Status string `json:"status"` // PortPending, PortBound or PortError
	// Message says why the status is PortError.
	Message string `json:"message,omitempty"`
}

// PortList is the body of GET /v1/ports and GET /v1/networks/{network}/ports.
type PortList struct {
	Ports []PortView `json:"ports"`
	// NextMarker is the ?marker of the next page; absent on the last page.
	NextMarker string `json:"next_marker,omitempty"`
}

// portList is what the port lists filter and sort by.
func portList() listSpec[PortView] {
	return listSpec[PortView]{
		key: func(p PortView) string { return p.Network + "\x00" + p.Name }, // by network, then name
		fields: withMeta(map[string]listField[PortView]{
			"name":                  textField(func(p PortView) string { return p.Name }),
			"network":               textField(func(p PortView) string { return p.Network }),
			"host":                  textField(func(p PortView) string { return p.Host }),
			"interface":             textField(func(p PortView) string { return p.Interface }),
			"mac":                   textField(func(p PortView) string { return p.MAC }),
			"device_id":             textField(func(p PortView) string { return p.DeviceID }),
			"ips":                   setField(func(p PortView) []string { return p.IPs }),
			"local_vlan":            numberField(func(p PortView) uint64 { return uint64(p.LocalVLAN) }),
			"admin_state_up":        boolField(func(p PortView) bool { return p.Up() }),
			"port_security_enabled": boolField(func(p PortView) bool { return p.PortSecurityEnabled }),
			"status":                textField(func(p PortView) string { return p.Status }),
		}, func(p PortView) topology.Meta { return p.Meta }),
	}
}

func portPath(network, name string) string {
	return networkPath(network) + "/ports/" + url.PathEscape(name)
}

// How often a port GET with ?wait looks at the binding: soon at first (on
// a connected host a new port binds within milliseconds, and a CNI ADD
// waits for it), then after each wait one and a half times the one
// before, up to portPollInterval.
const (
	portPollFirst    = 4 * time.Millisecond
	portPollInterval = 50 * time.Millisecond
)

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
	a.finishCreate(w, r, p, rev, portPath(port.Network, port.Name), port.RevisionNumber, func() any { return a.portView(port) })
}

func (a *API) updatePort(w http.ResponseWriter, r *http.Request) {
	var req PortUpdate
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err == nil && req.Status != "" && !validPortStatus(req.Status) {
		err = fieldErr("status", "%q is not a port status (want %s, %s or %s)", req.Status, PortPending, PortBound, PortError)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	network, name := mux.Vars(r)["network"], mux.Vars(r)["port"]
	if req.Name != "" && req.Name != name {
		a.writeError(w, r, fieldErr("name", "%q does not match the port %q in the path (ports cannot be renamed)", req.Name, name))
		return
	}
	port, rev, err := a.store.UpdatePort(r.Context(), network, name, p.ifMatch, func(cur *topology.Port) error {
		want := req.port(network, name)
		cur.Host, cur.Interface, cur.MAC, cur.IPs, cur.DeviceID = want.Host, want.Interface, want.MAC, want.IPs, want.DeviceID
		cur.PortSecurityEnabled, cur.AllowedAddressPairs = want.PortSecurityEnabled, want.AllowedAddressPairs
		cur.AdminStateUp = want.AdminStateUp
		cur.Description, cur.Tags = want.Description, want.Tags
		if req.Network != "" {
			cur.Network = req.Network
		}
		if req.LocalVLAN != nil {
			cur.LocalVLAN = *req.LocalVLAN
		}
		if req.RevisionNumber != nil {
			cur.RevisionNumber = *req.RevisionNumber
		}
		return nil
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, port.RevisionNumber)
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return a.portView(port) })
}

// patchPort applies a JSON merge patch to a port; network, name and
// local_vlan cannot change, status is live and ignored.
func (a *API) patchPort(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	var patch map[string]any
	if err == nil {
		patch, err = readPatch(w, r)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	network, name := mux.Vars(r)["network"], mux.Vars(r)["port"]
	port, rev, err := a.store.UpdatePort(r.Context(), network, name, p.ifMatch, func(cur *topology.Port) error {
		next, err := mergePatch(PortView{Port: *cur, Status: PortPending}, patch)
		if err != nil {
			return err
		}
		if !validPortStatus(next.Status) {
			return fieldErr("status", "%q is not a port status (want %s, %s or %s)", next.Status, PortPending, PortBound, PortError)
		}
		if v, ok := patch["port_security_enabled"]; ok && v == nil {
			next.PortSecurityEnabled = true // null: back to the default
		}
		*cur = next.Port
		return nil
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, port.RevisionNumber)
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return a.portView(port) })
}

// listPorts serves GET /v1/ports (every network) and
// GET /v1/networks/{network}/ports.
func (a *API) listPorts(w http.ResponseWriter, r *http.Request) {
	spec := portList()
	q, err := spec.parseList(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ports, err := a.store.ListPorts(r.Context(), mux.Vars(r)["network"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	views := make([]PortView, 0, len(ports))
	for _, p := range ports {
		views = append(views, a.portView(p))
	}
	list := PortList{}
	list.Ports, list.NextMarker = spec.apply(q, views)
	setNextLink(w, r, list.NextMarker)
	writeJSON(w, http.StatusOK, list)
}

// getPort answers a port; with ?wait=DURATION it first waits until the
// port is bound, answering 504 not_bound with the port when it is not
// bound in time.
func (a *API) getPort(w http.ResponseWriter, r *http.Request) {
	var wait time.Duration
	err := checkQuery(r, "wait")
	if s := r.URL.Query().Get("wait"); err == nil && s != "" {
		wait, err = a.parseWait(s)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	network, name := mux.Vars(r)["network"], mux.Vars(r)["port"]
	port, err := a.store.GetPort(r.Context(), network, name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	view := a.portView(port)
	if wait > 0 && view.Status != PortBound {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		view, err = a.waitBound(ctx, network, name)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				a.writeError(w, r, err) // the port was deleted meanwhile, or the store failed
				return
			}
			setETag(w, view.RevisionNumber)
			writeJSON(w, http.StatusGatewayTimeout, ErrorBody{
				Error:  ErrorDetail{Code: codeNotBound, Message: "port " + network + "/" + name + " was not bound within " + wait.String()},
				Object: view,
			})
			return
		}
	}
	setETag(w, view.RevisionNumber)
	writeJSON(w, http.StatusOK, view)
}

// waitBound polls the port until it is bound; when ctx ends first it
// returns the port as last seen and ctx's error.
func (a *API) waitBound(ctx context.Context, network, name string) (PortView, error) {
	delay := portPollFirst
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var view PortView
	for {
		port, err := a.store.GetPort(ctx, network, name)
		if err != nil {
			if ctx.Err() != nil {
				return view, ctx.Err()
			}
			return view, err
		}
		if view = a.portView(port); view.Status == PortBound {
			return view, nil
		}
		select {
		case <-ctx.Done():
			return view, ctx.Err()
		case <-timer.C:
		}
		delay = min(delay+delay/2, portPollInterval)
		timer.Reset(delay)
	}
}

func (a *API) deletePort(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeletePort(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["port"], p.ifMatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
}

func (a *API) portView(p topology.Port) PortView {
	v := PortView{Port: p, Status: PortPending}
	switch {
	case a.ctrl == nil:
	case a.ctrl.PortBound(p.Host, p.Interface):
		v.Status = PortBound
	default:
		if msg := a.ctrl.PortError(p.Host, p.Interface); msg != "" {
			v.Status, v.Message = PortError, msg
		}
	}
	return v
}

// validPortStatus reports whether s is a status a port view may carry
// (PUT and PATCH accept a GET's answer back; status is live and ignored).
func validPortStatus(s string) bool {
	return s == PortPending || s == PortBound || s == PortError
}
