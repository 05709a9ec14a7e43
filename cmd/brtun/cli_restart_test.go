package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/testbed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCreatedObjectsSurviveSIGKILL builds brtun, runs `brtun serve` on a
// temporary data dir, creates objects, SIGKILLs the server right after the
// last 201, restarts it and finds everything again.
func TestCreatedObjectsSurviveSIGKILL(t *testing.T) {
	bin := testbed.BrtunBinary(t)
	dataDir := t.TempDir()

	first := startServe(t, bin, dataDir)
	// Port 1: this brtun really connects, and must keep away from the OVSDB
	// of a lab's h1 (198.51.100.1:6640) that may run on this machine.
	out := runBinary(t, bin, "--server", first.url, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:1", "--tunnel-ip", "192.0.2.1")
	assert.Contains(t, out, "Name:")
	postJSON(t, first.url+"/v1/networks", `{"name":"blue","type":"vxlan","segment_id":5001}`)
	postJSON(t, first.url+"/v1/networks/blue/ports", `{"name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01","ips":["198.18.0.1"]}`)
	first.Kill() // right after the 201, no graceful shutdown

	second := startServe(t, bin, dataDir)
	var h northbound.HostView
	getJSON(t, second.url+"/v1/hosts/h1", &h)
	assert.Equal(t, "192.0.2.1", h.TunnelIP)
	var p northbound.PortView
	getJSON(t, second.url+"/v1/networks/blue/ports/vm1", &p)
	assert.Equal(t, uint16(1), p.LocalVLAN)
	assert.Equal(t, []string{"198.18.0.1"}, p.IPs)
	assert.Regexp(t, `(?m)^blue\s+vxlan\s+5001\s+true\s+1450$`, runBinary(t, bin, "--server", second.url, "net", "list"))

	// State continues where it stopped: a duplicate is still a conflict.
	res, err := http.Post(second.url+"/v1/networks", "application/json", strings.NewReader(`{"name":"blue","type":"gre"}`))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusConflict, res.StatusCode)
	second.stop(t)
}

type serveProcess struct {
	*testbed.Brtun
	url string
}

// startServe starts `brtun serve` on a free 127.0.0.1 port with dataDir from
// the environment (BRTUN_DATA_DIR) and --api-listen on the command line
// winning over a bogus BRTUN_API_LISTEN, and waits until /healthz answers.
func startServe(t *testing.T, bin, dataDir string) *serveProcess {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1"))
	b := testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary: bin,
		Args:   []string{"--api-listen", addr},
		Env:    []string{"BRTUN_DATA_DIR=" + dataDir, "BRTUN_API_LISTEN=127.0.0.1:1"},
		API:    "http://" + addr,
	})
	return &serveProcess{Brtun: b, url: b.API}
}

// stop ends the server with SIGTERM and expects a clean exit.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	assert.Equal(t, 0, p.Stop(t, 10*time.Second), "output: %s", p.Log())
}

func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "brtun %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

func postJSON(t *testing.T, url, body string) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.NewDecoder(res.Body).Decode(v))
}
