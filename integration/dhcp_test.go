//go:build integration

package integration

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brtun/brtun/dhcp"
	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed/dhcpclient"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// Native DHCP with real Debian clients in VM namespaces, answered by a
// real brtun through br-int's table 20 (packet-in) and packet-outs.

// dhcpVM is a VM without a configured address, bound to a network whose
// port brtun addresses.
type dhcpVM struct {
	*tenantVM
	*dhcpclient.Client
}

// dhcpVM creates a VM with MAC mac on host h (IPv6 off unless v6) and a
// port for it on network with that MAC and no IPs (IPAM picks them), or
// with portMAC as the port's MAC and port security off when portMAC is set.
func (s *scenario) dhcpVM(h *lab.Host, name, network, mac string, v6 bool, portMAC string) *dhcpVM {
	vm := s.lab.AddVM(s.t, h, lab.VMOptions{Name: name, MAC: mac, Quiet: !v6})
	tv := &tenantVM{VM: vm, Network: network}
	body := map[string]any{"name": name, "host": h.Name, "interface": vm.HostIface, "mac": mac}
	if portMAC != "" {
		body["mac"], body["port_security_enabled"] = portMAC, false
	}
	s.brtun.MustDo(201, "POST", "/v1/networks/"+network+"/ports", body, &tv.Port)
	return &dhcpVM{tenantVM: tv, Client: dhcpclient.New(s.t, vm.Netns, filepath.Join(s.lab.Dir, "dhcp-"+name))}
}

// udhcpcOnce runs busybox udhcpc until it has a lease (or gives up after
// tries DISCOVERs a second apart) and returns how long it took.
func (v *dhcpVM) udhcpcOnce(t *testing.T, name string, tries int) (time.Duration, dhcpclient.Event, error) {
	t.Helper()
	l, err := v.Once(t, dhcpclient.Udhcpc, name, time.Duration(tries)*time.Second)
	return l.Took, l.Event, err
}

// discoverFrame is a DHCPDISCOVER from mac, as bytes.
func discoverFrame(t *testing.T, mac string) []byte {
	frame, err := dhcpclient.DiscoverFrame(mac, 0xf100d)
	require.NoError(t, err)
	return frame
}

// flooder sends frame (hex) on eth0 at rate per second for secs seconds,
// from Python's AF_PACKET socket, and prints how many it sent.
const flooder = `
import socket, sys, time
frame = bytes.fromhex(sys.argv[1]); rate = int(sys.argv[2]); secs = float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
start = time.monotonic(); n = 0
while time.monotonic() - start < secs:
    due = start + n / rate
    now = time.monotonic()
    if due > now: time.sleep(due - now)
    s.send(frame); n += 1
print(n)
`

func brtunSeries(t *testing.T, d *daemon, name string) float64 {
	v, _ := series(t, d, name)
	return v
}

