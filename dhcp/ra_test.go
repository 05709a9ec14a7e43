package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type prefixOpt struct {
	prefix           netip.Prefix
	onLink, auto     bool
	valid, preferred uint32
}

func parsePrefixes(t *testing.T, r raReply) []prefixOpt {
	t.Helper()
	var out []prefixOpt
	for _, d := range r.options(layers.ICMPv6OptPrefixInfo) {
		require.Len(t, d, 30)
		a, _ := netip.AddrFromSlice(d[14:30])
		out = append(out, prefixOpt{
			prefix: netip.PrefixFrom(a, int(d[0])), onLink: d[1]&0x80 != 0, auto: d[1]&0x40 != 0,
			valid: binary.BigEndian.Uint32(d[2:]), preferred: binary.BigEndian.Uint32(d[6:]),
		})
	}
	return out
}

func TestLinkLocal(t *testing.T) {
	assert.Equal(t, mustAddr("fe80::bb:ff:fe00:fe"), LinkLocal(serverMAC))
	assert.Equal(t, mustAddr("fe80::aa:ff:fe00:a"), LinkLocal(portMAC))
}

func TestRouterSolicitation(t *testing.T) {
	out, err := Answer(rsFrame(t, portMAC, 255, false), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeRA(t, out)
	assert.Equal(t, serverMAC, r.eth.SrcMAC)
	assert.Equal(t, portMAC, r.eth.DstMAC)
	assert.Equal(t, ipSlice(LinkLocal(serverMAC)), r.ip.SrcIP, "source: router link-local from ServerMAC")
	assert.Equal(t, ipSlice(LinkLocal(portMAC)), r.ip.DstIP, "unicast to the soliciting host")
	assert.Equal(t, uint8(255), r.ip.HopLimit)
	assert.True(t, r.ra.ManagedAddressConfig(), "a stateful subnet sets M")
	assert.True(t, r.ra.OtherConfig(), "a stateful subnet sets O")
	assert.Equal(t, uint16(1800), r.ra.RouterLifetime)
	assert.Equal(t, uint8(64), r.ra.HopLimit)

	assert.Equal(t, [][]byte{[]byte(serverMAC)}, r.options(layers.ICMPv6OptSourceAddress))
	mtu := r.options(layers.ICMPv6OptMTU)
	require.Len(t, mtu, 1)
	assert.Equal(t, uint32(1400), binary.BigEndian.Uint32(mtu[0][2:]))
	assert.ElementsMatch(t, []prefixOpt{
		{prefix: mustPrefix("2001:db8:100:1::/64"), onLink: true, auto: true, valid: 86400, preferred: 14400},
		{prefix: mustPrefix("2001:db8:100:2::/64"), onLink: true, auto: false, valid: 86400, preferred: 14400},
	}, parsePrefixes(t, r))
	rdnss := r.options(layers.ICMPv6OptRecursiveDNSServer)
	require.Len(t, rdnss, 1)
	assert.Equal(t, uint32(1800), binary.BigEndian.Uint32(rdnss[0][2:]))
	assert.Equal(t, ipSlice(mustAddr("2001:db8:100::53")), net.IP(rdnss[0][6:22]))
	assert.Len(t, rdnss[0], 6+16*2, "IPv6 DNS servers of both subnets, IPv4 ones left out")
}

func TestRouterAdvertisementModes(t *testing.T) {
	noGateway := func(s Subnet) Subnet { s.Gateway = netip.Addr{}; return s }
	tests := []struct {
		name           string
		subnets        []Subnet
		managed, other bool
		lifetime       uint16
		auto           bool
	}{
		{"slaac", []Subnet{slaacSubnet()}, false, false, 1800, true},
		{"slaac without gateway", []Subnet{noGateway(slaacSubnet())}, false, false, 0, true},
		{"stateful", []Subnet{statefulSubnet()}, true, true, 1800, false},
		{"stateless", []Subnet{statelessSubnet()}, false, true, 0, true},
		{"stateless with IPv4 beside", []Subnet{v4Subnet(), statelessSubnet()}, false, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := Port{MAC: portMAC, IPs: []netip.Addr{tt.subnets[len(tt.subnets)-1].CIDR.Addr().Next()}}
			out, err := Answer(rsFrame(t, portMAC, 255, false), port, tt.subnets, testConfig())
			require.NoError(t, err)
			r := decodeRA(t, out)
			assert.Equal(t, tt.managed, r.ra.ManagedAddressConfig())
			assert.Equal(t, tt.other, r.ra.OtherConfig())
			assert.Equal(t, tt.lifetime, r.ra.RouterLifetime)
			p := parsePrefixes(t, r)
			require.Len(t, p, 1)
			assert.Equal(t, tt.auto, p[0].auto)
			assert.True(t, p[0].onLink)
		})
	}
}

