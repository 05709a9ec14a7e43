package controller

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/testbed/dhcpclient"
	"github.com/brtun/brtun/topology"
)

// pktSwitch is a testSwitch that also takes packet-outs.
type pktSwitch struct {
	*testSwitch
	outs chan packetOut
}

type packetOut struct {
	port  uint32
	frame []byte
}

func (s *pktSwitch) PacketOut(port uint32, frame []byte) error {
	s.outs <- packetOut{port, append([]byte(nil), frame...)}
	return nil
}

// dhcpLab: h1 with blue (a DHCP-enabled subnet 198.18.0.0/24, gateway
// .254, DNS) holding vm1 and vm2, and red (no subnet) holding r1; h1's
// br-int is a pktSwitch.
func dhcpLab(t *testing.T) (*lab, *pktSwitch) {
	return dhcpLabWith(t, Options{})
}

// dhcpLabWith is dhcpLab with more controller options (the DHCP ones are
// the lab's).
func dhcpLabWith(t *testing.T, opts Options) (*lab, *pktSwitch) {
	l := newLab(t, "h1")
	ctx := context.Background()
	_, _, err := l.store.CreateSubnet(ctx, topology.Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24",
		GatewayIP: "198.18.0.254", DNSServers: []string{"198.18.0.53"}, EnableDHCP: true})
	require.NoError(t, err)
	opts.DHCP = DHCPOptions{LeaseTime: time.Hour, PortRate: 5, PortBurst: 5, firstRA: time.Hour}
	l.start(opts)
	sw := &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 1000)}
	l.ctrl.AddSwitch(sw)
	l.addPort("h1", "vm1", "02:00:00:00:01:01")
	l.addPort("h1", "vm2", "02:00:00:00:01:02")
	iface := "tap-r1"
	l.ovs["h1"].AddPort(t, BrInt, &vswitchd.Port{Name: iface}, &vswitchd.Interface{Name: iface})
	_, _, err = l.store.CreatePort(ctx, topology.Port{Network: "red", Name: "r1", Host: "h1", Interface: iface, MAC: "02:00:00:00:02:01"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return len(catchFlows(sw, "blue", "vm1")) == 3 && len(catchFlows(sw, "blue", "vm2")) == 3 && inPortOf(sw, "red", "r1") != 0
	}, 10*time.Second, 20*time.Millisecond)
	return l, sw
}

// catchFlows are the table-20 flows of a port that send to the controller.
func catchFlows(sw *pktSwitch, network, port string) []flows.Flow {
	var out []flows.Flow
	for _, f := range sw.flows() {
		if f.Table == flows.TableIntDHCP && f.Cookie == flows.PortCookie(network, port) &&
			len(f.Actions) == 2 && f.Actions[0] == (flows.Meter{ID: flows.DHCPMeter}) && f.Actions[1] == (flows.ToController{}) {
			out = append(out, f)
		}
	}
	return out
}

// inPortOf is the ofport of a port, from its classify flow.
func inPortOf(sw *pktSwitch, network, port string) uint32 {
	for _, f := range sw.flows() {
		if f.Table == flows.TableIntClassify && f.Cookie == flows.PortCookie(network, port) && f.Match.InPort != nil && len(f.Actions) > 0 {
			return *f.Match.InPort
		}
	}
	return 0
}

// discover is a DHCPDISCOVER from mac.
func discover(t *testing.T, mac string) []byte {
	frame, err := dhcpclient.DiscoverFrame(mac, 0x1234)
	require.NoError(t, err)
	return frame
}

