//go:build integration

package integration

import (
	"fmt"
	"regexp"
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

// L2 population, ARP/ND responders and flooding only where needed, proven
// with real packets: tunnel tx counters (read after revalidator/wait) beside
// positive controls, flow packet counters, and pings.

// dualStackVM creates a VM with an IPv4 and an IPv6 address on host h and
// binds it to network with both addresses. Like every VM of these tests it
// is made quiet (lab.VMOptions.Quiet).
func (s *scenario) dualStackVM(h *lab.Host, name, network, mac, cidr, cidr6 string) (*tenantVM, string) {
	vm := s.lab.AddVM(s.t, h, lab.VMOptions{Name: name, MAC: mac, CIDR: cidr, IPv6CIDR: cidr6, Quiet: true})
	ip6, _, _ := strings.Cut(cidr6, "/")
	tv := &tenantVM{VM: vm, Network: network}
	s.brtun.MustDo(201, "POST", "/v1/networks/"+network+"/ports", map[string]any{
		"name": name, "host": h.Name, "interface": vm.HostIface, "mac": mac, "ips": []string{vm.IP, ip6},
	}, &tv.Port)
	return tv, ip6
}

// quietVM is scenario.vm for an IPv4-only VM made quiet
// (lab.VMOptions.Quiet).
func (s *scenario) quietVM(h *lab.Host, name, network, mac, cidr string) *tenantVM {
	return s.bindVM(s.lab.AddVM(s.t, h, lab.VMOptions{Name: name, MAC: mac, CIDR: cidr, Quiet: true}), network)
}

// tunnelPorts lists the tunnel ports of a host's br-tun (every port but
// patch-int), sorted.
func tunnelPorts(t *testing.T, h *lab.Host) []string {
	t.Helper()
	out, err := h.Vsctl("list-ports", "br-tun")
	require.NoError(t, err)
	var ports []string
	for _, p := range strings.Fields(out) {
		if p != "patch-int" {
			ports = append(ports, p)
		}
	}
	require.NotEmpty(t, ports, "%s has no tunnel port", h.Name)
	return ports
}

// tunnelTx reads the tx packet counter of every tunnel port of a host.
func tunnelTx(t *testing.T, h *lab.Host) map[string]uint64 {
	t.Helper()
	tx := map[string]uint64{}
	for _, p := range tunnelPorts(t, h) {
		_, tx[p] = h.PortCounters(t, "br-tun", p)
	}
	return tx
}

// settle waits until no tunnel port of h sends anything for 2 s (at most
// 20 s), so a counter comparison measures only what the test does next.
func settle(t *testing.T, h *lab.Host) map[string]uint64 {
	t.Helper()
	prev := tunnelTx(t, h)
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(2 * time.Second)
		cur := tunnelTx(t, h)
		if fmt.Sprint(cur) == fmt.Sprint(prev) {
			return cur
		}
		require.True(t, time.Now().Before(deadline), "%s's tunnel ports did not fall silent: %v then %v", h.Name, prev, cur)
		prev = cur
	}
}

// tunnelTo names the VXLAN tunnel port from any host to peer.
func tunnelTo(peer *lab.Host) string { return "vxlan-" + ipHex(peer.TunnelIP) }

// flowLines dumps the br-tun flows matching filter (ovs-ofctl syntax, e.g.
// "table=21,cookie=0x1/-1"), with statistics and port numbers.
func flowLines(t *testing.T, h *lab.Host, filter string) []string {
	t.Helper()
	out, err := h.Ofctl("dump-flows", "br-tun", filter, "--no-names")
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "cookie=") {
			lines = append(lines, line)
		}
	}
	return lines
}

// cookieFilter matches exactly one cookie in a dump-flows filter.
func cookieFilter(table int, cookie uint64) string {
	return fmt.Sprintf("table=%d,cookie=0x%x/-1", table, cookie)
}

var nPacketsRe = regexp.MustCompile(`n_packets=(\d+)`)

// packets sums n_packets over dump lines containing substr.
func packets(lines []string, substr string) (n uint64, found int) {
	for _, line := range lines {
		if !strings.Contains(line, substr) {
			continue
		}
		found++
		if m := nPacketsRe.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			n += v
		}
	}
	return n, found
}

