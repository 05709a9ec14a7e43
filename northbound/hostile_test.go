package northbound

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileCase is one request an attacker or a broken client might send.
type hostileCase struct {
	name, method, path, body string
	status                   int
	code                     string
	field                    string // "" when the error names no field
}

// hostileCases are requests TestRejectedRequestsStoreNothing does not
// already send: each must be refused with a 4xx and a JSON error. They run
// against a store holding hosts h1 and h2, network blue and its port vm1.
func hostileCases() []hostileCase {
	nested := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	manyIPs := make([]string, 65)
	for i := range manyIPs {
		manyIPs[i] = fmt.Sprintf(`"198.18.1.%d"`, i+1)
	}
	port := func(extra string) string {
		return `{"name":"vm2","host":"h1","interface":"tap1"` + extra + `}`
	}
	return []hostileCase{
		// Malformed JSON.
		{"lone brace", "POST", "/v1/hosts", `{`, 400, codeInvalidJSON, ""},
		{"trailing comma", "POST", "/v1/networks", `{"name":"red","type":"vxlan",}`, 400, codeInvalidJSON, ""},
		{"single quotes", "POST", "/v1/networks", `{'name':'red','type':'vxlan'}`, 400, codeInvalidJSON, ""},
		{"comment", "POST", "/v1/networks", `{"name":"red" /* x */,"type":"vxlan"}`, 400, codeInvalidJSON, ""},
		{"NaN", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":NaN}`, 400, codeInvalidJSON, ""},
		{"nested 20000 deep", "POST", "/v1/networks", `{"name":"red","type":"vxlan","x":` + nested + `}`, 400, codeInvalidJSON, ""},
		{"garbage after object", "POST", "/v1/networks", `{"name":"red","type":"vxlan"}x`, 400, codeInvalidJSON, ""},
		{"binary", "POST", "/v1/networks", "\x00\x01\x02\xff", 400, codeInvalidJSON, ""},
		// Wrong types.
		{"body is a string", "POST", "/v1/hosts", `"h2"`, 400, codeInvalidJSON, ""},
		{"body is a number", "POST", "/v1/networks", `42`, 400, codeInvalidJSON, ""},
		{"body is null", "POST", "/v1/networks", `null`, 400, codeInvalid, "name"},
		{"name is a number", "POST", "/v1/networks", `{"name":7,"type":"vxlan"}`, 400, codeInvalidJSON, "name"},
		{"name is an object", "POST", "/v1/hosts", `{"name":{"$gt":""},"ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.3"}`, 400, codeInvalidJSON, "name"},
		{"name is null", "POST", "/v1/networks", `{"name":null,"type":"vxlan"}`, 400, codeInvalid, "name"},
		{"ips hold numbers", "POST", "/v1/networks/blue/ports", port(`,"ips":[1,2]`), 400, codeInvalidJSON, "ips"},
		{"segment in exponent form", "POST", "/v1/networks", `{"name":"red","type":"vxlan","segment_id":1e3}`, 400, codeInvalidJSON, "segment_id"},
		{"segment beyond int64", "POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":99999999999999999999}`, 400, codeInvalidJSON, "segment_id"},
		{"type is a list", "POST", "/v1/networks", `{"name":"red","type":["vxlan"]}`, 400, codeInvalidJSON, "type"},
		// Huge bodies that fit in 1 MiB.
		{"900 KiB name", "POST", "/v1/networks", `{"name":"` + strings.Repeat("a", 900<<10) + `","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"900 KiB unix socket path", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"unix:/` + strings.Repeat("a", 900<<10) + `","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "ovsdb"},
		{"65 addresses", "POST", "/v1/networks/blue/ports", port(`,"ips":[` + strings.Join(manyIPs, ",") + `]`), 400, codeInvalid, "ips"},
		{"900 KiB of whitespace first", "POST", "/v1/networks", strings.Repeat(" ", 900<<10) + `{"name":"red","type":"vxlan","x":1}`, 400, codeInvalidJSON, "x"},
		// Unknown fields, also output-only ones and nested ones.
		{"status on a port", "POST", "/v1/networks/blue/ports", port(`,"status":"bound"`), 400, codeInvalidJSON, "status"},
		{"network on a port", "POST", "/v1/networks/blue/ports", port(`,"network":"red"`), 400, codeInvalidJSON, "network"},
		{"mtu on a network", "POST", "/v1/networks", `{"name":"red","type":"vxlan","mtu":9000}`, 400, codeInvalidJSON, "mtu"},
		{"prototype pollution", "POST", "/v1/hosts", `{"__proto__":{"admin":true},"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.3"}`, 400, codeInvalidJSON, "__proto__"},
		// Invalid names.
		{"upper case", "POST", "/v1/networks", `{"name":"Red","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"leading dash", "POST", "/v1/networks", `{"name":"-red","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"space", "POST", "/v1/networks", `{"name":"red net","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"NUL byte", "POST", "/v1/networks", `{"name":"red\u0000","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"newline", "POST", "/v1/networks", `{"name":"red\nx","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"unicode look-alike", "POST", "/v1/networks", `{"name":"r\u0435d","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"invalid UTF-8", "POST", "/v1/networks", "{\"name\":\"r\xffd\",\"type\":\"vxlan\"}", 400, codeInvalid, "name"},
		{"empty name", "POST", "/v1/networks", `{"name":"","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"upper-case datapath type", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.3","datapath_type":"NETDEV"}`, 400, codeInvalid, "datapath_type"},
		{"interface patch-tun", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"patch-tun"}`, 400, codeInvalid, "interface"},
		{"interface patch-int", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"patch-int"}`, 400, codeInvalid, "interface"},
		{"interface br-int", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"br-int"}`, 400, codeInvalid, "interface"},
		{"interface br-tun", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"br-tun"}`, 400, codeInvalid, "interface"},
		{"interface a vxlan tunnel", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"vxlan-c0000202"}`, 400, codeInvalid, "interface"},
		{"interface a geneve tunnel", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"geneve-0a1b2c3d"}`, 400, codeInvalid, "interface"},
		{"port moved onto patch-tun", "PUT", "/v1/networks/blue/ports/vm1", `{"host":"h1","interface":"patch-tun"}`, 400, codeInvalid, "interface"},
		{"port patched onto br-tun", "PATCH", "/v1/networks/blue/ports/vm1", `{"interface":"br-tun"}`, 400, codeInvalid, "interface"},
		{"interface too long", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap0123456789abc"}`, 400, codeInvalid, "interface"},
		{"interface with colon", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"eth0:1"}`, 400, codeInvalid, "interface"},
		{"interface with space", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap 1"}`, 400, codeInvalid, "interface"},
		{"interface non-ASCII", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap\u00e9"}`, 400, codeInvalid, "interface"},
		{"port host with slash", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1/../h2","interface":"tap1"}`, 400, codeInvalid, "host"},
		// Names that look like paths.
		{"dot-dot name", "POST", "/v1/networks", `{"name":"..","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"relative path name", "POST", "/v1/networks", `{"name":"../../etc/passwd","type":"vxlan"}`, 400, codeInvalid, "name"},
		{"absolute path name", "POST", "/v1/hosts", `{"name":"/etc/passwd","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "name"},
		{"slash in port name", "POST", "/v1/networks/blue/ports", `{"name":"a/b","host":"h1","interface":"tap1"}`, 400, codeInvalid, "name"},
		{"interface dot-dot", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":".."}`, 400, codeInvalid, "interface"},
		{"interface path", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"../tap"}`, 400, codeInvalid, "interface"},
		{"relative unix socket", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"unix:../db.sock","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "ovsdb"},
		{"dot-dot in the path", "GET", "/v1/networks/../hosts", ``, 404, codeNotFound, ""},
		{"dot-dot delete", "DELETE", "/v1/networks/blue/ports/../../blue", ``, 404, codeNotFound, ""},
		{"encoded dot-dot", "DELETE", "/v1/networks/%2e%2e", ``, 404, codeNotFound, ""},
		{"encoded slash", "GET", "/v1/hosts/h1%2Fflows", ``, 404, codeNotFound, ""},
		{"encoded traversal", "GET", "/v1/hosts/..%2F..%2Fetc%2Fpasswd", ``, 404, codeNotFound, ""},
		{"double slash", "DELETE", "/v1/networks//blue", ``, 404, codeNotFound, ""},
		{"NUL in the path", "DELETE", "/v1/hosts/h1%00", ``, 404, codeNotFound, ""},
		{"port in a path-like network", "POST", "/v1/networks/..%2Fblue/ports", port(""), 404, codeNotFound, ""},
		// Invalid MACs.
		{"broadcast mac", "POST", "/v1/networks/blue/ports", port(`,"mac":"ff:ff:ff:ff:ff:ff"`), 400, codeInvalid, "mac"},
		{"multicast mac", "POST", "/v1/networks/blue/ports", port(`,"mac":"01:00:5e:00:00:01"`), 400, codeInvalid, "mac"},
		{"zero mac", "POST", "/v1/networks/blue/ports", port(`,"mac":"00:00:00:00:00:00"`), 400, codeInvalid, "mac"},
		{"EUI-64 mac", "POST", "/v1/networks/blue/ports", port(`,"mac":"02:00:00:00:00:00:00:02"`), 400, codeInvalid, "mac"},
		{"short mac", "POST", "/v1/networks/blue/ports", port(`,"mac":"02:00:00:00:00"`), 400, codeInvalid, "mac"},
		{"mac with injection", "POST", "/v1/networks/blue/ports", port(`,"mac":"02:00:00:00:00:02,actions=drop"`), 400, codeInvalid, "mac"},
		// Invalid IPs.
		{"CIDR as ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.2/24"]`), 400, codeInvalid, "ips[0]"},
		{"zone", "POST", "/v1/networks/blue/ports", port(`,"ips":["fe80::1%eth0"]`), 400, codeInvalid, "ips[0]"},
		{"leading zero", "POST", "/v1/networks/blue/ports", port(`,"ips":["198.018.0.2"]`), 400, codeInvalid, "ips[0]"},
		{"empty ip", "POST", "/v1/networks/blue/ports", port(`,"ips":[""]`), 400, codeInvalid, "ips[0]"},
		{"ip with space", "POST", "/v1/networks/blue/ports", port(`,"ips":[" 198.18.0.2"]`), 400, codeInvalid, "ips[0]"},
		{"multicast ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["224.0.0.1"]`), 400, codeInvalid, "ips[0]"},
		{"loopback ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["::1"]`), 400, codeInvalid, "ips[0]"},
		{"unspecified ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["0.0.0.0"]`), 400, codeInvalid, "ips[0]"},
		{"mapped duplicate", "POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.2","::ffff:198.18.0.2"]`), 400, codeInvalid, "ips[1]"},
		{"tunnel ip multicast", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"239.1.1.1"}`, 400, codeInvalid, "tunnel_ip"},
		{"broadcast ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["255.255.255.255"]`), 400, codeInvalid, "ips[0]"},
		{"link-local ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.2","169.254.1.1"]`), 400, codeInvalid, "ips[1]"},
		{"link-local IPv6 ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["fe80::5"]`), 400, codeInvalid, "ips[0]"},
		{"tunnel ip broadcast", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"255.255.255.255"}`, 400, codeInvalid, "tunnel_ip"},
		{"tunnel ip link-local", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"169.254.1.1"}`, 400, codeInvalid, "tunnel_ip"},
		{"tunnel ip IPv6 link-local", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"fe80::5"}`, 400, codeInvalid, "tunnel_ip"},
		{"tunnel ip loopback", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"127.0.0.1"}`, 400, codeInvalid, "tunnel_ip"},
		{"tunnel ip unspecified", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"::"}`, 400, codeInvalid, "tunnel_ip"},
		{"re-IP to broadcast", "PATCH", "/v1/hosts/h2", `{"tunnel_ip":"255.255.255.255"}`, 400, codeInvalid, "tunnel_ip"},
		{"tunnel ip with zone", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"fe80::3%eth1"}`, 400, codeInvalid, "tunnel_ip"},
		{"ovsdb port zero", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:0","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "ovsdb"},
		{"ovsdb port too big", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:65536","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "ovsdb"},
		{"ovsdb host name", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:example.org:6640","tunnel_ip":"192.0.2.3"}`, 400, codeInvalid, "ovsdb"},
		// Invalid segments.
		{"segment max int64", "POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":9223372036854775807}`, 400, codeInvalid, "segment_id"},
		{"segment min int64", "POST", "/v1/networks", `{"name":"red","type":"gre","segment_id":-9223372036854775808}`, 400, codeInvalid, "segment_id"},
		{"type upper case", "POST", "/v1/networks", `{"name":"red","type":"VXLAN"}`, 400, codeInvalid, "type"},
		// Duplicates.
		{"duplicate network name", "POST", "/v1/networks", `{"name":"blue","type":"gre"}`, 409, codeConflict, ""},
		{"duplicate port name", "POST", "/v1/networks/blue/ports", `{"name":"vm1","host":"h2","interface":"tap9"}`, 409, codeConflict, ""},
		{"duplicate interface", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap0"}`, 409, codeConflict, ""},
		{"duplicate ip", "POST", "/v1/networks/blue/ports", port(`,"ips":["198.18.0.1"]`), 409, codeConflict, ""},
		{"duplicate ip in mapped form", "POST", "/v1/networks/blue/ports", port(`,"ips":["::ffff:198.18.0.1"]`), 409, codeConflict, ""},
		{"duplicate mac in upper case", "POST", "/v1/networks/blue/ports", port(`,"mac":"02:00:00:00:00:01"`), 409, codeConflict, ""},
		{"duplicate tunnel ip", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.2"}`, 409, codeConflict, ""},
		{"duplicate ovsdb", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.2:6640","tunnel_ip":"192.0.2.3"}`, 409, codeConflict, ""},
		{"duplicate ovsdb, default port", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:198.51.100.2","tunnel_ip":"192.0.2.3"}`, 409, codeConflict, ""},
		{"duplicate ovsdb, IPv4-mapped", "POST", "/v1/hosts", `{"name":"h3","ovsdb":"tcp:[::ffff:198.51.100.2]:6640","tunnel_ip":"192.0.2.3"}`, 409, codeConflict, ""},
		{"host moved onto a taken ovsdb", "PATCH", "/v1/hosts/h2", `{"ovsdb":"tcp:198.51.100.1"}`, 409, codeConflict, ""},
		{"port moved onto a taken interface", "PUT", "/v1/networks/blue/ports/vm1", `{"host":"h2","interface":"tap9"}`, 409, codeConflict, ""},
		// References and renames.
		{"unknown host", "POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h9","interface":"tap1"}`, 400, codeInvalid, "host"},
		{"rename through PUT", "PUT", "/v1/networks/blue/ports/vm1", `{"name":"../vm1","host":"h1","interface":"tap0"}`, 400, codeInvalid, "name"},
		{"delete in-use host", "DELETE", "/v1/hosts/h1", ``, 409, codeConflict, ""},
		{"bad cascade", "DELETE", "/v1/hosts/h1?cascade=yes%20please", ``, 400, codeInvalidQuery, ""},
		{"huge wait", "POST", "/v1/networks?wait=99999999999999h", `{"name":"red","type":"vxlan"}`, 400, codeInvalidQuery, ""},
	}
}

// TestHostileInput sends every hostile case, then checks that each was a
// 4xx with a JSON error, that the API still serves, and that the store is
// exactly as before (same revision, same objects). Positive controls: the
// fixture was created through the same API, and a valid write succeeds
// after the hostile ones.
func TestHostileInput(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/hosts", h2Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm9","host":"h2","interface":"tap9"}`, http.StatusCreated)
	before, err := a.store.Snapshot(context.Background())
	require.NoError(t, err)

	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(c.method, c.path, c.body)
			require.Equal(t, c.status, r.status, "%s %s: %.300s", c.method, c.path, r.body)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			var body ErrorBody
			require.NoError(t, json.Unmarshal(r.body, &body), "the error must be JSON: %.300s", r.body)
			assert.Equal(t, c.code, body.Error.Code, "message: %s", body.Error.Message)
			assert.Equal(t, c.field, body.Error.Field, "message: %s", body.Error.Message)
			assert.NotEmpty(t, body.Error.Message)
			assert.Less(t, len(r.body), 4096, "an error must not echo a huge input back")
		})
	}

	after, err := a.store.Snapshot(context.Background())
	require.NoError(t, err)
	assert.Equal(t, before, after, "hostile requests must store nothing")
	a.must("GET", "/healthz", "", http.StatusOK)
	a.must("POST", "/v1/networks/blue/ports", `{"name":"vm2","host":"h1","interface":"tap1","mac":"02:00:00:00:00:02","ips":["198.18.0.2"]}`, http.StatusCreated)
	assert.Equal(t, before.Revision+1, a.revision(), "the valid write after them is stored")
}

// fullStore is a Store whose writes fail the way bbolt's do when the disk
// of the data directory is full.
type fullStore struct {
	topology.Store
}

func (fullStore) errNoSpace() error {
	return fmt.Errorf("commit: %w", &os.PathError{Op: "write", Path: "/var/lib/brtun/brtun.db", Err: syscall.ENOSPC})
}

func (s fullStore) CreateNetwork(context.Context, topology.Network) (topology.Network, uint64, error) {
	return topology.Network{}, 0, s.errNoSpace()
}

func (s fullStore) DeletePort(context.Context, string, string, topology.IfMatch) (uint64, error) {
	return 0, s.errNoSpace()
}

// CreateHost fails with an error that is not about space.
func (fullStore) CreateHost(context.Context, topology.Host) (topology.Host, uint64, error) {
	return topology.Host{}, 0, errors.New("state file is on fire")
}

// TestOutOfSpaceIsAClearError: a write that fails with ENOSPC answers 503
// no_space naming the cause, and reads keep working.
func TestOutOfSpaceIsAClearError(t *testing.T) {
	a := newTestAPI(t, nil, func(o *Options) { o.Store = fullStore{Store: o.Store} })
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v1/networks", `{"name":"red","type":"vxlan"}`},
		{"DELETE", "/v1/networks/blue/ports/vm1", ``},
	} {
		r := a.do(req.method, req.path, req.body)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
		var body ErrorBody
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, codeNoSpace, body.Error.Code)
		assert.Contains(t, body.Error.Message, "out of disk space")
		assert.Contains(t, body.Error.Message, "no space left on device")
	}
	a.must("GET", "/v1/networks", "", http.StatusOK)
	// Control: a store failure that is not about space stays a 500 internal.
	r := a.must("POST", "/v1/hosts", h1Body, http.StatusInternalServerError)
	assert.Equal(t, codeInternal, r.errorCode(t))
}

