package dhcp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func discover(t testing.TB, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	require.NoError(t, err)
	return d
}

func request(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(portMAC), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, mods...)...)
	require.NoError(t, err)
	return d
}

func ip4(s string) net.IP { return net.ParseIP(s).To4() }

// assertLeaseOptions checks everything a lease carries for v4Subnet.
func assertLeaseOptions(t *testing.T, m *dhcpv4.DHCPv4) {
	t.Helper()
	assert.Equal(t, net.IPMask(ip4("255.255.255.0")), m.SubnetMask())
	assert.Equal(t, []net.IP{ip4("198.18.0.1")}, m.Router())
	assert.Equal(t, []net.IP{ip4("198.18.0.2"), ip4("198.18.0.3")}, m.DNS(), "IPv4 DNS servers only")
	assert.Equal(t, time.Hour, m.IPAddressLeaseTime(0))
	assert.Equal(t, 30*time.Minute, m.IPAddressRenewalTime(0))
	assert.Equal(t, 52*time.Minute+30*time.Second, m.IPAddressRebindingTime(0))
	assert.Equal(t, ip4("198.18.0.1"), m.ServerIdentifier())
	mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, m.Options)
	require.NoError(t, err)
	assert.Equal(t, uint16(1400), mtu)
	routes := m.ClasslessStaticRoute()
	require.Len(t, routes, 2)
	assert.Equal(t, "198.19.5.0/24", routes[0].Dest.String())
	assert.Equal(t, ip4("198.18.0.254"), routes[0].Router.To4())
	assert.Equal(t, "0.0.0.0/0", routes[1].Dest.String(), "RFC 3442: default route with option 121")
	assert.Equal(t, ip4("198.18.0.1"), routes[1].Router.To4())
}

func TestDHCPv4DiscoverOffer(t *testing.T) {
	req := discover(t, portMAC)
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", req), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.Equal(t, dhcpv4.MessageTypeOffer, r.msg.MessageType())
	assert.Equal(t, dhcpv4.OpcodeBootReply, r.msg.OpCode)
	assert.Equal(t, req.TransactionID, r.msg.TransactionID)
	assert.Equal(t, portMAC, r.msg.ClientHWAddr)
	assert.Equal(t, ip4("198.18.0.10"), r.msg.YourIPAddr.To4())
	assertLeaseOptions(t, r.msg)
	// No broadcast flag, no ciaddr: unicast to yiaddr at chaddr.
	assert.Equal(t, portMAC, r.eth.DstMAC)
	assert.Equal(t, serverMAC, r.eth.SrcMAC)
	assert.Equal(t, ip4("198.18.0.10"), r.ip.DstIP.To4())
	assert.Equal(t, ip4("198.18.0.1"), r.ip.SrcIP.To4())
	assert.Equal(t, layers.UDPPort(67), r.udp.SrcPort)
	assert.Equal(t, layers.UDPPort(68), r.udp.DstPort)
}

func TestDHCPv4DiscoverBroadcastFlag(t *testing.T) {
	req := discover(t, portMAC, dhcpv4.WithBroadcast(true))
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", req), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.Equal(t, dhcpv4.MessageTypeOffer, r.msg.MessageType())
	assert.True(t, r.msg.IsBroadcast())
	assert.Equal(t, layers.EthernetBroadcast, r.eth.DstMAC)
	assert.Equal(t, ip4("255.255.255.255"), r.ip.DstIP.To4())
}

