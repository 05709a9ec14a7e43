package topology

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustSubnet(t *testing.T, s Store, sub Subnet) Subnet {
	t.Helper()
	sub, _, err := s.CreateSubnet(context.Background(), sub)
	require.NoError(t, err)
	return sub
}

func TestSubnetCRUD(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustNetwork(t, s, "blue", "vxlan", 0)
		mustNetwork(t, s, "red", "vxlan", 0)

		sub, rev, err := s.CreateSubnet(ctx, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24",
			GatewayIP: DefaultGatewayIP("198.18.0.0/24"), EnableDHCP: true, DNSServers: []string{"198.51.100.53"},
			HostRoutes: []HostRoute{{Destination: "198.18.8.0/24", Nexthop: "198.18.0.254"}}})
		require.NoError(t, err)
		assert.Equal(t, uint64(3), rev)
		assert.Equal(t, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1",
			AllocationPools: []AllocationPool{{Start: "198.18.0.2", End: "198.18.0.254"}},
			DNSServers:      []string{"198.51.100.53"},
			HostRoutes:      []HostRoute{{Destination: "198.18.8.0/24", Nexthop: "198.18.0.254"}},
			EnableDHCP:      true, Meta: Meta{Tags: []string{}, RevisionNumber: 3}}, sub)

		v6 := mustSubnet(t, s, Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8:1::/64", GatewayIP: "2001:db8:1::1"})
		assert.Equal(t, IPv6SLAAC, v6.IPv6AddressMode, "slaac is the default IPv6 mode")
		assert.Equal(t, []AllocationPool{{Start: "2001:db8:1::2", End: "2001:db8:1:0:ffff:ffff:ffff:ffff"}}, v6.AllocationPools)

		// No gateway: the pool starts right after the network address.
		nogw := mustSubnet(t, s, Subnet{Network: "red", Name: "v4", CIDR: "198.18.0.0/24"})
		assert.Equal(t, "", nogw.GatewayIP)
		assert.Equal(t, []AllocationPool{{Start: "198.18.0.1", End: "198.18.0.254"}}, nogw.AllocationPools,
			"another network may reuse the CIDR")
		// A gateway in the middle splits the default pool.
		mid := mustSubnet(t, s, Subnet{Network: "red", Name: "mid", CIDR: "198.18.1.0/29", GatewayIP: "198.18.1.3"})
		assert.Equal(t, []AllocationPool{{Start: "198.18.1.1", End: "198.18.1.2"}, {Start: "198.18.1.4", End: "198.18.1.6"}}, mid.AllocationPools)

		got, err := s.GetSubnet(ctx, "blue", "v4")
		require.NoError(t, err)
		assert.Equal(t, sub, got)
		list, err := s.ListSubnets(ctx, "blue")
		require.NoError(t, err)
		assert.Equal(t, []Subnet{sub, v6}, list)
		all, err := s.ListSubnets(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, []Subnet{sub, v6, mid, nogw}, all, "by network, then name")
		snap, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Equal(t, all, snap.Subnets)

		_, err = s.GetSubnet(ctx, "blue", "nope")
		requireKind(t, err, ErrNotFound, "")
		_, err = s.ListSubnets(ctx, "green")
		requireKind(t, err, ErrNotFound, "")
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "green", Name: "x", CIDR: "198.18.9.0/24"})
		requireKind(t, err, ErrNotFound, "")
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.9.0/24"})
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "blue", Name: "wide", CIDR: "198.18.0.0/16"})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), `overlaps 198.18.0.0/24 of subnet "v4"`)

		// Update: pools, DNS, routes and enable_dhcp change; the rest cannot.
		upd, rev, err := s.UpdateSubnet(ctx, "blue", "v4", IfMatch{sub.RevisionNumber}, func(x *Subnet) error {
			x.AllocationPools = []AllocationPool{{Start: "198.18.0.100", End: "198.18.0.199"}}
			x.DNSServers = nil
			x.EnableDHCP = false
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, rev, upd.RevisionNumber)
		assert.Equal(t, []AllocationPool{{Start: "198.18.0.100", End: "198.18.0.199"}}, upd.AllocationPools)
		assert.Equal(t, []string{}, upd.DNSServers)
		assert.False(t, upd.EnableDHCP)
		_, _, err = s.UpdateSubnet(ctx, "blue", "v4", IfMatch{sub.RevisionNumber}, func(*Subnet) error { return nil })
		require.ErrorIs(t, err, ErrPrecondition)
		for field, edit := range map[string]func(*Subnet){
			"cidr":              func(x *Subnet) { x.CIDR = "198.18.5.0/24" },
			"gateway_ip":        func(x *Subnet) { x.GatewayIP = "198.18.0.9" },
			"name":              func(x *Subnet) { x.Name = "other" },
			"network":           func(x *Subnet) { x.Network = "red" },
			"ipv6_address_mode": func(x *Subnet) { x.IPv6AddressMode = IPv6DHCPv6Stateful },
		} {
			_, _, err = s.UpdateSubnet(ctx, "blue", "v4", nil, func(x *Subnet) error { edit(x); return nil })
			requireKind(t, err, ErrInvalid, field)
		}
		_, _, err = s.UpdateSubnet(ctx, "blue", "v4", nil, func(x *Subnet) error {
			x.AllocationPools = []AllocationPool{{Start: "198.18.0.0", End: "198.18.0.10"}}
			return nil
		})
		requireKind(t, err, ErrInvalid, "allocation_pools[0]")

		// A network delete takes its subnets along; the CIDR is free again.
		_, err = s.DeleteNetwork(ctx, "red", false, nil)
		require.NoError(t, err)
		all, err = s.ListSubnets(ctx, "")
		require.NoError(t, err)
		assert.Len(t, all, 2)
		mustNetwork(t, s, "red", "vxlan", 0)
		list, err = s.ListSubnets(ctx, "red")
		require.NoError(t, err)
		assert.Empty(t, list, "a new network of the same name starts without subnets")

		_, err = s.DeleteSubnet(ctx, "blue", "v6", IfMatch{1})
		require.ErrorIs(t, err, ErrPrecondition)
		_, err = s.DeleteSubnet(ctx, "blue", "v6", nil)
		require.NoError(t, err)
		_, err = s.DeleteSubnet(ctx, "blue", "v6", nil)
		requireKind(t, err, ErrNotFound, "")
	})
}