// packetInMsg is the PACKET_IN OVS sends for frame from in_port under cookie.
func packetInMsg(table uint8, cookie uint64, inPort uint32, frame []byte) ofswitch.Message {
	match := ofswitch.MatchBytes(ofswitch.InPortEntry(inPort))
	body := make([]byte, 16+len(match)+2+len(frame))
	binary.BigEndian.PutUint32(body[0:4], 0xffffffff)
	binary.BigEndian.PutUint16(body[4:6], uint16(len(frame)))
	body[6], body[7] = 1, table
	binary.BigEndian.PutUint64(body[8:16], cookie)
	copy(body[16:], match)
	copy(body[16+len(match)+2:], frame)
	return ofswitch.Reply(ofswitch.TypePacketIn, 0, body)
}

// offerOf parses an answer as a DHCP message.
func offerOf(t *testing.T, frame []byte) *layers.DHCPv4 {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	d, ok := p.Layer(layers.LayerTypeDHCPv4).(*layers.DHCPv4)
	require.True(t, ok, "a DHCP answer: %s", p)
	return d
}

func (l *lab) portIP(network, name string) string {
	p, err := l.store.GetPort(context.Background(), network, name)
	require.NoError(l.t, err)
	require.NotEmpty(l.t, p.IPs)
	return p.IPs[0]
}

