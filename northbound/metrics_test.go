package northbound

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
)

// TestRequestMetrics: requests are counted by method, route template and
// status; unknown paths under one "unmatched" route, so labels stay bounded.
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newTestAPI(t, nil, func(o *Options) { o.Metrics = reg })
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusConflict)
	a.must("GET", "/v1/networks/blue", "", http.StatusOK)
	a.must("GET", "/v1/networks/nope", "", http.StatusNotFound)
	a.must("GET", "/no/such/path", "", http.StatusNotFound)
	a.must("PATCH", "/v1/networks", "", http.StatusMethodNotAllowed)

	m := newAPIMetricsView(t, reg)
	assert.Equal(t, 1.0, m("POST", "/v1/networks", "201"))
	assert.Equal(t, 1.0, m("POST", "/v1/networks", "409"))
	assert.Equal(t, 1.0, m("GET", "/v1/networks/{network}", "200"))
	assert.Equal(t, 1.0, m("GET", "/v1/networks/{network}", "404"))
	assert.Equal(t, 1.0, m("GET", "unmatched", "404"))
	assert.Equal(t, 1.0, m("PATCH", "unmatched", "405"))
	assert.Equal(t, 6, seriesCount(t, reg, "brtun_api_requests_total"), "one series per method, route and status")
	assert.Equal(t, 4, seriesCount(t, reg, "brtun_api_request_duration_seconds"), "one histogram per method and route")
}

// newAPIMetricsView reads brtun_api_requests_total series from reg.
func newAPIMetricsView(t *testing.T, reg *prometheus.Registry) func(method, route, code string) float64 {
	t.Helper()
	return func(method, route, code string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "brtun_api_requests_total" {
				continue
			}
			for _, s := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["method"] == method && labels["route"] == route && labels["code"] == code {
					return s.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
}

func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestSubnetPoolMetrics: each subnet reports its pool size and how many of
// its pool addresses ports hold, as the store has them at scrape time.
func TestSubnetPoolMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newTestAPI(t, nil, func(o *Options) { o.Metrics = reg })
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v4","cidr":"198.18.0.0/24"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v6","cidr":"2001:db8::/64","gateway_ip":""}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap1"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap2","ips":["198.18.0.200"]}`, http.StatusCreated)
	a.must("PATCH", "/v1/networks/blue/subnets/v4", `{"allocation_pools":[{"start":"198.18.0.2","end":"198.18.0.99"}]}`, http.StatusOK)

	gauge := func(name, subnet string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, s := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["network"] == "blue" && labels["subnet"] == subnet {
					return s.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no %s for subnet %s", name, subnet)
		return 0
	}
	assert.Equal(t, 98.0, gauge("brtun_subnet_pool_addresses", "v4"))
	assert.Equal(t, 1.0, gauge("brtun_subnet_pool_used_addresses", "v4"), "vm2's address lies outside the shrunk pool")
	assert.Equal(t, 18446744073709551615.0, gauge("brtun_subnet_pool_addresses", "v6"), "2^64 less the network address")
	assert.Equal(t, 1.0, gauge("brtun_subnet_pool_used_addresses", "v6"), "vm1's EUI-64 address")
}