// TestDHCP: dhclient and busybox udhcpc get their ports' addresses, router,
// DNS and MTU from brtun and renew; a MAC that is not the port's and a
// network without DHCP get nothing (beside the leases of the same run); two
// tenants with the same CIDR each get their own answers; brtun SIGKILLed
// mid-lease and restarted answers the renewal while bound VMs ping on; a
// VM sending 1000 DISCOVERs/s does not hold up another VM's lease.
func TestDHCP(t *testing.T) {
	// The meter's flags are not the defaults, to see them reach OVS.
	s := newScenario(t, 2, daemonOptions{Advertise: true, ExtraArgs: []string{"--dhcp-lease-time", "16s",
		"--dhcp-meter-rate", "1800", "--dhcp-meter-burst", "400"}})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, _ := exec.Command("sh", "-c", "curl -s "+s.brtun.API+"/metrics | grep brtun_dhcp; tail -n 30 "+s.lab.Dir+"/h1/*vswitchd*.log").CombinedOutput()
		t.Logf("dhcp metrics, h1's ovs-vswitchd log:\n%s", b)
	})
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.VXLAN, 5002)
	s.network("plain", topology.VXLAN, 5003)
	s.brtun.MustDo(201, "POST", "/v1/networks/blue/subnets", map[string]any{
		"name": "v4", "cidr": "198.18.0.0/24", "dns_servers": []string{"198.18.0.53"}}, nil)
	s.brtun.MustDo(201, "POST", "/v1/networks/red/subnets", map[string]any{
		"name": "v4", "cidr": "198.18.0.0/24", "dns_servers": []string{"198.18.0.54"}}, nil)

	a1 := s.dhcpVM(h1, "a1", "blue", "02:00:00:0d:00:01", false, "")
	a2 := s.dhcpVM(h2, "a2", "blue", "02:00:00:0d:00:02", false, "")
	r1 := s.dhcpVM(h1, "r1", "red", "02:00:00:0d:01:01", false, "")
	p1 := s.dhcpVM(h1, "p1", "plain", "02:00:00:0d:02:01", false, "")
	// A port without port security whose VM uses another MAC.
	st := s.dhcpVM(h1, "st", "blue", "02:00:00:0d:00:0c", false, "02:00:00:0d:00:0d")
	s.waitApplied(30 * time.Second)
	mtu := strconv.Itoa(topology.VXLAN.MTU(1500))
	require.Len(t, a1.Port.IPs, 1)
	require.Len(t, r1.Port.IPs, 1)
	require.Equal(t, a1.Port.IPs[0], r1.Port.IPs[0], "the two tenants' first ports hold the same address")

	// The catch flows: blue's and red's ports, not plain's.
	for _, p := range []struct {
		net, name string
		want      int
	}{{"blue", "a1", 3}, {"red", "r1", 3}, {"plain", "p1", 0}} {
		assert.Len(t, brIntLines(t, h1, int(flows.TableIntDHCP), flows.PortCookie(p.net, p.name)), p.want, "%s/%s", p.net, p.name)
	}

	// dhclient on a1: lease, options, and renewals at T1 (8 s), unicast to
	// the gateway whose ARP br-int answers.
	script, a1Events := a1.Script(t, "dhclient")
	a1.Start(t, "dhclient", a1.Dhclient("dhclient", script, false)...)
	bound := dhcpclient.WaitEvent(t, a1Events, "BOUND", 1, 15*time.Second)
	assert.Equal(t, a1.Port.IPs[0], bound["new_ip_address"])
	assert.Equal(t, "255.255.255.0", bound["new_subnet_mask"])
	assert.Equal(t, "198.18.0.1", bound["new_routers"])
	assert.Equal(t, "198.18.0.53", bound["new_domain_name_servers"])
	assert.Equal(t, mtu, bound["new_interface_mtu"])
	assert.Equal(t, "16", bound["new_dhcp_lease_time"])
	assert.Equal(t, "198.18.0.1", bound["new_dhcp_server_identifier"])

	// udhcpc on a2 (the other host), renewing on SIGUSR1.
	script2, a2Events := a2.Script(t, "udhcpc")
	udhcpc := a2.Start(t, "udhcpc", a2.Udhcpc(script2, "-t", "5", "-T", "1")...)
	b2 := dhcpclient.WaitEvent(t, a2Events, "bound", 1, 15*time.Second)
	assert.Equal(t, a2.Port.IPs[0], b2["ip"])
	assert.Equal(t, "255.255.255.0", b2["subnet"])
	assert.Equal(t, "198.18.0.1", b2["router"])
	assert.Equal(t, "198.18.0.53", b2["dns"])
	assert.Equal(t, mtu, b2["mtu"])
	assert.Equal(t, "198.18.0.1", b2["serverid"])
	require.NoError(t, udhcpc.Process.Signal(unix.SIGUSR1))
	assert.Equal(t, a2.Port.IPs[0], dhcpclient.WaitEvent(t, a2Events, "renew", 1, 10*time.Second)["ip"])

	renew := dhcpclient.WaitEvent(t, a1Events, "RENEW", 1, 15*time.Second)
	assert.Equal(t, a1.Port.IPs[0], renew["new_ip_address"])
	ok, out := a1.Ping(a2.Port.IPs[0], 2)
	require.True(t, ok, "a1 reaches a2 at their leased addresses: %s", out)

	// red: the same address, red's own DNS server.
	_, rb, err := r1.udhcpcOnce(t, "udhcpc", 5)
	require.NoError(t, err)
	assert.Equal(t, r1.Port.IPs[0], rb["ip"])
	assert.Equal(t, "198.18.0.54", rb["dns"], "red's answer, not blue's")

	// No answer: the stranger's MAC, and plain (no DHCP, no packet-in).
	unknownBefore := brtunSeries(t, s.brtun, `brtun_dhcp_dropped_total{reason="unknown_mac"}`)
	pinsBefore := brtunSeries(t, s.brtun, "brtun_dhcp_packet_ins_total")
	_, _, err = p1.udhcpcOnce(t, "udhcpc", 3)
	assert.Error(t, err, "plain has no DHCP")
	pinsPlain := brtunSeries(t, s.brtun, "brtun_dhcp_packet_ins_total")
	_, _, err = st.udhcpcOnce(t, "udhcpc", 3)
	assert.Error(t, err, "a MAC that is not the port's gets nothing")
	assert.GreaterOrEqual(t, brtunSeries(t, s.brtun, `brtun_dhcp_dropped_total{reason="unknown_mac"}`)-unknownBefore, 3.0,
		"the stranger's DISCOVERs reached brtun and were refused")
	// a1's and a2's renewals may come in meanwhile: at most a few.
	assert.LessOrEqual(t, pinsPlain-pinsBefore, 4.0, "plain's DISCOVERs raised no packet-in")

	// The catch flows go through br-int's DHCP meter, set once, as the
	// --dhcp-meter-* flags say.
	for _, h := range []*lab.Host{h1, h2} {
		meters, err := h.Ofctl("dump-meters", "br-int")
		require.NoError(t, err)
		assert.Contains(t, meters, "meter=1 pktps burst bands=\ntype=drop rate=1800 burst_size=400", "%s: %s", h.Name, meters)
	}
	// Besides, st (port security off) has its source meter on h1.
	assert.Equal(t, 3.0, brtunSeries(t, s.brtun, "brtun_openflow_meter_mods_total"), "one DHCP meter_mod per br-int and st's source meter")

	// SIGKILL brtun mid-lease while a1 pings a2; restart it; the next
	// renewal is answered and no ping is lost.
	ping := exec.Command("ip", "netns", "exec", a1.Netns, "ping", "-i", "0.1", "-c", "150", "-W", "1", a2.Port.IPs[0])
	pingOut := &strings.Builder{}
	ping.Stdout, ping.Stderr = pingOut, pingOut
	require.NoError(t, ping.Start())
	t.Cleanup(func() { _ = ping.Process.Kill(); _ = ping.Wait() })
	time.Sleep(time.Second)
	s.brtun.Kill()
	time.Sleep(2 * time.Second)
	renewsBefore := dhcpclient.Count(a1Events, "RENEW")
	s.brtun.Start()
	dhcpclient.WaitEvent(t, a1Events, "RENEW", renewsBefore+1, 20*time.Second)
	assert.Positive(t, brtunSeries(t, s.brtun, `brtun_dhcp_answers_total{kind="dhcp4"}`), "the restarted brtun answered")
	s.waitApplied(30 * time.Second)
	assert.Zero(t, brtunSeries(t, s.brtun, "brtun_openflow_meter_mods_total"), "the restart found the meters right and sent no meter_mod")
	require.NoError(t, ping.Wait(), "ping: %s", pingOut)
	assert.Contains(t, pingOut.String(), " 0% packet loss", "no ping lost across the restart")

	// Fairness: f1 sends 1000 DISCOVERs/s for 8 s; a fresh lease of r1's
	// neighbour on blue takes at most 2 s longer than without the flood.
	f1 := s.dhcpVM(h1, "f1", "blue", "02:00:00:0d:00:0f", false, "")
	c1 := s.dhcpVM(h1, "c1", "blue", "02:00:00:0d:00:10", false, "")
	s.waitApplied(30 * time.Second)
	base, _, err := c1.udhcpcOnce(t, "base", 5)
	require.NoError(t, err)
	flood := exec.Command("ip", "netns", "exec", f1.Netns, "python3", "-c", flooder, hex.EncodeToString(discoverFrame(t, f1.MAC)), "1000", "8")
	floodOut := &strings.Builder{}
	flood.Stdout, flood.Stderr = floodOut, floodOut
	limitedBefore := brtunSeries(t, s.brtun, `brtun_dhcp_dropped_total{reason="rate_limited"}`)
	require.NoError(t, flood.Start())
	t.Cleanup(func() { _ = flood.Process.Kill(); _ = flood.Wait() })
	time.Sleep(2 * time.Second)
	during, cb, err := c1.udhcpcOnce(t, "during", 5)
	require.NoError(t, err, "c1 leases during the flood")
	assert.Equal(t, c1.Port.IPs[0], cb["ip"])
	require.NoError(t, flood.Wait(), "flooder: %s", floodOut)
	sent, err := strconv.Atoi(strings.TrimSpace(floodOut.String()))
	require.NoError(t, err, floodOut.String())
	assert.Greater(t, sent, 6000, "the flood ran at about 1000/s")
	t.Logf("lease without flood %s, during the flood %s; flood sent %d", base, during, sent)
	assert.LessOrEqual(t, during-base, 2*time.Second, "the flood delays another VM's lease by at most 2 s")
	assert.Greater(t, brtunSeries(t, s.brtun, `brtun_dhcp_dropped_total{reason="rate_limited"}`)-limitedBefore, 1000.0,
		"brtun rate-limited the flooding port")
}

