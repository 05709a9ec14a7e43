//go:build integration

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// TestAdminStateDown: a port set down (PATCH admin_state_up false) stops
// reaching a peer on another host, and is reached by nothing, while a second
// port of the same host and network still does; the peer's host withdraws
// its entries; the port stays stored and bound. Set up again, it reaches the
// peer again.
func TestAdminStateDown(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:0a:01", "198.18.0.1/24")
	a2 := s.vm(h1, "a2", "blue", "02:00:00:00:0a:02", "198.18.0.2/24")
	b1 := s.vm(h2, "b1", "blue", "02:00:00:00:0b:01", "198.18.0.11/24")
	s.waitApplied(30 * time.Second)

	ping := func(vm *tenantVM) (bool, string) { return vm.Ping(b1.IP, 2) }
	for _, vm := range []*tenantVM{a1, a2} {
		ok, out := ping(vm)
		require.True(t, ok, "%s -> b1 while up: %s", vm.Name, out)
	}
	a1Cookie, a2Cookie := flows.PortCookie("blue", "a1"), flows.PortCookie("blue", "a2")
	require.Len(t, flowLines(t, h2, cookieFilter(int(flows.TableUnicast), a1Cookie)), 1, "h2 knows a1 while it is up")
	require.NotEmpty(t, flowLines(t, h2, cookieFilter(int(flows.TableFlood), a1Cookie)), "h2 answers ARP for a1 while it is up")
	require.Len(t, brIntLines(t, h2, int(flows.TableIntForward), a1Cookie), 1, "h2's br-int forwards to a1 by flow (table 30) while it is up")

	var port portView
	s.brtun.MustDo(200, "PATCH", "/v1/networks/blue/ports/a1?wait=30s", map[string]any{"admin_state_up": false}, &port)
	var got map[string]any
	s.brtun.MustDo(200, "GET", "/v1/networks/blue/ports/a1", nil, &got)
	assert.Equal(t, false, got["admin_state_up"])
	assert.Equal(t, "bound", got["status"], "the port stays bound")

	s.settleDatapaths()
	ok, out := ping(a1)
	require.False(t, ok, "a1 is down: it must not reach b1: %s", out)
	ok, out = ping(a2)
	require.True(t, ok, "positive control: a2, same host and network, still reaches b1: %s", out)
	assert.Empty(t, flowLines(t, h2, cookieFilter(int(flows.TableUnicast), a1Cookie)), "h2 withdrew a1's table 20 entry")
	assert.Empty(t, flowLines(t, h2, cookieFilter(int(flows.TableFlood), a1Cookie)), "h2 withdrew a1's ARP answer")
	assert.Empty(t, brIntLines(t, h2, int(flows.TableIntForward), a1Cookie), "h2's br-int no longer forwards to a1")
	assert.Len(t, brIntLines(t, h2, int(flows.TableIntForward), a2Cookie), 1, "control: h2's br-int still forwards to a2")
	assert.Len(t, flowLines(t, h2, cookieFilter(int(flows.TableUnicast), a2Cookie)), 1, "control: h2 still knows a2")
	a1Port := strconv.Itoa(h1.Ofport(t, a1.HostIface))
	drops := brIntLines(t, h1, -1, a1Cookie)
	require.Len(t, drops, 1, "h1's br-int drops a1's frames: one flow in all its tables, no port security or forwarding flow")
	assert.Contains(t, drops[0], "table=0,")
	assert.Contains(t, drops[0], "priority=3,in_port="+a1Port+" ")
	n, _ := packets(drops, "actions=drop")
	assert.Positive(t, n, "the drop flow counted a1's frames")
	tag, err := h1.Vsctl("get", "port", a1.HostIface, "tag")
	require.NoError(t, err)
	assert.Equal(t, "4095", strings.TrimSpace(tag), "a1 sits on the dead VLAN")

	// Nothing is delivered to a1 either: b1's pings (ARP broadcasts
	// included) to a1 leave a1's br-int port silent, while a2 gets its own.
	_, toA1 := h1.PortCounters(t, "br-int", a1.HostIface)
	_, toA2 := h1.PortCounters(t, "br-int", a2.HostIface)
	ok, out = b1.Ping(a1.IP, 2)
	require.False(t, ok, "b1 must not reach a1 while it is down: %s", out)
	ok, out = b1.Ping(a2.IP, 2)
	require.True(t, ok, "positive control b1 -> a2: %s", out)
	_, toA1After := h1.PortCounters(t, "br-int", a1.HostIface)
	_, toA2After := h1.PortCounters(t, "br-int", a2.HostIface)
	assert.Equal(t, toA1, toA1After, "no frame was delivered to the down port")
	assert.Greater(t, toA2After, toA2, "control: frames were delivered to a2")

	s.brtun.MustDo(200, "PATCH", "/v1/networks/blue/ports/a1?wait=30s", map[string]any{"admin_state_up": true}, nil)
	require.True(t, waitUntil(10*time.Second, func() bool { ok, _ := ping(a1); return ok }), "a1 reaches b1 again once up")
	up := strings.Join(brIntLines(t, h1, int(flows.TableIntClassify), a1Cookie), "\n")
	assert.NotContains(t, up, "priority=3,in_port="+a1Port+" ", "the drop is gone")
	assert.Contains(t, up, "priority=2,in_port="+a1Port+",vlan_tci=0x0000/0x1fff", "a1's classify flow is back")
	assert.Len(t, flowLines(t, h2, cookieFilter(int(flows.TableUnicast), a1Cookie)), 1, "h2 knows a1 again")
}

