//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// floodHelper sends n frames to dst (ethertype 0x88b5, local
// experimental) with distinct random source MACs under a 2-byte prefix from
// eth0 through a raw socket, at most rate frames a second, and prints the
// time it took.
const floodHelper = `
import random, socket, struct, sys, time
n, prefix, rate, dst = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), float(sys.argv[3]), bytes.fromhex(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
tail = b"\x88\xb5" + bytes(46)
start = time.monotonic()
for i, suffix in enumerate(random.sample(range(1 << 32), n)):
    frame = dst + prefix + struct.pack(">I", suffix) + tail
    while True:
        try:
            s.send(frame)
            break
        except OSError:  # ENOBUFS: the veth queue is full
            time.sleep(0.001)
    if i % 500 == 499:
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
print("%.3f" % (time.monotonic() - start))
`

// The flood: the 100,000 random source MACs, paced at 5,000 a
// second (20 s) so that OVS's userspace datapath takes them all rather
// than the kernel dropping them off a full socket queue (unpaced, the
// sender ran at 150,000/s).
const (
	floodFrames = 100000
	floodRate   = 5000
)

// flood sends n frames to dst with random source MACs under prefix from
// vm and returns how long that took and how many frames vm's port on
// br-int received meanwhile (its rx_packets).
func flood(t *testing.T, l *lab.Lab, h *lab.Host, vm *lab.VM, prefix, dst string, n int) (time.Duration, int) {
	t.Helper()
	ofport := strings.TrimSpace(vsctlOut(t, h, "get", "interface", vm.HostIface, "ofport"))
	rx := func() int { // live, from the switch
		out, err := h.Ofctl("dump-ports", "br-int", ofport)
		require.NoError(t, err, out)
		m := rxRE.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		v, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return v
	}
	script := filepath.Join(l.Dir, "flood.py")
	require.NoError(t, os.WriteFile(script, []byte(floodHelper), 0o644))
	before := rx()
	out, err := exec.Command("ip", "netns", "exec", vm.Netns, scapyPython, script, strconv.Itoa(n), strings.ReplaceAll(prefix, ":", ""),
		strconv.Itoa(floodRate), strings.ReplaceAll(dst, ":", "")).CombinedOutput()
	require.NoError(t, err, "flood from %s: %s", vm.Name, out)
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, string(out))
	time.Sleep(time.Second) // the last frames through
	return time.Duration(secs * float64(time.Second)), rx() - before
}

var (
	lossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	rxRE   = regexp.MustCompile(`rx pkts=(\d+)`)
)

