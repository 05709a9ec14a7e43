package topology

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// IPv6 address modes of a subnet (Neutron's names). slaac and
// dhcpv6-stateless ports take their EUI-64 address (so the prefix must be a
// /64); dhcpv6-stateful ports take the lowest free address of the pools.
const (
	IPv6SLAAC           = "slaac"
	IPv6DHCPv6Stateful  = "dhcpv6-stateful"
	IPv6DHCPv6Stateless = "dhcpv6-stateless"
	DefaultIPv6Mode     = IPv6SLAAC
)

// Bounds of a subnet.
const (
	maxSubnetDNSServers  = 16
	maxSubnetHostRoutes  = 64
	maxSubnetPools       = 64
	maxIPv4SubnetPrefix  = 30 // a /31 or /32 has no host address besides network and broadcast
	maxIPv6SubnetPrefix  = 126
	eui64SubnetPrefixLen = 64
)

// linkLocalRanges are the ranges a subnet may not overlap: hosts configure
// link-local addresses themselves, and ports may not carry them.
func linkLocalRanges() [2]netip.Prefix {
	return [2]netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}
}

// Subnet is an IP range of a network: its ports take their addresses from
// it. Names are unique within the network; the CIDRs of one network do not
// overlap (other networks may reuse them).
type Subnet struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	CIDR    string `json:"cidr"` // canonical, host bits zero
	// GatewayIP is the subnet's router address; "" for none. Ports never
	// take it.
	GatewayIP string `json:"gateway_ip"`
	// AllocationPools are the ranges ports take addresses from, never the
	// network, broadcast or gateway address. Empty on create means the
	// whole CIDR less those.
	AllocationPools []AllocationPool `json:"allocation_pools"`
	DNSServers      []string         `json:"dns_servers"`
	HostRoutes      []HostRoute      `json:"host_routes"`
	EnableDHCP      bool             `json:"enable_dhcp"`
	// IPv6AddressMode is slaac (the default), dhcpv6-stateful or
	// dhcpv6-stateless on IPv6 subnets, "" on IPv4 ones.
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"`
	// DHCPServerIP is the address brtun's DHCPv4 answers come from (the
	// server identifier) on an IPv4 subnet without a gateway, as Neutron's
	// DHCP port holds one: the lowest address of the allocation pools no
	// port held when DHCP was first enabled on the subnet. The store sets
	// it and never changes it; ports never take it. "" on subnets with a
	// gateway (the gateway is the server), on IPv6 subnets and on
	// gateway-less ones that never had DHCP enabled.
	DHCPServerIP string `json:"dhcp_server_ip,omitempty"`
	Meta
}

// AllocationPool is an inclusive range of addresses.
type AllocationPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a static route the subnet's DHCP hands out.
type HostRoute struct {
	Destination string `json:"destination"` // a CIDR
	Nexthop     string `json:"nexthop"`
}

// afterDecode fills what subnets stored by older versions lack.
func (s *Subnet) afterDecode() {
	s.Meta.afterDecode()
	if s.AllocationPools == nil {
		s.AllocationPools = []AllocationPool{}
	}
	if s.DNSServers == nil {
		s.DNSServers = []string{}
	}
	if s.HostRoutes == nil {
		s.HostRoutes = []HostRoute{}
	}
}

// DefaultGatewayIP is the gateway a subnet of cidr gets when none is given:
// its first host address. It is "" when cidr is not a prefix (the store
// then rejects the cidr).
func DefaultGatewayIP(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	return p.Masked().Addr().Next().String()
}

// subnetRange is a parsed subnet: what allocation and validation need.
type subnetRange struct {
	s       Subnet
	prefix  netip.Prefix
	gateway netip.Addr // invalid when none
	server  netip.Addr // the DHCP server address; invalid when none
	pools   [][2]netip.Addr
}

