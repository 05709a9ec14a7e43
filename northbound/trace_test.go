package northbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/trace"
)

// fakeTracer answers res, or err, and records what it was asked.
type fakeTracer struct {
	mu    sync.Mutex
	res   trace.Result
	err   error
	asked []string // "network/port kind dst_mac dst_ip"
}

func (f *fakeTracer) Trace(_ context.Context, network, port string, req trace.Request) (trace.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("%s/%s %s %s %s", network, port, req.Kind, req.DstMAC, req.DstIP))
	return f.res, f.err
}

func (f *fakeTracer) set(res trace.Result, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res, f.err = res, err
}

func TestTraceRoute(t *testing.T) {
	tr := &fakeTracer{}
	a := newTestAPI(t, newFakeController(), func(o *Options) { o.Tracer = tr })
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)

	e := &trace.Endpoint{Host: "h2", Network: "blue", Port: "vm2", Interface: "tap2"}
	tr.set(trace.Result{
		Hops: []trace.Hop{
			{Host: "h1", Bridge: "br-int", InPort: "tap0", Packet: "in_port=5,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip", From: -1,
				Lookups: []trace.Lookup{{Table: 0, Flow: "cookie=0xb710000000000000, priority=0 actions=NORMAL", Owner: "pipeline"}},
				Outputs: []trace.Out{{Port: "patch-tun", Next: 1, Note: "NORMAL: ..."}}},
			{Host: "h1", Bridge: "br-tun", InPort: "patch-int", From: 0, Lookups: []trace.Lookup{{Table: 3}},
				Outputs: []trace.Out{{Port: "tap2", Next: -1, Reached: e}}},
		},
		Reached: []trace.Endpoint{*e},
	}, nil)
	r := a.must("GET", "/v1/networks/blue/ports/vm1/trace?dst_mac=02:00:00:00:00:02", "", http.StatusOK)
	var v TraceView
	require.NoError(t, json.Unmarshal(r.body, &v))
	assert.Equal(t, "h1", v.Host)
	assert.Equal(t, "unicast", v.Kind, "packet defaults to unicast")
	require.Len(t, v.Hops, 2)
	assert.Equal(t, "pipeline", v.Hops[0].Lookups[0].Owner)
	assert.Equal(t, -1, v.Hops[0].From)
	assert.Equal(t, 1, v.Hops[0].Outputs[0].Next)
	assert.Equal(t, &TraceEndpoint{Host: "h2", Network: "blue", Port: "vm2", Interface: "tap2"}, v.Hops[1].Outputs[0].Reached)
	assert.Equal(t, []TraceEndpoint{{Host: "h2", Network: "blue", Port: "vm2", Interface: "tap2"}}, v.Reached)
	raw := r.json(t)
	assert.NotContains(t, raw["hops"].([]any)[0].(map[string]any), "dropped", "dropped is left out when nothing was")

	a.must("GET", "/v1/networks/blue/ports/vm1/trace?packet=arp&dst_ip=198.18.0.2", "", http.StatusOK)
	tr.mu.Lock()
	assert.Equal(t, []string{"blue/vm1 unicast 02:00:00:00:00:02 ", "blue/vm1 arp  198.18.0.2"}, tr.asked)
	tr.mu.Unlock()

	// Errors.
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/networks/blue/ports/vm1/trace?colour=blue", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/blue/ports/vm9/trace", "", http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/red/ports/vm1/trace", "", http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeMethodNotAllowed, a.must("POST", "/v1/networks/blue/ports/vm1/trace", "", http.StatusMethodNotAllowed).errorCode(t))
	tr.set(trace.Result{}, fmt.Errorf("build: %w", &trace.RequestError{Field: "dst_ip", Msg: "an ARP request needs the IPv4 address it asks for"}))
	r = a.must("GET", "/v1/networks/blue/ports/vm1/trace?packet=arp", "", http.StatusBadRequest)
	assert.Equal(t, codeInvalidQuery, r.errorCode(t))
	assert.Contains(t, string(r.body), "dst_ip: an ARP request needs")
	tr.set(trace.Result{}, fmt.Errorf("blue/vm1: %w", trace.ErrNotBound))
	assert.Equal(t, codeConflict, a.must("GET", "/v1/networks/blue/ports/vm1/trace?packet=broadcast", "", http.StatusConflict).errorCode(t))
	tr.set(trace.Result{}, errors.New("h1/br-tun: switch not connected"))
	r = a.must("GET", "/v1/networks/blue/ports/vm1/trace?packet=broadcast", "", http.StatusServiceUnavailable)
	assert.Equal(t, codeUnavailable, r.errorCode(t))
	assert.Contains(t, string(r.body), "switch not connected")

	// Without a tracer (no controller) the route answers 503.
	b := newTestAPI(t, nil)
	b.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	b.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	b.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	assert.Equal(t, codeUnavailable, b.must("GET", "/v1/networks/blue/ports/vm1/trace?packet=dhcp", "", http.StatusServiceUnavailable).errorCode(t))
}