func TestPacketInAnswersDHCPDiscoverWithThePortsAddress(t *testing.T) {
	l, sw := dhcpLab(t)
	of1 := inPortOf(sw, "blue", "vm1")
	l.ctrl.PacketIn(sw, packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01")))
	select {
	case out := <-sw.outs:
		assert.Equal(t, of1, out.port, "the answer goes to the asking port")
		d := offerOf(t, out.frame)
		assert.Equal(t, l.portIP("blue", "vm1"), d.YourClientIP.String())
		router := flows.RouterMAC("blue")
		eth := gopacket.NewPacket(out.frame, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		assert.Equal(t, net.HardwareAddr(router[:]).String(), eth.SrcMAC.String(), "from the network's router MAC")
	case <-time.After(5 * time.Second):
		t.Fatal("no packet-out")
	}
	require.Eventually(t, func() bool { return l.metric("brtun_dhcp_answers_total", map[string]string{"kind": "dhcp4"}) == 1 },
		5*time.Second, 10*time.Millisecond)

	// The router's ARP is answered by a flow for the gateway.
	var arp bool
	for _, f := range sw.flows() {
		arp = arp || (f.Table == flows.TableIntDHCP && f.Match.ARPTPA != nil && f.Match.ARPTPA.Value == flows.IPv4{198, 18, 0, 254})
	}
	assert.True(t, arp, "ARP answer for the gateway")
	// red has no DHCP subnet: no catch flow for r1 (beside vm1's three).
	assert.Empty(t, catchFlows(sw, "red", "r1"))
}

// A subnet without a gateway: the answers come from its DHCP server
// address, which br-int answers ARP for, and which no router option names.
func TestPacketInAnswersFromTheServerAddressWithoutGateway(t *testing.T) {
	l := newLab(t, "h1")
	ctx := context.Background()
	sub, _, err := l.store.CreateSubnet(ctx, topology.Subnet{Network: "blue", Name: "v4", CIDR: "198.18.0.0/24", EnableDHCP: true})
	require.NoError(t, err)
	require.Equal(t, "198.18.0.1", sub.DHCPServerIP)
	l.start(Options{DHCP: DHCPOptions{LeaseTime: time.Hour, firstRA: time.Hour}})
	sw := &pktSwitch{testSwitch: newTestSwitch(ovsdb.DatapathID("h1", BrInt), nil), outs: make(chan packetOut, 10)}
	l.ctrl.AddSwitch(sw)
	l.addPort("h1", "vm1", "02:00:00:00:01:01")
	require.Eventually(t, func() bool { return len(catchFlows(sw, "blue", "vm1")) == 3 }, 10*time.Second, 20*time.Millisecond)
	of1 := inPortOf(sw, "blue", "vm1")

	l.ctrl.PacketIn(sw, packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01")))
	select {
	case out := <-sw.outs:
		d := offerOf(t, out.frame)
		assert.Equal(t, "198.18.0.2", d.YourClientIP.String(), "IPAM skipped the server address")
		var serverID, router []byte
		for _, o := range d.Options {
			switch o.Type {
			case layers.DHCPOptServerID:
				serverID = o.Data
			case layers.DHCPOptRouter:
				router = o.Data
			}
		}
		assert.Equal(t, []byte{198, 18, 0, 1}, serverID, "server identifier: the DHCP server address")
		assert.Nil(t, router, "no gateway, no router option")
		ip := gopacket.NewPacket(out.frame, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		assert.Equal(t, "198.18.0.1", ip.SrcIP.String(), "sent from the server address")
	case <-time.After(5 * time.Second):
		t.Fatal("no packet-out")
	}
	var arp bool
	for _, f := range sw.flows() {
		arp = arp || (f.Table == flows.TableIntDHCP && f.Match.ARPTPA != nil && f.Match.ARPTPA.Value == flows.IPv4{198, 18, 0, 1})
	}
	assert.True(t, arp, "br-int answers ARP for the server address (renewals are unicast to it)")
}

func TestPacketInDropsWhatItCannotPlace(t *testing.T) {
	l, sw := dhcpLab(t)
	of1 := inPortOf(sw, "blue", "vm1")
	ofRed := inPortOf(sw, "red", "r1")
	cases := map[string]ofswitch.Message{
		"garbage":          ofswitch.Reply(ofswitch.TypePacketIn, 0, []byte{1, 2, 3}),
		"unknown in_port":  packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), 999, discover(t, "02:00:00:00:01:01")),
		"another's cookie": packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm2"), of1, discover(t, "02:00:00:00:01:01")),
		"network w/o DHCP": packetInMsg(flows.TableIntDHCP, flows.PortCookie("red", "r1"), ofRed, discover(t, "02:00:00:00:02:01")),
		"not the port MAC": packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:09:09")),
		"truncated frame":  packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01")[:200]),
		"not DHCP at all":  packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, []byte{0xff, 0xff}),
		"empty frame":      packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, nil),
	}
	for _, m := range cases {
		l.ctrl.PacketIn(sw, m)
	}
	// A packet-in on a switch brtun does not know is dropped too.
	stranger := &pktSwitch{testSwitch: newTestSwitch(12345, nil), outs: make(chan packetOut, 1)}
	l.ctrl.PacketIn(stranger, packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01")))
	// Positive control, queued behind them: vm1's own discover is answered.
	l.ctrl.PacketIn(sw, packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01")))
	select {
	case out := <-sw.outs:
		assert.Equal(t, l.portIP("blue", "vm1"), offerOf(t, out.frame).YourClientIP.String())
	case <-time.After(5 * time.Second):
		t.Fatal("the control got no answer")
	}
	require.Eventually(t, func() bool { return l.metric("brtun_dhcp_dropped_total", nil) >= 9 }, 5*time.Second, 10*time.Millisecond)
	for reason, n := range map[string]float64{
		"malformed":    2, // garbage, the truncated frame
		"unknown_port": 3, // in_port, cookie, a switch brtun does not know
		"no_address":   1, // red has no subnet
		"unknown_mac":  1,
		"no_answer":    2, // not DHCP, empty
	} {
		assert.Equal(t, n, l.metric("brtun_dhcp_dropped_total", map[string]string{"reason": reason}), reason)
	}
	assert.Len(t, sw.outs, 0, "nothing else was answered")
	assert.Len(t, stranger.outs, 0)
}

// TestPacketInRateLimitsEachPort: a port flooding DISCOVERs is answered at
// its rate; another port's request is answered meanwhile.
func TestPacketInRateLimitsEachPort(t *testing.T) {
	l, sw := dhcpLab(t)
	of1, of2 := inPortOf(sw, "blue", "vm1"), inPortOf(sw, "blue", "vm2")
	flood := packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01"))
	for range 200 {
		l.ctrl.PacketIn(sw, flood)
	}
	l.ctrl.PacketIn(sw, packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm2"), of2, discover(t, "02:00:00:00:01:02")))
	answered := map[uint32]int{}
	deadline := time.After(3 * time.Second)
wait:
	for answered[of2] == 0 {
		select {
		case out := <-sw.outs:
			answered[out.port]++
		case <-deadline:
			break wait
		}
	}
	assert.Equal(t, 1, answered[of2], "vm2 is answered despite vm1's flood")
	assert.LessOrEqual(t, answered[of1], 6+5*3, "vm1 at most its burst and rate")
	assert.GreaterOrEqual(t, l.metric("brtun_dhcp_dropped_total", map[string]string{"reason": "rate_limited"}), 190.0)
}

// TestOnlyTheMasterAnswers: with several replicas, a replica answers the
// packet-ins of a br-int it masters (control) and drops those of one it
// does not, and sends its periodic RAs only there.
func TestOnlyTheMasterAnswers(t *testing.T) {
	m := newTestMastership()
	for _, b := range bridgeNames {
		m.set(bridgeRef{"h1", b}, true, 1)
	}
	l, sw := dhcpLabWith(t, Options{Mastership: m})
	_, _, err := l.store.CreateSubnet(context.Background(), topology.Subnet{Network: "blue", Name: "v6", CIDR: "2001:db8:100::/64",
		EnableDHCP: true, IPv6AddressMode: "slaac", GatewayIP: "2001:db8:100::1"})
	require.NoError(t, err)
	of1, of2 := inPortOf(sw, "blue", "vm1"), inPortOf(sw, "blue", "vm2")
	disc := packetInMsg(flows.TableIntDHCP, flows.PortCookie("blue", "vm1"), of1, discover(t, "02:00:00:00:01:01"))

	l.ctrl.PacketIn(sw, disc)
	select {
	case out := <-sw.outs:
		assert.Equal(t, of1, out.port, "the master answers")
	case <-time.After(5 * time.Second):
		t.Fatal("the master did not answer")
	}
	require.Eventually(t, func() bool {
		l.ctrl.mu.Lock()
		defer l.ctrl.mu.Unlock()
		return l.ctrl.desired.dhcpEnabled("blue") && len(l.ctrl.desired.subnets["blue"]) == 2
	}, 5*time.Second, 10*time.Millisecond)
	l.ctrl.sendPeriodicRAs()
	got := map[uint32]bool{}
	for range 2 {
		select {
		case out := <-sw.outs:
			p := gopacket.NewPacket(out.frame, layers.LayerTypeEthernet, gopacket.Default)
			ra, ok := p.Layer(layers.LayerTypeICMPv6RouterAdvertisement).(*layers.ICMPv6RouterAdvertisement)
			require.True(t, ok, "an RA: %s", p)
			assert.Equal(t, uint16(1800), ra.RouterLifetime)
			got[out.port] = true
		case <-time.After(5 * time.Second):
			t.Fatal("no periodic RA")
		}
	}
	assert.Equal(t, map[uint32]bool{of1: true, of2: true}, got, "one RA to each port of blue, none to red's")
	assert.Equal(t, 2.0, l.metric("brtun_dhcp_answers_total", map[string]string{"kind": "ra_periodic"}), "counted once sent (synchronously here)")

	m.set(bridgeRef{"h1", BrInt}, false, 2)
	l.ctrl.PacketIn(sw, disc)
	l.ctrl.sendPeriodicRAs()
	require.Eventually(t, func() bool {
		return l.metric("brtun_dhcp_dropped_total", map[string]string{"reason": "not_master"}) == 1
	}, 5*time.Second, 10*time.Millisecond)
	select {
	case out := <-sw.outs:
		t.Fatalf("a replica that is not the master sent %d bytes to port %d", len(out.frame), out.port)
	case <-time.After(300 * time.Millisecond):
	}
}