// TestApplianceFloodStaysBounded: with --mac-learn-limit 100 and the
// default --appliance-source-rate, an appliance port
// (port_security_enabled false) of blue on h2 floods random source MACs
// (100,000, at 5,000/s), first broadcast, then to a registered port's MAC
// on h1. h1's table 20 stays at the limit, red's learned MACs (the
// positive control that learning works) survive, and pings between green's
// VMs on h1 and h2 lose nothing during either flood: the appliance's
// source meter on h2 lets through what h1 can learn (without it green lost
// up to 1.5 %, see docs/benchmarks.md; with it, none in 22 of 24 runs; the
// other two, on a machine overloaded by other jobs, lost 1 ping in a
// phase, once also in the protected port's, and the no-flood control once
// lost 1 of 147 by itself). The appliance's own traffic, above
// the meter's rate, passes unmetered. The same flood from a protected port
// of blue leaves nothing learned, while the appliance's floods did learn.
func TestApplianceFloodStaysBounded(t *testing.T) {
	const limit, n = 100, floodFrames
	s := newScenario(t, 2, daemonOptions{Advertise: true, ExtraArgs: []string{"--mac-learn-limit", fmt.Sprint(limit)}})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.VXLAN, 5002)
	s.network("green", topology.VXLAN, 5003)
	fa1 := s.quietVM(h1, "fa1", "blue", "02:00:00:00:0c:01", "198.18.0.1/24")
	prot := s.quietVM(h2, "fprot", "blue", "02:00:00:00:0c:02", "198.18.0.2/24")
	apVM := s.lab.AddVM(t, h2, lab.VMOptions{Name: "fappl", MAC: "02:00:00:00:0c:03", CIDR: "198.18.0.3/24", Quiet: true})
	appl := &tenantVM{VM: apVM, Network: "blue"}
	s.brtun.MustDo(201, "POST", "/v1/networks/blue/ports", map[string]any{
		"name": "fappl", "host": "h2", "interface": apVM.HostIface, "mac": apVM.MAC, "ips": []string{apVM.IP},
		"port_security_enabled": false,
	}, &appl.Port)
	require.True(t, prot.Port.PortSecurityEnabled)
	require.False(t, appl.Port.PortSecurityEnabled)
	s.quietVM(h1, "fr1", "red", "02:00:00:00:0d:01", "198.18.0.1/24")
	r2 := s.quietVM(h2, "fr2", "red", "02:00:00:00:0d:02", "198.18.0.2/24")
	g1 := s.quietVM(h1, "fg1", "green", "02:00:00:00:0e:01", "198.18.0.1/24")
	g2 := s.quietVM(h2, "fg2", "green", "02:00:00:00:0e:02", "198.18.0.2/24")
	s.waitApplied(30 * time.Second)
	ok, out := g1.Ping(g2.IP, 2)
	require.True(t, ok, "green before the flood: %s", out)
	ofport, err := strconv.ParseUint(strings.TrimSpace(vsctlOut(t, h2, "get", "interface", apVM.HostIface, "ofport")), 10, 32)
	require.NoError(t, err)
	meter := flows.SourceMeterID(uint32(ofport))
	require.True(t, waitUntil(10*time.Second, func() bool { _, ok := meterDrops(t, h2, meter); return ok }),
		"h2's br-int holds the appliance's source meter %d", meter)

	// Positive control: 15 source MACs of red, sent on h2, are learned on h1.
	inject(t, h2, r2, "02:bb", 15)
	require.Eventually(t, func() bool { return learnedOn(t, h1, "02:bb:") == 15 }, 10*time.Second, 100*time.Millisecond,
		"h1 must learn red's 15 MACs")

	// Control: green's pings for 10 s with no flood.
	sent, lost := pingDuring(t, g1, g2, func() { time.Sleep(8 * time.Second) })
	t.Logf("green, no flood: %d pings, %d lost", sent, lost)

	// The protected port's flood: dropped on h2's br-int, nothing learned.
	var took time.Duration
	var received int
	sent, lost = pingDuring(t, g1, g2, func() { took, received = flood(t, s.lab, h2, prot.VM, "02:cc", broadcast, n) })
	t.Logf("protected port: %d frames sent in %s, %d received by br-int; green: %d pings, %d lost", n, took, received, sent, lost)
	assert.Greater(t, received, 10*limit, "the protected port's flood reached br-int, many times the table's size")
	assert.Zero(t, learnedOn(t, h1, "02:cc:"), "a protected port's spoofed sources are never learned")
	assert.Zero(t, lost, "green's pings during the protected port's flood lose nothing")

	// The appliance's floods, broadcast and then to fa1's MAC (a registered
	// port on h1, forwarded by flow, which h1 learns the sources of all
	// the same), with green pinging across hosts meanwhile.
	for _, fl := range []struct{ name, prefix, dst string }{
		{"broadcast", "02:aa", broadcast},
		{"unicast to " + fa1.MAC, "02:ab", fa1.MAC},
	} {
		var maxSeen int
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() { // table 20's size, sampled during the flood
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
					maxSeen = max(maxSeen, len(table20(t, h1)))
				}
			}
		}()
		dropsBefore, _ := meterDrops(t, h2, meter)
		sent, lost = pingDuring(t, g1, g2, func() { took, received = flood(t, s.lab, h2, appl.VM, fl.prefix, fl.dst, n) })
		close(stop)
		<-sampled
		time.Sleep(time.Second) // the last frames through
		dropsAfter, _ := meterDrops(t, h2, meter)
		total, learned, red := len(table20(t, h1)), learnedOn(t, h1, fl.prefix+":"), learnedOn(t, h1, "02:bb:")
		t.Logf("appliance, %s: %d frames sent in %s (%.0f/s), %d received by br-int, %d dropped by its source meter; "+
			"h1 table 20: %d flows (at most %d while sampled), %d of the flood, %d of red's; green: %d pings, %d lost",
			fl.name, n, took, float64(n)/took.Seconds(), received, dropsAfter-dropsBefore, total, maxSeen, learned, red, sent, lost)
		assert.Greater(t, received, 10*limit, "%s: the flood reached br-int, many times the table's size", fl.name)
		assert.Greater(t, dropsAfter-dropsBefore, 10*limit, "%s: the source meter dropped the excess", fl.name)
		assert.Positive(t, learned, "%s: positive control: the appliance's flood is learned", fl.name)
		assert.LessOrEqual(t, total, limit, "%s: table 20 stays within the limit", fl.name)
		assert.LessOrEqual(t, maxSeen, limit, "%s: table 20 stays within the limit during the flood", fl.name)
		assert.GreaterOrEqual(t, total, limit-2, "%s: table 20 is full, at the limit (give or take expiries)", fl.name)
		assert.Equal(t, 15, red, "%s: red's learned entries survive blue's flood", fl.name)
		assert.Zero(t, lost, "%s: green's pings during the appliance's flood lose nothing", fl.name)
	}
	assert.Zero(t, learnedOn(t, h1, "02:cc:"), "still nothing of the protected port's flood")

	// The appliance's own traffic is not metered: 1,500 pings to fa1 at
	// about 1,000/s (twice the meter's rate) from its own MAC all come back
	// and the meter drops nothing meanwhile.
	dropsBefore, _ := meterDrops(t, h2, meter)
	out, err = appl.Run("ping", "-q", "-c", "1500", "-i", "0.001", "-W", "2", fa1.IP)
	require.NoError(t, err, out)
	m := lossRE.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	dropsAfter, _ := meterDrops(t, h2, meter)
	t.Logf("appliance's own pings: %s", strings.TrimSpace(m[0]))
	assert.Equal(t, m[1], m[2], "the appliance's own traffic passes unmetered: %s", out)
	assert.Equal(t, dropsBefore, dropsAfter, "the source meter dropped none of the appliance's own traffic")
}

