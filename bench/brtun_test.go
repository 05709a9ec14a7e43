//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
)

// brtun is a `brtun serve` process with its API and its OpenFlow listener
// on one address (loopback, or a lab's controller address), the latter
// written into every bridge it manages.
type brtun struct {
	*testbed.Brtun
	t       testing.TB
	client  *http.Client
	logPath string
}

func startBrtun(t testing.TB, bin, dir string) *brtun {
	t.Helper()
	return startBrtunOn(t, bin, dir, "127.0.0.1")
}

// startBrtunOn starts brtun with its API and OpenFlow listener on ip (a
// lab's controller address, which its hosts' namespaces reach) and extra
// flags.
func startBrtunOn(t testing.TB, bin, dir, ip string, extra ...string) *brtun {
	t.Helper()
	apiPort, ofPort := testbed.FreePort(t, ip), testbed.FreePort(t, ip)
	must(t, os.MkdirAll(dir, 0o755))
	b := &brtun{t: t, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}, logPath: filepath.Join(dir, "brtun.log")}
	b.Brtun = testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary: bin,
		Args: append([]string{
			"--api-listen", fmt.Sprintf("%s:%d", ip, apiPort),
			"--openflow-listen", fmt.Sprintf("tcp:%s:%d", ip, ofPort),
			"--openflow-advertise", fmt.Sprintf("tcp:%s:%d", ip, ofPort),
			"--data-dir", filepath.Join(dir, "data"), "--drift-interval", "1h", "--log-level", "warn", "--pprof"}, extra...),
		API:     fmt.Sprintf("http://%s:%d", ip, apiPort),
		Client:  b.client,
		LogPath: b.logPath,
	})
	return b
}

// Start runs the process again and waits until /healthz answers.
func (b *brtun) Start() {
	b.t.Helper()
	b.Brtun.Start(b.t)
}

func (b *brtun) pid() int { return b.PID() }

// do sends a JSON request; it returns the status and the X-Brtun-Revision.
func (b *brtun) do(method, path string, body any) (int, uint64, error) {
	return b.call(method, path, body, nil)
}

// call is do that decodes a successful answer into out (when not nil).
func (b *brtun) call(method, path string, body, out any) (int, uint64, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, 0, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.API+path, rd)
	if err != nil {
		return 0, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	rev, _ := strconv.ParseUint(resp.Header.Get("X-Brtun-Revision"), 10, 64)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, rev, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, rev, fmt.Errorf("%s %s: %w: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, rev, nil
}

// get decodes the answer of a GET into out.
func (b *brtun) get(path string, out any) error {
	resp, err := b.client.Get(b.API + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, data)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (b *brtun) mustDo(method, path string, body any) uint64 {
	b.t.Helper()
	_, rev, err := b.do(method, path, body)
	must(b.t, err)
	return rev
}

type hostStatus struct {
	Status struct {
		OVSDB   string `json:"ovsdb"`
		Bridges map[string]struct {
			OpenFlow        string `json:"openflow"`
			AppliedRevision uint64 `json:"applied_revision"`
		} `json:"bridges"`
	} `json:"status"`
}

// applied reports whether both bridges of host are connected and applied rev.
func (b *brtun) applied(host string, rev uint64) bool {
	resp, err := b.client.Get(b.API + "/v1/hosts/" + host)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var hs hostStatus
	if json.NewDecoder(resp.Body).Decode(&hs) != nil {
		return false
	}
	for _, br := range []string{"br-int", "br-tun"} {
		st := hs.Status.Bridges[br]
		if st.OpenFlow != "connected" || st.AppliedRevision < rev {
			return false
		}
	}
	return hs.Status.OVSDB == "connected"
}

func (b *brtun) waitApplied(d time.Duration, rev uint64, hosts ...string) {
	b.t.Helper()
	for _, h := range hosts {
		waitTrue(b.t, d, func() bool { return b.applied(h, rev) }, fmt.Sprintf("%s to apply revision %d", h, rev))
	}
}

// logSize is the size of brtun's log now: where logSince reads from.
func (b *brtun) logSize() int64 {
	fi, err := os.Stat(b.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince is what brtun logged from offset off on, without reading what
// came before.
func (b *brtun) logSince(off int64) string {
	f, err := os.Open(b.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// metrics reads every sample of /metrics whose name starts with prefix.
func (b *brtun) metrics(prefix string) map[string]float64 {
	out := map[string]float64{}
	resp, err := b.client.Get(b.API + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

// connections is how many OpenFlow connections brtun has accepted.
func (b *brtun) connections() float64 {
	return b.metrics("brtun_openflow_connections_total")["brtun_openflow_connections_total"]
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssBytes is the process's resident set size.
func rssBytes(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// profile saves a CPU profile of brtun taken over the next d.
func (b *brtun) profile(d time.Duration, path string) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := b.client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b.API, int(d.Seconds())))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			return
		}
		_, _ = io.Copy(f, resp.Body)
		_ = f.Close()
	}()
	return func() { <-done }
}