func TestSubnetValidation(t *testing.T) {
	cases := []struct {
		name  string
		sub   Subnet
		field string
	}{
		{"bad name", Subnet{Name: "A", CIDR: "198.18.0.0/24"}, "name"},
		{"not a cidr", Subnet{Name: "s", CIDR: "198.18.0.0"}, "cidr"},
		{"host bits", Subnet{Name: "s", CIDR: "198.18.0.1/24"}, "cidr"},
		{"too small v4", Subnet{Name: "s", CIDR: "198.18.0.0/31"}, "cidr"},
		{"too small v6", Subnet{Name: "s", CIDR: "2001:db8::/127", IPv6AddressMode: IPv6DHCPv6Stateful}, "cidr"},
		{"multicast", Subnet{Name: "s", CIDR: "224.0.0.0/24"}, "cidr"},
		{"unspecified", Subnet{Name: "s", CIDR: "0.0.0.0/8"}, "cidr"},
		{"loopback v6", Subnet{Name: "s", CIDR: "::1/128"}, "cidr"},
		{"link-local v4", Subnet{Name: "s", CIDR: "169.254.0.0/24"}, "cidr"},
		{"holds link-local v4", Subnet{Name: "s", CIDR: "169.0.0.0/8"}, "cidr"},
		{"link-local v6", Subnet{Name: "s", CIDR: "fe80::/64"}, "cidr"},
		{"gateway outside", Subnet{Name: "s", CIDR: "198.18.0.0/24", GatewayIP: "198.18.1.1"}, "gateway_ip"},
		{"gateway is network", Subnet{Name: "s", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.0"}, "gateway_ip"},
		{"gateway is broadcast", Subnet{Name: "s", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.255"}, "gateway_ip"},
		{"pool outside", Subnet{Name: "s", CIDR: "198.18.0.0/24", AllocationPools: []AllocationPool{{"198.18.0.10", "198.18.1.10"}}}, "allocation_pools[0]"},
		{"pool reversed", Subnet{Name: "s", CIDR: "198.18.0.0/24", AllocationPools: []AllocationPool{{"198.18.0.10", "198.18.0.5"}}}, "allocation_pools[0]"},
		{"pool holds gateway", Subnet{Name: "s", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1", AllocationPools: []AllocationPool{{"198.18.0.1", "198.18.0.5"}}}, "allocation_pools[0]"},
		{"pool holds broadcast", Subnet{Name: "s", CIDR: "198.18.0.0/24", AllocationPools: []AllocationPool{{"198.18.0.200", "198.18.0.255"}}}, "allocation_pools[0]"},
		{"pools overlap", Subnet{Name: "s", CIDR: "198.18.0.0/24", AllocationPools: []AllocationPool{{"198.18.0.10", "198.18.0.20"}, {"198.18.0.20", "198.18.0.30"}}}, "allocation_pools[1]"},
		{"bad dns", Subnet{Name: "s", CIDR: "198.18.0.0/24", DNSServers: []string{"dns.example"}}, "dns_servers[0]"},
		{"bad route destination", Subnet{Name: "s", CIDR: "198.18.0.0/24", HostRoutes: []HostRoute{{"198.18.8.1/24", "198.18.0.1"}}}, "host_routes[0].destination"},
		{"route family", Subnet{Name: "s", CIDR: "198.18.0.0/24", HostRoutes: []HostRoute{{"198.18.8.0/24", "2001:db8::1"}}}, "host_routes[0].nexthop"},
		{"v6 mode on v4", Subnet{Name: "s", CIDR: "198.18.0.0/24", IPv6AddressMode: IPv6SLAAC}, "ipv6_address_mode"},
		{"unknown v6 mode", Subnet{Name: "s", CIDR: "2001:db8::/64", IPv6AddressMode: "dhcp"}, "ipv6_address_mode"},
		{"slaac needs /64", Subnet{Name: "s", CIDR: "2001:db8::/80"}, "ipv6_address_mode"},
		{"stateless needs /64", Subnet{Name: "s", CIDR: "2001:db8::/96", IPv6AddressMode: IPv6DHCPv6Stateless}, "ipv6_address_mode"},
		{"bad tag", Subnet{Name: "s", CIDR: "198.18.0.0/24", Meta: Meta{Tags: []string{"a b"}}}, "tags[0]"},
	}
	backends(t, func(t *testing.T, s Store) {
		mustNetwork(t, s, "blue", "vxlan", 0)
		for _, c := range cases {
			c.sub.Network = "blue"
			_, _, err := s.CreateSubnet(context.Background(), c.sub)
			requireKind(t, err, ErrInvalid, c.field)
		}
		// Stateful DHCPv6 takes any prefix length up to /126.
		mustSubnet(t, s, Subnet{Network: "blue", Name: "s6", CIDR: "2001:db8::/120", IPv6AddressMode: IPv6DHCPv6Stateful})
		list, err := s.ListSubnets(context.Background(), "blue")
		require.NoError(t, err)
		assert.Len(t, list, 1, "only the valid subnet was stored")
	})
}

func TestPortAddressesFromSubnets(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", "vxlan", 0)
		mustNetwork(t, s, "red", "vxlan", 0)
		mustSubnet(t, s, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/29", GatewayIP: "198.18.0.1"})
		mustSubnet(t, s, Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8:1::/64", GatewayIP: "2001:db8:1::1"})
		mustSubnet(t, s, Subnet{Network: "blue", Name: "v6s", CIDR: "2001:db8:2::/120", IPv6AddressMode: IPv6DHCPv6Stateful})

		a := mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap-a"})
		assert.Equal(t, "02:62:74:00:00:01", a.MAC, "a generated MAC under the default prefix")
		assert.Equal(t, []string{"198.18.0.2", "2001:db8:1:0:62:74ff:fe00:1", "2001:db8:2::1"}, a.IPs,
			"lowest free IPv4, EUI-64 on slaac, lowest free on stateful")
		b := mustPort(t, s, Port{Network: "blue", Name: "b", Host: "h1", Interface: "tap-b", MAC: "02:00:00:00:00:0b"})
		assert.Equal(t, "02:00:00:00:00:0b", b.MAC, "a given MAC is kept")
		assert.Equal(t, []string{"198.18.0.3", "2001:db8:1::ff:fe00:b", "2001:db8:2::2"}, b.IPs)

		// Networks without subnets take any address, as before, and also get a MAC.
		r := mustPort(t, s, Port{Network: "red", Name: "r", Host: "h1", Interface: "tap-r", IPs: []string{"203.0.113.0"}})
		assert.Equal(t, "02:62:74:00:00:02", r.MAC, "generated MACs are unique across networks")
		assert.Equal(t, []string{"203.0.113.0"}, r.IPs)
		r2 := mustPort(t, s, Port{Network: "red", Name: "r2", Host: "h1", Interface: "tap-r2"})
		assert.Empty(t, r2.IPs)

		// Given addresses must lie in a subnet and not be reserved.
		for ip, why := range map[string]string{
			"198.18.9.9":    "in no subnet",
			"198.18.0.0":    "the network address",
			"198.18.0.7":    "the broadcast address",
			"198.18.0.1":    "the gateway address",
			"2001:db8:1::1": "the gateway address",
			"2001:db8:1::":  "the network address",
		} {
			_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "c", Host: "h1", Interface: "tap-c", IPs: []string{"198.18.0.5", ip}})
			requireKind(t, err, ErrInvalid, "ips[1]")
			assert.Contains(t, err.Error(), why)
		}
		_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "c", Host: "h1", Interface: "tap-c", IPs: []string{"198.18.0.2"}})
		requireKind(t, err, ErrConflict, "")
		c := mustPort(t, s, Port{Network: "blue", Name: "c", Host: "h1", Interface: "tap-c", IPs: []string{"198.18.0.6"}})
		assert.Equal(t, []string{"198.18.0.6"}, c.IPs, "given addresses only: nothing allocated besides")

		// 198.18.0.4 and .5 are left; a third port takes .4, a fourth .5, a fifth finds none.
		d := mustPort(t, s, Port{Network: "blue", Name: "d", Host: "h1", Interface: "tap-d"})
		assert.Equal(t, "198.18.0.4", d.IPs[0])
		e := mustPort(t, s, Port{Network: "blue", Name: "e", Host: "h1", Interface: "tap-e"})
		assert.Equal(t, "198.18.0.5", e.IPs[0])
		_, _, err = s.CreatePort(ctx, Port{Network: "blue", Name: "f", Host: "h1", Interface: "tap-f"})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), `subnet "v4" (198.18.0.0/29) of network "blue" has no free address left`)

		// A deleted port frees its addresses: the lowest comes back.
		_, err = s.DeletePort(ctx, "blue", "a", nil)
		require.NoError(t, err)
		f := mustPort(t, s, Port{Network: "blue", Name: "f", Host: "h1", Interface: "tap-f"})
		assert.Equal(t, "198.18.0.2", f.IPs[0])
		assert.NotEqual(t, a.MAC, f.MAC, "a freed MAC is not handed out again at once")

		// Updates: an empty MAC keeps the stored one; changed IPs are checked.
		upd, _, err := s.UpdatePort(ctx, "blue", "f", nil, func(p *Port) error { p.MAC = ""; p.Description = "x"; return nil })
		require.NoError(t, err)
		assert.Equal(t, f.MAC, upd.MAC)
		assert.Equal(t, f.IPs, upd.IPs)
		_, _, err = s.UpdatePort(ctx, "blue", "f", nil, func(p *Port) error { p.IPs = []string{"198.18.0.7"}; return nil })
		requireKind(t, err, ErrInvalid, "ips[0]")
		_, _, err = s.UpdatePort(ctx, "blue", "f", nil, func(p *Port) error { p.IPs = []string{"198.18.0.3"}; return nil })
		requireKind(t, err, ErrConflict, "")
		_, _, err = s.UpdatePort(ctx, "blue", "f", nil, func(p *Port) error { p.MAC = b.MAC; return nil })
		requireKind(t, err, ErrConflict, "")
		moved, _, err := s.UpdatePort(ctx, "blue", "f", nil, func(p *Port) error { p.IPs = []string{"2001:db8:2::80"}; return nil })
		require.NoError(t, err)
		assert.Equal(t, []string{"2001:db8:2::80"}, moved.IPs)

		// A subnet cannot go while ports hold its addresses; it can once they are gone.
		_, err = s.DeleteSubnet(ctx, "blue", "v4", nil)
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), "hold addresses of 198.18.0.0/29")
		// A new subnet may not make a held address its gateway.
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "red", Name: "x", CIDR: "203.0.113.0/24"})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), `port "r" holds 203.0.113.0, the network address`)
		for _, p := range []string{"b", "c", "d", "e"} {
			_, err = s.DeletePort(ctx, "blue", p, nil)
			require.NoError(t, err)
		}
		_, err = s.DeleteSubnet(ctx, "blue", "v4", nil)
		require.NoError(t, err)
	})
}

