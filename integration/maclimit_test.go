//go:build integration

package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// TestMACLearnLimitEvictsPerNetwork: with --mac-learn-limit 40 brtun names
// its tables in OVSDB (ovs-ofctl --names prints table=unicast) and bounds
// br-tun table 20 with eviction grouped by VLAN. Network red's learned
// MACs (the positive control: they are learned at all) survive a flood of
// 300 new source MACs in network blue, which stays within the limit by
// evicting its own entries. A restart of brtun then writes nothing to
// OVSDB.
func TestMACLearnLimitEvictsPerNetwork(t *testing.T) {
	const limit = 40
	s := newScenario(t, 2, daemonOptions{
		Advertise: true, DriftInterval: time.Second,
		ExtraArgs: []string{"--mac-learn-limit", fmt.Sprint(limit)},
	})
	h1, h2 := s.lab.Hosts[0], s.lab.Hosts[1]
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.VXLAN, 5002)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	b1 := s.vm(h1, "b1", "red", "02:00:00:00:02:01", "198.18.0.1/24")
	b2 := s.vm(h2, "b2", "red", "02:00:00:00:02:02", "198.18.0.2/24")
	s.waitApplied(20 * time.Second)
	for _, p := range [][2]*tenantVM{{a1, a2}, {b1, b2}} {
		ok, out := p[0].Ping(p[1].IP, 2)
		require.True(t, ok, "%s -> %s: %s", p[0].Name, p[1].Name, out)
	}

	// OVSDB: every table named, table 20 bounded and evicting by VLAN,
	// br-int's MAC table of the same size.
	for _, h := range []*lab.Host{h1, h2} {
		unicast := vsctlOut(t, h, "--bare", "--columns=name,flow_limit,overflow_policy,groups", "list", "flow_table",
			strings.TrimSpace(vsctlOut(t, h, "get", "bridge", "br-tun", "flow_tables:20")))
		assert.Equal(t, []string{"unicast", fmt.Sprint(limit), "evict", "NXM_OF_VLAN_TCI[0..11]"}, strings.Fields(unicast), h.Name)
		assert.Equal(t, `"`+fmt.Sprint(limit)+`"`, strings.TrimSpace(vsctlOut(t, h, "get", "bridge", "br-int", "other_config:mac-table-size")))
	}
	named, err := h1.Ofctl("dump-flows", "br-tun", "--names") // the bridge after the command: Ofctl makes it its socket
	require.NoError(t, err)
	// ovs-ofctl quotes names that are not plain words.
	for _, name := range []string{"outbound", `"tunnel-in"`, "learn", "unicast", "flood"} {
		assert.Contains(t, named, "table="+name+",", "ovs-ofctl --names shows the table name")
	}
	assert.NotContains(t, named, "table=20,", "with --names the number is replaced")
	numbered, err := h1.Ofctl("dump-flows", "br-tun", "--no-names")
	require.NoError(t, err)
	assert.Contains(t, numbered, "table=20,", "the numbers stay")

	// Positive control: 15 source MACs of red, sent on h2, are learned on h1.
	inject(t, h2, b2, "02:bb", 15)
	require.Eventually(t, func() bool { return learnedOn(t, h1, "02:bb:") == 15 }, 10*time.Second, 100*time.Millisecond,
		"h1 must learn red's 15 MACs")
	redBefore := learnedOn(t, h1, "02:bb:")

	// The flood: 300 new source MACs in blue.
	inject(t, h2, a2, "02:aa", 300)
	require.Eventually(t, func() bool { return learnedOn(t, h1, "02:aa:") > 0 }, 10*time.Second, 100*time.Millisecond)
	time.Sleep(time.Second) // let the last frames through
	total := len(table20(t, h1))
	blue := learnedOn(t, h1, "02:aa:")
	t.Logf("h1 table 20 after the flood: %d flows, %d of blue's flood, %d of red's", total, blue, learnedOn(t, h1, "02:bb:"))
	assert.LessOrEqual(t, total, limit, "table 20 stays within the limit")
	assert.Less(t, blue, 300, "blue's own entries were evicted")
	assert.Equal(t, redBefore, learnedOn(t, h1, "02:bb:"), "red's learned entries survive blue's flood")
	ok, out := b1.Ping(b2.IP, 2)
	assert.True(t, ok, "red still reaches across hosts: %s", out)

	// /metrics reports the occupancy as of the next dump, and the limit.
	require.Eventually(t, func() bool {
		return metric(t, s.brtun, `brtun_mac_table_flows{host="h1"}`) == float64(len(table20(t, h1)))
	}, 10*time.Second, 200*time.Millisecond)
	assert.Equal(t, float64(limit), metric(t, s.brtun, "brtun_mac_table_limit"))

	// A restart finds the Flow_Table rows right and writes nothing; the
	// first start did write them (positive control).
	before := brtunTransactions(t, h1)
	require.Positive(t, before)
	s.brtun.Kill()
	s.brtun.Start()
	s.waitApplied(20 * time.Second)
	time.Sleep(2 * time.Second) // a drift check (1s) ran as well
	assert.Equal(t, before, brtunTransactions(t, h1), "the restart wrote nothing to h1's OVSDB")
}

func vsctlOut(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Vsctl(args...)
	require.NoError(t, err, out)
	return out
}

// inject sends n broadcast frames with distinct source MACs (prefix:xx:xx:
// xx:xx) into h's br-int as if vm had sent them: a packet-out with the
// VM's port as in_port and NORMAL, which floods them into the VM's VLAN and
// over the tunnels.
func inject(t *testing.T, h *lab.Host, vm *tenantVM, prefix string, n int) {
	t.Helper()
	ofport := strings.TrimSpace(vsctlOut(t, h, "get", "interface", vm.HostIface, "ofport"))
	pfx := strings.ReplaceAll(prefix, ":", "")
	for start := 0; start < n; start += 100 {
		args := []string{"packet-out", "br-int", ofport, "NORMAL"}
		for i := start; i < min(n, start+100); i++ {
			// dst broadcast, src prefix+i, ethertype 0x88b5 (local experimental), 46 zero bytes.
			args = append(args, fmt.Sprintf("ffffffffffff%s%08x88b5%s", pfx, i, strings.Repeat("00", 46)))
		}
		out, err := h.Ofctl(args...)
		require.NoError(t, err, out)
	}
}

// table20 returns the dump lines of h's br-tun table 20.
func table20(t *testing.T, h *lab.Host) []string {
	t.Helper()
	out, err := h.Ofctl("dump-flows", "br-tun", "table=20")
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "table=20") {
			lines = append(lines, line)
		}
	}
	return lines
}

// learnedOn counts the learned entries of h's table 20 whose MAC starts
// with prefix.
func learnedOn(t *testing.T, h *lab.Host, prefix string) int {
	t.Helper()
	n := 0
	for _, line := range table20(t, h) {
		if strings.Contains(line, "hard_timeout=") && strings.Contains(line, "dl_dst="+prefix) {
			n++
		}
	}
	return n
}

// brtunTransactions counts the transactions brtun committed to h's
// database, from its log.
func brtunTransactions(t *testing.T, h *lab.Host) int {
	t.Helper()
	out, err := exec.Command("ovsdb-tool", "show-log", filepath.Join(h.Dir, "conf.db")).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.Count(string(out), `"brtun: `)
}
