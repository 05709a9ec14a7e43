//go:build integration

package dhcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brtun/brtun/testbed/dhcpclient"
)

// The real-client test: each VM is a network namespace holding one end of a
// veth pair (eth0); the test reads the frames the VM sends from the other
// end with an AF_PACKET socket, calls Answer and writes the answer back, as
// the controller will do with packet-ins and packet-outs. The clients are
// Debian's: dhclient (isc-dhcp-client), busybox udhcpc (busybox-static),
// dhclient -6, the kernel's own SLAAC, and rdisc6 (ndisc6).

type vm struct {
	*dhcpclient.Client
	ns, hostIface string
	mac           net.HardwareAddr
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

// newVM creates namespace prefix-name with eth0 (MAC mac) and the host end
// prefix+name in the root namespace, IPv6 off there so that only the VM
// talks on the link. Everything is deleted at the end of the test.
func newVM(t *testing.T, prefix, name string, mac net.HardwareAddr) *vm {
	t.Helper()
	v := &vm{ns: prefix + "-" + name, hostIface: prefix + name, mac: mac}
	v.Client = dhcpclient.New(t, v.ns, t.TempDir())
	sh(t, "ip", "netns", "add", v.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", v.ns).Run()
		_ = exec.Command("ip", "link", "del", v.hostIface).Run()
	})
	sh(t, "ip", "link", "add", v.hostIface, "type", "veth", "peer", "name", "eth0", "netns", v.ns)
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv6/conf/"+v.hostIface+"/disable_ipv6", []byte("1"), 0o644))
	sh(t, "ip", "link", "set", v.hostIface, "up")
	sh(t, "ip", "-n", v.ns, "link", "set", "lo", "up")
	sh(t, "ip", "-n", v.ns, "link", "set", "eth0", "address", mac.String())
	// No DAD: the link-local address is usable at once (clients bind it).
	sh(t, "ip", "netns", "exec", v.ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad")
	return v
}

func (v *vm) up(t *testing.T) { sh(t, "ip", "-n", v.ns, "link", "set", "eth0", "up") }

// responder answers the frames of one VM port, as the controller will.
type responder struct {
	mu       sync.Mutex
	seen     map[string]int // request kind -> count
	answered map[string]int
	refused  map[string]int // reason -> count
}

func kind(frame []byte) string {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if d, ok := pkt.Layer(layers.LayerTypeDHCPv4).(*layers.DHCPv4); ok {
		for _, o := range d.Options {
			if o.Type == layers.DHCPOptMessageType && len(o.Data) == 1 {
				k := "v4-" + layers.DHCPMsgType(o.Data[0]).String()
				if !d.ClientIP.IsUnspecified() {
					k += "-ciaddr"
				}
				return k
			}
		}
	}
	if d, ok := pkt.Layer(layers.LayerTypeDHCPv6).(*layers.DHCPv6); ok {
		return "v6-" + d.MsgType.String()
	}
	if pkt.Layer(layers.LayerTypeICMPv6RouterSolicitation) != nil {
		return "rs"
	}
	return ""
}

func (r *responder) count(m map[string]int, k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[k]
}

// serve reads frames from iface until the end of the test and answers them
// for port.
func serve(t *testing.T, iface string, port Port, subnets []Subnet, cfg Config) *responder {
	t.Helper()
	ifi, err := net.InterfaceByName(iface)
	require.NoError(t, err)
	proto := uint16(unix.ETH_P_ALL<<8&0xff00 | unix.ETH_P_ALL>>8) // network byte order
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	require.NoError(t, err)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}))
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))

	r := &responder{seen: map[string]int{}, answered: map[string]int{}, refused: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; _ = unix.Close(fd) })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for ctx.Err() == nil {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // timeout: look at ctx again
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue // our own answers
			}
			frame := append([]byte(nil), buf[:n]...)
			k := kind(frame)
			out, err := Answer(frame, port, subnets, cfg)
			r.mu.Lock()
			if k != "" {
				r.seen[k]++
			}
			for _, reason := range []error{ErrMalformed, ErrUnknownMAC, ErrNoAddress, ErrNotForUs, ErrConfig} {
				if errors.Is(err, reason) {
					r.refused[reason.Error()]++
				}
			}
			if out != nil {
				r.answered[k]++
			}
			r.mu.Unlock()
			if out != nil {
				if err := unix.Sendto(fd, out, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
					t.Logf("send answer on %s: %v", iface, err)
				}
			}
		}
	}()
	return r
}

