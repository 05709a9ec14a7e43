//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// Fault tests: each one breaks something on purpose while traffic flows and
// states what was lost. brtun SIGKILL and ovs-vswitchd restarts are in
// reconcile_test.go (TestRestartTouchesNoFlow, TestVswitchdRestartRecovers).

// watchFlows starts `ovs-ofctl monitor` on both bridges of each host. The
// returned function ends the watch: as a positive control it adds and
// deletes a marker flow in table 7 (which brtun does not use) on every
// bridge and requires each monitor to have seen both, then returns every
// other flow change (changes to learned flows left out).
func watchFlows(t *testing.T, hosts ...*lab.Host) (changes func() []string) {
	t.Helper()
	type watch struct {
		h      *lab.Host
		bridge string
		stop   func() string
	}
	var watches []watch
	for _, h := range hosts {
		for _, b := range []string{"br-tun", "br-int"} {
			watches = append(watches, watch{h, b, h.Monitor(t, b)})
		}
	}
	return func() []string {
		t.Helper()
		for _, w := range watches {
			_, err := w.h.Ofctl("add-flow", w.bridge, "table=7,priority=4321,actions=drop")
			require.NoError(t, err)
			_, err = w.h.Ofctl("del-flows", w.bridge, "--strict", "table=7,priority=4321")
			require.NoError(t, err)
		}
		time.Sleep(300 * time.Millisecond)
		var events []string
		for _, w := range watches {
			raw := w.stop()
			marker := 0
			for _, e := range flowEvents(raw) {
				if strings.Contains(e, " table=7 ") {
					marker++
					continue
				}
				events = append(events, w.h.Name+"/"+w.bridge+": "+e)
			}
			require.Equal(t, 2, marker, "%s/%s: the monitor must have seen the marker flow added and deleted; it printed:\n%s", w.h.Name, w.bridge, raw)
		}
		return events
	}
}

// pingInBackground runs `ping -c count -i 0.1` from vm to ip and delivers
// ping's output when it ends.
func pingInBackground(vm *tenantVM, ip string, count int) <-chan string {
	done := make(chan string, 1)
	go func() {
		out, _ := vm.Run("ping", "-c", fmt.Sprint(count), "-i", "0.1", "-W", "1", ip)
		done <- out
	}()
	return done
}

// requireNoLoss requires ping output to show every one of count packets answered.
func requireNoLoss(t *testing.T, out string, count int, what string) {
	t.Helper()
	require.Contains(t, out, fmt.Sprintf("%d packets transmitted, %d received", count, count), "%s: no packet may be lost:\n%s", what, out)
}

// hostStatus reads the live status of a host from the API.
func hostStatus(s *scenario, host string) hostView {
	var hv hostView
	s.brtun.MustDo(http.StatusOK, "GET", "/v1/hosts/"+host, nil, &hv)
	return hv
}

// allDisconnected reports whether brtun sees host's OVSDB and both bridges as disconnected.
func allDisconnected(hv hostView) bool {
	return hv.Status.OVSDB == "disconnected" && hv.Status.Bridges["br-tun"].OpenFlow == "disconnected" &&
		hv.Status.Bridges["br-int"].OpenFlow == "disconnected"
}