// TestInputRulesBesidePositiveControls: each input rule refuses its case
// and lets the nearest valid request through.
func TestInputRulesBesidePositiveControls(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	for _, c := range []struct {
		name             string
		method, path     string
		refused, control string
		status           int
		code, field      string
		controlStatus    int
	}{
		{"ovsdb address unique", "POST", "/v1/hosts",
			`{"name":"h2","ovsdb":"tcp:198.51.100.1","tunnel_ip":"192.0.2.2"}`,
			`{"name":"h2","ovsdb":"tcp:198.51.100.1:6641","tunnel_ip":"192.0.2.2"}`, 409, codeConflict, "", 201},
		{"ovsdb address unique on PATCH", "PATCH", "/v1/hosts/h2",
			`{"ovsdb":"tcp:[::ffff:198.51.100.1]:6640"}`, `{"ovsdb":"tcp:198.51.100.2:6640"}`, 409, codeConflict, "", 200},
		{"tunnel ip broadcast", "POST", "/v1/hosts",
			`{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"255.255.255.255"}`,
			`{"name":"h3","ovsdb":"tcp:198.51.100.3:6640","tunnel_ip":"192.0.2.255"}`, 400, codeInvalid, "tunnel_ip", 201},
		{"tunnel ip link-local", "PATCH", "/v1/hosts/h3", `{"tunnel_ip":"fe80::3"}`, `{"tunnel_ip":"2001:db8::3"}`, 400, codeInvalid, "tunnel_ip", 200},
		{"port ip link-local", "POST", "/v1/networks/blue/ports",
			`{"name":"vm1","host":"h1","interface":"tap1","ips":["169.254.1.1"]}`,
			`{"name":"vm1","host":"h1","interface":"tap1","ips":["198.18.0.1"]}`, 400, codeInvalid, "ips[0]", 201},
		{"port ip broadcast", "PATCH", "/v1/networks/blue/ports/vm1", `{"ips":["255.255.255.255"]}`, `{"ips":["198.18.0.255"]}`, 400, codeInvalid, "ips[0]", 200},
		{"interface patch-tun", "POST", "/v1/networks/blue/ports",
			`{"name":"vm2","host":"h1","interface":"patch-tun"}`, `{"name":"vm2","host":"h1","interface":"patch-tun0"}`, 400, codeInvalid, "interface", 201},
		{"interface a tunnel port", "PATCH", "/v1/networks/blue/ports/vm2", `{"interface":"gre-c0000202"}`, `{"interface":"gre-c000020"}`, 400, codeInvalid, "interface", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			rev := a.revision()
			r := a.must(c.method, c.path, c.refused, c.status)
			var body ErrorBody
			require.NoError(t, json.Unmarshal(r.body, &body))
			assert.Equal(t, c.code, body.Error.Code)
			assert.Equal(t, c.field, body.Error.Field)
			t.Logf("refused: %s", body.Error.Message)
			assert.Equal(t, rev, a.revision(), "the refused request stored nothing")
			a.must(c.method, c.path, c.control, c.controlStatus)
			assert.Equal(t, rev+1, a.revision(), "the control is stored")
		})
	}
	r := a.must("POST", "/v1/networks/blue/ports", `{"name":"vm3","host":"h1","interface":"br-int"}`, http.StatusBadRequest)
	assert.Contains(t, string(r.body), "brtun's own", "the reason is given")
	r = a.must("POST", "/v1/hosts", `{"name":"h4","ovsdb":"tcp:198.51.100.4","tunnel_ip":"169.254.9.9"}`, http.StatusBadRequest)
	assert.Contains(t, string(r.body), "link-local", "the reason is given")
	r = a.must("POST", "/v1/hosts", `{"name":"h4","ovsdb":"tcp:198.51.100.2","tunnel_ip":"192.0.2.4"}`, http.StatusConflict)
	assert.Contains(t, string(r.body), `host \"h2\"`, "the owner of the address is named")
}

