package northbound

import (
	"context"
	"net/http"

	"github.com/brtun/brtun/topology"
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

// subnetResource is the spec of /v1/networks/{network}/subnets.
func (a *API) subnetResource() resource[topology.Subnet, topology.Subnet, SubnetRequest] {
	return resource[topology.Subnet, topology.Subnet, SubnetRequest]{
		collection: "/v1/networks/{network}/subnets", item: "subnet",
		key:  func(s topology.Subnet) objKey { return objKey{parent: s.Network, name: s.Name} },
		rev:  func(s topology.Subnet) uint64 { return s.RevisionNumber },
		view: asIs[topology.Subnet],
		list: subnetList(),
		page: func(subnets []topology.Subnet, next string) any {
			return SubnetList{Subnets: subnets, NextMarker: next}
		},
		fromRequest: func(network string, req SubnetRequest) (topology.Subnet, error) {
			s := topology.Subnet{
				Network: network, Name: req.Name, CIDR: req.CIDR, GatewayIP: topology.DefaultGatewayIP(req.CIDR),
				AllocationPools: req.AllocationPools, DNSServers: req.DNSServers, HostRoutes: req.HostRoutes,
				EnableDHCP: req.EnableDHCP == nil || *req.EnableDHCP, IPv6AddressMode: req.IPv6AddressMode,
				Meta: topology.Meta{Description: req.Description, Tags: req.Tags},
			}
			if req.GatewayIP != nil {
				s.GatewayIP = *req.GatewayIP
			}
			return s, nil
		},
		// allocation_pools, dns_servers, host_routes, enable_dhcp,
		// description and tags change; the store answers 400 naming any
		// other field unless it is sent unchanged.
		patch:  mergeInto[topology.Subnet],
		create: a.store.CreateSubnet,
		get: func(ctx context.Context, k objKey) (topology.Subnet, error) {
			return a.store.GetSubnet(ctx, k.parent, k.name)
		},
		all: a.store.ListSubnets,
		update: func(ctx context.Context, k objKey, m topology.IfMatch, change func(*topology.Subnet) error) (topology.Subnet, uint64, error) {
			return a.store.UpdateSubnet(ctx, k.parent, k.name, m, change)
		},
		remove: func(ctx context.Context, k objKey, cascade bool, m topology.IfMatch) (uint64, error) {
			if cascade {
				return 0, apiErr(http.StatusBadRequest, codeInvalidQuery, "cascade: a subnet delete does not cascade; delete or re-address the ports holding its addresses first")
			}
			return a.store.DeleteSubnet(ctx, k.parent, k.name, m)
		},
	}
}