// broadcast is the Ethernet broadcast address.
const broadcast = "ff:ff:ff:ff:ff:ff"

var meterDropsRE = regexp.MustCompile(`(?s)bands:\s*0: packet_count:(\d+)`)

// meterDrops returns how many packets meter id on h's br-int dropped (its
// band's packet count), and false when h has no such meter.
func meterDrops(t *testing.T, h *lab.Host, id uint32) (int, bool) {
	t.Helper()
	out, err := h.Ofctl("meter-stats", "br-int", fmt.Sprintf("meter=%d", id))
	require.NoError(t, err, out)
	m := meterDropsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	v, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return v, true
}

// pingDuring pings from a to b every 50 ms for as long as fn runs (at
// least one ping) and returns how many pings were sent and lost.
func pingDuring(t *testing.T, a, b *tenantVM, fn func()) (sent, lost int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", a.Netns, "ping", "-i", "0.05", "-W", "2", b.IP)
	var out strings.Builder
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	fn()
	time.Sleep(2 * time.Second)                          // the last replies
	require.NoError(t, cmd.Process.Signal(os.Interrupt)) // our own child, by PID: ping prints its summary
	_ = cmd.Wait()
	m := lossRE.FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	sent, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	got, err := strconv.Atoi(m[2])
	require.NoError(t, err)
	return sent, sent - got
}

