//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
	"github.com/brtun/brtun/testbed/lab"
	"github.com/brtun/brtun/topology"
)

// daemon is a running `brtun serve` next to a lab, with the helpers the
// tests use to talk to its API.
type daemon struct {
	*testbed.Brtun
	t       *testing.T
	dataDir string
	OFPort  int
	// Revision is the highest store revision a write answered with
	// (X-Brtun-Revision).
	Revision uint64
	logPath  string
	ofScheme string       // tcp or ssl
	token    string       // sent by Do as a bearer token when set
	client   *http.Client // trusts APICA when set
}

// daemonOptions configure startBrtun.
type daemonOptions struct {
	Advertise     bool          // write the controller target into the bridges
	DriftInterval time.Duration // default 60s
	ExtraArgs     []string      // more `brtun serve` flags (a repeated flag wins over the default)
	Token         string        // API bearer token Do sends (the daemon's --api-token-file is in ExtraArgs)
	// APICA is the CA file of the API's TLS certificate (--api-tls-* in
	// ExtraArgs, certificate for "localhost"): the API is then
	// https://localhost:PORT and Do trusts this CA.
	APICA       string
	OpenFlowSSL bool // listen on ssl: (--openflow-tls-* in ExtraArgs); Target is ssl:
	// Name tells apart several daemons next to one lab (replicas): it
	// suffixes their data directory and log file.
	Name string
	// TunnelPorts is --tunnel-ports; "" leaves brtun's default (per-peer).
	TunnelPorts topology.TunnelPortMode
}

// startBrtun starts `brtun serve` with its OpenFlow listener on the lab's
// management LAN and its API on loopback; it is killed in t.Cleanup.
func startBrtun(t *testing.T, l *lab.Lab, o daemonOptions) *daemon {
	t.Helper()
	apiPort, ofPort := testbed.FreePort(t, "127.0.0.1"), testbed.FreePort(t, l.ControllerIP)
	suffix := ""
	if o.Name != "" {
		suffix = "-" + o.Name
	}
	d := &daemon{
		t:        t,
		dataDir:  filepath.Join(l.Dir, "brtun-data"+suffix),
		OFPort:   ofPort,
		logPath:  filepath.Join(l.Dir, "brtun"+suffix+".log"),
		ofScheme: "tcp",
		token:    o.Token,
		client:   http.DefaultClient,
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	if o.OpenFlowSSL {
		d.ofScheme = "ssl"
	}
	if o.APICA != "" {
		pem, err := os.ReadFile(o.APICA)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem), "no certificate in %s", o.APICA)
		api = fmt.Sprintf("https://localhost:%d", apiPort)
		d.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	if o.DriftInterval == 0 {
		o.DriftInterval = 60 * time.Second
	}
	args := []string{
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--openflow-listen", fmt.Sprintf("%s:%s:%d", d.ofScheme, l.ControllerIP, ofPort),
		"--data-dir", d.dataDir,
		"--drift-interval", o.DriftInterval.String(),
		"--log-level", "debug",
	}
	if o.Advertise {
		args = append(args, "--openflow-advertise", d.Target(l))
	}
	if o.TunnelPorts != "" {
		args = append(args, "--tunnel-ports", string(o.TunnelPorts))
	}
	args = append(args, o.ExtraArgs...)
	d.Brtun = testbed.StartBrtun(t, testbed.BrtunOptions{Args: args, API: api, Client: d.client, LogPath: d.logPath})
	return d
}

// Target is the OpenFlow controller target of this daemon.
func (d *daemon) Target(l *lab.Lab) string {
	return fmt.Sprintf("%s:%s:%d", d.ofScheme, l.ControllerIP, d.OFPort)
}

// Start runs the daemon again with its Args and waits until /healthz
// answers.
func (d *daemon) Start() {
	d.t.Helper()
	d.Brtun.Start(d.t)
}

// Do sends a JSON request and decodes a JSON answer into out (when not nil).
// It returns the HTTP status.
func (d *daemon) Do(method, path string, body, out any) int {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(d.t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.API+path, rd)
	require.NoError(d.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.client.Do(req)
	require.NoError(d.t, err)
	defer resp.Body.Close()
	if rev, err := strconv.ParseUint(resp.Header.Get("X-Brtun-Revision"), 10, 64); err == nil && rev > d.Revision {
		d.Revision = rev
	}
	data, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(d.t, json.Unmarshal(data, out), "decode %s %s: %s", method, path, data)
	}
	return resp.StatusCode
}

// MustDo is Do that requires the given status.
func (d *daemon) MustDo(want int, method, path string, body, out any) {
	d.t.Helper()
	var raw json.RawMessage
	got := d.Do(method, path, body, &raw)
	require.Equal(d.t, want, got, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(d.t, json.Unmarshal(raw, out))
	}
}