// TestDHCPWithoutGateway: on an IPv4 subnet without a gateway, brtun gives
// the subnet a DHCP server address (the first host address, which no port
// gets) and answers from it: dhclient leases the port's address with that
// server identifier and no router, and its renewal, unicast to that
// address (br-int answers its ARP), is answered; udhcpc on another host
// leases too. Beside it, a subnet with a gateway in another network still
// answers from its gateway.
func TestDHCPWithoutGateway(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true, ExtraArgs: []string{"--dhcp-lease-time", "16s"}})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("nogw", topology.VXLAN, 5101)
	s.network("gw", topology.VXLAN, 5102)
	var sub topology.Subnet
	s.brtun.MustDo(201, "POST", "/v1/networks/nogw/subnets", map[string]any{
		"name": "v4", "cidr": "198.18.4.0/24", "gateway_ip": "", "dns_servers": []string{"198.18.4.53"}}, &sub)
	require.Equal(t, "", sub.GatewayIP)
	require.Equal(t, "198.18.4.1", sub.DHCPServerIP, "the first host address, as a user would expect")
	s.brtun.MustDo(201, "POST", "/v1/networks/gw/subnets", map[string]any{"name": "v4", "cidr": "198.18.4.0/24"}, nil)

	n1 := s.dhcpVM(h1, "n1", "nogw", "02:00:00:0d:04:01", false, "")
	n2 := s.dhcpVM(h2, "n2", "nogw", "02:00:00:0d:04:02", false, "")
	g1 := s.dhcpVM(h1, "g1", "gw", "02:00:00:0d:05:01", false, "")
	s.waitApplied(30 * time.Second)
	assert.Equal(t, []string{"198.18.4.2"}, n1.Port.IPs, "IPAM skipped the DHCP server address")
	assert.Equal(t, []string{"198.18.4.3"}, n2.Port.IPs)
	// A port may not take the server's address.
	var refused json.RawMessage
	s.brtun.MustDo(400, "POST", "/v1/networks/nogw/ports", map[string]any{
		"name": "x", "host": h1.Name, "interface": "tx", "ips": []string{"198.18.4.1"}}, &refused)
	assert.Contains(t, string(refused), "the DHCP server address")

	script, ev := n1.Script(t, "dhclient")
	n1.Start(t, "dhclient", n1.Dhclient("dhclient", script, false)...)
	bound := dhcpclient.WaitEvent(t, ev, "BOUND", 1, 15*time.Second)
	assert.Equal(t, "198.18.4.2", bound["new_ip_address"])
	assert.Equal(t, "255.255.255.0", bound["new_subnet_mask"])
	assert.Equal(t, "198.18.4.1", bound["new_dhcp_server_identifier"])
	assert.Equal(t, "198.18.4.53", bound["new_domain_name_servers"])
	assert.Empty(t, bound["new_routers"], "no gateway, no router")
	renew := dhcpclient.WaitEvent(t, ev, "RENEW", 1, 15*time.Second)
	assert.Equal(t, "198.18.4.2", renew["new_ip_address"], "the renewal, unicast to 198.18.4.1, was answered")
	neigh, err := n1.Run("ip", "neigh", "show", "198.18.4.1")
	require.NoError(t, err)
	router := flows.RouterMAC("nogw")
	assert.Contains(t, neigh, net.HardwareAddr(router[:]).String(), "br-int answered the ARP for the server address")

	l2, err := n2.Once(t, dhcpclient.Udhcpc, "udhcpc", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "198.18.4.3", l2.Event["ip"])
	assert.Equal(t, "198.18.4.1", l2.Event["serverid"])
	assert.Empty(t, l2.Event["router"])
	ok, out := n2.Ping("198.18.4.2", 2)
	assert.True(t, ok, "the two VMs reach each other at their leased addresses: %s", out)

	// The subnet with a gateway answers from its gateway, with a router.
	lg, err := g1.Once(t, dhcpclient.Udhcpc, "udhcpc", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, g1.Port.IPs[0], lg.Event["ip"])
	assert.Equal(t, "198.18.4.1", lg.Event["serverid"])
	assert.Equal(t, "198.18.4.1", lg.Event["router"])
}

