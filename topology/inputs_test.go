package topology

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOVSDBAddressUnique: two hosts cannot have the same OVSDB address,
// however it is written, on create and on update; other addresses (another
// port, scheme or socket) are fine.
func TestOVSDBAddressUnique(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		create := func(name, ovsdb, ip string) error {
			_, _, err := s.CreateHost(ctx, Host{Name: name, OVSDB: ovsdb, TunnelIP: ip})
			return err
		}
		require.NoError(t, create("h1", "tcp:198.51.100.1:6640", "192.0.2.1"))
		require.NoError(t, create("h2", "unix:/run/h2/db.sock", "192.0.2.2"))
		require.NoError(t, create("h3", "tcp:[2001:db8::3]:6640", "192.0.2.3"))
		before, err := s.Snapshot(ctx)
		require.NoError(t, err)

		for i, addr := range []string{
			"tcp:198.51.100.1:6640",     // as stored
			"tcp:198.51.100.1",          // the default port
			"tcp:198.51.100.1:06640",    // a leading zero
			"tcp:[::ffff:198.51.100.1]", // IPv4-mapped
			"tcp:[::ffff:198.51.100.1]:6640",
			"unix:/run/h2/db.sock",
			"unix:/run//h2/./db.sock", // the same path, not cleaned
			"unix:/run/x/../h2/db.sock",
			"tcp:[2001:0db8:0:0::3]", // IPv6 spelled out, default port
			"tcp:[2001:DB8::3]:6640", // upper case
		} {
			err := create("dup", addr, "192.0.2.99")
			requireKind(t, err, ErrConflict, "")
			assert.Contains(t, err.Error(), "already used by host", addr)
			_, _, err = s.UpdateHost(ctx, "h1", nil, func(h *Host) error { h.OVSDB = addr; return nil })
			if i < 5 {
				require.NoError(t, err, "h1 may write its own address differently: %s", addr)
				_, _, err = s.UpdateHost(ctx, "h1", nil, func(h *Host) error { h.OVSDB = "tcp:198.51.100.1:6640"; return nil })
				require.NoError(t, err)
				continue
			}
			requireKind(t, err, ErrConflict, "")
		}
		// Nothing but h1's own rewrites (undone) was stored.
		after, err := s.Snapshot(ctx)
		require.NoError(t, err)
		assert.Equal(t, before.Hosts[1:], after.Hosts[1:])
		assert.Equal(t, before.Hosts[0].OVSDB, after.Hosts[0].OVSDB)

		// Positive controls: another port, scheme, address or socket.
		for i, addr := range []string{"tcp:198.51.100.1:6641", "ssl:198.51.100.1:6640", "tcp:198.51.100.9", "unix:/run/h4/db.sock"} {
			name := "ok" + string(rune('a'+i))
			require.NoError(t, create(name, addr, "192.0.2."+string(rune('5'+i))), addr)
		}
		// A host moved to a free address, and its old address freed.
		_, _, err = s.UpdateHost(ctx, "h2", nil, func(h *Host) error { h.OVSDB = "unix:/run/h2-new/db.sock"; return nil })
		require.NoError(t, err)
		require.NoError(t, create("h5", "unix:/run/h2/db.sock", "192.0.2.50"), "h2's old address is free")
		// Deleting a host frees its address.
		_, err = s.DeleteHost(ctx, "h5", false, nil)
		require.NoError(t, err)
		require.NoError(t, create("h6", "unix:/run/h2/db.sock", "192.0.2.51"))
	})
}

