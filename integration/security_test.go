//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// testPKI is a PKI made with ovs-pki, as docs/operations.md tells operators
// to: controllerca signs brtun's certificates, switchca the switches'.
type testPKI struct {
	t   *testing.T
	dir string
}

// keyPair names a private key and its certificate (PEM files).
type keyPair struct{ Key, Cert string }

func newPKI(t *testing.T, dir string) *testPKI {
	p := &testPKI{t: t, dir: dir}
	p.run("init")
	return p
}

func (p *testPKI) run(args ...string) {
	p.t.Helper()
	cmd := exec.Command("ovs-pki", append([]string{"--dir=" + filepath.Join(p.dir, "pki"), "--log=" + filepath.Join(p.dir, "ovs-pki.log")}, args...)...)
	cmd.Dir = p.dir // req and sign write NAME-privkey.pem, NAME-cert.pem here
	out, err := cmd.CombinedOutput()
	require.NoError(p.t, err, "ovs-pki %s: %s", strings.Join(args, " "), out)
}

func (p *testPKI) pair(name string) keyPair {
	return keyPair{Key: filepath.Join(p.dir, name+"-privkey.pem"), Cert: filepath.Join(p.dir, name+"-cert.pem")}
}

// sign makes a key and a certificate of typ ("switch" or "controller")
// signed by the PKI's CA of that type.
func (p *testPKI) sign(name, typ string) keyPair {
	p.run("--batch", "--unique", "req+sign", name, typ)
	return p.pair(name)
}

// selfSigned makes a key and a self-signed certificate no CA of the PKI knows.
func (p *testPKI) selfSigned(name string) keyPair {
	p.run("--unique", "req", name)
	p.run("--unique", "self-sign", name)
	return p.pair(name)
}

// switchCA is the CA certificate that signs switch certificates.
func (p *testPKI) switchCA() string {
	return filepath.Join(p.dir, "pki", "switchca", "cacert.pem")
}

// controllerCA is the CA certificate that signs brtun's certificates.
func (p *testPKI) controllerCA() string {
	return filepath.Join(p.dir, "pki", "controllerca", "cacert.pem")
}

// writeToken writes an API token file and returns its path.
func writeToken(t *testing.T, dir, token string) string {
	path := filepath.Join(dir, "api-token")
	require.NoError(t, os.WriteFile(path, []byte(token+"\n"), 0o600))
	return path
}

// call sends a request to the daemon with the given bearer token (none when
// empty), bypassing d.Do's own token; it returns the status and the body.
func call(t *testing.T, d *daemon, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, d.API+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// requireUnauthorized checks a 401 answer with brtun's JSON error body.
func requireUnauthorized(t *testing.T, status int, body []byte, what string) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, status, "%s: %s", what, body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s: a JSON error body: %s", what, body)
	assert.Equal(t, "unauthorized", e.Error.Code, what)
	assert.NotEmpty(t, e.Error.Message, what)
}