func TestDHCPv4Request(t *testing.T) {
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip4("198.18.0.1")))
	tests := []struct {
		name    string
		req     *dhcpv4.DHCPv4
		srcIP   string
		dstIP   string
		want    dhcpv4.MessageType
		wantDst net.IP
		wantMAC net.HardwareAddr
		wantErr error
	}{
		{name: "selecting", req: request(t, server, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.10")))),
			srcIP: "0.0.0.0", dstIP: "255.255.255.255", want: dhcpv4.MessageTypeAck, wantDst: ip4("198.18.0.10"), wantMAC: portMAC},
		{name: "selecting broadcast flag", req: request(t, server, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.10")))),
			srcIP: "0.0.0.0", dstIP: "255.255.255.255", want: dhcpv4.MessageTypeAck, wantDst: ip4("255.255.255.255"), wantMAC: layers.EthernetBroadcast},
		{name: "init-reboot", req: request(t, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.10")))),
			srcIP: "0.0.0.0", dstIP: "255.255.255.255", want: dhcpv4.MessageTypeAck, wantDst: ip4("198.18.0.10"), wantMAC: portMAC},
		{name: "renewing", req: request(t, dhcpv4.WithClientIP(ip4("198.18.0.10"))),
			srcIP: "198.18.0.10", dstIP: "198.18.0.1", want: dhcpv4.MessageTypeAck, wantDst: ip4("198.18.0.10"), wantMAC: portMAC},
		{name: "rebinding", req: request(t, dhcpv4.WithClientIP(ip4("198.18.0.10"))),
			srcIP: "198.18.0.10", dstIP: "255.255.255.255", want: dhcpv4.MessageTypeAck, wantDst: ip4("198.18.0.10"), wantMAC: portMAC},
		{name: "init-reboot other address", req: request(t, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.77")))),
			srcIP: "0.0.0.0", dstIP: "255.255.255.255", want: dhcpv4.MessageTypeNak, wantDst: ip4("255.255.255.255"), wantMAC: layers.EthernetBroadcast},
		{name: "renewing other address", req: request(t, dhcpv4.WithClientIP(ip4("198.18.0.77"))),
			srcIP: "198.18.0.77", dstIP: "198.18.0.1", want: dhcpv4.MessageTypeNak, wantDst: ip4("255.255.255.255"), wantMAC: layers.EthernetBroadcast},
		{name: "another server chosen", req: request(t, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip4("198.18.0.99"))), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip4("198.18.0.10")))),
			srcIP: "0.0.0.0", dstIP: "255.255.255.255", wantErr: ErrNotForUs},
		{name: "no address named", req: request(t), srcIP: "0.0.0.0", dstIP: "255.255.255.255", wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Answer(v4Frame(t, portMAC, tt.srcIP, tt.dstIP, tt.req), testPort(), testSubnets(), testConfig())
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, out)
				return
			}
			require.NoError(t, err)
			r := decodeV4(t, out)
			assert.Equal(t, tt.want, r.msg.MessageType())
			assert.Equal(t, tt.req.TransactionID, r.msg.TransactionID)
			assert.Equal(t, tt.wantDst, r.ip.DstIP.To4())
			assert.Equal(t, tt.wantMAC, r.eth.DstMAC)
			assert.Equal(t, ip4("198.18.0.1"), r.msg.ServerIdentifier())
			if tt.want == dhcpv4.MessageTypeAck {
				assert.Equal(t, ip4("198.18.0.10"), r.msg.YourIPAddr.To4())
				assert.Equal(t, tt.req.ClientIPAddr.To4(), r.msg.ClientIPAddr.To4())
				assertLeaseOptions(t, r.msg)
			} else {
				assert.True(t, r.msg.YourIPAddr.IsUnspecified())
				assert.False(t, r.msg.Options.Has(dhcpv4.OptionIPAddressLeaseTime))
				assert.Contains(t, r.msg.Message(), "198.18.0.")
			}
		})
	}
}

func TestDHCPv4Inform(t *testing.T) {
	req, err := dhcpv4.NewInform(portMAC, ip4("198.18.0.10"))
	require.NoError(t, err)
	out, err := Answer(v4Frame(t, portMAC, "198.18.0.10", "255.255.255.255", req), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.Equal(t, dhcpv4.MessageTypeAck, r.msg.MessageType())
	assert.True(t, r.msg.YourIPAddr.IsUnspecified(), "INFORM: no yiaddr")
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionIPAddressLeaseTime), "INFORM: no lease time")
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionRenewTimeValue))
	assert.Equal(t, []net.IP{ip4("198.18.0.1")}, r.msg.Router())
	assert.Equal(t, []net.IP{ip4("198.18.0.2"), ip4("198.18.0.3")}, r.msg.DNS())
	assert.Equal(t, ip4("198.18.0.1"), r.msg.ServerIdentifier())
	assert.Equal(t, ip4("198.18.0.10"), r.ip.DstIP.To4(), "to ciaddr")
	assert.Equal(t, portMAC, r.eth.DstMAC)
}

func TestDHCPv4ReleaseDeclineNoAnswer(t *testing.T) {
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline} {
		req := request(t, dhcpv4.WithMessageType(mt), dhcpv4.WithClientIP(ip4("198.18.0.10")),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip4("198.18.0.1"))))
		out, err := Answer(v4Frame(t, portMAC, "198.18.0.10", "198.18.0.1", req), testPort(), testSubnets(), testConfig())
		require.NoError(t, err, mt)
		assert.Nil(t, out, mt)
	}
	// Positive control: the same port's DISCOVER is answered.
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	assert.NotNil(t, out)
}

