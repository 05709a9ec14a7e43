package northbound

import (
	"net/http"
	"net/url"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// SubnetRequest is the body of POST /v1/networks/{network}/subnets.
type SubnetRequest struct {
	Name string `json:"name"`
	CIDR string `json:"cidr"` // IPv4 or IPv6, host bits zero
	// GatewayIP defaults to the first host address of cidr when absent or
	// null; "" means no gateway.
	GatewayIP *string `json:"gateway_ip,omitempty"`
	// AllocationPools default to the whole CIDR less the network,
	// broadcast and gateway addresses.
	AllocationPools []topology.AllocationPool `json:"allocation_pools,omitempty"`
	DNSServers      []string                  `json:"dns_servers,omitempty"`
	HostRoutes      []topology.HostRoute      `json:"host_routes,omitempty"`
	EnableDHCP      *bool                     `json:"enable_dhcp,omitempty"`       // default true
	IPv6AddressMode string                    `json:"ipv6_address_mode,omitempty"` // IPv6 only; default slaac
	Description     string                    `json:"description,omitempty"`
	Tags            []string                  `json:"tags,omitempty"`
}

// SubnetList is the body of GET /v1/networks/{network}/subnets.
type SubnetList struct {
	Subnets []topology.Subnet `json:"subnets"`
	// NextMarker is the ?marker of the next page; absent on the last page.
	NextMarker string `json:"next_marker,omitempty"`
}

// subnetList is what GET /v1/networks/{network}/subnets filters and sorts by.
func subnetList() listSpec[topology.Subnet] {
	return listSpec[topology.Subnet]{
		key: func(s topology.Subnet) string { return s.Network + "\x00" + s.Name },
		fields: withMeta(map[string]listField[topology.Subnet]{
			"name":              textField(func(s topology.Subnet) string { return s.Name }),
			"network":           textField(func(s topology.Subnet) string { return s.Network }),
			"cidr":              textField(func(s topology.Subnet) string { return s.CIDR }),
			"gateway_ip":        textField(func(s topology.Subnet) string { return s.GatewayIP }),
			"enable_dhcp":       boolField(func(s topology.Subnet) bool { return s.EnableDHCP }),
			"ipv6_address_mode": textField(func(s topology.Subnet) string { return s.IPv6AddressMode }),
			"dns_servers":       setField(func(s topology.Subnet) []string { return s.DNSServers }),
		}, func(s topology.Subnet) topology.Meta { return s.Meta }),
	}
}

func subnetPath(network, name string) string {
	return networkPath(network) + "/subnets/" + url.PathEscape(name)
}

func (a *API) createSubnet(w http.ResponseWriter, r *http.Request) {
	var req SubnetRequest
	p, err := a.parseWriteParams(r)
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s := topology.Subnet{
		Network: mux.Vars(r)["network"], Name: req.Name, CIDR: req.CIDR, GatewayIP: topology.DefaultGatewayIP(req.CIDR),
		AllocationPools: req.AllocationPools, DNSServers: req.DNSServers, HostRoutes: req.HostRoutes,
		EnableDHCP: req.EnableDHCP == nil || *req.EnableDHCP, IPv6AddressMode: req.IPv6AddressMode,
		Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
	}
	if req.GatewayIP != nil {
		s.GatewayIP = *req.GatewayIP
	}
	s, rev, err := a.store.CreateSubnet(r.Context(), s)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishCreate(w, r, p, rev, subnetPath(s.Network, s.Name), s.RevisionNumber, func() any { return s })
}

// patchSubnet applies a JSON merge patch to a subnet: allocation_pools,
// dns_servers, host_routes, enable_dhcp, description and tags change; the
// other fields answer 400 naming the field unless sent unchanged.
func (a *API) patchSubnet(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	var patch map[string]any
	if err == nil {
		patch, err = readPatch(w, r)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s, rev, err := a.store.UpdateSubnet(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["subnet"], p.ifMatch, func(s *topology.Subnet) error {
		next, err := mergePatch(*s, patch)
		*s = next
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, s.RevisionNumber)
	a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return s })
}

func (a *API) listSubnets(w http.ResponseWriter, r *http.Request) {
	spec := subnetList()
	q, err := spec.parseList(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	subnets, err := a.store.ListSubnets(r.Context(), mux.Vars(r)["network"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list := SubnetList{}
	list.Subnets, list.NextMarker = spec.apply(q, subnets)
	setNextLink(w, r, list.NextMarker)
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getSubnet(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.store.GetSubnet(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["subnet"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, s.RevisionNumber)
	writeJSON(w, http.StatusOK, s)
}

func (a *API) deleteSubnet(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseWriteParams(r)
	if err == nil && p.cascade {
		err = apiErr(http.StatusBadRequest, codeInvalidQuery, "cascade: a subnet delete does not cascade; delete or re-address the ports holding its addresses first")
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev, err := a.store.DeleteSubnet(r.Context(), mux.Vars(r)["network"], mux.Vars(r)["subnet"], p.ifMatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
}