// TestAddressesMustBeUnicast: tunnel IPs and port IPs are refused, naming
// the field and the reason, when they are not unicast addresses a host or
// VM can own; ordinary addresses pass.
func TestAddressesMustBeUnicast(t *testing.T) {
	bad := map[string]string{
		"255.255.255.255":  "broadcast",
		"169.254.1.1":      "link-local",
		"fe80::5":          "link-local",
		"224.0.0.1":        "multicast",
		"ff02::1":          "multicast",
		"127.0.0.1":        "loopback",
		"::1":              "loopback",
		"0.0.0.0":          "unspecified",
		"::":               "unspecified",
		"::ffff:169.254.9": "", // not an address at all
	}
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", VXLAN, 0)
		for ip, why := range bad {
			_, _, err := s.CreateHost(ctx, Host{Name: "h2", OVSDB: "tcp:198.51.100.2:6640", TunnelIP: ip})
			requireKind(t, err, ErrInvalid, "tunnel_ip")
			assert.Contains(t, err.Error(), why, ip)
			_, _, err = s.UpdateHost(ctx, "h1", nil, func(h *Host) error { h.TunnelIP = ip; return nil })
			requireKind(t, err, ErrInvalid, "tunnel_ip")
			_, _, err = s.CreatePort(ctx, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap1", IPs: []string{"198.18.0.1", ip}})
			requireKind(t, err, ErrInvalid, "ips[1]")
			assert.Contains(t, err.Error(), why, ip)
		}
		// The mapped form of a bad address is just as bad.
		_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap1", IPs: []string{"::ffff:255.255.255.255"}})
		requireKind(t, err, ErrInvalid, "ips[0]")
		// Positive controls: unicast addresses next to the refused ones.
		for i, ip := range []string{"192.0.2.2", "2001:db8::2", "198.51.100.255", "169.253.255.255"} {
			_, _, err := s.CreateHost(ctx, Host{Name: "ok" + string(rune('a'+i)), OVSDB: "tcp:198.51.100.2:" + string(rune('1'+i)), TunnelIP: ip})
			require.NoError(t, err, ip)
		}
		p := mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap1",
			IPs: []string{"198.18.0.1", "198.18.0.255", "2001:db8:100::1", "fec0::1"}})
		assert.Len(t, p.IPs, 4)
		_, _, err = s.UpdatePort(ctx, "blue", "vm1", nil, func(p *Port) error { p.IPs = []string{"fe80::1"}; return nil })
		requireKind(t, err, ErrInvalid, "ips[0]")
	})
}

// TestOwnedInterfacesRefused: a port cannot bind brtun's own bridges, patch
// ports or tunnel ports (of any type, to any peer); names that merely look
// alike are ordinary interfaces.
func TestOwnedInterfacesRefused(t *testing.T) {
	owned := []string{BridgeInt, BridgeTun, PatchTun, PatchInt}
	for _, tt := range TunnelTypes() {
		for _, peer := range []string{"192.0.2.2", "255.255.255.254", "2001:db8::2", "::ffff:192.0.2.9"} {
			owned = append(owned, TunnelPortName(tt.Name, netip.MustParseAddr(peer)))
		}
		owned = append(owned, FlowTunnelPortName(tt.Name))
	}
	require.Contains(t, owned, "vxlan-flow", "the flow-based port of --tunnel-ports flow")
	require.Contains(t, owned, "vxlan-c0000202", "the documented example")
	mine := []string{"br-int0", "br-ex", "patch-tun1", "vxlan-c000020", "vxlan-c00002020", "vxlan-C0000202", "vxlan-c000020g", "gre-", "gre-flows", "vxlan-Flow", "geneve0", "tap0", "vxlan_sys_4789"}

	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", VXLAN, 0)
		for _, name := range owned {
			assert.True(t, OwnedInterface(name), name)
			_, _, err := s.CreatePort(ctx, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: name})
			requireKind(t, err, ErrInvalid, "interface")
			assert.Contains(t, err.Error(), "brtun's own", name)
		}
		for i, name := range mine {
			assert.False(t, OwnedInterface(name), name)
			mustPort(t, s, Port{Network: "blue", Name: "vm" + string(rune('a'+i)), Host: "h1", Interface: name})
		}
		// Nor can an update move a port onto one.
		_, _, err := s.UpdatePort(ctx, "blue", "vma", nil, func(p *Port) error { p.Interface = PatchTun; return nil })
		requireKind(t, err, ErrInvalid, "interface")
	})
}