// brtunLog returns the daemon's log lines that contain every one of words.
func brtunLog(t *testing.T, d *daemon, words ...string) []string {
	t.Helper()
	raw, err := os.ReadFile(d.logPath)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// TestAPIToken: with --api-token-file a missing or wrong token gets 401 and a
// JSON error on writes, reads and /metrics while the right token works and
// the host it registers converges; /healthz stays open; --api-read-open lets
// reads through but not writes.
func TestAPIToken(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	token := "integration-token-" + l.Prefix
	tokenFile := writeToken(t, l.Dir, token)
	s := &scenario{t: t, lab: l, brtun: startBrtun(t, l, daemonOptions{
		Advertise: true, Token: token, ExtraArgs: []string{"--api-token-file", tokenFile},
	})}
	d, h := s.brtun, l.Hosts[0]
	hostBody := map[string]any{"name": h.Name, "ovsdb": h.OVSDB, "tunnel_ip": h.TunnelIP, "datapath_type": h.DatapathType}

	for _, tok := range []string{"", "wrong-token-0123456789abcdef"} {
		status, body := call(t, d, "POST", "/v1/hosts", tok, hostBody)
		requireUnauthorized(t, status, body, fmt.Sprintf("write with token %q", tok))
		status, body = call(t, d, "GET", "/v1/hosts", tok, nil)
		requireUnauthorized(t, status, body, fmt.Sprintf("read with token %q", tok))
		status, body = call(t, d, "GET", "/metrics", tok, nil)
		requireUnauthorized(t, status, body, fmt.Sprintf("/metrics with token %q", tok))
	}
	status, body := call(t, d, "GET", "/healthz", "", nil)
	require.Equal(t, http.StatusOK, status, "/healthz needs no token: %s", body)
	assert.NotEmpty(t, brtunLog(t, d, "request refused", `"reason":"wrong token"`), "refusals are logged")
	assert.Empty(t, brtunLog(t, d, "the REST API is open"), "no open-API warning with a token")

	// The right token: the write is stored and the host converges.
	status, body = call(t, d, "GET", "/v1/hosts", token, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"hosts":[]}`, string(body), "the refused writes stored nothing")
	d.MustDo(http.StatusCreated, "POST", "/v1/hosts", hostBody, nil)
	s.waitApplied(20 * time.Second)
	status, body = call(t, d, "GET", "/metrics", token, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), "brtun_")

	// --api-read-open: reads (and /metrics) need no token, writes still do.
	d.Kill()
	d.Args = append(d.Args, "--api-read-open")
	d.Start()
	status, body = call(t, d, "GET", "/v1/hosts/"+h.Name, "", nil)
	require.Equal(t, http.StatusOK, status, "a read without a token: %s", body)
	assert.Contains(t, string(body), `"name": "`+h.Name+`"`)
	status, _ = call(t, d, "GET", "/metrics", "", nil)
	assert.Equal(t, http.StatusOK, status, "/metrics is a read")
	net := map[string]any{"name": "blue", "type": topology.VXLAN, "segment_id": 5001}
	status, body = call(t, d, "POST", "/v1/networks", "", net)
	requireUnauthorized(t, status, body, "a write without a token under --api-read-open")
	status, body = call(t, d, "DELETE", "/v1/hosts/"+h.Name, "wrong-token-0123456789abcdef", nil)
	requireUnauthorized(t, status, body, "a delete with a wrong token under --api-read-open")
	status, body = call(t, d, "POST", "/v1/networks", token, net)
	require.Equal(t, http.StatusCreated, status, "a write with the token: %s", body)
	status, _ = call(t, d, "GET", "/v1/hosts/"+h.Name, "", nil)
	assert.Equal(t, http.StatusOK, status, "the refused delete removed nothing")
}

// TestAPITLS: with --api-tls-cert/--api-tls-key (made with ovs-pki) the API
// speaks HTTPS only; the CLI with --ca-file and --token-file and a Go HTTPS
// client trusting the CA work, a client without the CA or speaking plain
// HTTP does not.
func TestAPITLS(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 1})
	p := newPKI(t, l.Dir)
	cert := p.sign("localhost", "controller") // the certificate names "localhost"
	token := "integration-token-" + l.Prefix
	tokenFile := writeToken(t, l.Dir, token)
	s := newScenarioOn(t, l, daemonOptions{
		Advertise: true, Token: token, APICA: p.controllerCA(),
		ExtraArgs: []string{"--api-token-file", tokenFile, "--api-tls-cert", cert.Cert, "--api-tls-key", cert.Key},
	})
	require.True(t, strings.HasPrefix(s.brtun.API, "https://localhost:"), s.brtun.API)
	s.waitApplied(20 * time.Second) // every request of it went over HTTPS with the CA

	cli := func(args ...string) (string, error) {
		out, err := exec.Command(testbed.BrtunBinary(t), append([]string{"--server", s.brtun.API, "-o", "json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := cli("--ca-file", p.controllerCA(), "--token-file", tokenFile, "host", "show", "h1")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"ovsdb": "connected"`)

	out, err = cli("--token-file", tokenFile, "host", "list")
	require.Error(t, err, "without --ca-file the certificate is not trusted: %s", out)
	assert.Contains(t, out, "certificate")
	out, err = cli("--ca-file", p.controllerCA(), "host", "list")
	require.Error(t, err, "without a token: %s", out)
	assert.Contains(t, out, "HTTP 401 unauthorized")

	plain := strings.Replace(s.brtun.API, "https://", "http://", 1)
	resp, err := http.Get(plain + "/v1/hosts")
	if err == nil {
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is refused: %s", raw)
		assert.NotContains(t, string(raw), "h1")
	}
}