func TestGeneratedMACs(t *testing.T) {
	prefix, err := ParseMACPrefix("0a:bc:de:f0:12")
	require.NoError(t, err)
	s := NewMemoryStore(WithMACPrefix(prefix))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	mustHost(t, s, "h1", "192.0.2.1")
	mustNetwork(t, s, "blue", "vxlan", 0)
	mustNetwork(t, s, "red", "vxlan", 0)
	// A given MAC under the prefix in another network is skipped.
	mustPort(t, s, Port{Network: "red", Name: "x", Host: "h1", Interface: "tap-x", MAC: "0a:bc:de:f0:12:01"})
	var macs []string
	for i := range 254 {
		p := mustPort(t, s, Port{Network: "blue", Name: fmt.Sprintf("p%d", i), Host: "h1", Interface: fmt.Sprintf("tap%d", i)})
		macs = append(macs, p.MAC)
	}
	assert.Equal(t, "0a:bc:de:f0:12:02", macs[0])
	assert.Equal(t, "0a:bc:de:f0:12:ff", macs[253])
	_, _, err = s.CreatePort(context.Background(), Port{Network: "blue", Name: "full", Host: "h1", Interface: "tap-full"})
	requireKind(t, err, ErrConflict, "")
	// Once one is freed, the counter wraps around and finds it.
	_, err = s.DeletePort(context.Background(), "blue", "p7", nil)
	require.NoError(t, err)
	p := mustPort(t, s, Port{Network: "blue", Name: "full", Host: "h1", Interface: "tap-full"})
	assert.Equal(t, macs[7], p.MAC)

	for _, bad := range []string{"", "01:00:00", "00:11:22", "02:00:00:00:00:00", "2:00", "zz"} {
		_, err := ParseMACPrefix(bad)
		assert.Error(t, err, bad)
	}
	d, err := ParseMACPrefix(DefaultMACPrefix)
	require.NoError(t, err)
	assert.Equal(t, DefaultMACPrefix, d.String())
}