func TestDHCPv4NoAnswer(t *testing.T) {
	noV4 := testPort()
	noV4.IPs = noV4.IPs[1:]
	disabled := testSubnets()
	disabled[0].EnableDHCP = false
	noServer := testSubnets()
	noServer[0].Gateway = netip.Addr{}
	noLease := testConfig()
	noLease.LeaseTime = 0
	badMTU := testConfig()
	badMTU.MTU = 67
	outside := testPort()
	outside.IPs = []netip.Addr{mustAddr("198.18.1.10")}

	tests := []struct {
		name    string
		frame   []byte
		port    Port
		subnets []Subnet
		cfg     Config
		wantErr error
	}{
		{"positive control", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), testSubnets(), testConfig(), nil},
		{"unknown source MAC", v4Frame(t, otherMAC, "0.0.0.0", "255.255.255.255", discover(t, otherMAC)), testPort(), testSubnets(), testConfig(), ErrUnknownMAC},
		{"chaddr not the port's", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, otherMAC)), testPort(), testSubnets(), testConfig(), ErrUnknownMAC},
		{"port without IPv4", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), noV4, testSubnets(), testConfig(), ErrNoAddress},
		{"port address outside subnets", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), outside, testSubnets(), testConfig(), ErrNoAddress},
		{"DHCP disabled", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), disabled, testConfig(), ErrNoAddress},
		{"no subnets", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), nil, testConfig(), ErrNoAddress},
		{"no gateway, no server IP", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), noServer, testConfig(), ErrConfig},
		{"no lease time", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), testSubnets(), noLease, ErrConfig},
		{"MTU below 68", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), testSubnets(), badMTU, ErrConfig},
		{"relayed", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC, dhcpv4.WithGatewayIP(ip4("198.18.0.5")))), testPort(), testSubnets(), testConfig(), ErrNotForUs},
		{"server message from a VM", v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))), testPort(), testSubnets(), testConfig(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Answer(tt.frame, tt.port, tt.subnets, tt.cfg)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.NotNil(t, out)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Nil(t, out)
		})
	}
}

func TestDHCPv4WithoutGateway(t *testing.T) {
	subnets := testSubnets()
	subnets[0].Gateway = netip.Addr{}
	subnets[0].ServerIP = mustAddr("198.18.0.250")
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), subnets, testConfig())
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.Equal(t, ip4("198.18.0.250"), r.msg.ServerIdentifier())
	assert.Equal(t, ip4("198.18.0.250"), r.ip.SrcIP.To4())
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionRouter), "no router without gateway")
	routes := r.msg.ClasslessStaticRoute()
	require.Len(t, routes, 1, "host route only, no default route")
	assert.Equal(t, "198.19.5.0/24", routes[0].Dest.String())
}

func TestDHCPv4OptionalOptions(t *testing.T) {
	subnets := testSubnets()
	subnets[0].HostRoutes = nil
	subnets[0].DNSServers = nil
	cfg := testConfig()
	cfg.MTU = 0
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), testPort(), subnets, cfg)
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionClasslessStaticRoute), "no host routes: no option 121")
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionDomainNameServer))
	assert.False(t, r.msg.Options.Has(dhcpv4.OptionInterfaceMTU))
	assert.Equal(t, []net.IP{ip4("198.18.0.1")}, r.msg.Router())
}

func TestDHCPv4PicksSubnetOfPortAddress(t *testing.T) {
	second := Subnet{CIDR: mustPrefix("198.18.7.0/24"), Gateway: mustAddr("198.18.7.1"), EnableDHCP: true}
	port := Port{MAC: portMAC, IPs: []netip.Addr{mustAddr("198.18.7.20")}}
	out, err := Answer(v4Frame(t, portMAC, "0.0.0.0", "255.255.255.255", discover(t, portMAC)), port, append(testSubnets(), second), testConfig())
	require.NoError(t, err)
	r := decodeV4(t, out)
	assert.Equal(t, ip4("198.18.7.20"), r.msg.YourIPAddr.To4())
	assert.Equal(t, []net.IP{ip4("198.18.7.1")}, r.msg.Router())
	assert.Equal(t, ip4("198.18.7.1"), r.msg.ServerIdentifier())
}
