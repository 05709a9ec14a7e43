package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cliController is a northbound.Controller for CLI tests.
type cliController struct {
	mu         sync.Mutex
	notApplied []string
}

func (c *cliController) HostStatus(host string) northbound.HostStatus {
	return northbound.HostStatus{OVSDB: northbound.Connected, Bridges: map[string]northbound.BridgeStatus{
		northbound.BridgeTun: {DatapathID: "0000aabbccddeeff", OpenFlow: northbound.Connected, AppliedRevision: 7},
	}}
}

func (c *cliController) PortBound(host, iface string) bool   { return iface == "tap0" }
func (c *cliController) PortError(host, iface string) string { return "" }

func (c *cliController) WaitApplied(ctx context.Context, rev uint64) ([]string, error) {
	c.mu.Lock()
	notApplied := c.notApplied
	c.mu.Unlock()
	if len(notApplied) == 0 {
		return nil, nil
	}
	<-ctx.Done()
	return notApplied, ctx.Err()
}

func (c *cliController) DumpFlows(ctx context.Context, host, bridge string, table int) ([]northbound.FlowEntry, error) {
	return []northbound.FlowEntry{{Table: uint8(max(table, 0)), Priority: 1, Cookie: 0x10, Match: "in_port=1",
		Actions: "resubmit(,1)", NPackets: 5, NBytes: 420, Duration: 2500 * time.Millisecond, Owner: "pipeline:" + bridge}}, nil
}

func newCLIServer(t *testing.T) (string, *cliController) {
	t.Helper()
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	ctrl := &cliController{}
	api, err := northbound.New(northbound.Options{Store: store, Controller: ctrl})
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL, ctrl
}

// run executes the CLI with args and returns what it printed to stdout and stderr.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	out, errOut, _, err := runExit(t, args...)
	return out, errOut, err
}

// runExit is run that returns the exit code too.
func runExit(t *testing.T, args ...string) (string, string, int, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCommand(&stdout, &stderr)
	root.SetArgs(args)
	code, err := execute(context.Background(), root, &stderr)
	return stdout.String(), stderr.String(), code, err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	require.NoError(t, err, "brtun %s: %s", strings.Join(args, " "), errOut)
	return out
}

