package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const v4SubnetBody = `{"name":"v4","cidr":"198.18.0.0/24","dns_servers":["198.51.100.53"]}`

// fieldOf returns the error code and field of an error answer.
func fieldOf(t *testing.T, r response) (string, string) {
	t.Helper()
	var e ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &e), "body %s", r.body)
	return e.Error.Code, e.Error.Field
}

func TestSubnetRoutes(t *testing.T) {
	a := newTestAPI(t, nil)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks", `{"name":"red","type":"vxlan"}`, http.StatusCreated)

	r := a.must("POST", "/v1/networks/blue/subnets", v4SubnetBody, http.StatusCreated)
	assert.JSONEq(t, `{"network":"blue","name":"v4","cidr":"198.18.0.0/24","gateway_ip":"198.18.0.1",
		"allocation_pools":[{"start":"198.18.0.2","end":"198.18.0.254"}],"dns_servers":["198.51.100.53"],"host_routes":[],
		"enable_dhcp":true,"description":"","tags":[],"revision_number":3}`, string(r.body))
	assert.Equal(t, "/v1/networks/blue/subnets/v4", r.header.Get("Location"))
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	assert.Equal(t, "3", r.header.Get(revisionHeader))

	r = a.must("POST", "/v1/networks/blue/subnets", `{"name":"v6","cidr":"2001:db8::/64","gateway_ip":"","enable_dhcp":false,"tags":["x"]}`, http.StatusCreated)
	v6 := r.json(t)
	assert.Equal(t, "", v6["gateway_ip"], `"" means no gateway`)
	assert.Equal(t, "slaac", v6["ipv6_address_mode"])
	assert.Equal(t, false, v6["enable_dhcp"])
	assert.Equal(t, []any{map[string]any{"start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"}}, v6["allocation_pools"])
	a.must("POST", "/v1/networks/red/subnets", `{"name":"v4","cidr":"198.18.0.0/24","gateway_ip":null}`, http.StatusCreated)

	// Errors name the field or say what collides.
	for body, field := range map[string]string{
		`{"cidr":"198.18.1.0/24"}`:                                        "name",
		`{"name":"x"}`:                                                    "cidr",
		`{"name":"x","cidr":"198.18.1.1/24"}`:                             "cidr",
		`{"name":"x","cidr":"198.18.1.0/24","gateway_ip":"1.2.3"}`:        "gateway_ip",
		`{"name":"x","cidr":"198.18.1.0/24","ipv6_address_mode":"slaac"}`: "ipv6_address_mode",
		`{"name":"x","cidr":"198.18.1.0/24","allocation_pools":[{"start":"198.18.1.9","end":"198.18.1.2"}]}`: "allocation_pools[0]",
		`{"name":"x","cidr":"198.18.1.0/24","host_routes":[{"destination":"nope","nexthop":"198.18.1.1"}]}`:  "host_routes[0].destination",
	} {
		code, f := fieldOf(t, a.must("POST", "/v1/networks/blue/subnets", body, http.StatusBadRequest))
		assert.Equal(t, codeInvalid, code, body)
		assert.Equal(t, field, f, body)
	}
	code, _ := fieldOf(t, a.must("POST", "/v1/networks/blue/subnets", `{"name":"x","cidr":"198.18.1.0/24","pools":[]}`, http.StatusBadRequest))
	assert.Equal(t, codeInvalidJSON, code, "unknown fields are refused")
	assert.Equal(t, codeConflict, a.must("POST", "/v1/networks/blue/subnets", v4SubnetBody, http.StatusConflict).errorCode(t))
	r = a.must("POST", "/v1/networks/blue/subnets", `{"name":"wide","cidr":"198.18.0.0/23"}`, http.StatusConflict)
	assert.Contains(t, r.json(t)["error"].(map[string]any)["message"], `overlaps 198.18.0.0/24 of subnet "v4"`)
	assert.Equal(t, codeNotFound, a.must("POST", "/v1/networks/green/subnets", v4SubnetBody, http.StatusNotFound).errorCode(t))

	// Reads.
	r = a.must("GET", "/v1/networks/blue/subnets/v4", "", http.StatusOK)
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	assert.NotEmpty(t, r.header.Get(revisionHeader))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/blue/subnets/nope", "", http.StatusNotFound).errorCode(t))
	assert.Equal(t, codeNotFound, a.must("GET", "/v1/networks/green/subnets", "", http.StatusNotFound).errorCode(t))
	names := func(path string) []string {
		var list SubnetList
		require.NoError(t, json.Unmarshal(a.must("GET", path, "", http.StatusOK).body, &list))
		var out []string
		for _, s := range list.Subnets {
			out = append(out, s.Name)
		}
		return out
	}
	assert.Equal(t, []string{"v4", "v6"}, names("/v1/networks/blue/subnets"))
	assert.Equal(t, []string{"v6"}, names("/v1/networks/blue/subnets?enable_dhcp=false"))
	assert.Equal(t, []string{"v4"}, names("/v1/networks/blue/subnets?cidr=198.18.0.0/24"))
	assert.Equal(t, []string{"v6"}, names("/v1/networks/blue/subnets?ipv6_address_mode=slaac"))
	assert.Equal(t, []string{"v4"}, names("/v1/networks/blue/subnets?dns_servers=198.51.100.53"))
	assert.Equal(t, []string{"v6"}, names("/v1/networks/blue/subnets?tags=x"))
	assert.Equal(t, []string{"v6"}, names("/v1/networks/blue/subnets?gateway_ip="))
	assert.Equal(t, []string{"v6", "v4"}, names("/v1/networks/blue/subnets?sort=-name"))
	var page SubnetList
	require.NoError(t, json.Unmarshal(a.must("GET", "/v1/networks/blue/subnets?limit=1", "", http.StatusOK).body, &page))
	require.Len(t, page.Subnets, 1)
	require.NotEmpty(t, page.NextMarker)
	assert.Equal(t, []string{"v6"}, names("/v1/networks/blue/subnets?limit=1&marker="+page.NextMarker))
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/networks/blue/subnets?colour=blue", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codeInvalidQuery, a.must("GET", "/v1/networks/blue/subnets/v4?x=1", "", http.StatusBadRequest).errorCode(t))

	// PATCH: pools, DNS, routes, enable_dhcp (and description/tags); the rest is 400 naming the field.
	r = a.must("PATCH", "/v1/networks/blue/subnets/v4", `{"allocation_pools":[{"start":"198.18.0.100","end":"198.18.0.199"}],
		"dns_servers":null,"host_routes":[{"destination":"198.18.8.0/24","nexthop":"198.18.0.254"}],"enable_dhcp":false,"description":"lab"}`, http.StatusOK)
	s := r.json(t)
	assert.Equal(t, []any{map[string]any{"start": "198.18.0.100", "end": "198.18.0.199"}}, s["allocation_pools"])
	assert.Equal(t, []any{}, s["dns_servers"])
	assert.Equal(t, false, s["enable_dhcp"])
	assert.Equal(t, "lab", s["description"])
	etag := r.header.Get("ETag")
	assert.Equal(t, `"`+strconv.FormatFloat(s["revision_number"].(float64), 'f', 0, 64)+`"`, etag)
	for field, body := range map[string]string{
		"cidr": `{"cidr":"198.18.5.0/24"}`, "gateway_ip": `{"gateway_ip":"198.18.0.9"}`, "name": `{"name":"v5"}`,
		"network": `{"network":"red"}`, "revision_number": `{"revision_number":1}`, "ipv6_address_mode": `{"ipv6_address_mode":"slaac"}`,
	} {
		code, f := fieldOf(t, a.must("PATCH", "/v1/networks/blue/subnets/v4", body, http.StatusBadRequest))
		assert.Equal(t, codeInvalid, code, body)
		assert.Equal(t, field, f, body)
	}
	a.must("PATCH", "/v1/networks/blue/subnets/v4", `{"cidr":"198.18.0.0/24","gateway_ip":"198.18.0.1"}`, http.StatusOK) // unchanged: accepted
	assert.Equal(t, codePreconditionFailed, a.doHeaders("PATCH", "/v1/networks/blue/subnets/v4", `{"enable_dhcp":true}`,
		map[string]string{"Content-Type": "application/merge-patch+json", "If-Match": etag}).errorCode(t), "a stale If-Match")
	cur := a.must("GET", "/v1/networks/blue/subnets/v4", "", http.StatusOK).header.Get("ETag")
	r = a.doHeaders("PATCH", "/v1/networks/blue/subnets/v4", `{"allocation_pools":null,"enable_dhcp":true}`,
		map[string]string{"Content-Type": "application/merge-patch+json", "If-Match": cur})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, []any{map[string]any{"start": "198.18.0.2", "end": "198.18.0.254"}}, r.json(t)["allocation_pools"], "null: the default pools")

	// DELETE: 409 while a port holds an address of the subnet.
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap0"}`, http.StatusCreated)
	r = a.must("DELETE", "/v1/networks/blue/subnets/v4", "", http.StatusConflict)
	assert.Contains(t, r.json(t)["error"].(map[string]any)["message"], "vm1")
	assert.Equal(t, codeInvalidQuery, a.must("DELETE", "/v1/networks/blue/subnets/v4?cascade=true", "", http.StatusBadRequest).errorCode(t))
	assert.Equal(t, codePreconditionFailed, a.doHeaders("DELETE", "/v1/networks/blue/subnets/v6", "", map[string]string{"If-Match": `"1"`}).errorCode(t))
	a.must("DELETE", "/v1/networks/blue/ports/vm1", "", http.StatusNoContent)
	a.must("DELETE", "/v1/networks/blue/subnets/v4", "", http.StatusNoContent)
	a.must("DELETE", "/v1/networks/blue/subnets/v4", "", http.StatusNotFound)

	// A network delete takes its subnets along.
	a.must("DELETE", "/v1/networks/blue", "", http.StatusNoContent)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	assert.Empty(t, names("/v1/networks/blue/subnets"))
}

