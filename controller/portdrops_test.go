package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/ovsdb/vswitchd"
	"github.com/brtun/brtun/topology"
)

// TestPortDropsComeFromTheBrIntDump: a dump of br-int sums the packets of
// each port's drop flows into that port's drops, and nothing else (allowed
// flows, the pipeline's misses, br-tun); an administratively down port's
// drop is not a port-security drop.
func TestPortDropsComeFromTheBrIntDump(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "h1")
	l.start(Options{})
	sw := l.connectAll()
	require.Eventually(t, func() bool { return l.ovs["h1"].Bridge(t, BrInt) != nil }, 10*time.Second, 10*time.Millisecond)
	var rev uint64
	for _, p := range []topology.Port{
		// a1 is protected, a3 is not, a4 is protected but down.
		{Network: "blue", Name: "a1", MAC: "02:00:00:00:01:01", IPs: []string{"198.18.0.1"}, PortSecurityEnabled: true},
		{Network: "blue", Name: "a3", MAC: "02:00:00:00:01:03"},
		{Network: "blue", Name: "a4", MAC: "02:00:00:00:01:04", IPs: []string{"198.18.0.4"}, PortSecurityEnabled: true, AdminStateUp: topology.Bool(false)},
	} {
		iface := "tap-" + p.Name
		l.ovs["h1"].AddPort(t, BrInt, &vswitchd.Port{Name: iface}, &vswitchd.Interface{Name: iface})
		p.Host, p.Interface = "h1", iface
		var err error
		_, rev, err = l.store.CreatePort(ctx, p)
		require.NoError(t, err)
	}
	l.waitApplied(rev)
	l.settle()
	held := sw[bridgeRef{"h1", BrInt}].flows()
	require.NotEmpty(t, held)

	// A new connection is dumped: every flow it holds reports 3 packets.
	integ := newTestSwitch(ovsdb.DatapathID("h1", BrInt), held)
	integ.packets = 3
	l.ctrl.AddSwitch(integ)
	l.settle()
	require.Positive(t, integ.count("dump"))

	var h1 hostMetrics
	for _, h := range l.ctrl.metricState() {
		if h.name == "h1" {
			h1 = h
		}
	}
	// a1 is protected: a tagged-frame drop (table 0), a MAC drop (10),
	// three server-message drops and three ethertype drops (11), an ND
	// drop (12). a3 is not: the tagged-frame drop only. a4 is down: its
	// one drop (table 0) is not port security's.
	assert.Equal(t, map[portName]uint64{
		{"blue", "a1"}: 3 * 9,
		{"blue", "a3"}: 3 * 1,
	}, h1.portDrops)

	const name = "brtun_port_security_dropped_packets_total"
	assert.Equal(t, 27.0, l.metric(name, map[string]string{"host": "h1", "network": "blue", "port": "a1"}))
	assert.Equal(t, 3.0, l.metric(name, map[string]string{"host": "h1", "network": "blue", "port": "a3"}))
	assert.Equal(t, 30.0, l.metric(name, map[string]string{"host": "h1"}), "a4 (down) adds nothing")
}