// outputsTo reports whether a dump line's actions end with output to port.
func outputsTo(line string, port int) bool {
	out := fmt.Sprintf("output:%d", port)
	return strings.HasSuffix(line, ","+out) || strings.HasSuffix(line, "actions="+out)
}

// TestARPAndNDAnsweredLocally: on two hosts, an ARP request and a neighbour
// solicitation from a1 (h1) for a2's (h2) addresses are answered with a2's
// MAC by h1's own br-tun, and no packet leaves h1 through any tunnel port;
// the pings that follow succeed and do raise the tunnel counter (positive
// control). A network with mac_learning off works through L2 population
// alone: pings succeed, nothing is learned and nothing is flooded, while
// the learning network beside it learns and an unknown address floods.
func TestARPAndNDAnsweredLocally(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	s.brtun.MustDo(201, "POST", "/v1/networks", map[string]any{"name": "pure", "type": topology.VXLAN, "segment_id": 5002, "mac_learning": false}, nil)
	a1, a1v6 := s.dualStackVM(h1, "a1", "blue", "02:00:00:00:0a:01", "198.18.0.1/24", "2001:db8:100::1/64")
	a2, a2v6 := s.dualStackVM(h2, "a2", "blue", "02:00:00:00:0a:02", "198.18.0.2/24", "2001:db8:100::2/64")
	p1 := s.quietVM(h1, "p1", "pure", "02:00:00:00:0c:01", "198.18.0.1/24")
	p2 := s.quietVM(h2, "p2", "pure", "02:00:00:00:0c:02", "198.18.0.2/24")
	s.waitApplied(30 * time.Second)

	// ARP and ND for a2's addresses: answered on h1, nothing through a tunnel.
	before := settle(t, h1)
	out, err := a1.Run("arping", "-i", "eth0", "-c", "1", "-w", "3", "-r", a2.IP)
	require.NoError(t, err, "arping %s from a1: %s", a2.IP, out)
	require.Equal(t, a2.MAC, strings.ToLower(strings.TrimSpace(out)), "the ARP reply must carry a2's MAC")
	out, err = a1.Run("ndisc6", "-1", "-q", "-r", "1", "-w", "2000", "-s", a1v6, a2v6, "eth0")
	require.NoError(t, err, "ndisc6 %s from a1: %s", a2v6, out)
	require.Equal(t, a2.MAC, strings.ToLower(strings.TrimSpace(out)), "the neighbour advertisement must carry a2's MAC")
	require.Equal(t, before, tunnelTx(t, h1), "no packet may leave h1 through a tunnel port while ARP and ND are answered")

	a2Cookie := flows.PortCookie("blue", "a2")
	arpHits, arpFlows := packets(flowLines(t, h1, cookieFilter(21, a2Cookie)), "arp_tpa="+a2.IP)
	require.Equal(t, 1, arpFlows, "h1 must hold one ARP responder flow for %s", a2.IP)
	require.Positive(t, arpHits, "h1's ARP responder for %s must have answered", a2.IP)
	ndHits, ndFlows := packets(flowLines(t, h1, cookieFilter(21, a2Cookie)), "nd_target="+a2v6)
	require.Equal(t, 1, ndFlows, "h1 must hold one ND responder flow for %s", a2v6)
	require.Positive(t, ndHits, "h1's ND responder for %s must have answered", a2v6)

	// Positive control: the kernel resolves through the responders, the
	// pings cross the tunnel, and the counter read above does move.
	_, err = a1.Run("ip", "neigh", "flush", "dev", "eth0")
	require.NoError(t, err)
	ok, out := a1.Ping(a2.IP, 3)
	require.True(t, ok, "a1 -> a2 over IPv4: %s", out)
	out, err = a1.Run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", a2v6)
	require.NoError(t, err, "a1 -> a2 over IPv6: %s", out)
	after := tunnelTx(t, h1)
	require.GreaterOrEqual(t, after[tunnelTo(h2)], before[tunnelTo(h2)]+6, "the six echo requests must have left h1 through its tunnel to h2")
	for _, ip := range []string{a2.IP, a2v6} {
		neigh, err := a1.Run("ip", "neigh", "show", ip)
		require.NoError(t, err)
		require.Contains(t, neigh, a2.MAC, "a1 must have resolved %s to a2's MAC", ip)
	}

	// mac_learning off: L2 population alone carries the traffic.
	pureFlood := cookieFilter(21, flows.NetworkCookie(topology.VXLAN, 5002))
	ok, out = p1.Ping(p2.IP, 3)
	require.True(t, ok, "p1 -> p2 in the network without MAC learning: %s", out)
	for _, h := range []*lab.Host{h1, h2} {
		flooded, n := packets(flowLines(t, h, pureFlood), "dl_vlan=")
		require.Equal(t, 1, n, "%s holds pure's flood flow", h.Name)
		require.Zero(t, flooded, "%s: nothing of pure's traffic may be flooded (ARP is answered, unicast is known)", h.Name)
	}
	learnOn := map[string]bool{}
	for _, line := range flowLines(t, h1, "table=10") {
		for _, vm := range []*tenantVM{a1, p1} {
			if strings.Contains(line, fmt.Sprintf("dl_vlan=%d ", vm.Port.LocalVLAN)) {
				learnOn[vm.Network] = strings.Contains(line, "learn(")
			}
		}
	}
	require.Equal(t, map[string]bool{"blue": true, "pure": false}, learnOn, "h1 table 10: learn() for blue only")
	pureLearned := flowLines(t, h2, cookieFilter(20, flows.LearnedCookie(topology.VXLAN, 5002, p2.Port.LocalVLAN)))
	blueLearned := flowLines(t, h2, cookieFilter(20, flows.LearnedCookie(topology.VXLAN, 5001, a2.Port.LocalVLAN)))
	require.Empty(t, pureLearned, "h2 must learn nothing in pure")
	require.NotEmpty(t, blueLearned, "positive control: h2 learned a1's MAC in blue")
	// Positive control for the flood counter: a broadcast for an unknown
	// address in pure does go through the flood flow.
	_, _ = p1.Run("arping", "-i", "eth0", "-c", "1", "-w", "1", "198.18.0.99")
	flooded, _ := packets(flowLines(t, h1, pureFlood), "dl_vlan=")
	require.Positive(t, flooded, "an ARP for an unknown address in pure must be flooded")
}