// TestOpenFlowTLS: brtun listens on ssl: with a certificate from ovs-pki.
// Switches configured with ovs-vsctl set-ssl and a switch certificate the CA
// signed (h1, h3) get their flows and carry tenant traffic; h2's self-signed
// certificate is refused: no flows, and brtun logs the refusal.
func TestOpenFlowTLS(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 3})
	p := newPKI(t, l.Dir)
	ctl := p.sign("brtun", "controller")
	certs := map[string]keyPair{"h1": p.sign("h1", "switch"), "h2": p.selfSigned("rogue"), "h3": p.sign("h3", "switch")}
	for _, h := range l.Hosts {
		// Every switch trusts brtun's CA; only brtun decides about the switch.
		_, err := h.Vsctl("set-ssl", certs[h.Name].Key, certs[h.Name].Cert, p.controllerCA())
		require.NoError(t, err)
	}
	// brtun writes its ssl: target into every bridge (--openflow-advertise).
	s := newScenarioOn(t, l, daemonOptions{Advertise: true, OpenFlowSSL: true, ExtraArgs: []string{
		"--openflow-tls-cert", ctl.Cert, "--openflow-tls-key", ctl.Key, "--openflow-tls-ca", p.switchCA(),
	}})
	h1, h2, h3 := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	a3 := s.vm(h3, "a3", "blue", "02:00:00:00:01:03", "198.18.0.3/24")
	require.True(t, strings.HasPrefix(s.brtun.Target(l), "ssl:"))
	s.waitApplied(30*time.Second, h1, h3)

	nets := []topology.Network{{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, MACLearning: true}}
	vms := []*tenantVM{a1, a2, a3}
	for _, h := range []*lab.Host{h1, h3} {
		wantTun, wantInt := expectedFlows(t, l, h, nets, vms)
		require.Equal(t, wantTun, dumpFlows(t, h, "br-tun"), "%s br-tun over TLS", h.Name)
		require.Equal(t, wantInt, dumpFlows(t, h, "br-int"), "%s br-int over TLS", h.Name)
	}
	ok, out := a1.Ping(a3.IP, 3)
	require.True(t, ok, "a1 (h1) -> a3 (h3), both switches trusted: %s", out)

	// h2 is refused: its bridges stay without a flow and it is reported disconnected.
	require.Eventually(t, func() bool {
		return len(brtunLog(t, s.brtun, "switch handshake failed", h2.MgmtIP+":")) > 0
	}, 15*time.Second, 200*time.Millisecond, "brtun logs the refusal of h2's certificate")
	refusal := brtunLog(t, s.brtun, "switch handshake failed", h2.MgmtIP+":")[0]
	assert.Contains(t, refusal, "certificate", refusal)
	for _, h := range []*lab.Host{h1, h3} {
		assert.Empty(t, brtunLog(t, s.brtun, "switch handshake failed", h.MgmtIP+":"), "%s was not refused", h.Name)
	}
	assert.Empty(t, dumpFlows(t, h2, "br-tun"), "h2 br-tun has no flow")
	assert.Empty(t, dumpFlows(t, h2, "br-int"), "h2 br-int has no flow")
	var hv hostView
	s.brtun.MustDo(http.StatusOK, "GET", "/v1/hosts/h2", nil, &hv)
	for _, b := range []string{"br-int", "br-tun"} {
		assert.Equal(t, "disconnected", hv.Status.Bridges[b].OpenFlow, "h2 %s", b)
	}
	ok, out = a2.Ping(a1.IP, 2)
	assert.False(t, ok, "a2 sits behind a refused switch: %s", out)
}

// TestOVSDBOverSSL: h1's ovsdb-server also listens on pssl:6641 (ovs-vsctl
// set-ssl and set-manager, as on a real host); brtun registers h1 at
// ssl:IP:6641 with --ovsdb-tls-*, builds its bridges and tunnels over it and
// the host converges and carries tenant traffic.
func TestOVSDBOverSSL(t *testing.T) {
	l := lab.New(t, lab.Options{Hosts: 2})
	p := newPKI(t, l.Dir)
	ctl := p.sign("brtun", "controller")
	db := p.sign("h1", "switch")
	h1, h2 := l.Hosts[0], l.Hosts[1]
	_, err := h1.Vsctl("set-ssl", db.Key, db.Cert, p.controllerCA(), "--", "set-manager", "pssl:6641:"+h1.MgmtIP)
	require.NoError(t, err)
	sslAddr := net.JoinHostPort(h1.MgmtIP, "6641")
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", sslAddr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "ovsdb-server on h1 listens on pssl:6641")
	h1.OVSDB = "ssl:" + sslAddr // newScenarioOn registers h1 here

	s := newScenarioOn(t, l, daemonOptions{Advertise: true, ExtraArgs: []string{
		"--ovsdb-tls-cert", ctl.Cert, "--ovsdb-tls-key", ctl.Key, "--ovsdb-tls-ca", p.switchCA(),
	}})
	s.network("blue", topology.VXLAN, 5001)
	a1 := s.vm(h1, "a1", "blue", "02:00:00:00:01:01", "198.18.0.1/24")
	a2 := s.vm(h2, "a2", "blue", "02:00:00:00:01:02", "198.18.0.2/24")
	s.waitApplied(30 * time.Second)

	conns, err := h1.Exec("ss", "-Htn", "state", "established", "( sport = :6641 )")
	require.NoError(t, err)
	assert.Contains(t, conns, l.ControllerIP, "brtun holds an OVSDB session on h1's ssl port")
	nets := []topology.Network{{Name: "blue", Type: topology.VXLAN, SegmentID: 5001, MACLearning: true}}
	wantTun, wantInt := expectedFlows(t, l, h1, nets, []*tenantVM{a1, a2})
	require.Equal(t, wantTun, dumpFlows(t, h1, "br-tun"))
	require.Equal(t, wantInt, dumpFlows(t, h1, "br-int"))
	ok, out := a1.Ping(a2.IP, 3)
	require.True(t, ok, "a1 (h1, managed over OVSDB ssl:) -> a2: %s", out)
}