// parseSubnet parses a stored (normalized) subnet.
func parseSubnet(s Subnet) (subnetRange, error) {
	r := subnetRange{s: s}
	var err error
	if r.prefix, err = netip.ParsePrefix(s.CIDR); err != nil {
		return r, fmt.Errorf("stored subnet %s/%s: %w", s.Network, s.Name, err)
	}
	if s.GatewayIP != "" {
		if r.gateway, err = netip.ParseAddr(s.GatewayIP); err != nil {
			return r, fmt.Errorf("stored subnet %s/%s: %w", s.Network, s.Name, err)
		}
	}
	if s.DHCPServerIP != "" {
		if r.server, err = netip.ParseAddr(s.DHCPServerIP); err != nil {
			return r, fmt.Errorf("stored subnet %s/%s: %w", s.Network, s.Name, err)
		}
	}
	for _, p := range s.AllocationPools {
		start, err1 := netip.ParseAddr(p.Start)
		end, err2 := netip.ParseAddr(p.End)
		if err1 != nil || err2 != nil {
			return r, fmt.Errorf("stored subnet %s/%s: bad pool %v", s.Network, s.Name, p)
		}
		r.pools = append(r.pools, [2]netip.Addr{start, end})
	}
	return r, nil
}

// last is the highest address of the prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bits := p.Bits() - 8*i
		switch {
		case bits >= 8:
		case bits <= 0:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> bits
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// reserved reports why ip cannot be a port's address of the subnet: the
// network address, the IPv4 broadcast address, the gateway or the DHCP
// server address; "" if it can.
func (r subnetRange) reserved(ip netip.Addr) string {
	switch {
	case ip == r.prefix.Addr():
		return "the network address"
	case ip.Is4() && ip == lastAddr(r.prefix):
		return "the broadcast address"
	case r.gateway.IsValid() && ip == r.gateway:
		return "the gateway address"
	case r.server.IsValid() && ip == r.server:
		return "the DHCP server address"
	}
	return ""
}

// needsServerIP reports whether the subnet needs a DHCP server address it
// does not have yet: IPv4, DHCP enabled, no gateway.
func (s Subnet) needsServerIP() bool {
	p, err := netip.ParsePrefix(s.CIDR)
	return err == nil && p.Addr().Is4() && s.EnableDHCP && s.GatewayIP == "" && s.DHCPServerIP == ""
}

// setServerIP gives a subnet that needs one its DHCP server address: the
// lowest address of its pools that no port of the network (ports) holds,
// as a DHCP port would take it. s must be normalized.
func setServerIP(s *Subnet, ports []Port) error {
	if !s.needsServerIP() {
		return nil
	}
	r, err := parseSubnet(*s)
	if err != nil {
		return err
	}
	used := make(map[netip.Addr]bool)
	for _, p := range ports {
		for _, a := range p.IPs {
			if ip, err := netip.ParseAddr(a); err == nil {
				used[ip] = true
			}
		}
	}
	ip, ok := lowestFree(r, used)
	if !ok {
		return conflict("subnet %q (%s) has no gateway and no free address left in its allocation pools for its DHCP server; free one, or create it with a gateway",
			s.Name, s.CIDR)
	}
	s.DHCPServerIP = ip.String()
	return nil
}

// autoAddressed reports whether ports take their EUI-64 address on the subnet.
func (s Subnet) autoAddressed() bool {
	return s.IPv6AddressMode == IPv6SLAAC || s.IPv6AddressMode == IPv6DHCPv6Stateless
}

// normalizeSubnet validates s and returns it in canonical form with its
// defaults (pools, IPv6 mode). Other subnets of the network are the
// caller's to check.
func normalizeSubnet(s Subnet) (Subnet, error) {
	if err := validateName("name", s.Name); err != nil {
		return Subnet{}, err
	}
	prefix, err := netip.ParsePrefix(s.CIDR)
	if err != nil || prefix.Addr().Zone() != "" || prefix.Addr().Is4In6() {
		return Subnet{}, invalid("cidr", "%q is not an IPv4 or IPv6 CIDR such as 198.18.0.0/24", s.CIDR)
	}
	if prefix != prefix.Masked() {
		return Subnet{}, invalid("cidr", "%s has host bits set (did you mean %s?)", prefix, prefix.Masked())
	}
	if a := prefix.Addr(); a.IsMulticast() || a.IsLoopback() || a.IsUnspecified() {
		return Subnet{}, invalid("cidr", "%s cannot hold VM addresses", prefix)
	}
	for _, ll := range linkLocalRanges() {
		if prefix.Overlaps(ll) {
			return Subnet{}, invalid("cidr", "%s overlaps the link-local range %s, which VMs configure themselves", prefix, ll)
		}
	}
	if prefix.Addr().Is4() && prefix.Bits() > maxIPv4SubnetPrefix {
		return Subnet{}, invalid("cidr", "%s is too small (at most /%d for IPv4)", prefix, maxIPv4SubnetPrefix)
	}
	if prefix.Addr().Is6() && prefix.Bits() > maxIPv6SubnetPrefix {
		return Subnet{}, invalid("cidr", "%s is too small (at most /%d for IPv6)", prefix, maxIPv6SubnetPrefix)
	}
	s.CIDR = prefix.String()
	r := subnetRange{prefix: prefix}

	if prefix.Addr().Is4() {
		if s.IPv6AddressMode != "" {
			return Subnet{}, invalid("ipv6_address_mode", "is for IPv6 subnets only (%s is IPv4)", prefix)
		}
	} else {
		if s.IPv6AddressMode == "" {
			s.IPv6AddressMode = DefaultIPv6Mode
		}
		switch s.IPv6AddressMode {
		case IPv6SLAAC, IPv6DHCPv6Stateless:
			if prefix.Bits() != eui64SubnetPrefixLen {
				return Subnet{}, invalid("ipv6_address_mode", "%s needs a /64 (EUI-64 addresses); %s is a /%d (use %s)",
					s.IPv6AddressMode, prefix, prefix.Bits(), IPv6DHCPv6Stateful)
			}
		case IPv6DHCPv6Stateful:
		default:
			return Subnet{}, invalid("ipv6_address_mode", "%q is not an IPv6 address mode (want %s, %s or %s)",
				s.IPv6AddressMode, IPv6SLAAC, IPv6DHCPv6Stateful, IPv6DHCPv6Stateless)
		}
	}

	if s.GatewayIP != "" {
		gw, err := parseUnicast(s.GatewayIP)
		if err != nil || !prefix.Contains(gw) {
			return Subnet{}, invalid("gateway_ip", "%q is not an address of %s (or \"\" for no gateway)", s.GatewayIP, prefix)
		}
		if why := r.reserved(gw); why != "" {
			return Subnet{}, invalid("gateway_ip", "%s is %s of %s", gw, why, prefix)
		}
		r.gateway = gw
		s.GatewayIP = gw.String()
	}

	if s.AllocationPools, err = normalizePools(r, s.AllocationPools); err != nil {
		return Subnet{}, err
	}
	if len(s.DNSServers) > maxSubnetDNSServers {
		return Subnet{}, invalid("dns_servers", "at most %d servers", maxSubnetDNSServers)
	}
	dns := make([]string, 0, len(s.DNSServers))
	for i, d := range s.DNSServers {
		ip, err := parseUnicast(d)
		if err != nil {
			return Subnet{}, invalid("dns_servers["+strconv.Itoa(i)+"]", "%q is not a unicast IP address", d)
		}
		dns = append(dns, ip.String())
	}
	s.DNSServers = dns
	if len(s.HostRoutes) > maxSubnetHostRoutes {
		return Subnet{}, invalid("host_routes", "at most %d routes", maxSubnetHostRoutes)
	}
	routes := make([]HostRoute, 0, len(s.HostRoutes))
	for i, hr := range s.HostRoutes {
		field := "host_routes[" + strconv.Itoa(i) + "]"
		dst, err := netip.ParsePrefix(hr.Destination)
		if err != nil || dst.Addr().Zone() != "" || dst != dst.Masked() {
			return Subnet{}, invalid(field+".destination", "%q is not a CIDR with zero host bits", hr.Destination)
		}
		hop, err := parseUnicast(hr.Nexthop)
		if err != nil || hop.Is4() != dst.Addr().Is4() {
			return Subnet{}, invalid(field+".nexthop", "%q is not a unicast address of the destination's family", hr.Nexthop)
		}
		routes = append(routes, HostRoute{Destination: dst.String(), Nexthop: hop.String()})
	}
	s.HostRoutes = routes
	if s.Meta, err = normalizeMeta(s.Meta); err != nil {
		return Subnet{}, err
	}
	return s, nil
}

// parseUnicast parses an address that may be a host's: not unspecified,
// multicast or loopback, no zone; IPv4-mapped addresses become IPv4.
func parseUnicast(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, err
	}
	ip = ip.Unmap()
	if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return ip, fmt.Errorf("%s is not a unicast address", ip)
	}
	return ip, nil
}