func TestPortsTakeAddressesFromSubnets(t *testing.T) {
	a := newTestAPI(t, nil)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v4","cidr":"198.18.0.0/29"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v6","cidr":"2001:db8::/64"}`, http.StatusCreated)

	r := a.must("POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap1"}`, http.StatusCreated)
	p := r.json(t)
	assert.Equal(t, "02:62:74:00:00:01", p["mac"], "the 201 holds the generated MAC")
	assert.Equal(t, []any{"198.18.0.2", "2001:db8::62:74ff:fe00:1"}, p["ips"], "and the allocated addresses")

	for ip, why := range map[string]string{
		"198.18.5.5": "is in no subnet", "198.18.0.1": "the gateway address", "198.18.0.7": "the broadcast address", "198.18.0.0": "the network address",
	} {
		r := a.must("POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap2","ips":["`+ip+`"]}`, http.StatusBadRequest)
		code, field := fieldOf(t, r)
		assert.Equal(t, codeInvalid, code)
		assert.Equal(t, "ips[0]", field)
		assert.Contains(t, string(r.body), why)
	}
	for i := 2; i <= 5; i++ {
		a.must("POST", "/v1/networks/blue/ports", fmt.Sprintf(`{"name":"vm%d","host":"h1","interface":"tap%d"}`, i, i), http.StatusCreated)
	}
	// .2 to .6 are taken: the pool is used up.
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm6","host":"h1","interface":"tap6"}`, http.StatusConflict)
	assert.Equal(t, codeConflict, r.errorCode(t))
	assert.Contains(t, string(r.body), `subnet \"v4\" (198.18.0.0/29) of network \"blue\" has no free address left in its allocation pools`)
	// A deleted port frees its address; the next port takes it.
	a.must("DELETE", "/v1/networks/blue/ports/vm3", "", http.StatusNoContent)
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm6","host":"h1","interface":"tap6"}`, http.StatusCreated)
	assert.Equal(t, "198.18.0.4", r.json(t)["ips"].([]any)[0], "vm3's address")

	// PATCH and PUT re-check changed addresses and keep the MAC.
	code, field := fieldOf(t, a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"ips":["198.18.0.1"]}`, http.StatusBadRequest))
	assert.Equal(t, [2]string{codeInvalid, "ips[0]"}, [2]string{code, field})
	assert.Equal(t, codeConflict, a.must("PATCH", "/v1/networks/blue/ports/vm1", `{"ips":["198.18.0.3"]}`, http.StatusConflict).errorCode(t))
	r = a.must("PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"tap1","ips":["2001:db8::99"]}`, http.StatusOK)
	assert.Equal(t, "02:62:74:00:00:01", r.json(t)["mac"], "PUT without mac keeps it")
	assert.Equal(t, []any{"2001:db8::99"}, r.json(t)["ips"])
	r = a.must("POST", "/v1/networks/blue/ports", `{"name":"vm7","host":"h1","interface":"tap7"}`, http.StatusCreated)
	assert.Equal(t, "198.18.0.2", r.json(t)["ips"].([]any)[0], "vm1's old address is free again")
}

func TestParallelPortCreatesGetDistinctAddresses(t *testing.T) {
	a := newTestAPI(t, nil)
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v4","cidr":"198.18.0.0/24"}`, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/subnets", `{"name":"v6","cidr":"2001:db8::/120","ipv6_address_mode":"dhcpv6-stateful"}`, http.StatusCreated)
	const n = 50
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = a.do("POST", "/v1/networks/blue/ports", fmt.Sprintf(`{"name":"vm%d","host":"h1","interface":"tap%d"}`, i, i))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range answers {
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		var p PortView
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Len(t, p.IPs, 2)
		for _, v := range append(p.IPs, p.MAC) {
			assert.False(t, seen[v], "%s handed out twice", v)
			seen[v] = true
		}
	}
	assert.Len(t, seen, 3*n)
}
