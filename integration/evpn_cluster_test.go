//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/topology/etcdtest"
)

// secondControllerIP is the BGP address of the second replica in the EVPN
// cluster test, next to lab.ControllerIP on the management LAN.
const secondControllerIP = "198.51.100.253"

// frrNeighbor is FRR's view of one neighbor: its session state and the
// EVPN routes it accepted from it.
func frrNeighbor(f *testbed.FRR, addr string) (state string, accepted int) {
	out, err := f.Vtysh("show bgp neighbors " + addr + " json")
	if err != nil {
		return "", 0
	}
	var v map[string]struct {
		BgpState string `json:"bgpState"`
		AF       map[string]struct {
			Accepted int `json:"acceptedPrefixCounter"`
		} `json:"addressFamilyInfo"`
	}
	if json.Unmarshal([]byte(out), &v) != nil {
		return "", 0
	}
	n := v[addr]
	for _, af := range n.AF {
		accepted += af.Accepted
	}
	return n.BgpState, accepted
}

// fastPing runs `ping -c count -i interval` from vm to ip in the background
// and delivers its output.
func fastPing(vm *lab.VM, ip string, count int, interval time.Duration) <-chan string {
	done := make(chan string, 1)
	go func() {
		out, _ := vm.Run("ping", "-q", "-c", fmt.Sprint(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "1", ip)
		done <- out
	}()
	return done
}

// TestEVPNReplicaFailover: two brtun replicas on one etcd both run the BGP
// speaker (their own router id and address) and peer with FRR, which
// therefore holds every brtun route twice. While a brtun VM pings the VM
// behind FRR every 10 ms (ping -i 0.01), the replica that stores the
// imported routes (the leader, r1) is SIGKILLed and started again, then r2
// is: no ping is lost, because FRR keeps the other replica's copy of the
// routes (FRR 8.4 keeps no EVPN routes of a restarting peer,
// evpn/README.md). Positive controls: FRR saw each session go down and come
// back; both replicas had given FRR their routes; r2 takes over storing the
// imports (a MAC that appears behind FRR after r1's kill reaches the OVS
// host); no flow changes meanwhile.
func TestEVPNReplicaFailover(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	dev := strings.Fields(testbed.MustRun(t, nil, "ip", "-o", "-4", "addr", "show", "to", lab.ControllerIP+"/32"))
	require.GreaterOrEqual(t, len(dev), 2, "the lab's management bridge holds %s", lab.ControllerIP)
	testbed.MustRun(t, nil, "ip", "addr", "add", secondControllerIP+"/24", "dev", dev[1])
	t.Cleanup(func() { _, _ = testbed.Run(nil, "ip", "addr", "del", secondControllerIP+"/24", "dev", dev[1]) })

	k := l.AddKernelHost(t, "f9", frrIndex)
	k.AddVNI(t, 5001)
	fv := k.AddVM(t, 5001, lab.VMOptions{Name: "fv", MAC: "02:00:00:00:09:01", CIDR: "198.18.0.9/24", Quiet: true})
	frr := k.StartFRR(t, testbed.EVPNBGPD(l.Prefix+"b", frrMgmt, bgpASN, lab.ControllerIP, secondControllerIP))

	c := &cluster{t: t, lab: l, etcd: etcdtest.Start(t), names: []string{"r1", "r2"}, replicas: map[string]*daemon{}, live: []string{"r1", "r2"}}
	bgpAddr := map[string]string{"r1": lab.ControllerIP, "r2": secondControllerIP}
	for _, n := range c.names {
		c.replicas[n] = startBrtun(t, l, daemonOptions{Name: n, ExtraArgs: []string{
			"--store", "etcd", "--etcd-endpoints", c.etcd.Endpoint(),
			"--replica-name", n, "--etcd-lease-ttl", clusterLeaseTTL.String(),
			"--bgp-asn", fmt.Sprint(bgpASN), "--bgp-router-id", bgpAddr[n],
			"--bgp-listen-address", bgpAddr[n], "--bgp-listen-port", "179", "--bgp-graceful-restart-time", "10s",
		}})
	}
	s := c.scenario("r1")
	s.brtun.MustDo(http.StatusCreated, "POST", "/v1/hosts", map[string]any{
		"name": h1.Name, "ovsdb": h1.OVSDB, "tunnel_ip": h1.TunnelIP, "datapath_type": h1.DatapathType,
	}, nil)
	c.pointBridges()
	s.brtun.MustDo(http.StatusCreated, "POST", "/v1/networks", map[string]any{"name": "blue", "type": topology.VXLAN, "segment_id": 5001, "evpn": true}, nil)
	s.brtun.MustDo(http.StatusCreated, "POST", "/v1/bgp/peers", map[string]any{"address": frrMgmt, "asn": bgpASN}, nil)
	a1 := s.quietVM(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	c.waitApplied(60 * time.Second)

	// Both replicas peer with FRR and gave it their routes.
	bothUp := func() bool {
		for _, a := range bgpAddr {
			if st, n := frrNeighbor(frr, a); st != "Established" || n == 0 {
				return false
			}
		}
		return true
	}
	require.True(t, waitUntil(30*time.Second, bothUp), "FRR's sessions with both replicas, with routes: %v / %v",
		fmt.Sprint(frrNeighbor(frr, lab.ControllerIP)), fmt.Sprint(frrNeighbor(frr, secondControllerIP)))
	require.True(t, waitUntil(15*time.Second, func() bool { return frrHasRemote(frr, 5001, a1.MAC, h1.TunnelIP) }),
		"FRR's EVPN MACs: %v", frrMACs(frr, 5001))
	// Both ways ready before the first ping: h1 applied the import of FRR's
	// VTEP (its flood list), and zebra put a1's MAC and h1's flood entry
	// into the kernel's FDB.
	c.waitApplied(30 * time.Second)
	require.True(t, waitUntil(15*time.Second, func() bool {
		fdb := k.FDB(5001)
		return strings.Contains(fdb, a1.MAC+" dst "+h1.TunnelIP) && strings.Contains(fdb, "00:00:00:00:00:00 dst "+h1.TunnelIP)
	}), "FRR's kernel FDB: %s", k.FDB(5001))
	// FRR learns its quiet VM's MAC from the VM's answer to a1.
	ok, out := a1.Ping(fv.IP, 3)
	require.True(t, ok, "a1 -> fv before the failover: %s", out)
	require.True(t, waitUntil(10*time.Second, func() bool { return unicastEntry(t, h1, fv.MAC) != "" }), "FRR's VM is imported into h1's table 20")

	// Kill the leader while a1 pings fv every 10 ms.
	const count, interval = 5000, 10 * time.Millisecond // 50 s or more: both failovers fit
	changes := watchFlows(t, h1)
	pings := fastPing(a1.VM, fv.IP, count, interval)
	time.Sleep(time.Second)
	killed := time.Now()
	c.kill("r1")
	require.True(t, waitUntil(10*time.Second, func() bool { st, _ := frrNeighbor(frr, lab.ControllerIP); return st != "Established" }),
		"positive control: FRR must see the killed replica's session drop")
	t.Logf("FRR saw r1's session drop after %s", time.Since(killed).Round(time.Millisecond))
	assert.True(t, frrHasRemote(frr, 5001, a1.MAC, h1.TunnelIP), "FRR keeps a1's MAC from r2: %v", frrMACs(frr, 5001))
	c.waitApplied(clusterLeaseTTL + 30*time.Second)
	require.Empty(t, changes(), "the failover must change no flow")

	// r2 now stores the imports: a MAC appearing behind FRR reaches h1.
	fv2 := k.AddVM(t, 5001, lab.VMOptions{Name: "fv2", MAC: "02:00:00:00:09:02", CIDR: "198.18.0.10/24", Quiet: true})
	k.Must(t, "bridge", "fdb", "add", fv2.MAC, "dev", fv2.HostIface, "master", "static")
	took := timeUntil(clusterLeaseTTL+15*time.Second, func() bool { return unicastEntry(t, h1, fv2.MAC) != "" })
	require.True(t, took >= 0, "a MAC behind FRR after the kill must reach h1's table 20 through r2")
	t.Logf("new MAC behind FRR reached h1 %s after it appeared (%s after the kill)", took, time.Since(killed).Round(time.Millisecond))

	// r1 comes back: its session returns.
	c.replicas["r1"].Start()
	c.live = c.names
	restarted := time.Now()
	require.True(t, waitUntil(30*time.Second, bothUp), "FRR's session with the restarted r1 must come back")
	t.Logf("r1's session back %s after its restart", time.Since(restarted).Round(time.Millisecond))

	// Then the other replica: FRR prefers the path of the lower router id
	// (r2's), so whichever copy FRR used, one of the two kills took it away.
	changes = watchFlows(t, h1)
	killed = time.Now()
	c.kill("r2")
	require.True(t, waitUntil(10*time.Second, func() bool { st, _ := frrNeighbor(frr, secondControllerIP); return st != "Established" }),
		"positive control: FRR must see r2's session drop")
	t.Logf("FRR saw r2's session drop after %s", time.Since(killed).Round(time.Millisecond))
	assert.True(t, frrHasRemote(frr, 5001, a1.MAC, h1.TunnelIP), "FRR keeps a1's MAC from r1: %v", frrMACs(frr, 5001))
	c.waitApplied(clusterLeaseTTL + 30*time.Second)
	require.Empty(t, changes(), "the second failover must change no flow")
	c.replicas["r2"].Start()
	c.live = c.names
	require.True(t, waitUntil(30*time.Second, bothUp), "FRR's session with the restarted r2 must come back")
	select {
	case res := <-pings:
		t.Fatalf("the pings ended before both failovers were done: %s", lastLine(res))
	default:
	}

	res := <-pings
	t.Logf("a1 -> fv every %s (ping -i) across the kills and restarts of r1 and r2: %s", interval, lastLine(res))
	requireNoLoss(t, res, count, "a1 -> fv across both replicas' SIGKILL and restart")
	ok, out = a1.Ping(fv2.IP, 3)
	require.True(t, ok, "a1 -> fv2 (learned after the failover): %s", out)
}
