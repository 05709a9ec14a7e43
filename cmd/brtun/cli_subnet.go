package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/spf13/cobra"
)

// subnetObject is a subnet as the CLI's verbs name it.
func subnetObject() cliObject {
	return cliObject{kind: "subnet", args: []string{"NET", "NAME"}, collection: "/v1/networks/{NET}/subnets", print: showSubnet}
}

func newSubnetCommand(o *cliOptions) *cobra.Command {
	subnet := subnetObject()
	cmd := &cobra.Command{Use: "subnet", Short: "Give networks IP ranges their ports take addresses from"}
	cmd.AddCommand(newSubnetCreateCommand(o), newSubnetSetCommand(o),
		listCommand(o, subnet, listVerb[northbound.SubnetList]{
			use: "list NET [--tag T]...", short: "List the subnets of a network", args: cobra.ExactArgs(1),
			table: anyArgs(subnetTable), tagged: "subnets",
		}),
		showCommand(o, subnet, "Show a subnet", nil),
		rmCommand(o, subnet, "Delete a subnet (refused while ports hold addresses of it)", ""))
	return cmd
}

// subnetFlags are the flags of subnet create and subnet set.
type subnetFlags struct {
	pools, dns, routes []string
	description        string
	tags               []string
}

func (f *subnetFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.pools, "pool", nil, "an allocation pool START-END (repeat for more; default the whole CIDR less network, broadcast and gateway; on set, --pool '' restores the default)")
	cmd.Flags().StringArrayVar(&f.dns, "dns", nil, "a DNS server address (repeat for more; on set, --dns '' clears them)")
	cmd.Flags().StringArrayVar(&f.routes, "route", nil, "a host route DESTINATION,NEXTHOP, e.g. 198.18.8.0/24,198.18.0.254 (repeat for more; on set, --route '' clears them)")
	metaFlags(cmd, &f.description, &f.tags)
}

// parsePools reads --pool START-END values; empty ones are dropped.
func parsePools(values []string) ([]topology.AllocationPool, error) {
	pools := []topology.AllocationPool{}
	for _, v := range values {
		if v == "" {
			continue
		}
		start, end, ok := strings.Cut(v, "-")
		if !ok || start == "" || end == "" {
			return nil, usageErrorf("--pool %q: want START-END, e.g. 198.18.0.10-198.18.0.99", v)
		}
		pools = append(pools, topology.AllocationPool{Start: start, End: end})
	}
	return pools, nil
}

// parseRoutes reads --route DESTINATION,NEXTHOP values; empty ones are dropped.
func parseRoutes(values []string) ([]topology.HostRoute, error) {
	routes := []topology.HostRoute{}
	for _, v := range values {
		if v == "" {
			continue
		}
		dst, hop, ok := strings.Cut(v, ",")
		if !ok || dst == "" || hop == "" {
			return nil, usageErrorf("--route %q: want DESTINATION,NEXTHOP, e.g. 198.18.8.0/24,198.18.0.254", v)
		}
		routes = append(routes, topology.HostRoute{Destination: dst, Nexthop: hop})
	}
	return routes, nil
}

func newSubnetCreateCommand(o *cliOptions) *cobra.Command {
	var (
		f         subnetFlags
		cidr      string
		gateway   string
		noGateway bool
		noDHCP    bool
		ipv6Mode  string
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NET NAME --cidr CIDR [--gateway IP | --no-gateway] [--pool START-END]... [--dns IP]... [--route DST,NEXTHOP]... [--no-dhcp] [--ipv6-mode slaac|dhcpv6-stateful|dhcpv6-stateless]",
		Short: "Add an IPv4 or IPv6 subnet to a network (the gateway defaults to the first host address)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := northbound.SubnetRequest{Name: args[1], CIDR: cidr, IPv6AddressMode: ipv6Mode,
				Description: f.description, Tags: f.tags}
			switch {
			case noGateway && cmd.Flags().Changed("gateway"):
				return usageErrorf("--gateway and --no-gateway exclude each other")
			case noGateway:
				req.GatewayIP = new(string)
			case cmd.Flags().Changed("gateway"):
				req.GatewayIP = &gateway
			}
			if noDHCP {
				dhcp := false
				req.EnableDHCP = &dhcp
			}
			var err error
			if req.AllocationPools, err = parsePools(f.pools); err != nil {
				return err
			}
			if req.HostRoutes, err = parseRoutes(f.routes); err != nil {
				return err
			}
			req.DNSServers = tagsOrEmpty(f.dns)
			return o.write(cmd, wait, http.MethodPost, subnetObject().path(args[0]), false, req, showSubnet)
		},
	}
	cmd.Flags().StringVar(&cidr, "cidr", "", "the subnet, e.g. 198.18.0.0/24 or 2001:db8::/64")
	cmd.Flags().StringVar(&gateway, "gateway", "", "the router address (default the first host address)")
	cmd.Flags().BoolVar(&noGateway, "no-gateway", false, "the subnet has no router")
	cmd.Flags().BoolVar(&noDHCP, "no-dhcp", false, "brtun does not answer DHCP for the subnet")
	cmd.Flags().StringVar(&ipv6Mode, "ipv6-mode", "", "IPv6 only: slaac (default; EUI-64 addresses, needs a /64), dhcpv6-stateful or dhcpv6-stateless")
	f.add(cmd)
	_ = cmd.MarkFlagRequired("cidr")
	addWaitFlag(cmd, &wait)
	return cmd
}

