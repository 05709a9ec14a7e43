package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCLISetFlagsAndLists(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1", "--tag", "rack1", "--description", "first")
	mustRun(t, s, "host", "add", "h2", "--ovsdb", "tcp:198.51.100.2:6640", "--tunnel-ip", "192.0.2.2")

	out := mustRun(t, s, "host", "set", "h1", "--tunnel-ip", "192.0.2.11")
	assert.Contains(t, out, "Tunnel IP:      192.0.2.11")
	assert.Contains(t, out, "Description:    first", "flags not given keep their value")
	assert.Contains(t, out, "Tags:           rack1")
	_, _, err := run(t, s, "host", "set", "h1")
	require.Error(t, err, "nothing to change")
	assert.Regexp(t, `(?m)^h1\s`, mustRun(t, s, "host", "list", "--tag", "rack1"))
	assert.NotRegexp(t, `(?m)^h2\s`, mustRun(t, s, "host", "list", "--tag", "rack1"))

	mustRun(t, s, "net", "create", "blue", "--type", "vxlan", "--tag", "prod")
	mustRun(t, s, "net", "create", "red", "--type", "gre")
	out = mustRun(t, s, "net", "set", "blue", "--mac-learning=false", "--description", "tenant blue")
	assert.Contains(t, out, "MAC learning:  false")
	assert.Contains(t, out, "Description:   tenant blue")
	assert.Contains(t, out, "Tags:          prod")
	out = mustRun(t, s, "net", "list", "--type", "gre")
	assert.Regexp(t, `(?m)^red\s`, out)
	assert.NotRegexp(t, `(?m)^blue\s`, out)

	out = mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--admin-state", "down", "--tag", "web")
	assert.Contains(t, out, "Admin state:  down")
	assert.Contains(t, out, "Tags:         web")
	mustRun(t, s, "port", "add", "red", "vm2", "--host", "h1", "--interface", "tap1")
	mustRun(t, s, "port", "add", "red", "vm3", "--host", "h2", "--interface", "tap2")
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--admin-state", "up")
	assert.Contains(t, out, "Admin state:  up")
	assert.Contains(t, out, "Tags:         web", "set keeps the tags")

	// brtun host show lists what lives on the host.
	out = mustRun(t, s, "host", "show", "h1")
	assert.Regexp(t, `(?m)^NETWORK\s+NAME\s+HOST`, out)
	assert.Regexp(t, `(?m)^blue\s+vm1\s+h1\s+tap0\s`, out)
	assert.Regexp(t, `(?m)^red\s+vm2\s+h1\s+tap1\s`, out)
	assert.NotContains(t, out, "vm3", "h2's port is not listed")
	out = mustRun(t, s, "port", "list", "--host", "h2")
	assert.Regexp(t, `(?m)^red\s+vm3\s+h2\s`, out)
	assert.NotContains(t, out, "vm1")
	assert.NotContains(t, mustRun(t, s, "port", "list", "red", "--host", "h2"), "vm2")

	// --device-id: the ports a container runtime's plugin made for one
	// container (brtun-cni sets device_id to the container ID).
	body := strings.NewReader(`{"name":"c1","host":"h2","interface":"vethc1","device_id":"ctr-1"}`)
	resp, err := http.Post(url+"/v1/networks/red/ports", "application/json", body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	out = mustRun(t, s, "port", "list", "--device-id", "ctr-1")
	assert.Regexp(t, `(?m)^red\s+c1\s+h2\s`, out)
	assert.NotContains(t, out, "vm3", "another device's port is not listed")
	assert.Contains(t, mustRun(t, s, "port", "list", "--host", "h2"), "vm3", "control: without the filter it is")
}

func TestCLIPortWait(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0") // the test controller binds tap0
	mustRun(t, s, "port", "add", "blue", "vm2", "--host", "h1", "--interface", "tap1")
	assert.Contains(t, mustRun(t, s, "port", "wait", "blue", "vm1", "--timeout", "5s"), "Status:       bound")
	out, _, err := run(t, s, "port", "wait", "blue", "vm2", "--timeout", "300ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 504 not_bound")
	assert.Contains(t, out, "Status:       pending", "the port as last seen")
}

// TestCLISetNeverOverwritesAConcurrentChange: port set reads, then writes
// with If-Match; a change in between makes it fail instead of undoing it.
func TestCLISetNeverOverwritesAConcurrentChange(t *testing.T) {
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	api, err := northbound.New(northbound.Options{Store: store, Controller: &cliController{}})
	require.NoError(t, err)
	var mu sync.Mutex
	interfere := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		if interfere && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/ports/vm1") {
			// Someone else edits the port right after the CLI read it.
			_, _, err := store.UpdatePort(context.Background(), "blue", "vm1", nil, func(p *topology.Port) error {
				p.Description = "theirs"
				return nil
			})
			assert.NoError(t, err)
		}
	}))
	t.Cleanup(srv.Close)
	s := "--server=" + srv.URL
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0")

	// Control: without interference the set goes through.
	assert.Contains(t, mustRun(t, s, "port", "set", "blue", "vm1", "--interface", "tap5"), "Interface:    tap5")

	mu.Lock()
	interfere = true
	mu.Unlock()
	_, _, err = run(t, s, "port", "set", "blue", "vm1", "--interface", "tap6")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 412 precondition_failed")
	p, err := store.GetPort(context.Background(), "blue", "vm1")
	require.NoError(t, err)
	assert.Equal(t, "theirs", p.Description, "the concurrent change stands")
	assert.Equal(t, "tap5", p.Interface, "the CLI's stale write was refused")
}
