package dhcp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var clientDUID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: portMAC}

func solicit(t testing.TB) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewSolicit(portMAC)
	require.NoError(t, err)
	return m
}

// v6Message builds a client message of type mt with client ID, an IA_NA
// (IAID 1) naming addrs, and the options given.
func v6Message(t testing.TB, mt dhcpv6.MessageType, addrs []string, opts ...dhcpv6.Option) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	require.NoError(t, err)
	m.MessageType = mt
	m.AddOption(dhcpv6.OptClientID(clientDUID))
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
	for _, a := range addrs {
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(a)})
	}
	m.AddOption(ia)
	for _, o := range opts {
		m.AddOption(o)
	}
	return m
}

func ourServerID() dhcpv6.Option { return dhcpv6.OptServerID(serverDUID(serverMAC)) }

func assertAddressed(t *testing.T, r v6Reply) {
	t.Helper()
	assert.Equal(t, serverMAC, r.eth.SrcMAC)
	assert.Equal(t, portMAC, r.eth.DstMAC)
	assert.Equal(t, ipSlice(LinkLocal(serverMAC)), r.ip.SrcIP)
	assert.Equal(t, ipSlice(LinkLocal(portMAC)), r.ip.DstIP)
	assert.Equal(t, layers.UDPPort(547), r.udp.SrcPort)
	assert.Equal(t, layers.UDPPort(546), r.udp.DstPort)
	sid := r.msg.Options.ServerID()
	require.NotNil(t, sid)
	assert.True(t, sid.Equal(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: serverMAC}), "server DUID-LL from ServerMAC")
}

func TestDHCPv6SolicitAdvertise(t *testing.T) {
	req := solicit(t)
	out, err := Answer(v6Frame(t, portMAC, req), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeV6(t, out)
	assertAddressed(t, r)
	assert.Equal(t, dhcpv6.MessageTypeAdvertise, r.msg.MessageType)
	assert.Equal(t, req.TransactionID, r.msg.TransactionID)
	assert.True(t, r.msg.Options.ClientID().Equal(req.Options.ClientID()))
	ia := r.msg.Options.OneIANA()
	require.NotNil(t, ia)
	assert.Equal(t, req.Options.OneIANA().IaId, ia.IaId)
	assert.Equal(t, 30*time.Minute, ia.T1)
	assert.Equal(t, 48*time.Minute, ia.T2)
	addrs := ia.Options.Addresses()
	require.Len(t, addrs, 1)
	assert.Equal(t, net.ParseIP("2001:db8:100:2::10"), addrs[0].IPv6Addr, "the port's address in the stateful subnet")
	assert.Equal(t, time.Hour, addrs[0].ValidLifetime)
	assert.Equal(t, time.Hour, addrs[0].PreferredLifetime)
	assert.Equal(t, []net.IP{net.ParseIP("2001:db8:100::53")}, r.msg.Options.DNS(), "IPv6 DNS servers only")
	assert.Equal(t, uint8(255), r.msg.Options.Preference(), "the only server: request at once")
}

func TestDHCPv6SolicitWithoutIANA(t *testing.T) {
	m, err := dhcpv6.NewMessage()
	require.NoError(t, err)
	m.MessageType = dhcpv6.MessageTypeSolicit
	m.AddOption(dhcpv6.OptClientID(clientDUID))
	out, err := Answer(v6Frame(t, portMAC, m), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	r := decodeV6(t, out)
	assert.Equal(t, dhcpv6.MessageTypeAdvertise, r.msg.MessageType)
	require.NotNil(t, r.msg.Options.Status())
	assert.Equal(t, iana.StatusNoAddrsAvail, r.msg.Options.Status().StatusCode)
	assert.Nil(t, r.msg.Options.OneIANA())
}

func TestDHCPv6Lease(t *testing.T) {
	tests := []struct {
		name   string
		mt     dhcpv6.MessageType
		addrs  []string
		server bool
	}{
		{"request", dhcpv6.MessageTypeRequest, []string{"2001:db8:100:2::10"}, true},
		{"renew", dhcpv6.MessageTypeRenew, []string{"2001:db8:100:2::10"}, true},
		{"rebind", dhcpv6.MessageTypeRebind, []string{"2001:db8:100:2::10"}, false},
		{"renew of a stale address", dhcpv6.MessageTypeRenew, []string{"2001:db8:100:2::77"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []dhcpv6.Option
			if tt.server {
				opts = append(opts, ourServerID())
			}
			req := v6Message(t, tt.mt, tt.addrs, opts...)
			out, err := Answer(v6Frame(t, portMAC, req), testPort(), testSubnets(), testConfig())
			require.NoError(t, err)
			r := decodeV6(t, out)
			assertAddressed(t, r)
			assert.Equal(t, dhcpv6.MessageTypeReply, r.msg.MessageType)
			assert.Equal(t, req.TransactionID, r.msg.TransactionID)
			ia := r.msg.Options.OneIANA()
			require.NotNil(t, ia)
			lifetimes := map[string]time.Duration{}
			for _, a := range ia.Options.Addresses() {
				lifetimes[a.IPv6Addr.String()] = a.ValidLifetime
			}
			want := map[string]time.Duration{"2001:db8:100:2::10": time.Hour}
			for _, a := range tt.addrs {
				if a != "2001:db8:100:2::10" {
					want[a] = 0 // RFC 8415 18.3.4: not the client's any more
				}
			}
			assert.Equal(t, want, lifetimes)
			assert.Equal(t, []net.IP{net.ParseIP("2001:db8:100::53")}, r.msg.Options.DNS())
		})
	}
}

func TestDHCPv6InformationRequest(t *testing.T) {
	subnets := []Subnet{v4Subnet(), statelessSubnet()}
	port := Port{MAC: portMAC, IPs: []netip.Addr{mustAddr("2001:db8:100:3:aa:ff:fe00:a")}}
	m, err := dhcpv6.NewMessage()
	require.NoError(t, err)
	m.MessageType = dhcpv6.MessageTypeInformationRequest
	// RFC 8415 allows an INFORMATION-REQUEST without client identifier.
	out, err := Answer(v6Frame(t, portMAC, m), port, subnets, testConfig())
	require.NoError(t, err)
	r := decodeV6(t, out)
	assertAddressed(t, r)
	assert.Equal(t, dhcpv6.MessageTypeReply, r.msg.MessageType)
	assert.Equal(t, m.TransactionID, r.msg.TransactionID)
	assert.Equal(t, []net.IP{net.ParseIP("2001:db8:100::54")}, r.msg.Options.DNS())
	assert.Nil(t, r.msg.Options.OneIANA(), "stateless: no address")
	assert.Nil(t, r.msg.Options.ClientID())

	// The same port on the stateless subnet is not served statefully.
	_, err = Answer(v6Frame(t, portMAC, solicit(t)), port, subnets, testConfig())
	require.ErrorIs(t, err, ErrNoAddress)
}

func TestDHCPv6Confirm(t *testing.T) {
	for addr, want := range map[string]iana.StatusCode{
		"2001:db8:100:2::10": iana.StatusSuccess,
		"2001:db8:999::10":   iana.StatusNotOnLink,
	} {
		out, err := Answer(v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeConfirm, []string{addr})), testPort(), testSubnets(), testConfig())
		require.NoError(t, err)
		r := decodeV6(t, out)
		assert.Equal(t, dhcpv6.MessageTypeReply, r.msg.MessageType)
		require.NotNil(t, r.msg.Options.Status(), addr)
		assert.Equal(t, want, r.msg.Options.Status().StatusCode, addr)
	}
	out, err := Answer(v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeConfirm, nil)), testPort(), testSubnets(), testConfig())
	require.NoError(t, err)
	assert.Nil(t, out, "CONFIRM naming no address gets no answer")
}