// ovsdbNames lists the name column of an OVSDB table on h, sorted.
func ovsdbNames(t *testing.T, h *lab.Host, table string) []string {
	t.Helper()
	out, err := h.Vsctl("--bare", "--columns=name", "list", table)
	require.NoError(t, err)
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// ovsdbRowCount counts the rows of an OVSDB table on h.
func ovsdbRowCount(t *testing.T, h *lab.Host, table string) int {
	t.Helper()
	out, err := h.Vsctl("--bare", "--columns=_uuid", "list", table)
	require.NoError(t, err)
	return len(strings.Fields(out))
}

// TestOVSDBRestartLosesNothing: ovsdb-server of h1 stopped and started
// again while a VM pings across hosts at 10/s. Lost: nothing. No packet is
// lost, no flow is added, modified or deleted on either host, brtun sees
// the OVSDB session come back, and the next change made through the API
// reaches h1 with exactly one new Port/Interface row (no duplicates).
func TestOVSDBRestartLosesNothing(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	portsBefore, ifacesBefore := ovsdbNames(t, h1, "Port"), ovsdbNames(t, h1, "Interface")
	bridgesBefore, controllersBefore := ovsdbNames(t, h1, "Bridge"), ovsdbRowCount(t, h1, "Controller")

	changes := watchFlows(t, h1, h2)
	const count = 80
	ping := pingInBackground(a1, a2.IP, count)
	time.Sleep(2 * time.Second)
	h1.StopOVSDB(t)
	require.True(t, waitUntil(20*time.Second, func() bool { return hostStatus(s, "h1").Status.OVSDB == "disconnected" }),
		"brtun must notice that h1's OVSDB went away")
	h1.StartOVSDB(t)
	require.True(t, waitUntil(30*time.Second, func() bool { return hostStatus(s, "h1").Status.OVSDB == "connected" }),
		"brtun must reconnect to h1's OVSDB")
	requireNoLoss(t, <-ping, count, "ping across the ovsdb-server restart")
	require.Empty(t, changes(), "the ovsdb-server restart must not add, modify or delete any flow")
	t.Log("ovsdb-server restart under traffic: lost nothing (0 of 80 pings, 0 flow changes)")

	// The next change after the restart converges and adds exactly its rows.
	s.network("green", topology.VXLAN, 5002)
	b1 := s.vm(h1, "b1", "green", "02:00:00:00:02:01", "198.18.0.1/24")
	b2 := s.vm(h2, "b2", "green", "02:00:00:00:02:02", "198.18.0.2/24")
	s.waitApplied(30 * time.Second)
	ok, out := b1.Ping(b2.IP, 3)
	require.True(t, ok, "b1 -> b2 over the network created after the restart: %s", out)
	assert.Equal(t, sortedCopy(append(portsBefore, b1.HostIface)), ovsdbNames(t, h1, "Port"), "h1 Port rows: one new row for b1, no duplicate")
	assert.Equal(t, sortedCopy(append(ifacesBefore, b1.HostIface)), ovsdbNames(t, h1, "Interface"), "h1 Interface rows")
	assert.Equal(t, bridgesBefore, ovsdbNames(t, h1, "Bridge"), "h1 Bridge rows")
	assert.Equal(t, controllersBefore, ovsdbRowCount(t, h1, "Controller"), "h1 Controller rows")
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

// TestManagementLinkCut: h1's management link is cut (its OVSDB and both
// switches lose brtun) while a VM pings across hosts over the underlay, a
// network is created during the cut, and the link is restored. Lost:
// nothing. No packet is lost during the cut (fail_mode=secure keeps the
// flows), brtun reports h1 disconnected and then connected, and the change
// made during the cut reaches h1 after the restore.
func TestManagementLinkCut(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]

	h1.CutManagement(t)
	cutAt := time.Now()
	restored := false
	t.Cleanup(func() {
		if !restored {
			h1.RestoreManagement(t)
		}
	})
	const count = 300 // 30 s at 10/s, longer than detection and the change below
	ping := pingInBackground(a1, a2.IP, count)

	// Both sides notice: brtun reports h1 disconnected, and h1's OVS reports
	// its controller connections down (it keeps its flows: fail_mode=secure).
	require.True(t, waitUntil(25*time.Second, func() bool { return allDisconnected(hostStatus(s, "h1")) }),
		"brtun must report h1 disconnected; last: %+v", hostStatus(s, "h1").Status)
	require.True(t, waitUntil(25*time.Second, func() bool {
		out, err := h1.Vsctl("--bare", "--columns=is_connected", "list", "Controller")
		return err == nil && !strings.Contains(out, "true") && strings.Contains(out, "false")
	}), "h1's switches must see their controller gone")
	t.Logf("h1 reported disconnected by brtun and by OVS %.1fs after the cut", time.Since(cutAt).Seconds())
	assert.Equal(t, "connected", hostStatus(s, "h2").Status.OVSDB, "control: h2 stays connected")

	// A change during the cut: h2 applies it, h1 cannot yet.
	s.network("green", topology.VXLAN, 5002)
	b1 := s.vm(h1, "b1", "green", "02:00:00:00:02:01", "198.18.0.1/24")
	b2 := s.vm(h2, "b2", "green", "02:00:00:00:02:02", "198.18.0.2/24")
	require.True(t, waitUntil(20*time.Second, func() bool {
		return hostStatus(s, "h2").Status.Bridges["br-tun"].AppliedRevision >= s.brtun.Revision
	}), "h2 must apply the change made during the cut")
	assert.Less(t, hostStatus(s, "h1").Status.Bridges["br-tun"].AppliedRevision, s.brtun.Revision, "h1 cannot have applied it while cut off")
	ok, _ := b1.Ping(b2.IP, 2)
	assert.False(t, ok, "b1 -> b2 cannot work before h1 learns of green")

	requireNoLoss(t, <-ping, count, "ping a1 -> a2 during the management cut")
	t.Logf("management cut: lost nothing (0 of %d pings over %.1fs of cut)", count, time.Since(cutAt).Seconds())

	h1.RestoreManagement(t)
	restored = true
	restoredAt := time.Now()
	s.waitApplied(60 * time.Second)
	t.Logf("h1 reconnected and applied the change made during the cut %.1fs after the restore", time.Since(restoredAt).Seconds())
	hv := hostStatus(s, "h1")
	assert.Equal(t, "connected", hv.Status.OVSDB)
	ok, out := b1.Ping(b2.IP, 3)
	require.True(t, ok, "b1 -> b2 after the restore: the change made during the cut reached h1: %s", out)
	ok, out = a1.Ping(a2.IP, 3)
	require.True(t, ok, "a1 -> a2 still works: %s", out)
}

// TestBundleRejectedAtCommit: OVS refuses a bundle at commit time (h1's
// br-tun table 21 gets a Flow_Table flow_limit with overflow_policy=refuse,
// so the add that overflows it fails when the bundle is committed, after
// every add was accepted). Lost: nothing. The bridge holds exactly what it
// held before (no partial application: the adds for the other tables are
// rolled back too), traffic keeps flowing, brtun counts the failed bundle,
// and once the limit is removed the reconciler converges by itself.
func TestBundleRejectedAtCommit(t *testing.T) {
	s, a1, a2 := blueScenario(t, daemonOptions{Advertise: true})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]

	out, err := h1.Ofctl("dump-flows", "br-tun", "table=21")
	require.NoError(t, err)
	n := strings.Count(out, "table=21")
	require.Positive(t, n)
	_, err = h1.Vsctl("--", "--id=@ft", "create", "Flow_Table", fmt.Sprintf("flow_limit=%d", n), "overflow_policy=refuse",
		"--", "set", "Bridge", "br-tun", "flow_tables:21=@ft")
	require.NoError(t, err)
	// Control: the limit is in force for a plain flow_mod.
	require.Eventually(t, func() bool {
		out, err := h1.Ofctl("add-flow", "br-tun", "table=21,priority=9,dl_vlan=4000,actions=drop")
		return err != nil && strings.Contains(out, "OFPFMFC_TABLE_FULL")
	}, 10*time.Second, 200*time.Millisecond, "table 21 of h1's br-tun must be full")

	// Network green with a VM on h2 only: nothing for h1 to install yet.
	s.network("green", topology.VXLAN, 5002)
	b2 := s.vm(h2, "b2", "green", "02:00:00:00:02:02", "198.18.0.2/24")
	s.waitApplied(20 * time.Second)

	before := dumpFlows(t, h1, "br-tun")
	failedBefore := metric(t, s.brtun, `brtun_openflow_bundles_total{result="failed"}`)
	changes := watchFlows(t, h1)

	// A VM of green on h1: one bundle for h1's br-tun with flows for tables
	// 3, 10, 20 and 21, of which the adds to table 21 (flood to h2, ARP
	// answer for b2) overflow the limit.
	b1 := s.vm(h1, "b1", "green", "02:00:00:00:02:01", "198.18.0.1/24")
	require.True(t, waitUntil(30*time.Second, func() bool {
		return metric(t, s.brtun, `brtun_openflow_bundles_total{result="failed"}`) >= failedBefore+2
	}), "brtun must report the refused bundle (and its retry) as failed")
	logData, err := os.ReadFile(s.brtun.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logData), "commit bundle", "the failure is the switch's verdict on the commit")

	assert.Equal(t, before, dumpFlows(t, h1, "br-tun"), "h1's br-tun must hold exactly what it held before: nothing partially applied")
	// br-int's bundle is its own and commits: b1's classification, port
	// security and delivery flows, and delivery to b2 (port cookies).
	// Nothing else may change on h1.
	var others, brInt []string
	for _, e := range changes() {
		c := fmt.Sprintf("cookie=0x%x ", flows.PortCookie("green", "b1"))
		c2 := fmt.Sprintf("cookie=0x%x ", flows.PortCookie("green", "b2"))
		if strings.HasPrefix(e, "h1/br-int:") && (strings.Contains(e, c) || strings.Contains(e, c2)) {
			brInt = append(brInt, e)
			continue
		}
		others = append(others, e)
	}
	assert.Empty(t, others, "no other flow may have changed on h1 while its br-tun bundles were refused")
	assert.NotEmpty(t, brInt, "control: h1's br-int took b1's own flows")
	h2Tun := strings.Join(dumpFlows(t, h2, "br-tun"), "\n")
	assert.Contains(t, h2Tun, "tun_id=0x138a", "control: h2 applied the same change")
	ok, pingOut := a1.Ping(a2.IP, 3)
	require.True(t, ok, "a1 -> a2 keeps working while h1's bundles are refused: %s", pingOut)
	t.Log("bundle refused at commit: lost nothing (h1's br-tun unchanged, blue traffic flowing)")

	_, err = h1.Vsctl("clear", "Bridge", "br-tun", "flow_tables")
	require.NoError(t, err)
	clearedAt := time.Now()
	s.waitApplied(30 * time.Second)
	t.Logf("converged %.1fs after the flow limit was removed", time.Since(clearedAt).Seconds())
	assert.Contains(t, strings.Join(dumpFlows(t, h1, "br-tun"), "\n"), "tun_id=0x138a", "h1 now has green's flows")
	ok, pingOut = b1.Ping(b2.IP, 3)
	require.True(t, ok, "b1 -> b2 after the reconciler converged: %s", pingOut)
}