func TestCLIWorkflow(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url

	out := mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1", "--datapath-type", "netdev")
	assert.Contains(t, out, "Name:           h1")
	assert.Contains(t, out, "Datapath type:  netdev")
	assert.Contains(t, out, "Bridge br-tun:  openflow connected, datapath id 0000aabbccddeeff, applied revision 7")
	mustRun(t, s, "host", "add", "h2", "--ovsdb", "unix:/run/h2/db.sock", "--tunnel-ip", "192.0.2.2", "--wait", "2s")

	out = mustRun(t, s, "host", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^NAME\s+OVSDB\s+TUNNEL-IP\s+DATAPATH\s+OVSDB-STATUS\s+BR-INT\s+BR-TUN$`, lines[0])
	assert.Regexp(t, `^h1\s+tcp:198.51.100.1:6640\s+192.0.2.1\s+netdev\s+connected\s+disconnected r0\s+connected r7$`, lines[1])
	assert.Regexp(t, `^h2\s+unix:/run/h2/db.sock\s+192.0.2.2\s+system\s`, lines[2])
	assert.Contains(t, mustRun(t, s, "host", "show", "h2"), "OVSDB:          unix:/run/h2/db.sock (connected)")

	out = mustRun(t, s, "net", "create", "blue", "--type", "vxlan", "--segment", "5001")
	assert.Contains(t, out, "Segment:       5001")
	assert.Contains(t, out, "MTU:           1450")
	out = mustRun(t, s, "net", "create", "red", "--type", "gre", "--no-mac-learning")
	assert.Contains(t, out, "MAC learning:  false")
	assert.Contains(t, out, "Segment:       1")
	out = mustRun(t, s, "net", "list")
	assert.Regexp(t, `(?m)^blue\s+vxlan\s+5001\s+true\s+1450$`, out)
	assert.Regexp(t, `(?m)^red\s+gre\s+1\s+false\s+1458$`, out)
	assert.Contains(t, mustRun(t, s, "net", "show", "red"), "Type:          gre")

	out = mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--mac", "02:00:00:00:00:01",
		"--ip", "198.18.0.1", "--ip", "2001:db8:100::1")
	assert.Contains(t, out, "Local VLAN:   1")
	assert.Contains(t, out, "IPs:          198.18.0.1, 2001:db8:100::1")
	assert.Contains(t, out, "Status:       bound")
	mustRun(t, s, "port", "add", "blue", "vm2", "--host", "h1", "--interface", "tap1")
	out = mustRun(t, s, "port", "list", "blue")
	assert.Regexp(t, `(?m)^vm1\s+h1\s+tap0\s+02:00:00:00:00:01\s+198.18.0.1,2001:db8:100::1\s+1\s+bound\s+up$`, out)
	assert.Regexp(t, `(?m)^vm2\s+h1\s+tap1\s+02:62:74:00:00:01\s+-\s+1\s+pending\s+up$`, out, "a generated MAC; no subnets, so no address")

	// A VM moves: only the flags given change.
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--host", "h2", "--interface", "tap5")
	assert.Contains(t, out, "Host:         h2")
	assert.Contains(t, out, "Interface:    tap5")
	assert.Contains(t, out, "MAC:          02:00:00:00:00:01")
	assert.Contains(t, out, "IPs:          198.18.0.1, 2001:db8:100::1")
	assert.Contains(t, mustRun(t, s, "port", "show", "blue", "vm1"), "Status:       pending")
	assert.Contains(t, out, "Security:     true", "port security is on by default")

	// Port security and allowed addresses; set keeps what it is not told.
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--allowed-address", "198.18.0.100", "--allowed-address", "198.18.1.0/24,02:00:00:00:00:99")
	assert.Contains(t, out, "Pairs:        198.18.0.100 198.18.1.0/24,02:00:00:00:00:99")
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--interface", "tap6")
	assert.Contains(t, out, "Pairs:        198.18.0.100 198.18.1.0/24,02:00:00:00:00:99")
	assert.Contains(t, out, "Security:     true")
	out = mustRun(t, s, "port", "set", "blue", "vm1", "--no-allowed-addresses", "--port-security=false")
	assert.Contains(t, out, "Pairs:        -")
	assert.Contains(t, out, "Security:     false")
	_, _, err := run(t, s, "port", "set", "blue", "vm1", "--allowed-address", "198.18.0.5,02:00:00:00:00:01,x")
	assert.ErrorContains(t, err, "want IP[,MAC]")
	out = mustRun(t, s, "port", "add", "blue", "fw", "--host", "h1", "--interface", "tap7", "--mac", "02:00:00:00:00:07", "--port-security=false")
	assert.Contains(t, out, "Security:     false")
	mustRun(t, s, "port", "rm", "blue", "fw")

	assert.Equal(t, "deleted port blue/vm2\n", mustRun(t, s, "port", "rm", "blue", "vm2"))
	_, _, err = run(t, s, "net", "rm", "blue")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 409")
	assert.Equal(t, "deleted network blue\n", mustRun(t, s, "net", "rm", "blue", "--cascade", "--wait", "1s"))
	assert.Equal(t, "deleted host h1\n", mustRun(t, s, "host", "rm", "h1"))
	assert.Empty(t, mustRun(t, s, "-o", "json", "host", "rm", "h2"))
}

func TestCLIJSONOutput(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	out := mustRun(t, s, "-o", "json", "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	var h northbound.HostView
	require.NoError(t, json.Unmarshal([]byte(out), &h))
	assert.Equal(t, "system", h.DatapathType)

	out = mustRun(t, s, "-o", "json", "host", "list")
	var hosts northbound.HostList
	require.NoError(t, json.Unmarshal([]byte(out), &hosts))
	require.Len(t, hosts.Hosts, 1)
	assert.Equal(t, northbound.Connected, hosts.Hosts[0].Status.OVSDB)

	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	out = mustRun(t, s, "--output=json", "net", "list")
	var nets northbound.NetworkList
	require.NoError(t, json.Unmarshal([]byte(out), &nets))
	assert.Equal(t, uint32(1), nets.Networks[0].SegmentID)

	mustRun(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap3")
	out = mustRun(t, s, "-o", "json", "port", "list", "blue")
	var ports northbound.PortList
	require.NoError(t, json.Unmarshal([]byte(out), &ports))
	assert.Equal(t, uint16(1), ports.Ports[0].LocalVLAN)
	assert.Equal(t, northbound.PortPending, ports.Ports[0].Status)
}

func TestCLIFlows(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")

	out := mustRun(t, s, "flows", "h1", "--table", "20")
	assert.Regexp(t, `(?m)^TABLE\s+PRIORITY\s+COOKIE\s+OWNER\s+PACKETS\s+BYTES\s+AGE\s+MATCH\s+ACTIONS$`, out)
	assert.Regexp(t, `(?m)^20\s+1\s+0x10\s+pipeline:br-tun\s+5\s+420\s+2.5s\s+in_port=1\s+resubmit\(,1\)$`, out)

	out = mustRun(t, s, "-o", "text", "flows", "h1", "--bridge", "br-int")
	assert.Equal(t, " cookie=0x10, duration=2.500s, table=0, n_packets=5, n_bytes=420, priority=1,in_port=1 actions=resubmit(,1)\n", out)

	out = mustRun(t, s, "-o", "json", "flows", "h1")
	var flows northbound.FlowList
	require.NoError(t, json.Unmarshal([]byte(out), &flows))
	assert.Equal(t, "0x10", flows.Flows[0].Cookie)

	_, _, err := run(t, s, "flows", "h1", "--bridge", "br-phy")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 400")
}

func TestCLIErrors(t *testing.T) {
	url, ctrl := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")

	_, errOut, err := run(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	require.Error(t, err)
	assert.Contains(t, errOut, `Error: host "h1" already exists (HTTP 409 conflict)`)

	_, _, err = run(t, s, "host", "add", "h2", "--ovsdb", "tcp:198.51.100.2:6640")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"tunnel-ip" not set`)

	_, _, err = run(t, s, "net", "create", "x", "--type", "stt")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 400 invalid")
	_, _, err = run(t, s, "net", "create", "x", "--type", "vxlan", "--segment", "0")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "out of range")

	_, _, err = run(t, s, "-o", "xml", "host", "list")
	require.Error(t, err)
	_, _, err = run(t, s, "-o", "text", "host", "list")
	require.Error(t, err, "-o text is for flows only")

	_, _, err = run(t, s, "host", "show", "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 404")

	_, _, err = run(t, "--server=http://127.0.0.1:1", "host", "list")
	require.Error(t, err, "nothing listens on port 1")
	_, _, err = run(t, "--server=ftp://x", "host", "list")
	require.Error(t, err)

	// ?wait expiring: the stored object is printed and the command fails.
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	ctrl.mu.Lock()
	ctrl.notApplied = []string{"h1/br-int"}
	ctrl.mu.Unlock()
	out, _, err := run(t, s, "port", "add", "blue", "vm1", "--host", "h1", "--interface", "tap0", "--wait", "100ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not applied within 100ms by h1/br-int")
	assert.Contains(t, err.Error(), "HTTP 504")
	assert.Contains(t, out, "Name:         vm1")
	assert.Contains(t, mustRun(t, s, "port", "list", "blue"), "vm1", "the write is committed")
}

