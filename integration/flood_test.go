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
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// floodHelper sends n broadcast frames (ethertype 0x88b5, local
// experimental) with distinct random source MACs under a 2-byte prefix from
// eth0 through a raw socket, as fast as the socket takes them, and prints
// the time it took.
const floodHelper = `
import random, socket, struct, sys, time
n, prefix = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
tail = b"\x88\xb5" + bytes(46)
start = time.monotonic()
for suffix in random.sample(range(1 << 32), n):
    frame = b"\xff" * 6 + prefix + struct.pack(">I", suffix) + tail
    while True:
        try:
            s.send(frame)
            break
        except OSError:  # ENOBUFS: the veth queue is full
            time.sleep(0.001)
print("%.3f" % (time.monotonic() - start))
`

// floodFrames is how many frames the flood test sends: 5,000 by default,
// BRTUN_FLOOD_FRAMES (make bench-flood: 100,000) otherwise.
func floodFrames(t *testing.T) int {
	t.Helper()
	n := 5000
	if v := os.Getenv("BRTUN_FLOOD_FRAMES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "BRTUN_FLOOD_FRAMES")
	}
	return n
}

// flood sends n frames with random source MACs under prefix from vm.
func flood(t *testing.T, l *lab.Lab, vm *lab.VM, prefix string, n int) time.Duration {
	t.Helper()
	script := filepath.Join(l.Dir, "flood.py")
	require.NoError(t, os.WriteFile(script, []byte(floodHelper), 0o644))
	out, err := exec.Command("ip", "netns", "exec", vm.Netns, scapyPython, script, strconv.Itoa(n), strings.ReplaceAll(prefix, ":", "")).CombinedOutput()
	require.NoError(t, err, "flood from %s: %s", vm.Name, out)
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, string(out))
	return time.Duration(secs * float64(time.Second))
}

var lossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestApplianceFloodStaysBounded: with --mac-learn-limit 100, an appliance
// port (port_security_enabled false) of blue on h2 floods random source
// MACs (5,000 here; make bench-flood sends 100,000). h1's table 20 stays at
// the limit, red's learned MACs (the positive control that learning works)
// survive, and pings between green's VMs on h1 and h2 during the flood lose
// nothing. The same flood from a protected port of blue leaves nothing
// learned, while the appliance's flood did learn.
func TestApplianceFloodStaysBounded(t *testing.T) {
	const limit = 100
	n := floodFrames(t)
	s := newScenario(t, 2, daemonOptions{Advertise: true, ExtraArgs: []string{"--mac-learn-limit", fmt.Sprint(limit)}})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.VXLAN, 5002)
	s.network("green", topology.VXLAN, 5003)
	s.quietVM(h1, "fa1", "blue", "02:00:00:00:0c:01", "198.18.0.1/24")
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

	// Positive control: 15 source MACs of red, sent on h2, are learned on h1.
	inject(t, h2, r2, "02:bb", 15)
	require.Eventually(t, func() bool { return learnedOn(t, h1, "02:bb:") == 15 }, 10*time.Second, 100*time.Millisecond,
		"h1 must learn red's 15 MACs")

	// The protected port's flood: dropped on h2's br-int, nothing learned.
	took := flood(t, s.lab, prot.VM, "02:cc", n)
	t.Logf("protected port: %d frames sent in %s", n, took)
	time.Sleep(2 * time.Second)
	assert.Zero(t, learnedOn(t, h1, "02:cc:"), "a protected port's spoofed sources are never learned")

	// The appliance's flood, with green pinging across hosts meanwhile.
	var wg sync.WaitGroup
	var pingOut string
	var pingErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		pingOut, pingErr = g1.Run("ping", "-c", "50", "-i", "0.2", "-W", "2", g2.IP)
	}()
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
	took = flood(t, s.lab, appl.VM, "02:aa", n)
	wg.Wait()
	close(stop)
	<-sampled
	time.Sleep(time.Second) // the last frames through
	total, blue, red := len(table20(t, h1)), learnedOn(t, h1, "02:aa:"), learnedOn(t, h1, "02:bb:")
	t.Logf("appliance: %d frames sent in %s (%.0f/s); h1 table 20: %d flows (at most %d while sampled), %d of the flood, %d of red's",
		n, took, float64(n)/took.Seconds(), total, maxSeen, blue, red)
	assert.Positive(t, blue, "positive control: the appliance's flood is learned")
	assert.LessOrEqual(t, total, limit, "table 20 stays within the limit")
	assert.LessOrEqual(t, maxSeen, limit, "table 20 stays within the limit during the flood")
	if n > limit {
		assert.GreaterOrEqual(t, total, limit-2, "table 20 is full, at the limit (give or take expiries)")
	}
	assert.Equal(t, 15, red, "red's learned entries survive blue's flood")
	require.NoError(t, pingErr, "green's pings during the flood: %s", pingOut)
	m := lossRE.FindStringSubmatch(pingOut)
	require.NotNil(t, m, pingOut)
	assert.Equal(t, m[1], m[2], "green's pings during the flood lose nothing: %s", pingOut)
	assert.Zero(t, learnedOn(t, h1, "02:cc:"), "still nothing of the protected port's flood")
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
	ok, pout = (&tenantVM{VM: bad}).Ping(b2.IP, 3)
	assert.True(t, ok, "bound, it pings: %s", pout)
}