// TestDHCPv6AndRA: a VM with accept_ra gets its SLAAC address and default
// route from brtun's router advertisement (answering its solicitation), and
// `dhclient -6` the port's address on a dhcpv6-stateful subnet.
func TestDHCPv6AndRA(t *testing.T) {
	s := newScenario(t, 1, daemonOptions{Advertise: true, ExtraArgs: []string{"--dhcp-lease-time", "16s"}})
	h1 := s.lab.Hosts[0]
	s.network("six", topology.VXLAN, 6001)
	s.brtun.MustDo(201, "POST", "/v1/networks/six/subnets", map[string]any{
		"name": "slaac", "cidr": "2001:db8:100::/64", "ipv6_address_mode": "slaac"}, nil)
	s.brtun.MustDo(201, "POST", "/v1/networks/six/subnets", map[string]any{
		"name": "stateful", "cidr": "2001:db8:101::/64", "ipv6_address_mode": "dhcpv6-stateful",
		"dns_servers": []string{"2001:db8:101::53"}}, nil)
	v := s.dhcpVM(h1, "v6", "six", "02:00:00:0d:06:01", true, "")
	s.waitApplied(30 * time.Second)
	var slaac, stateful string
	for _, ip := range v.Port.IPs {
		switch {
		case strings.HasPrefix(ip, "2001:db8:100:"):
			slaac = ip
		case strings.HasPrefix(ip, "2001:db8:101:"):
			stateful = ip
		}
	}
	require.NotEmpty(t, slaac, "IPAM gave the port its EUI-64 address: %v", v.Port.IPs)
	require.NotEmpty(t, stateful, "IPAM gave the port a stateful address: %v", v.Port.IPs)

	// The link comes up again now that the port's flows are in: the
	// kernel solicits routers, brtun answers.
	_, err := v.Run("ip", "link", "set", "eth0", "down")
	require.NoError(t, err)
	_, err = v.Run("ip", "link", "set", "eth0", "up")
	require.NoError(t, err)
	router := flows.RouterMAC("six")
	routerLL := dhcp.LinkLocal(net.HardwareAddr(router[:])).String()
	ok := waitUntil(20*time.Second, func() bool {
		out, _ := v.Run("ip", "-6", "addr", "show", "dev", "eth0")
		return strings.Contains(out, slaac+"/64")
	})
	out, _ := v.Run("ip", "-6", "addr", "show", "dev", "eth0")
	require.True(t, ok, "SLAAC address %s from brtun's RA: %s", slaac, out)
	route, err := v.Run("ip", "-6", "route", "show", "default")
	require.NoError(t, err)
	assert.Contains(t, route, "via "+routerLL, "default route via the router's link-local")
	assert.Positive(t, brtunSeries(t, s.brtun, `brtun_dhcp_answers_total{kind="ra"}`)+brtunSeries(t, s.brtun, `brtun_dhcp_answers_total{kind="ra_periodic"}`),
		"brtun sent the RA (solicited, or its first periodic round)")

	// br-int answers the VM's neighbour solicitation for its router (once
	// the VM's addresses are no longer tentative).
	require.True(t, waitUntil(10*time.Second, func() bool {
		out, err := v.Run("ip", "-6", "addr", "show", "dev", "eth0", "tentative")
		return err == nil && strings.TrimSpace(out) == ""
	}), "duplicate address detection did not finish")
	nd, err := v.Run("ndisc6", "-1", "-r", "3", "-w", "1000", routerLL, "eth0")
	require.NoError(t, err, "ndisc6: %s", nd)
	assert.Contains(t, strings.ToLower(nd), strings.ToLower(net.HardwareAddr(router[:]).String()), "the router's MAC: %s", nd)

	script, ev := v.Script(t, "dhclient6")
	v.Start(t, "dhclient6", v.Dhclient("dhclient6", script, true)...)
	bound := dhcpclient.WaitEvent(t, ev, "BOUND6", 1, 20*time.Second)
	assert.Equal(t, stateful, bound["new_ip6_address"])
	assert.Equal(t, "2001:db8:101::53", bound["new_dhcp6_name_servers"])
	assert.Positive(t, brtunSeries(t, s.brtun, `brtun_dhcp_answers_total{kind="dhcp6"}`))
}

