package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Indexes into a result's Interfaces.
const (
	hostIfIndex      = 0
	containerIfIndex = 1
)

// interfaces are the result's two interfaces: the veth end in the host's
// namespace and the container's, with the port's MAC.
func interfaces(att attachment, hostMAC, portMAC, netns string, mtu int) []*current.Interface {
	return []*current.Interface{
		hostIfIndex:      {Name: att.HostIf, Mac: hostMAC, Mtu: mtu},
		containerIfIndex: {Name: att.IfName, Mac: portMAC, Mtu: mtu, Sandbox: netns},
	}
}

// brtunAddressing is the container's addressing when brtun allocated the
// port's addresses: each address with its subnet's prefix length and
// gateway; a default route per address family via the gateway of the first
// subnet of that family that has one; the subnets' host routes; their DNS
// servers. An address outside every subnet is an error: brtun only
// allocates from subnets.
func brtunAddressing(ips []string, subnets []subnet) ([]*current.IPConfig, []*types.Route, types.DNS, error) {
	var (
		configs []*current.IPConfig
		routes  []*types.Route
		dns     types.DNS
	)
	defaultVia := map[bool]bool{} // per family (true: IPv4): a default route is set
	seenDNS := map[string]bool{}
	for _, s := range ips {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return nil, nil, dns, fmt.Errorf("port address %q: %w", s, err)
		}
		sub, prefix, ok := subnetOf(addr, subnets)
		if !ok {
			return nil, nil, dns, fmt.Errorf("port address %s lies in no subnet of the network", addr)
		}
		ipc := &current.IPConfig{
			Interface: current.Int(containerIfIndex),
			Address:   net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(prefix.Bits(), addr.BitLen())},
		}
		if gw, err := netip.ParseAddr(sub.GatewayIP); err == nil {
			ipc.Gateway = net.IP(gw.AsSlice())
			if !defaultVia[addr.Is4()] {
				defaultVia[addr.Is4()] = true
				routes = append(routes, &types.Route{Dst: defaultDst(addr.Is4()), GW: ipc.Gateway})
			}
		}
		configs = append(configs, ipc)
		for _, hr := range sub.HostRoutes {
			_, dst, err := net.ParseCIDR(hr.Destination)
			if err != nil {
				return nil, nil, dns, fmt.Errorf("subnet %s: host route %q: %w", sub.Name, hr.Destination, err)
			}
			r := &types.Route{Dst: *dst}
			if hr.Nexthop != "" {
				if r.GW = net.ParseIP(hr.Nexthop); r.GW == nil {
					return nil, nil, dns, fmt.Errorf("subnet %s: host route nexthop %q is not an address", sub.Name, hr.Nexthop)
				}
			}
			routes = append(routes, r)
		}
		for _, d := range sub.DNSServers {
			if !seenDNS[d] {
				seenDNS[d] = true
				dns.Nameservers = append(dns.Nameservers, d)
			}
		}
	}
	return configs, routes, dns, nil
}

// subnetOf finds the subnet whose CIDR holds addr.
func subnetOf(addr netip.Addr, subnets []subnet) (subnet, netip.Prefix, bool) {
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if err == nil && p.Contains(addr) {
			return s, p, true
		}
	}
	return subnet{}, netip.Prefix{}, false
}

func defaultDst(v4 bool) net.IPNet {
	if v4 {
		return net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

// ipamAddressing takes the addresses, routes and DNS of an IPAM plugin's
// result, all for the container's interface.
func ipamAddressing(res *current.Result) ([]*current.IPConfig, []*types.Route, types.DNS) {
	var configs []*current.IPConfig
	for _, ipc := range res.IPs {
		c := ipc.Copy()
		c.Interface = current.Int(containerIfIndex)
		configs = append(configs, c)
	}
	return configs, res.Routes, res.DNS
}

// portIPs are the plain addresses of IPAM results, as a port carries them.
func portIPs(configs []*current.IPConfig) []string {
	var ips []string
	for _, c := range configs {
		ips = append(ips, c.Address.IP.String())
	}
	return ips
}
