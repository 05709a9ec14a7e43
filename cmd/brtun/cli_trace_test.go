package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/trace"
)

// cliTracer answers every trace with a unicast that crosses from h1 to h2,
// or with err, and records what it was asked.
type cliTracer struct {
	mu    sync.Mutex
	err   error
	asked []trace.Request
}

func (c *cliTracer) Trace(_ context.Context, network, port string, req trace.Request) (trace.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, req)
	a2 := trace.Endpoint{Host: "h2", Network: network, Port: "vm2", Interface: "tap2"}
	return trace.Result{
		Hops: []trace.Hop{
			{Host: "h1", Bridge: "br-int", InPort: "tap0", Packet: "in_port=5,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip", From: -1,
				Lookups: []trace.Lookup{{Table: 0, Flow: "cookie=0xb710000000000000, priority=0 actions=NORMAL", Owner: "pipeline"}},
				Outputs: []trace.Out{{Port: "patch-tun", Next: 1, Note: "NORMAL: 02:00:00:00:00:02 is port blue/vm2 on h2"}}},
			{Host: "h1", Bridge: "br-tun", InPort: "patch-int", Packet: "in_port=1,dl_vlan=1", From: 0,
				Lookups: []trace.Lookup{{Table: 0, Flow: "cookie=0xb710000000000000, priority=1,in_port=1 actions=goto_table:1", Owner: "pipeline"}, {Table: 1}},
				Dropped: "no flow of table 1 matches"},
			{Host: "h2", Bridge: "br-int", InPort: "patch-tun", Packet: "in_port=1,dl_vlan=1", From: 1, Outputs: []trace.Out{{Port: "tap2", Next: -1, Reached: &a2}}},
		},
		Reached: []trace.Endpoint{a2},
	}, c.err
}

func TestCLITrace(t *testing.T) {
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	tr := &cliTracer{}
	api, err := northbound.New(northbound.Options{Store: store, Controller: &cliController{}, Tracer: tr})
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	s := "--server=" + srv.URL
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan", "--segment", "5001")
	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--mac", "02:00:00:00:00:01")

	out := mustRun(t, s, "trace", "blue", "vm1", "--dst-ip", "198.18.0.2")
	assert.Equal(t, `unicast from blue/vm1 on h1
hop 0: h1/br-int, in on tap0: in_port=5,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip
  table 0 [pipeline]: cookie=0xb710000000000000, priority=0 actions=NORMAL
  out patch-tun: hop 1; NORMAL: 02:00:00:00:00:02 is port blue/vm2 on h2
hop 1: h1/br-tun (from hop 0), in on patch-int: in_port=1,dl_vlan=1
  table 0 [pipeline]: cookie=0xb710000000000000, priority=1,in_port=1 actions=goto_table:1
  table 1: no flow matches
  dropped: no flow of table 1 matches
hop 2: h2/br-int (from hop 1), in on patch-tun: in_port=1,dl_vlan=1
  out tap2: reaches blue/vm2 on h2
reached: blue/vm2 on h2 (tap2)
`, out)

	out = mustRun(t, s, "trace", "blue", "vm1", "--arp", "--dst-ip", "198.18.0.2", "-o", "json")
	var v northbound.TraceView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "arp", v.Kind)
	require.Len(t, v.Hops, 3)
	assert.Equal(t, "pipeline", v.Hops[0].Lookups[0].Owner)
	mustRun(t, s, "trace", "blue", "vm1", "--dhcp")
	mustRun(t, s, "trace", "blue", "vm1", "--broadcast")
	mustRun(t, s, "trace", "blue", "vm1", "--dst-mac", "02:00:00:00:00:02")
	tr.mu.Lock()
	assert.Equal(t, []trace.Request{
		{Kind: trace.Unicast, DstIP: "198.18.0.2"}, {Kind: trace.ARP, DstIP: "198.18.0.2"},
		{Kind: trace.DHCP}, {Kind: trace.Broadcast}, {Kind: trace.Unicast, DstMAC: "02:00:00:00:00:02"},
	}, tr.asked)
	tr.mu.Unlock()

	// Usage errors, a missing port, a port that is not bound.
	for _, args := range [][]string{{"blue", "vm1", "--arp", "--dhcp"}, {"blue"}} {
		_, _, code, err := runExit(t, append([]string{s, "trace"}, args...)...)
		assert.Error(t, err)
		assert.Equal(t, 2, code, "%v", args)
	}
	_, _, code, err := runExit(t, s, "trace", "blue", "vm9", "--broadcast")
	assert.Error(t, err)
	assert.Equal(t, 3, code)
	tr.mu.Lock()
	tr.err = fmt.Errorf("blue/vm1: %w", trace.ErrNotBound)
	tr.mu.Unlock()
	_, errOut, code, err := runExit(t, s, "trace", "blue", "vm1", "--broadcast", "-o", "json")
	assert.Error(t, err)
	assert.Equal(t, 4, code)
	assert.Contains(t, errOut, `"code": "conflict"`)
}