// TestDHCPFailover: with two replicas, only h1's br-int master answers its
// VMs; when that replica is SIGKILLed, the renewal is answered by the new
// master.
func TestDHCPFailover(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	c := startClusterWith(t, l, []string{"--dhcp-lease-time", "16s"}, "a", "b")
	sa := c.scenario("a")
	sa.brtun.MustDo(201, "POST", "/v1/hosts", map[string]any{
		"name": h1.Name, "ovsdb": h1.OVSDB, "tunnel_ip": h1.TunnelIP, "datapath_type": h1.DatapathType,
	}, nil)
	c.pointBridges()
	sa.network("blue", topology.VXLAN, 5001)
	sa.brtun.MustDo(201, "POST", "/v1/networks/blue/subnets", map[string]any{"name": "v4", "cidr": "198.18.0.0/24"}, nil)
	v := sa.dhcpVM(h1, "v1", "blue", "02:00:00:0d:00:21", false, "")
	masters := c.waitApplied(60 * time.Second)
	master := masters["h1/br-int"]
	other := "a"
	if master == "a" {
		other = "b"
	}

	script, ev := v.Script(t, "dhclient")
	v.Start(t, "dhclient", v.Dhclient("dhclient", script, false)...)
	assert.Equal(t, v.Port.IPs[0], dhcpclient.WaitEvent(t, ev, "BOUND", 1, 15*time.Second)["new_ip_address"])
	assert.Positive(t, brtunSeries(t, c.replicas[master], `brtun_dhcp_answers_total{kind="dhcp4"}`), "the master answered")
	assert.Zero(t, brtunSeries(t, c.replicas[other], `brtun_dhcp_answers_total{kind="dhcp4"}`), "the other replica did not")

	c.kill(master)
	renewals := dhcpclient.Count(ev, "RENEW") + dhcpclient.Count(ev, "REBIND")
	require.True(t, waitUntil(40*time.Second, func() bool {
		return dhcpclient.Count(ev, "RENEW")+dhcpclient.Count(ev, "REBIND") > renewals &&
			brtunSeries(t, c.replicas[other], `brtun_dhcp_answers_total{kind="dhcp4"}`) > 0
	}), "no renewal answered by the new master %s: %v", other, dhcpclient.Events(ev))
}