func TestDHCPv6ReleaseDecline(t *testing.T) {
	for _, mt := range []dhcpv6.MessageType{dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline} {
		out, err := Answer(v6Frame(t, portMAC, v6Message(t, mt, []string{"2001:db8:100:2::10"}, ourServerID())), testPort(), testSubnets(), testConfig())
		require.NoError(t, err, mt)
		r := decodeV6(t, out)
		assert.Equal(t, dhcpv6.MessageTypeReply, r.msg.MessageType)
		require.NotNil(t, r.msg.Options.Status())
		assert.Equal(t, iana.StatusSuccess, r.msg.Options.Status().StatusCode)
		assert.Nil(t, r.msg.Options.OneIANA())
	}
}

func TestDHCPv6NoAnswer(t *testing.T) {
	otherServer := dhcpv6.OptServerID(serverDUID(otherMAC))
	disabled := testSubnets()
	disabled[2].EnableDHCP = false
	slaacOnly := []Subnet{v4Subnet(), slaacSubnet()}
	noV6 := Port{MAC: portMAC, IPs: []netip.Addr{mustAddr("198.18.0.10")}}
	noClientID := solicit(t)
	noClientID.Options.Del(dhcpv6.OptionClientID)
	tests := []struct {
		name    string
		frame   []byte
		port    Port
		subnets []Subnet
		wantErr error
	}{
		{"positive control", v6Frame(t, portMAC, solicit(t)), testPort(), testSubnets(), nil},
		{"unknown MAC", v6Frame(t, otherMAC, solicit(t)), testPort(), testSubnets(), ErrUnknownMAC},
		{"port without IPv6", v6Frame(t, portMAC, solicit(t)), noV6, testSubnets(), ErrNoAddress},
		{"DHCP disabled", v6Frame(t, portMAC, solicit(t)), testPort(), disabled, ErrNoAddress},
		{"slaac subnet only", v6Frame(t, portMAC, solicit(t)), testPort(), slaacOnly, ErrNoAddress},
		{"information-request on slaac", v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeInformationRequest, nil)), testPort(), slaacOnly, ErrNoAddress},
		{"request for another server", v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeRequest, nil, otherServer)), testPort(), testSubnets(), ErrNotForUs},
		{"renew without server id", v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeRenew, nil)), testPort(), testSubnets(), ErrNotForUs},
		{"solicit with server id", v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeSolicit, nil, ourServerID())), testPort(), testSubnets(), ErrMalformed},
		{"solicit without client id", v6Frame(t, portMAC, noClientID), testPort(), testSubnets(), ErrMalformed},
		{"advertise from a VM", v6Frame(t, portMAC, v6Message(t, dhcpv6.MessageTypeAdvertise, nil)), testPort(), testSubnets(), ErrMalformed},
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
}