// TestRefusedBindingDoesNotStallHost: a port on patch-tun is refused with
// 400; a port whose interface sits on another bridge (br-ex) is accepted by
// the API but shows status error with OVSDB's reason, while a second port on
// the same host binds and pings a VM on the other host. Moving the
// interface to no bridge lets brtun bind it (the error clears).
func TestRefusedBindingDoesNotStallHost(t *testing.T) {
	s := newScenario(t, 2, daemonOptions{Advertise: true, DriftInterval: time.Second})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.Equal(t, 400, s.brtun.Do("POST", "/v1/networks/blue/ports",
		map[string]any{"name": "pt", "host": "h1", "interface": "patch-tun"}, &e))
	assert.Equal(t, "invalid", e.Error.Code)

	b2 := s.quietVM(h2, "rb2", "blue", "02:00:00:00:0a:02", "198.18.0.2/24")
	bad := s.lab.AddVM(t, h1, lab.VMOptions{Name: "rbad", MAC: "02:00:00:00:0a:09", CIDR: "198.18.0.9/24", Quiet: true})
	out, err := h1.Vsctl("add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev", "--", "add-port", "br-ex", bad.HostIface)
	require.NoError(t, err, out)
	badVM := s.bindVM(bad, "blue") // 201: the API cannot know
	assert.Equal(t, "pending", badVM.Port.Status)
	good := s.quietVM(h1, "rgood", "blue", "02:00:00:00:0a:01", "198.18.0.1/24")
	s.waitApplied(30 * time.Second)

	type statusView struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	var pv statusView
	get := func(port string) bool { // a fresh value: an absent message must read empty
		pv = statusView{}
		return s.brtun.Do("GET", "/v1/networks/blue/ports/"+port, nil, &pv) == 200
	}
	require.True(t, waitUntil(20*time.Second, func() bool {
		return get("rgood") && pv.Status == "bound"
	}), "the second port on h1 binds: %+v", pv)
	assert.Empty(t, pv.Message)
	require.True(t, get("rbad"))
	assert.Equal(t, "error", pv.Status)
	assert.Equal(t, "bind "+bad.HostIface+": interface is not on br-int", pv.Message)
	assert.Equal(t, 1.0, metric(t, s.brtun, `brtun_refused_bindings{host="h1"}`))
	assert.Equal(t, 0.0, metric(t, s.brtun, `brtun_refused_bindings{host="h2"}`), "control: h2 refused nothing")
	ok, pout := good.Ping(b2.IP, 3)
	require.True(t, ok, "the second port pings across hosts: %s", pout)
	ok, pout = (&tenantVM{VM: bad}).Ping(b2.IP, 2)
	assert.False(t, ok, "the refused port is not on the network: %s", pout)
	br, err := h1.Vsctl("port-to-br", bad.HostIface)
	require.NoError(t, err)
	assert.Equal(t, "br-ex", strings.TrimSpace(br), "brtun left the interface where the operator put it")

	// Free the interface: the next reconcile binds it.
	out, err = h1.Vsctl("del-port", "br-ex", bad.HostIface)
	require.NoError(t, err, out)
	require.True(t, waitUntil(30*time.Second, func() bool {
		return get("rbad") && pv.Status == "bound"
	}), "once free, the interface binds: %+v", pv)
	assert.Empty(t, pv.Message)
	assert.Equal(t, 0.0, metric(t, s.brtun, `brtun_refused_bindings{host="h1"}`))
	// "bound" is OVSDB's answer; the port's flows follow in the same or
	// the next reconcile, and no store revision marks them to wait for.
	assert.True(t, waitUntil(10*time.Second, func() bool { ok, pout = (&tenantVM{VM: bad}).Ping(b2.IP, 1); return ok }),
		"bound, it pings: %s", pout)
}
