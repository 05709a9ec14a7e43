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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/integration/lab"
)

// The brtun binary under test, built once per test process.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func brtunBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "brtun-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "brtun")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/brtun/brtun/cmd/brtun").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// daemon is a running `brtun serve` next to a lab.
type daemon struct {
	t       *testing.T
	args    []string
	dataDir string
	API     string // http://127.0.0.1:PORT
	OFPort  int
	// Revision is the highest store revision a write answered with
	// (X-Brtun-Revision).
	Revision uint64
	cmd      *exec.Cmd
	done     chan struct{}
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
}

// startBrtun starts `brtun serve` with its OpenFlow listener on the lab's
// management LAN and its API on loopback; it is killed in t.Cleanup.
func startBrtun(t *testing.T, l *lab.Lab, o daemonOptions) *daemon {
	t.Helper()
	bin := brtunBinary(t)
	apiPort, ofPort := freePort(t, "127.0.0.1"), freePort(t, l.ControllerIP)
	suffix := ""
	if o.Name != "" {
		suffix = "-" + o.Name
	}
	d := &daemon{
		t:        t,
		dataDir:  filepath.Join(l.Dir, "brtun-data"+suffix),
		API:      fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		OFPort:   ofPort,
		logPath:  filepath.Join(l.Dir, "brtun"+suffix+".log"),
		ofScheme: "tcp",
		token:    o.Token,
		client:   http.DefaultClient,
	}
	if o.OpenFlowSSL {
		d.ofScheme = "ssl"
	}
	if o.APICA != "" {
		pem, err := os.ReadFile(o.APICA)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem), "no certificate in %s", o.APICA)
		d.API = fmt.Sprintf("https://localhost:%d", apiPort)
		d.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	if o.DriftInterval == 0 {
		o.DriftInterval = 60 * time.Second
	}
	d.args = []string{bin, "serve",
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--openflow-listen", fmt.Sprintf("%s:%s:%d", d.ofScheme, l.ControllerIP, ofPort),
		"--data-dir", d.dataDir,
		"--drift-interval", o.DriftInterval.String(),
		"--log-level", "debug",
	}
	if o.Advertise {
		d.args = append(d.args, "--openflow-advertise", d.Target(l))
	}
	d.args = append(d.args, o.ExtraArgs...)
	d.Start()
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			d.printLog()
		}
	})
	return d
}

// Target is the OpenFlow controller target of this daemon.
func (d *daemon) Target(l *lab.Lab) string {
	return fmt.Sprintf("%s:%s:%d", d.ofScheme, l.ControllerIP, d.OFPort)
}

// Start runs the daemon and waits until /healthz answers.
func (d *daemon) Start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(d.t, err)
	d.cmd = exec.Command(d.args[0], d.args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(d.t, d.cmd.Start())
	d.done = make(chan struct{})
	go func() { _ = d.cmd.Wait(); _ = logf.Close(); close(d.done) }()
	require.Eventually(d.t, func() bool {
		resp, err := d.client.Get(d.API + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "brtun did not come up; see %s", d.logPath)
}

// Kill stops the daemon with SIGKILL (no goodbye to anyone).
func (d *daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// printLog shows the daemon's log lines of level info and above.
func (d *daemon) printLog() {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && !strings.Contains(line, `"level":"debug"`) {
			keep = append(keep, line)
		}
	}
	if len(keep) > 60 {
		keep = keep[len(keep)-60:]
	}
	d.t.Logf("brtun log (%s), last lines:\n%s", d.logPath, strings.Join(keep, "\n"))
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

// freePort returns a TCP port that is free on ip right now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