// normalizePools checks given pools, or builds the default ones: the whole
// CIDR less the network, broadcast and gateway addresses.
func normalizePools(r subnetRange, pools []AllocationPool) ([]AllocationPool, error) {
	if len(pools) == 0 {
		first, last := r.prefix.Addr().Next(), lastAddr(r.prefix)
		if r.prefix.Addr().Is4() {
			last = last.Prev()
		}
		out := []AllocationPool{}
		add := func(a, b netip.Addr) {
			if a.IsValid() && b.IsValid() && a.Compare(b) <= 0 {
				out = append(out, AllocationPool{Start: a.String(), End: b.String()})
			}
		}
		if r.gateway.IsValid() && r.gateway.Compare(first) >= 0 && r.gateway.Compare(last) <= 0 {
			add(first, r.gateway.Prev())
			add(r.gateway.Next(), last)
		} else {
			add(first, last)
		}
		return out, nil
	}
	if len(pools) > maxSubnetPools {
		return nil, invalid("allocation_pools", "at most %d pools", maxSubnetPools)
	}
	var ranges [][2]netip.Addr
	for i, p := range pools {
		field := "allocation_pools[" + strconv.Itoa(i) + "]"
		start, err1 := netip.ParseAddr(p.Start)
		end, err2 := netip.ParseAddr(p.End)
		if err1 != nil || err2 != nil || !r.prefix.Contains(start) || !r.prefix.Contains(end) {
			return nil, invalid(field, "%q..%q is not a range of addresses of %s", p.Start, p.End, r.prefix)
		}
		if start.Compare(end) > 0 {
			return nil, invalid(field, "start %s is above end %s", start, end)
		}
		for _, res := range []netip.Addr{r.prefix.Addr(), lastAddr(r.prefix), r.gateway} {
			if res.IsValid() && start.Compare(res) <= 0 && res.Compare(end) <= 0 {
				if why := r.reserved(res); why != "" {
					return nil, invalid(field, "%s..%s holds %s (%s)", start, end, why, res)
				}
			}
		}
		for j, o := range ranges {
			if start.Compare(o[1]) <= 0 && o[0].Compare(end) <= 0 {
				return nil, invalid(field, "%s..%s overlaps allocation_pools[%d]", start, end, j)
			}
		}
		ranges = append(ranges, [2]netip.Addr{start, end})
	}
	slices.SortFunc(ranges, func(a, b [2]netip.Addr) int { return a[0].Compare(b[0]) })
	out := make([]AllocationPool, 0, len(ranges))
	for _, rg := range ranges {
		out = append(out, AllocationPool{Start: rg[0].String(), End: rg[1].String()})
	}
	return out, nil
}

