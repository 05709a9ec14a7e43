package topology

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPortSecurityFields(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustHost(t, s, "h1", "192.0.2.1")
		mustNetwork(t, s, "blue", VXLAN, 0)

		p := mustPort(t, s, Port{Network: "blue", Name: "vm1", Host: "h1", Interface: "tap0", MAC: "02:00:00:00:00:01",
			IPs: []string{"198.18.0.1"}, PortSecurityEnabled: true,
			AllowedAddressPairs: []AddressPair{
				{IPAddress: "198.18.0.100"},
				{IPAddress: "198.18.1.7/24", MACAddress: "02:AB:00:00:00:99"},
				{IPAddress: "2001:DB8:100::100/128"},
				{IPAddress: "198.18.0.101/32"},
			}})
		assert.True(t, p.PortSecurityEnabled)
		assert.Equal(t, []AddressPair{
			{IPAddress: "198.18.0.100"},
			{IPAddress: "198.18.1.0/24", MACAddress: "02:ab:00:00:00:99"},
			{IPAddress: "2001:db8:100::100"},
			{IPAddress: "198.18.0.101"},
		}, p.AllowedAddressPairs, "canonical form")
		got, err := s.GetPort(ctx, "blue", "vm1")
		require.NoError(t, err)
		assert.Equal(t, p, got, "stored as answered")

		// A virtual IP may be a pair of several ports, and another port's IP.
		mustPort(t, s, Port{Network: "blue", Name: "vm2", Host: "h1", Interface: "tap1", MAC: "02:00:00:00:00:02",
			PortSecurityEnabled: true, AllowedAddressPairs: []AddressPair{{IPAddress: "198.18.0.100"}, {IPAddress: "198.18.0.1"}}})

		// A port created without a MAC gets one generated, and port
		// security applies to it.
		noMAC := mustPort(t, s, Port{Network: "blue", Name: "vm3", Host: "h1", Interface: "tap2", PortSecurityEnabled: true})
		assert.NotEmpty(t, noMAC.MAC)
		assert.True(t, noMAC.PortSecurityEnabled)
		off := mustPort(t, s, Port{Network: "blue", Name: "appl", Host: "h1", Interface: "tap3", MAC: "02:00:00:00:00:04"})
		assert.False(t, off.PortSecurityEnabled, "the store keeps what it is given; the API defaults to true")

		good := Port{Network: "blue", Name: "vm9", Host: "h1", Interface: "tap9", MAC: "02:00:00:00:00:09", PortSecurityEnabled: true}
		pairs := func(ps ...AddressPair) func(p *Port) { return func(p *Port) { p.AllowedAddressPairs = ps } }
		many := make([]AddressPair, 11)
		for i := range many {
			many[i] = AddressPair{IPAddress: fmt.Sprintf("198.18.2.%d", i+1)}
		}
		invalids := []struct {
			edit  func(p *Port)
			field string
		}{
			{pairs(AddressPair{IPAddress: "nope"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "198.18.0.5"}, AddressPair{IPAddress: "224.0.0.1"}), "allowed_address_pairs[1].ip_address"},
			{pairs(AddressPair{IPAddress: "127.0.0.1"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "0.0.0.0"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "0.0.0.0/0"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "2001:db8::/64"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "fe80::1%eth0"}), "allowed_address_pairs[0].ip_address"},
			{pairs(AddressPair{IPAddress: "198.18.0.5", MACAddress: "01:00:00:00:00:01"}), "allowed_address_pairs[0].mac_address"},
			{pairs(AddressPair{IPAddress: "198.18.0.5", MACAddress: "zz"}), "allowed_address_pairs[0].mac_address"},
			{pairs(AddressPair{IPAddress: "198.18.0.5"}, AddressPair{IPAddress: "198.18.0.5/32"}), "allowed_address_pairs[1]"},
			{pairs(many...), "allowed_address_pairs"},
			{func(p *Port) {
				p.PortSecurityEnabled = false
				p.AllowedAddressPairs = []AddressPair{{IPAddress: "198.18.0.5"}}
			}, "allowed_address_pairs"},
		}
		for _, c := range invalids {
			q := good
			c.edit(&q)
			_, _, err := s.CreatePort(ctx, q)
			requireKind(t, err, ErrInvalid, c.field)
		}
		mustPort(t, s, good)
	})
}