func TestCLIServerFromEnvironment(t *testing.T) {
	url, _ := newCLIServer(t)
	t.Setenv("BRTUN_SERVER", strings.TrimPrefix(url, "http://"))
	out := mustRun(t, "net", "list")
	assert.Regexp(t, `^NAME\s+TYPE`, out, "BRTUN_SERVER is used, http:// is implied")

	t.Setenv("BRTUN_SERVER", "http://127.0.0.1:1")
	mustRun(t, "--server", url, "net", "list") // the flag wins

	t.Setenv("BRTUN_OUTPUT", "json")
	out = mustRun(t, "--server", url, "net", "list")
	assert.JSONEq(t, `{"networks":[]}`, out)
}

func TestServeFlagsFromEnvironment(t *testing.T) {
	t.Setenv("BRTUN_API_LISTEN", "127.0.0.1:9999")
	t.Setenv("BRTUN_DATA_DIR", "/tmp/from-env")
	t.Setenv("BRTUN_OPENFLOW_ADVERTISE", "tcp:198.51.100.254:6653")
	t.Setenv("BRTUN_UNDERLAY_MTU", "9000")

	root := newRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	serve, _, err := root.Find([]string{"serve"})
	require.NoError(t, err)
	require.NoError(t, serve.ParseFlags([]string{"--api-listen", "127.0.0.1:8081"}))
	require.NoError(t, root.PersistentPreRunE(serve, nil))

	get := func(name string) string { return serve.Flags().Lookup(name).Value.String() }
	assert.Equal(t, "127.0.0.1:8081", get("api-listen"), "the command line wins over BRTUN_API_LISTEN")
	assert.Equal(t, "/tmp/from-env", get("data-dir"))
	assert.Equal(t, "tcp:198.51.100.254:6653", get("openflow-advertise"))
	assert.Equal(t, "9000", get("underlay-mtu"))
	assert.Equal(t, "tcp:0.0.0.0:6653", get("openflow-listen"), "default when neither is given")

	t.Setenv("BRTUN_UNDERLAY_MTU", "big")
	root = newRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	serve, _, err = root.Find([]string{"serve"})
	require.NoError(t, err)
	err = root.PersistentPreRunE(serve, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "$BRTUN_UNDERLAY_MTU")

	// Client commands do not read BRTUN_<flag> for their own flags.
	t.Setenv("BRTUN_HOST", "h9")
	root = newRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	add, _, err := root.Find([]string{"port", "add"})
	require.NoError(t, err)
	require.NoError(t, root.PersistentPreRunE(add, nil))
	assert.Equal(t, "", add.Flags().Lookup("host").Value.String())
}