func (s *store) CreateSubnet(ctx context.Context, req Subnet) (Subnet, uint64, error) {
	sub := req
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		if _, err := mustGetNetwork(t, req.Network); err != nil {
			return err
		}
		if req.DHCPServerIP != "" {
			return invalid("dhcp_server_ip", "is chosen by brtun (on IPv4 subnets without a gateway), not given")
		}
		var err error
		if sub, err = normalizeSubnet(req); err != nil {
			return err
		}
		if _, found, err := getSubnet(t, sub.Network, sub.Name); err != nil || found {
			if err == nil {
				err = conflict("subnet %q already exists in network %q", sub.Name, sub.Network)
			}
			return err
		}
		r, err := parseSubnet(sub)
		if err != nil {
			return err
		}
		others, err := scanJSON[Subnet](t, bucketSubnets, key(sub.Network, ""))
		if err != nil {
			return err
		}
		for _, o := range others {
			op, err := netip.ParsePrefix(o.CIDR)
			if err != nil {
				return fmt.Errorf("stored subnet %s/%s: %w", o.Network, o.Name, err)
			}
			if op.Overlaps(r.prefix) {
				return conflict("cidr %s overlaps %s of subnet %q in network %q", r.prefix, op, o.Name, sub.Network)
			}
		}
		ports, err := scanJSON[Port](t, bucketPorts, key(sub.Network, ""))
		if err != nil {
			return err
		}
		for _, p := range ports {
			for _, addr := range p.IPs {
				if ip, err := netip.ParseAddr(addr); err == nil && r.prefix.Contains(ip) {
					if why := r.reserved(ip); why != "" {
						return conflict("port %q holds %s, %s of %s", p.Name, ip, why, r.prefix)
					}
				}
			}
		}
		if err := setServerIP(&sub, ports); err != nil {
			return err
		}
		sub.RevisionNumber = rev
		return putJSON(t, bucketSubnets, key(sub.Network, sub.Name), sub)
	})
	if err != nil {
		return Subnet{}, 0, fmt.Errorf("create subnet %q in network %q: %w", req.Name, req.Network, err)
	}
	return sub, rev, nil
}