// brIntLines dumps h's br-int flows of table (-1: every table) carrying
// cookie, with statistics and port numbers.
func brIntLines(t *testing.T, h *lab.Host, table int, cookie uint64) []string {
	t.Helper()
	filter := cookieFilter(table, cookie)
	if table < 0 {
		filter = fmt.Sprintf("cookie=0x%x/-1", cookie)
	}
	out, err := h.Ofctl("dump-flows", "br-int", filter, "--no-names")
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "cookie=") {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestHostReIP: PATCH changes a host's tunnel IP without deleting it or its
// ports; the other hosts' tunnels follow, and traffic flows over the new
// address once the old one is gone.
func TestHostReIP(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:0a:01", "198.18.0.1/24")
	b1 := s.vm(h2, "b1", "blue", "02:00:00:00:0b:01", "198.18.0.11/24")
	s.waitApplied(30 * time.Second)
	ok, out := a1.Ping(b1.IP, 2)
	require.True(t, ok, "before the re-IP: %s", out)

	const newIP = "192.0.2.102"
	_, err := h2.Exec("ip", "addr", "add", newIP+"/24", "dev", "br-phy")
	require.NoError(t, err)
	var h map[string]any
	s.brtun.MustDo(200, "PATCH", "/v1/hosts/"+h2.Name+"?wait=30s", map[string]any{"tunnel_ip": newIP}, &h)
	require.Equal(t, newIP, h["tunnel_ip"])
	s.waitApplied(30 * time.Second)

	// h1 now tunnels to the new address only.
	ports := tunnelPorts(t, h1)
	assert.Contains(t, ports, "vxlan-"+ipHex(newIP))
	assert.NotContains(t, ports, tunnelTo(h2), "the tunnel to the old address is gone")
	var got map[string]any
	s.brtun.MustDo(200, "GET", "/v1/networks/blue/ports/b1", nil, &got)
	assert.Equal(t, h2.Name, got["host"], "the port stayed on its host")

	local, err := h2.Vsctl("get", "interface", tunnelTo(h1), "options:local_ip")
	require.NoError(t, err)
	assert.Equal(t, `"`+newIP+`"`, strings.TrimSpace(local), "h2's tunnels start from the new address")

	// Take the old address away (keeping the new, secondary one): what
	// still flows, flows over the new one.
	_, err = h2.Exec("sysctl", "-qw", "net.ipv4.conf.br-phy.promote_secondaries=1")
	require.NoError(t, err)
	_, err = h2.Exec("ip", "addr", "del", h2.TunnelIP+"/24", "dev", "br-phy")
	require.NoError(t, err)
	require.True(t, waitUntil(15*time.Second, func() bool { ok, _ := a1.Ping(b1.IP, 1); return ok }),
		"a1 reaches b1 over h2's new tunnel IP")
}