// TestMethodNotAllowedCarriesAllow: for every path of the router, a method
// it does not serve answers 405 with an Allow header naming exactly the
// methods the router (and so the OpenAPI document) has for that path; each
// of those methods does not answer 405 (positive control).
func TestMethodNotAllowedCarriesAllow(t *testing.T) {
	a := newTestAPI(t, newFakeController())
	a.must("POST", "/v1/hosts", h1Body, http.StatusCreated)
	a.must("POST", "/v1/networks", blueBody, http.StatusCreated)
	a.must("POST", "/v1/networks/blue/ports", vm1Body, http.StatusCreated)
	byPath := make(map[string][]string)
	for _, route := range routerRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		byPath[path] = append(byPath[path], method)
	}
	vars := strings.NewReplacer("{host}", "h1", "{network}", "blue", "{port}", "vm1")
	multi := 0
	for tmpl, methods := range byPath {
		path := vars.Replace(tmpl)
		slices.Sort(methods)
		if len(methods) > 1 {
			multi++
		}
		for _, m := range []string{"TRACE", "OPTIONS", "PUT", "POST", "PATCH", "DELETE", "HEAD"} {
			if slices.Contains(methods, m) {
				continue
			}
			r := a.do(m, path, "")
			require.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s: %s", m, path, r.body)
			assert.Equal(t, strings.Join(methods, ", "), r.header.Get("Allow"), "%s %s", m, path)
			if m != "HEAD" {
				assert.Equal(t, codeMethodNotAllowed, r.errorCode(t))
			}
		}
		for _, m := range methods {
			if m == "GET" || m == "HEAD" {
				r := a.do(m, path, "")
				assert.NotEqual(t, http.StatusMethodNotAllowed, r.status, "%s %s", m, path)
				assert.Empty(t, r.header.Get("Allow"), "%s %s", m, path)
			}
		}
	}
	assert.Greater(t, multi, 3, "paths with several methods are covered")
	r := a.must("DELETE", "/v1/hosts/h1/flows", "", http.StatusMethodNotAllowed)
	assert.Equal(t, "GET", r.header.Get("Allow"))
	r = a.must("POST", "/healthz", "", http.StatusMethodNotAllowed)
	assert.Equal(t, "GET, HEAD", r.header.Get("Allow"))
	r = a.must("PUT", "/v1/networks/blue", "{}", http.StatusMethodNotAllowed)
	assert.Equal(t, "DELETE, GET, PATCH", r.header.Get("Allow"))
	// An unknown path is a 404 without Allow.
	r = a.must("PUT", "/v1/nothing", "{}", http.StatusNotFound)
	assert.Empty(t, r.header.Get("Allow"))
}