func TestRouterSolicitationFromUnspecified(t *testing.T) {
	out, err := Answer(rsFrame(t, portMAC, 255, true), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeRA(t, out)
	assert.Equal(t, net.ParseIP("ff02::1"), r.ip.DstIP)
	assert.Equal(t, portMAC, r.eth.DstMAC, "still only to this port")
}

func TestRouterSolicitationNoAnswer(t *testing.T) {
	disabled := testSubnets()
	for i := range disabled {
		disabled[i].EnableDHCP = false
	}
	noMode := testSubnets()
	for i := range noMode {
		noMode[i].IPv6AddressMode = ModeNone
	}
	noV6 := Port{MAC: portMAC, IPs: []netip.Addr{mustAddr("198.18.0.10")}}
	noMTU := testConfig()
	noMTU.MTU = 0
	tests := []struct {
		name    string
		frame   []byte
		port    Port
		subnets []Subnet
		wantErr error
	}{
		{"positive control", rsFrame(t, portMAC, 255, false), testPort(), testSubnets(), nil},
		{"unknown MAC", rsFrame(t, otherMAC, 255, false), testPort(), testSubnets(), ErrUnknownMAC},
		{"hop limit not 255", rsFrame(t, portMAC, 64, false), testPort(), testSubnets(), ErrMalformed},
		{"port without IPv6", rsFrame(t, portMAC, 255, false), noV6, testSubnets(), ErrNoAddress},
		{"DHCP disabled", rsFrame(t, portMAC, 255, false), testPort(), disabled, ErrNoAddress},
		{"no address mode", rsFrame(t, portMAC, 255, false), testPort(), noMode, ErrNoAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Answer(tt.frame, tt.port, tt.subnets, testConfig())
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.NotNil(t, out)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Nil(t, out)
		})
	}
	out, err := Answer(rsFrame(t, portMAC, 255, false), testPort(), testSubnets(), noMTU)
	require.NoError(t, err)
	assert.Empty(t, decodeRA(t, out).options(layers.ICMPv6OptMTU), "MTU 0: no MTU option")
}

func TestPeriodicRouterAdvertisement(t *testing.T) {
	out, err := RouterAdvertisement(testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeRA(t, out)
	assert.Equal(t, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, r.eth.DstMAC)
	assert.Equal(t, net.ParseIP("ff02::1"), r.ip.DstIP)
	assert.Equal(t, ipSlice(LinkLocal(serverMAC)), r.ip.SrcIP)
	assert.Len(t, parsePrefixes(t, r), 2)

	// The same advertisement as the solicited one, only addressed to all.
	solicited, err := Answer(rsFrame(t, portMAC, 255, false), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	assert.Equal(t, decodeRA(t, solicited).ra.Contents, r.ra.Contents)

	// Nothing to advertise: IPv4 only, or DHCP disabled.
	out, err = RouterAdvertisement([]Subnet{v4Subnet()}, testConfig())
	require.NoError(t, err)
	assert.Nil(t, out)
	disabled := slaacSubnet()
	disabled.EnableDHCP = false
	out, err = RouterAdvertisement([]Subnet{disabled}, testConfig())
	require.NoError(t, err)
	assert.Nil(t, out)

	_, err = RouterAdvertisement(testSubnets(), Config{LeaseTime: 1})
	require.ErrorIs(t, err, ErrConfig)
}