// apiRaw sends body as is to the daemon and returns the status and the
// decoded error body (zero when the answer is not an error).
func apiRaw(t *testing.T, d *daemon, method, path string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, d.API+path, bytes.NewReader(body))
	require.NoError(t, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if resp.StatusCode >= 400 {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", method, path)
		require.NoError(t, json.Unmarshal(data, &out), "%s %s: the error must be JSON: %.300s", method, path, data)
	}
	return resp.StatusCode, out
}

// errorCode reads error.code from an error body.
func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// TestHostileInputToDaemon: the real `brtun serve` (with an API token,
// --api-read-open and --pprof) answers hostile requests (malformed and
// oversized bodies, wrong types, unknown fields, bad names, MACs, IPs and
// segments, addresses that are not unicast, brtun's own interfaces,
// duplicates including another host's OVSDB address, names that look like
// paths) each with a 4xx JSON error, stays up, and stores nothing; a valid
// write afterwards succeeds. A 405 names the allowed methods in Allow;
// pprof needs the token although reads are open; a body trickled in one
// byte every 1.5 s is cut at --api-body-timeout with a 408 and its
// connection closed, while the same body sent at once is stored. The full
// table runs as a unit test (northbound/hostile_test.go).
func TestHostileInputToDaemon(t *testing.T) {
	const bodyTimeout = 3 * time.Second
	l := lab.New(t, lab.Options{Hosts: 1})
	token := "hostile-token-" + l.Prefix
	s := newScenarioOn(t, l, daemonOptions{Token: token, ExtraArgs: []string{
		"--api-token-file", writeToken(t, l.Dir, token), "--api-read-open", "--pprof",
		"--api-body-timeout", bodyTimeout.String(),
	}})
	d, h1 := s.brtun, l.Hosts[0]
	s.network("blue", topology.VXLAN, 5001)
	d.MustDo(http.StatusCreated, "POST", "/v1/networks/blue/ports", map[string]any{
		"name": "vm1", "host": "h1", "interface": "tap0", "mac": "02:00:00:00:00:01", "ips": []string{"198.18.0.1"},
	}, nil)
	state := func() string {
		var nets, ports json.RawMessage
		d.MustDo(http.StatusOK, "GET", "/v1/networks", nil, &nets)
		d.MustDo(http.StatusOK, "GET", "/v1/networks/blue/ports", nil, &ports)
		return string(nets) + string(ports)
	}
	before := state()

	port := func(extra string) []byte {
		return []byte(`{"name":"vm2","host":"h1","interface":"tap1"` + extra + `}`)
	}
	cases := []struct {
		method, path string
		body         []byte
		status       int
		code         string
	}{
		{"POST", "/v1/networks", []byte(`{"name":"red",`), 400, "invalid_json"},
		{"POST", "/v1/networks", []byte(strings.Repeat("[", 50000)), 400, "invalid_json"},
		{"POST", "/v1/networks", []byte(`{"name":"red","type":"vxlan","segment_id":"5"}`), 400, "invalid_json"},
		{"POST", "/v1/networks", append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 2<<20)...), `"}`...), 413, "too_large"},
		{"POST", "/v1/networks", []byte(`{"name":"red","type":"vxlan","admin":true}`), 400, "invalid_json"},
		{"POST", "/v1/networks", []byte(`{"name":"../../etc/passwd","type":"vxlan"}`), 400, "invalid"},
		{"POST", "/v1/networks", []byte(`{"name":"red","type":"vxlan","segment_id":16777216}`), 400, "invalid"},
		{"POST", "/v1/networks", []byte(`{"name":"blue","type":"gre"}`), 409, "conflict"},
		{"POST", "/v1/networks/blue/ports", port(`,"mac":"ff:ff:ff:ff:ff:ff"`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.300"]`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.1"]`), 409, "conflict"},
		{"POST", "/v1/networks/blue/ports", []byte(`{"name":"vm2","host":"h1","interface":"../tap"}`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", port(`,"ips":["255.255.255.255"]`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", port(`,"ips":["169.254.1.1"]`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", port(`,"ips":["fe80::5"]`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", []byte(`{"name":"vm2","host":"h1","interface":"patch-tun"}`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", []byte(`{"name":"vm2","host":"h1","interface":"br-int"}`), 400, "invalid"},
		{"POST", "/v1/networks/blue/ports", []byte(`{"name":"vm2","host":"h1","interface":"vxlan-c0000202"}`), 400, "invalid"},
		{"PATCH", "/v1/networks/blue/ports/vm1", []byte(`{"interface":"patch-int"}`), 400, "invalid"},
		{"POST", "/v1/hosts", []byte(`{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"255.255.255.255"}`), 400, "invalid"},
		{"POST", "/v1/hosts", []byte(`{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"169.254.1.1"}`), 400, "invalid"},
		{"POST", "/v1/hosts", []byte(`{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"fe80::5"}`), 400, "invalid"},
		{"POST", "/v1/hosts", []byte(`{"name":"h9","ovsdb":` + jsonString(h1.OVSDB) + `,"tunnel_ip":"192.0.2.99"}`), 409, "conflict"},
		{"DELETE", "/v1/networks/blue/ports/../../blue", nil, 404, "not_found"},
		{"DELETE", "/v1/networks/%2e%2e", nil, 404, "not_found"},
		{"GET", "/v1/hosts/h1%2Fflows", nil, 404, "not_found"},
	}
	for _, c := range cases {
		status, body := apiRaw(t, d, c.method, c.path, c.body)
		assert.Equal(t, c.status, status, "%s %s %.80s", c.method, c.path, c.body)
		assert.Equal(t, c.code, errorCode(body), "%s %s %.80s: %v", c.method, c.path, c.body, body)
	}

	require.False(t, d.Exited(), "brtun exited during the hostile requests")
	status, _ := apiRaw(t, d, "GET", "/healthz", nil)
	require.Equal(t, http.StatusOK, status, "brtun must still be up")
	require.Equal(t, before, state(), "hostile requests must store nothing")
	d.MustDo(http.StatusCreated, "POST", "/v1/networks/blue/ports", map[string]any{"name": "vm2", "host": "h1", "interface": "tap1"}, nil)
	// Positive controls of the address rules: unicast addresses, another
	// OVSDB address.
	d.MustDo(http.StatusCreated, "POST", "/v1/networks/blue/ports", map[string]any{
		"name": "vm3", "host": "h1", "interface": "tap3", "ips": []string{"198.18.0.3", "2001:db8:100::3"}}, nil)
	d.MustDo(http.StatusCreated, "POST", "/v1/hosts", map[string]any{"name": "h9", "ovsdb": "tcp:198.51.100.9:6640", "tunnel_ip": "192.0.2.99"}, nil)

	// 405 names the methods of the path.
	resp := rawRequest(t, d, "DELETE", "/v1/hosts/h1/flows", token)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))
	resp = rawRequest(t, d, "PUT", "/v1/networks/blue", token)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "DELETE, GET, PATCH", resp.Header.Get("Allow"))

	// pprof needs the token although reads are open.
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
		status, body := call(t, d, "GET", path, "", nil)
		requireUnauthorized(t, status, body, "pprof without a token under --api-read-open: "+path)
		status, _ = call(t, d, "GET", path, token, nil)
		assert.Equal(t, http.StatusOK, status, "pprof with the token: %s", path)
	}
	status, body := call(t, d, "GET", "/v1/hosts/h1", "", nil)
	assert.Equal(t, http.StatusOK, status, "a read without a token under --api-read-open: %s", body)

	// A body trickled in is cut at --api-body-timeout; sent at once it is stored.
	netBody := `{"name":"slow","type":"vxlan","description":"` + strings.Repeat("x", 30) + `"}`
	res, raw, took, closed := trickle(t, d, "/v1/networks", token, netBody, 1500*time.Millisecond)
	assert.Equal(t, http.StatusRequestTimeout, res.StatusCode, "%s", raw)
	assert.Contains(t, string(raw), "request_timeout")
	assert.GreaterOrEqual(t, took, bodyTimeout)
	assert.Less(t, took, bodyTimeout+3*time.Second, "cut soon after --api-body-timeout")
	assert.True(t, closed, "the connection is closed")
	status, _ = call(t, d, "GET", "/v1/networks/slow", token, nil)
	assert.Equal(t, http.StatusNotFound, status, "the trickled network was not stored")
	res, raw, _, _ = trickle(t, d, "/v1/networks", token, netBody, 0)
	assert.Equal(t, http.StatusCreated, res.StatusCode, "the same body at once: %s", raw)
	require.False(t, d.Exited())
}

// rawRequest sends a request without a body and returns the answer (body
// read and closed).
func rawRequest(t *testing.T, d *daemon, method, path, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, d.API+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.client.Do(req)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp
}

// trickle POSTs body to the daemon over a plain TCP connection: the headers
// at once, then the body one byte every gap (all at once when gap is 0). It
// returns the answer, its body, how long it took to come, and whether the
// daemon closed the connection after it.
func trickle(t *testing.T, d *daemon, path, token, body string, gap time.Duration) (*http.Response, []byte, time.Duration, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.API, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: brtun\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, token, len(body))
	require.NoError(t, err)
	if gap == 0 {
		_, err = io.WriteString(conn, body)
		require.NoError(t, err)
	} else {
		go func() {
			for i := range len(body) {
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return // closed by the daemon
				}
				time.Sleep(gap)
			}
		}()
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	took := time.Since(start)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = br.ReadByte()
	closed := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	return res, raw, took, closed
}

// jsonString is a JSON string literal of s.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDataDirOutOfSpace: brtun's data directory is a 2 MiB tmpfs that is
// filled up. Lost: nothing. Writes fail with a 503 no_space JSON error that
// names the cause, reads keep working, the daemon stays up; once space is
// freed writes succeed again, and after a restart on the same directory the
// store holds every acknowledged write and none of the refused ones.
func TestDataDirOutOfSpace(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	dataDir := filepath.Join(l.Dir, "brtun-data")
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dataDir).CombinedOutput()
	require.NoError(t, err, "mount tmpfs: %s", out)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dataDir, err, out)
		}
	})
	d := startBrtun(t, l, daemonOptions{}) // killed before the unmount (cleanups run last-first)
	require.Equal(t, dataDir, d.dataDir)

	var stored []string
	create := func(name string) (int, map[string]any) {
		status, body := apiRaw(t, d, "POST", "/v1/networks", []byte(fmt.Sprintf(`{"name":%q,"type":"vxlan"}`, name)))
		if status == http.StatusCreated {
			stored = append(stored, name)
		}
		return status, body
	}
	for i := range 5 {
		status, body := create(fmt.Sprintf("n%d", i))
		require.Equal(t, http.StatusCreated, status, "%v", body)
	}

	filler := filepath.Join(dataDir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			t.Logf("filler stopped: %v", err)
			break
		}
	}
	require.NoError(t, f.Close())

	// Writes may still land in pages bbolt already owns; keep writing
	// (bounded) until one is refused.
	var refused string
	var refusal map[string]any
	for i := range 50 {
		name := fmt.Sprintf("full%d", i)
		status, body := create(name)
		if status == http.StatusCreated {
			continue
		}
		require.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
		refused, refusal = name, body
		break
	}
	require.NotEmpty(t, refused, "a write must fail once the data directory is full")
	require.Equal(t, "no_space", errorCode(refusal))
	msg := fmt.Sprint(refusal["error"].(map[string]any)["message"])
	assert.Contains(t, msg, "no space left on device", "the message names the cause")
	t.Logf("refused with 503: %s", msg)

	// Reads work, the daemon is up, the refused write left nothing.
	var list struct{ Networks []struct{ Name string } }
	d.MustDo(http.StatusOK, "GET", "/v1/networks", nil, &list)
	assert.Len(t, list.Networks, len(stored))
	status, _ := apiRaw(t, d, "GET", "/v1/networks/"+refused, nil)
	assert.Equal(t, http.StatusNotFound, status, "the refused network must not exist")
	status, _ = apiRaw(t, d, "GET", "/healthz", nil)
	require.Equal(t, http.StatusOK, status)

	// Space returns: writes succeed again.
	require.NoError(t, os.Remove(filler))
	status, body := create("after")
	require.Equal(t, http.StatusCreated, status, "a write after space returned: %v", body)

	// Restart on the same directory: every acknowledged write is there.
	d.Kill()
	d.Start()
	var names []string
	d.MustDo(http.StatusOK, "GET", "/v1/networks", nil, &list)
	for _, n := range list.Networks {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	sort.Strings(stored)
	assert.Equal(t, stored, names, "after the restart the store holds exactly the acknowledged writes")
	status, body = create("after-restart")
	require.Equal(t, http.StatusCreated, status, "%v", body)
}