// slowPost sends a POST of body to addr whose headers arrive at once and
// whose body arrives one byte every gap, and returns the answer and how
// long it took to come.
func slowPost(t *testing.T, addr, path, body string, gap time.Duration) (*http.Response, []byte, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: brtun\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
	require.NoError(t, err)
	go func() {
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return // the server closed the connection
			}
			time.Sleep(gap)
		}
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, raw, time.Since(start)
}

// TestSlowBodyIsCut: with LimitBodyRead a body trickled in one byte at a
// time is answered 408 once the limit passes and its connection closed,
// storing nothing; the same body sent at once, or trickled within the limit,
// is stored, and a handler that runs past the limit after reading its body
// keeps its context.
func TestSlowBodyIsCut(t *testing.T) {
	const limit = time.Second
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	api, err := New(Options{Store: store})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(2 * limit)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context ended: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintf(w, "read %d bytes", len(raw))
	})
	srv := httptest.NewServer(LimitBodyRead(limit)(mux))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	body := `{"name":"red","type":"vxlan","description":"` + strings.Repeat("x", 40) + `"}`

	res, raw, took := slowPost(t, addr, "/v1/networks", body, 300*time.Millisecond)
	assert.Equal(t, http.StatusRequestTimeout, res.StatusCode, "%s", raw)
	assert.Contains(t, string(raw), codeRequestTimeout)
	assert.Less(t, took, limit+2*time.Second, "the request is cut soon after the limit")
	assert.GreaterOrEqual(t, took, limit)
	assert.True(t, res.Close, "the connection is closed")
	rev, err := store.Revision(context.Background())
	require.NoError(t, err)
	assert.Zero(t, rev, "nothing stored")

	// Positive controls.
	res, raw, _ = slowPost(t, addr, "/v1/networks", body, 0)
	assert.Equal(t, http.StatusCreated, res.StatusCode, "at once: %s", raw)
	res, raw, took = slowPost(t, addr, "/v1/networks", strings.Replace(body, "red", "ok1", 1), limit/200)
	assert.Equal(t, http.StatusCreated, res.StatusCode, "trickled within the limit (%s): %s", took, raw)
	res, raw, took = slowPost(t, addr, "/long", body, 0)
	assert.Equal(t, http.StatusOK, res.StatusCode, "a handler running past the limit: %s", raw)
	assert.Greater(t, took, 2*limit)
	// No body, no limit: a GET's handler is not cut either.
	r, err := http.Get(srv.URL + "/v1/networks")
	require.NoError(t, err)
	require.NoError(t, r.Body.Close())
	assert.Equal(t, http.StatusOK, r.StatusCode)
}