func newSubnetSetCommand(o *cliOptions) *cobra.Command {
	var (
		f    subnetFlags
		dhcp bool
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NET NAME [--pool START-END]... [--dns IP]... [--route DST,NEXTHOP]... [--dhcp=BOOL] [--description D] [--tag T]...",
		Short: "Change a subnet's pools, DNS servers, routes or DHCP (cidr, gateway and IPv6 mode cannot change); flags not given keep their value",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pools, err := parsePools(f.pools)
			if err != nil {
				return err
			}
			routes, err := parseRoutes(f.routes)
			if err != nil {
				return err
			}
			patch := changedFields(cmd, map[string]fieldValue{
				"pool": {"allocation_pools", pools}, "dns": {"dns_servers", tagsOrEmpty(f.dns)},
				"route": {"host_routes", routes}, "dhcp": {"enable_dhcp", dhcp},
				"description": {"description", f.description}, "tag": {"tags", tagsOrEmpty(f.tags)},
			})
			return o.patch(cmd, wait, subnetObject().path(args[0], args[1]), patch, showSubnet)
		},
	}
	cmd.Flags().BoolVar(&dhcp, "dhcp", true, "whether brtun answers DHCP for the subnet")
	f.add(cmd)
	addWaitFlag(cmd, &wait)
	return cmd
}

func showSubnet(o *cliOptions, raw []byte) error { return show(o, raw, subnetDetail) }

func poolsText(pools []topology.AllocationPool) string {
	var out []string
	for _, p := range pools {
		out = append(out, p.Start+"-"+p.End)
	}
	return strings.Join(out, ",")
}

func routesText(routes []topology.HostRoute) string {
	var out []string
	for _, r := range routes {
		out = append(out, r.Destination+" via "+r.Nexthop)
	}
	return strings.Join(out, ", ")
}

func subnetTable(w io.Writer, list northbound.SubnetList) {
	fmt.Fprintln(w, "NAME\tCIDR\tGATEWAY\tPOOLS\tDHCP\tIPV6-MODE")
	for _, s := range list.Subnets {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\n", s.Name, s.CIDR, orDash(s.GatewayIP), orDash(poolsText(s.AllocationPools)),
			s.EnableDHCP, orDash(s.IPv6AddressMode))
	}
}

func subnetDetail(w io.Writer, s topology.Subnet) {
	fmt.Fprintf(w, "Network:\t%s\n", s.Network)
	fmt.Fprintf(w, "Name:\t%s\n", s.Name)
	fmt.Fprintf(w, "CIDR:\t%s\n", s.CIDR)
	fmt.Fprintf(w, "Gateway:\t%s\n", orDash(s.GatewayIP))
	if s.DHCPServerIP != "" {
		fmt.Fprintf(w, "DHCP server:\t%s\n", s.DHCPServerIP)
	}
	fmt.Fprintf(w, "Pools:\t%s\n", orDash(poolsText(s.AllocationPools)))
	fmt.Fprintf(w, "DNS servers:\t%s\n", orDash(strings.Join(s.DNSServers, ", ")))
	fmt.Fprintf(w, "Host routes:\t%s\n", orDash(routesText(s.HostRoutes)))
	fmt.Fprintf(w, "DHCP:\t%t\n", s.EnableDHCP)
	if s.IPv6AddressMode != "" {
		fmt.Fprintf(w, "IPv6 mode:\t%s\n", s.IPv6AddressMode)
	}
	metaDetail(w, s.Meta)
}