func (s *store) GetSubnet(ctx context.Context, network, name string) (Subnet, error) {
	var sub Subnet
	err := s.read(ctx, func(t txn) error {
		var err error
		sub, err = mustGetSubnet(t, network, name)
		return err
	})
	if err != nil {
		return Subnet{}, fmt.Errorf("get subnet %q in network %q: %w", name, network, err)
	}
	return sub, nil
}

func (s *store) ListSubnets(ctx context.Context, network string) ([]Subnet, error) {
	var subnets []Subnet
	err := s.read(ctx, func(t txn) error {
		if network != "" {
			if _, err := mustGetNetwork(t, network); err != nil {
				return err
			}
			network = key(network, "")
		}
		var err error
		subnets, err = scanJSON[Subnet](t, bucketSubnets, network)
		sortSubnets(subnets)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list subnets of network %q: %w", network, err)
	}
	return subnets, nil
}

func (s *store) UpdateSubnet(ctx context.Context, network, name string, ifMatch IfMatch, change func(*Subnet) error) (Subnet, uint64, error) {
	var sub Subnet
	rev, err := s.write(ctx, func(t txn, rev uint64) error {
		old, err := mustGetSubnet(t, network, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(old.RevisionNumber); err != nil {
			return err
		}
		sub = old
		sub.AllocationPools = slices.Clone(old.AllocationPools)
		sub.DNSServers = slices.Clone(old.DNSServers)
		sub.HostRoutes = slices.Clone(old.HostRoutes)
		sub.Tags = slices.Clone(old.Tags)
		if err := change(&sub); err != nil {
			return err
		}
		for _, f := range []struct {
			field string
			same  bool
		}{
			{"network", sub.Network == old.Network},
			{"name", sub.Name == old.Name},
			{"cidr", sub.CIDR == old.CIDR},
			{"gateway_ip", sub.GatewayIP == old.GatewayIP},
			{"ipv6_address_mode", sub.IPv6AddressMode == old.IPv6AddressMode},
			{"dhcp_server_ip", sub.DHCPServerIP == old.DHCPServerIP},
			{"revision_number", sub.RevisionNumber == old.RevisionNumber},
		} {
			if err := immutable(f.field, f.same); err != nil {
				return err
			}
		}
		if sub, err = normalizeSubnet(sub); err != nil {
			return err
		}
		if sub.needsServerIP() { // DHCP turned on for the first time
			ports, err := scanJSON[Port](t, bucketPorts, key(sub.Network, ""))
			if err != nil {
				return err
			}
			if err := setServerIP(&sub, ports); err != nil {
				return err
			}
		}
		sub.RevisionNumber = rev
		return putJSON(t, bucketSubnets, key(sub.Network, sub.Name), sub)
	})
	if err != nil {
		return Subnet{}, 0, fmt.Errorf("update subnet %q in network %q: %w", name, network, err)
	}
	return sub, rev, nil
}

func (s *store) DeleteSubnet(ctx context.Context, network, name string, ifMatch IfMatch) (uint64, error) {
	rev, err := s.write(ctx, func(t txn, _ uint64) error {
		sub, err := mustGetSubnet(t, network, name)
		if err != nil {
			return err
		}
		if err := ifMatch.check(sub.RevisionNumber); err != nil {
			return err
		}
		prefix, err := netip.ParsePrefix(sub.CIDR)
		if err != nil {
			return fmt.Errorf("stored subnet %s/%s: %w", network, name, err)
		}
		ports, err := scanJSON[Port](t, bucketPorts, key(network, ""))
		if err != nil {
			return err
		}
		var holders []string
		for _, p := range ports {
			if slices.ContainsFunc(p.IPs, func(addr string) bool {
				ip, err := netip.ParseAddr(addr)
				return err == nil && prefix.Contains(ip)
			}) {
				holders = append(holders, p.Name)
			}
		}
		if len(holders) > 0 {
			return conflict("%d port(s) of network %q hold addresses of %s (%s); delete them or change their ips first",
				len(holders), network, prefix, clip(fmt.Sprint(holders)))
		}
		return t.del(bucketSubnets, key(network, name))
	})
	if err != nil {
		return 0, fmt.Errorf("delete subnet %q in network %q: %w", name, network, err)
	}
	return rev, nil
}

// deleteSubnets removes the subnets of a network that is deleted, as many as
// fit while keeping room for reserve more writes; done is false when some
// did not fit.
func deleteSubnets(t *budgetTxn, network string, reserve int) (done bool, err error) {
	subnets, err := t.scan(bucketSubnets, key(network, ""))
	if err != nil {
		return false, err
	}
	for _, kv := range subnets {
		if !t.room(1 + reserve) {
			return false, nil
		}
		if err := t.del(bucketSubnets, kv.key); err != nil {
			return false, err
		}
	}
	return true, nil
}

// getSubnet reads a subnet; invalid names are simply absent.
func getSubnet(t txn, network, name string) (Subnet, bool, error) {
	var s Subnet
	if !ValidName(network) || !ValidName(name) {
		return s, false, nil
	}
	found, err := getJSON(t, bucketSubnets, key(network, name), &s)
	return s, found, err
}

// mustGetSubnet reads a subnet, telling an unknown network from an unknown subnet.
func mustGetSubnet(t txn, network, name string) (Subnet, error) {
	if _, err := mustGetNetwork(t, network); err != nil {
		return Subnet{}, err
	}
	s, found, err := getSubnet(t, network, name)
	if err == nil && !found {
		err = notFound("subnet %q does not exist in network %q", name, network)
	}
	return s, err
}

// sortSubnets sorts subnets by network, then name (see sortPorts).
func sortSubnets(subnets []Subnet) {
	slices.SortFunc(subnets, func(a, b Subnet) int {
		return cmp.Or(cmp.Compare(a.Network, b.Network), cmp.Compare(a.Name, b.Name))
	})
}

// SubnetUsage is how full a subnet's allocation pools are.
type SubnetUsage struct {
	Network, Name string
	// PoolSize is the number of addresses in the pools (a float: an IPv6
	// pool may hold 2^64).
	PoolSize float64
	// PoolUsed is the number of port addresses inside the pools.
	PoolUsed int
}

// SubnetsUsage reports the pool usage of every subnet of snap.
func SubnetsUsage(snap Snapshot) []SubnetUsage {
	used := make(map[string]map[netip.Addr]bool) // network -> port addresses
	for _, p := range snap.Ports {
		for _, s := range p.IPs {
			if ip, err := netip.ParseAddr(s); err == nil {
				if used[p.Network] == nil {
					used[p.Network] = make(map[netip.Addr]bool)
				}
				used[p.Network][ip] = true
			}
		}
	}
	out := make([]SubnetUsage, 0, len(snap.Subnets))
	for _, s := range snap.Subnets {
		r, err := parseSubnet(s)
		if err != nil {
			continue // a corrupt subnet has no usage to report
		}
		u := SubnetUsage{Network: s.Network, Name: s.Name}
		for _, pool := range r.pools {
			u.PoolSize += rangeSize(pool[0], pool[1])
		}
		for ip := range used[s.Network] {
			if slices.ContainsFunc(r.pools, func(p [2]netip.Addr) bool { return p[0].Compare(ip) <= 0 && ip.Compare(p[1]) <= 0 }) {
				u.PoolUsed++
			}
		}
		out = append(out, u)
	}
	return out
}

// rangeSize is the number of addresses from start to end, inclusive.
func rangeSize(start, end netip.Addr) float64 {
	a, b := start.As16(), end.As16()
	value := func(x [16]byte) float64 {
		var v float64
		for _, c := range x {
			v = v*256 + float64(c)
		}
		return v
	}
	// Exact for every range below 2^53 addresses; IPv6 pools beyond are
	// reported to float precision.
	var diff [16]byte
	borrow := 0
	for i := 15; i >= 0; i-- {
		d := int(b[i]) - int(a[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		diff[i] = byte(d)
	}
	return value(diff) + 1
}