// TestFloodOnlyToCarriers: on three hosts, blue has ports on h1 and h2 and
// green on h2 and h3. A broadcast in blue from h1 leaves through the tunnel
// to h2 and not through the tunnel to h3. When a port of blue appears on h3
// the flood flow is modified in place (never deleted and re-added) and the
// broadcast reaches h3 too; when the port leaves, h3 is dropped again.
func TestFloodOnlyToCarriers(t *testing.T) {
	forEachTunnelMode(t, func(t *testing.T, mode topology.TunnelPortMode) {
		s := newScenario(t, 3, daemonOptions{Advertise: true, TunnelPorts: mode})
		h1, h2, h3 := s.lab.Hosts[0], s.lab.Hosts[1], s.lab.Hosts[2]
		s.network("blue", topology.VXLAN, 5001)
		s.network("green", topology.VXLAN, 5002)
		b1 := s.quietVM(h1, "b1", "blue", "02:00:00:00:0b:01", "198.18.0.1/24")
		b2 := s.quietVM(h2, "b2", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
		g2 := s.quietVM(h2, "g2", "green", "02:00:00:00:06:02", "198.18.0.2/24")
		g3 := s.quietVM(h3, "g3", "green", "02:00:00:00:06:03", "198.18.0.3/24")
		s.waitApplied(30 * time.Second)
		ok, out := b1.Ping(b2.IP, 2)
		require.True(t, ok, "b1 -> b2 in blue: %s", out)
		ok, out = g3.Ping(g2.IP, 2)
		require.True(t, ok, "g3 -> g2 in green (h3 is a live host): %s", out)

		// broadcast sends ARP requests for an address nobody has in blue, so
		// no responder answers and they take the flood flow; it returns the tx
		// increase of h1's tunnels to h2 and h3. Only b1 sends on h1, so
		// nothing else can reach a tunnel that does not carry blue.
		broadcast := func() (toH2, toH3 uint64) {
			t.Helper()
			before := sentTo(t, mode, h1, h2, h3)
			_, _ = b1.Run("arping", "-i", "eth0", "-c", "3", "-W", "0.2", "-w", "2", "198.18.0.99")
			after := sentTo(t, mode, h1, h2, h3)
			return after[0] - before[0], after[1] - before[1]
		}
		toH2, toH3 := broadcast()
		require.GreaterOrEqual(t, toH2, uint64(3), "blue's broadcasts must reach h2, which carries blue")
		require.Zero(t, toH3, "blue's broadcasts must not reach h3, which does not carry blue")

		floodCookie := flows.NetworkCookie(topology.VXLAN, 5001)
		floodEvents := func(raw string) (modified, other []string) {
			for _, e := range flowEvents(raw) {
				if !strings.Contains(e, fmt.Sprintf("cookie=0x%x", floodCookie)) || !strings.Contains(e, "table=21") {
					continue
				}
				if strings.HasPrefix(e, "event=MODIFIED") {
					modified = append(modified, e)
				} else {
					other = append(other, e)
				}
			}
			return modified, other
		}

		// A port of blue appears on h3.
		stop := h1.Monitor(t, "br-tun")
		s.quietVM(h3, "b3", "blue", "02:00:00:00:0b:03", "198.18.0.3/24")
		s.waitApplied(30 * time.Second)
		raw := stop()
		modified, other := floodEvents(raw)
		require.Len(t, modified, 1, "h1's flood flow for blue must be modified once; monitor printed:\n%s", raw)
		require.Empty(t, other, "h1's flood flow for blue must never be deleted or re-added")
		toH2, toH3 = broadcast()
		require.GreaterOrEqual(t, toH2, uint64(3), "blue's broadcasts still reach h2")
		require.GreaterOrEqual(t, toH3, uint64(3), "blue's broadcasts now reach h3, which carries blue")

		// The port leaves h3 again.
		stop = h1.Monitor(t, "br-tun")
		s.brtun.MustDo(204, "DELETE", "/v1/networks/blue/ports/b3", nil, nil)
		s.waitApplied(30 * time.Second)
		raw = stop()
		modified, other = floodEvents(raw)
		require.Len(t, modified, 1, "h1's flood flow for blue must be modified once; monitor printed:\n%s", raw)
		require.Empty(t, other, "h1's flood flow for blue must never be deleted or re-added")
		toH2, toH3 = broadcast()
		require.GreaterOrEqual(t, toH2, uint64(3), "blue's broadcasts still reach h2")
		require.Zero(t, toH3, "blue's broadcasts must stop reaching h3 once it carries blue no more")
	})
}

// TestMACMoveRecovers: VM x moves from h1 to h2 (a new namespace with the
// same MAC and IP; the old one's link goes down) and its port is updated
// with PUT. The move deletes the learned entries for x's MAC on h2 (the
// destination) and h3, so z on h2 reaches x before x sends anything.
// Pings from y on h3 recover within 5 s of the PUT, far below the
// 300 s of the learned entry that still points h3 at h1, and every host
// carrying the network sends x's MAC to h2.
func TestMACMoveRecovers(t *testing.T) {
	s := newScenario(t, 3, daemonOptions{Advertise: true})
	h1, h2, h3 := s.lab.Hosts[0], s.lab.Hosts[1], s.lab.Hosts[2]
	s.network("blue", topology.VXLAN, 5001)
	const xMAC = "02:00:00:00:0b:01"
	// ("x" alone would make the host interface "tx", which `ip link set` reads as txqueuelen.)
	x := s.quietVM(h1, "mx", "blue", xMAC, "198.18.0.1/24")
	s.quietVM(h1, "mw", "blue", "02:00:00:00:0b:04", "198.18.0.4/24") // keeps blue on h1 after the move
	z := s.quietVM(h2, "mz", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
	y := s.quietVM(h3, "my", "blue", "02:00:00:00:0b:03", "198.18.0.3/24")
	s.waitApplied(30 * time.Second)
	ok, out := y.Ping(x.IP, 3)
	require.True(t, ok, "y -> x before the move: %s", out)
	ok, out = z.Ping(x.IP, 3)
	require.True(t, ok, "z -> x before the move: %s", out)

	// h3 and h2 have learned x's MAC on their tunnel to h1 (priority 1, 300 s).
	learnedToH1 := func(h *lab.Host) bool {
		for _, line := range flowLines(t, h, "table=20") {
			if flows.IsLearned(cookieOf(line)) && strings.Contains(line, "dl_dst="+xMAC) &&
				outputsTo(line, h.Ofport(t, tunnelTo(h1))) {
				return true
			}
		}
		return false
	}
	require.True(t, learnedToH1(h3), "h3 must have learned x's MAC on its tunnel to h1")
	require.True(t, learnedToH1(h2), "h2 must have learned x's MAC on its tunnel to h1")

	// x moves: its old link goes down, a new VM with its MAC and IP comes up on h2.
	_, err := x.Run("ip", "link", "set", "eth0", "down")
	require.NoError(t, err)
	x2 := s.lab.AddVM(t, h2, lab.VMOptions{Name: "mx2", MAC: xMAC, CIDR: "198.18.0.1/24", Quiet: true})
	ok, out = y.Ping(x.IP, 2)
	require.False(t, ok, "before the PUT, y's pings to x must go to the old host and be lost: %s", out)
	ok, out = y.Ping(z.IP, 2)
	require.True(t, ok, "positive control y -> z meanwhile: %s", out)
	require.True(t, learnedToH1(h3), "the stale learned entry on h3 is still there when the port moves")
	require.True(t, learnedToH1(h2), "the stale learned entry on h2 is still there when the port moves")

	start := time.Now()
	s.brtun.MustDo(200, "PUT", "/v1/networks/blue/ports/mx", map[string]any{
		"host": h2.Name, "interface": x2.HostIface, "mac": xMAC, "ips": []string{x.IP},
	}, nil)
	answered := time.Since(start)
	// The bundles moving x's registered entries also delete the learned
	// entries for its MAC (issue 17 item 4): on the destination h2 and on
	// h3, before x2 has sent anything (it is quiet), and z on h2 reaches it.
	s.waitApplied(30 * time.Second)
	assert.False(t, learnedToH1(h2), "h2 (the destination) keeps no learned entry sending x's MAC to h1")
	assert.False(t, learnedToH1(h3), "h3 keeps no learned entry sending x's MAC to h1")
	ok, out = z.Ping(x.IP, 2)
	require.True(t, ok, "z (h2) -> x on h2 right after the move, with no stale learned entry: %s", out)
	var recovered time.Duration
	attempts := 0
	for time.Since(start) < 30*time.Second {
		attempts++
		if _, err := y.Run("ping", "-c", "1", "-W", "0.3", x.IP); err == nil {
			recovered = time.Since(start)
			break
		}
	}
	require.NotZero(t, recovered, "y's pings to x did not recover within 30 s of the PUT")
	t.Logf("pings from y (h3) to x recovered %.3fs after the PUT moving x from h1 to h2 (the PUT answered after %.3fs; ping %d succeeded)",
		recovered.Seconds(), answered.Seconds(), attempts)
	assert.Less(t, recovered, 5*time.Second, "pings must recover within 5 s of the move (a stale learned entry lasts 300 s)")

	// Every other host carrying blue sends x's MAC to h2 now.
	s.waitApplied(30 * time.Second)
	xCookie := flows.PortCookie("blue", "mx")
	for _, h := range []*lab.Host{h1, h3} {
		lines := flowLines(t, h, cookieFilter(20, xCookie))
		require.Len(t, lines, 1, "%s: one table-20 entry for x", h.Name)
		assert.True(t, outputsTo(lines[0], h.Ofport(t, tunnelTo(h2))),
			"%s must send x's MAC to its tunnel to h2: %s", h.Name, lines[0])
	}
	require.Empty(t, flowLines(t, h2, cookieFilter(20, xCookie)), "h2 holds x locally: no tunnel entry for it")
}