func TestParallelAllocation(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", "vxlan", 0)
		mustSubnet(t, s, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1"})
		mustSubnet(t, s, Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8::/64", GatewayIP: "2001:db8::1"})
		const n = 50
		ports := make([]Port, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ports[i], _, errs[i] = s.CreatePort(ctx, Port{Network: "blue", Name: fmt.Sprintf("p%d", i), Host: "h1", Interface: fmt.Sprintf("tap%d", i)})
			}()
		}
		wg.Wait()
		ips, macs := map[string]string{}, map[string]string{}
		for i, p := range ports {
			require.NoError(t, errs[i])
			require.Len(t, p.IPs, 2)
			for _, ip := range p.IPs {
				assert.NotContains(t, ips, ip, "address %s given twice", ip)
				ips[ip] = p.Name
			}
			assert.NotContains(t, macs, p.MAC)
			macs[p.MAC] = p.Name
			v4 := netip.MustParseAddr(p.IPs[0])
			assert.True(t, v4.Compare(netip.MustParseAddr("198.18.0.2")) >= 0 && v4.Compare(netip.MustParseAddr("198.18.0.51")) <= 0,
				"the 50 lowest addresses are used: %s", v4)
		}
		stored, err := s.ListPorts(ctx, "blue")
		require.NoError(t, err)
		assert.Len(t, stored, n)
	})
}