func TestRealClients(t *testing.T) {
	require.Zero(t, os.Geteuid(), "needs root: network namespaces and AF_PACKET")
	for _, bin := range append(dhcpclient.Binaries(), "rdisc6") {
		_, err := exec.LookPath(bin)
		require.NoError(t, err, "%s missing: run make deps", bin)
	}
	rnd := make([]byte, 2)
	_, err := rand.Read(rnd)
	require.NoError(t, err)
	prefix := "dh" + hex.EncodeToString(rnd)

	serverMAC := net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1}
	cfg := Config{LeaseTime: 10 * time.Second, MTU: 1400, ServerMAC: serverMAC}
	subnets := []Subnet{
		{CIDR: mustPrefix("198.18.0.0/24"), Gateway: mustAddr("198.18.0.1"), EnableDHCP: true,
			DNSServers: []netip.Addr{mustAddr("198.18.0.2"), mustAddr("198.18.0.3")},
			HostRoutes: []Route{{Destination: mustPrefix("198.19.5.0/24"), NextHop: mustAddr("198.18.0.254")}}},
		{CIDR: mustPrefix("2001:db8:100:1::/64"), Gateway: mustAddr("2001:db8:100:1::1"), EnableDHCP: true, IPv6AddressMode: ModeSLAAC,
			DNSServers: []netip.Addr{mustAddr("2001:db8:100::53")}},
		{CIDR: mustPrefix("2001:db8:100:2::/64"), Gateway: mustAddr("2001:db8:100:2::1"), EnableDHCP: true, IPv6AddressMode: ModeStateful,
			DNSServers: []netip.Addr{mustAddr("2001:db8:100::53")}},
	}
	// The server's address is answered by the router, which is not part of
	// this package: the VMs get a static neighbour entry for it.
	staticNeigh := func(v *vm) {
		sh(t, "ip", "-n", v.ns, "neigh", "replace", "198.18.0.1", "lladdr", serverMAC.String(), "dev", "eth0", "nud", "permanent")
	}

	t.Run("dhclient, dhclient -6, SLAAC and rdisc6", func(t *testing.T) {
		mac := net.HardwareAddr{0x02, 0x42, 0xc6, 0x12, 0, 0x0a}
		port := Port{MAC: mac, IPs: []netip.Addr{
			mustAddr("198.18.0.10"), mustAddr("2001:db8:100:1:42:c6ff:fe12:a"), mustAddr("2001:db8:100:2::10")}}
		v := newVM(t, prefix, "a", mac)
		r := serve(t, v.hostIface, port, subnets, cfg)
		v.up(t) // the kernel solicits routers now
		staticNeigh(v)

		// The kernel's SLAAC from brtun's RA: address and default route.
		require.Eventually(t, func() bool {
			out, _ := v.Run("ip", "-6", "addr", "show", "dev", "eth0")
			return strings.Contains(out, "2001:db8:100:1:42:c6ff:fe12:a/64")
		}, 15*time.Second, 200*time.Millisecond, "SLAAC address from the RA")
		route, err := v.Run("ip", "-6", "route", "show", "default")
		require.NoError(t, err)
		assert.Contains(t, route, "via "+LinkLocal(serverMAC).String(), "default route via the router's link-local")
		assert.Positive(t, r.count(r.answered, "rs"))

		// rdisc6 shows the whole advertisement.
		out, err := v.Run("rdisc6", "-1", "-w", "2000", "eth0")
		require.NoError(t, err, out)
		for _, want := range []string{
			"Stateful address conf.    :          Yes",
			"Stateful other conf.      :          Yes",
			"Router lifetime           :         1800",
			"MTU                      :         1400",
			"Prefix                   : 2001:db8:100:1::/64",
			"Prefix                   : 2001:db8:100:2::/64",
			"Recursive DNS server     : 2001:db8:100::53",
			"from " + LinkLocal(serverMAC).String(),
		} {
			assert.Contains(t, out, want)
		}

		// dhclient: lease, options, and a renewal at T1 (5 s).
		script, events := v.Script(t, "dhclient")
		v.Start(t, "dhclient", v.Dhclient("dhclient", script, false, "-1")...)
		bound := dhcpclient.WaitEvent(t, events, "BOUND", 1, 15*time.Second)
		assert.Equal(t, "198.18.0.10", bound["new_ip_address"])
		assert.Equal(t, "255.255.255.0", bound["new_subnet_mask"])
		assert.Equal(t, "198.18.0.1", bound["new_routers"])
		assert.Equal(t, "198.18.0.2,198.18.0.3", bound["new_domain_name_servers"])
		assert.Equal(t, "1400", bound["new_interface_mtu"])
		assert.Equal(t, "10", bound["new_dhcp_lease_time"])
		assert.Equal(t, "198.18.0.1", bound["new_dhcp_server_identifier"])
		assert.Equal(t, "24,198,19,5,198,18,0,254,0,198,18,0,1", bound["new_rfc3442_classless_static_routes"])
		renew := dhcpclient.WaitEvent(t, events, "RENEW", 1, 15*time.Second)
		assert.Equal(t, "198.18.0.10", renew["new_ip_address"])
		assert.Positive(t, r.count(r.answered, "v4-Request-ciaddr"), "the renewal (ciaddr set) was answered")

		// dhclient -6: the stateful address, DNS, and a renewal.
		script6, events6 := v.Script(t, "dhclient6")
		v.Start(t, "dhclient6", v.Dhclient("dhclient6", script6, true, "-1")...)
		bound6 := dhcpclient.WaitEvent(t, events6, "BOUND6", 1, 20*time.Second)
		assert.Equal(t, "2001:db8:100:2::10", bound6["new_ip6_address"])
		assert.Equal(t, "2001:db8:100::53", bound6["new_dhcp6_name_servers"])
		dhcpclient.WaitEvent(t, events6, "RENEW6", 1, 20*time.Second)
		assert.Positive(t, r.count(r.answered, "v6-Renew"))
		addrs, err := v.Run("ip", "-6", "addr", "show", "dev", "eth0")
		require.NoError(t, err)
		assert.Contains(t, addrs, "2001:db8:100:2::10/128")
	})

	t.Run("udhcpc, and an unknown MAC beside it", func(t *testing.T) {
		mac := net.HardwareAddr{0x02, 0x42, 0xc6, 0x12, 0, 0x0b}
		port := Port{MAC: mac, IPs: []netip.Addr{mustAddr("198.18.0.11")}}
		v := newVM(t, prefix, "b", mac)
		r := serve(t, v.hostIface, port, subnets, cfg)
		v.up(t)
		staticNeigh(v)

		// The VM behind this port uses a MAC that is not the port's.
		stranger := newVM(t, prefix, "c", net.HardwareAddr{0x02, 0x42, 0xc6, 0x12, 0, 0x0c})
		rs := serve(t, stranger.hostIface, Port{MAC: net.HardwareAddr{0x02, 0x42, 0xc6, 0x12, 0, 0x0d},
			IPs: []netip.Addr{mustAddr("198.18.0.12")}}, subnets, cfg)
		stranger.up(t)

		script, events := v.Script(t, "udhcpc")
		cmd := v.Start(t, "udhcpc", v.Udhcpc(script, "-t", "5", "-T", "1")...)
		bound := dhcpclient.WaitEvent(t, events, "bound", 1, 15*time.Second)
		assert.Equal(t, "198.18.0.11", bound["ip"])
		assert.Equal(t, "255.255.255.0", bound["subnet"])
		assert.Equal(t, "198.18.0.1", bound["router"])
		assert.Equal(t, "198.18.0.2,198.18.0.3", bound["dns"])
		assert.Equal(t, "1400", bound["mtu"])
		assert.Equal(t, "198.19.5.0/24,198.18.0.254,0.0.0.0/0,198.18.0.1", bound["staticroutes"])
		assert.Equal(t, "198.18.0.1", bound["serverid"])

		// SIGUSR1: renew now (unicast to the server from the leased address).
		require.NoError(t, cmd.Process.Signal(unix.SIGUSR1))
		renew := dhcpclient.WaitEvent(t, events, "renew", 1, 10*time.Second)
		assert.Equal(t, "198.18.0.11", renew["ip"])
		assert.Positive(t, r.count(r.answered, "v4-Request-ciaddr"), "the renewal (ciaddr set) was answered")

		// The stranger asks and asks and gets nothing.
		lease, err := stranger.Once(t, dhcpclient.Udhcpc, "udhcpc", 3*time.Second)
		assert.Error(t, err, "udhcpc without a lease exits non-zero: %v", lease)
		assert.GreaterOrEqual(t, rs.count(rs.seen, "v4-Discover"), 3, "the stranger's DISCOVERs reached the responder")
		assert.Zero(t, rs.count(rs.answered, "v4-Discover"))
		assert.GreaterOrEqual(t, rs.count(rs.refused, ErrUnknownMAC.Error()), 3)
	})
}