// An IPv4 subnet without a gateway that has DHCP gets a DHCP server
// address, as Neutron's DHCP port takes one: the lowest pool address no
// port holds, fixed from then on, never a port's.
func TestSubnetDHCPServerAddress(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		for _, n := range []string{"blue", "red", "green", "six"} {
			mustNetwork(t, s, n, "vxlan", 0)
		}

		// With DHCP on create: the first host address; the pools stay as
		// the API describes them (the whole CIDR less network, broadcast
		// and gateway); IPAM and given addresses skip the server's.
		nogw := mustSubnet(t, s, Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24", EnableDHCP: true})
		assert.Equal(t, "", nogw.GatewayIP)
		assert.Equal(t, "198.18.0.1", nogw.DHCPServerIP)
		assert.Equal(t, []AllocationPool{{Start: "198.18.0.1", End: "198.18.0.254"}}, nogw.AllocationPools)
		a := mustPort(t, s, Port{Network: "blue", Name: "a", Host: "h1", Interface: "tap-a"})
		assert.Equal(t, []string{"198.18.0.2"}, a.IPs, "IPAM skips the DHCP server address")
		_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "b", Host: "h1", Interface: "tap-b", IPs: []string{"198.18.0.1"}})
		requireKind(t, err, ErrInvalid, "ips[0]")
		assert.Contains(t, err.Error(), "the DHCP server address")
		_, _, err = s.UpdatePort(ctx, "blue", "a", nil, func(p *Port) error { p.IPs = []string{"198.18.0.1"}; return nil })
		requireKind(t, err, ErrInvalid, "ips[0]")

		// It cannot be given or changed, and stays when DHCP goes off.
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "red", Name: "v4", CIDR: "198.18.0.0/24", EnableDHCP: true, DHCPServerIP: "198.18.0.9"})
		requireKind(t, err, ErrInvalid, "dhcp_server_ip")
		_, _, err = s.UpdateSubnet(ctx, "blue", "v4", nil, func(x *Subnet) error { x.DHCPServerIP = "198.18.0.9"; return nil })
		requireKind(t, err, ErrInvalid, "dhcp_server_ip")
		off, _, err := s.UpdateSubnet(ctx, "blue", "v4", nil, func(x *Subnet) error { x.EnableDHCP = false; return nil })
		require.NoError(t, err)
		assert.Equal(t, "198.18.0.1", off.DHCPServerIP)

		// Gateways, IPv6 and DHCP off: none.
		gw := mustSubnet(t, s, Subnet{Network: "red", Name: "v4", CIDR: "198.18.0.0/24", GatewayIP: "198.18.0.1", EnableDHCP: true})
		assert.Equal(t, "", gw.DHCPServerIP, "the gateway is the server")
		v6 := mustSubnet(t, s, Subnet{Network: "six", Name: "v6", CIDR: "2001:db8:1::/64", EnableDHCP: true})
		assert.Equal(t, "", v6.DHCPServerIP, "DHCPv6 answers from the router's link-local address")
		later := mustSubnet(t, s, Subnet{Network: "six", Name: "v4", CIDR: "198.18.3.0/24"})
		assert.Equal(t, "", later.DHCPServerIP, "no DHCP, no server address")

		// Turned on later: the lowest pool address no port holds then.
		p1 := mustPort(t, s, Port{Network: "six", Name: "p1", Host: "h1", Interface: "tap-p1", IPs: []string{"198.18.3.1"}})
		on, _, err := s.UpdateSubnet(ctx, "six", "v4", nil, func(x *Subnet) error { x.EnableDHCP = true; return nil })
		require.NoError(t, err)
		assert.Equal(t, "198.18.3.2", on.DHCPServerIP, "198.18.3.1 is %s's", p1.Name)

		// Ports that were there first keep their addresses; a subnet whose
		// pools they fill gets no server address and is refused.
		for i, ip := range []string{"198.18.2.1", "198.18.2.2"} {
			mustPort(t, s, Port{Network: "green", Name: fmt.Sprintf("g%d", i), Host: "h1", Interface: fmt.Sprintf("tap-g%d", i), IPs: []string{ip}})
		}
		_, _, err = s.CreateSubnet(ctx, Subnet{Network: "green", Name: "v4", CIDR: "198.18.2.0/30", EnableDHCP: true})
		requireKind(t, err, ErrConflict, "")
		assert.Contains(t, err.Error(), "no free address left in its allocation pools for its DHCP server")
		full := mustSubnet(t, s, Subnet{Network: "green", Name: "v4", CIDR: "198.18.2.0/30"})
		_, _, err = s.UpdateSubnet(ctx, "green", "v4", nil, func(x *Subnet) error { x.EnableDHCP = true; return nil })
		requireKind(t, err, ErrConflict, "")
		got, err := s.GetSubnet(ctx, "green", "v4")
		require.NoError(t, err)
		assert.Equal(t, full, got, "the refused update changed nothing")
	})
}
