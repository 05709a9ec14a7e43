//go:build linux

// Package examples_test checks the files in examples/: the scripts parse and
// pass shellcheck, the systemd unit passes `systemd-analyze verify`, the
// settings they use are real `brtun serve` flags, and two-tenants.sh builds
// its scenario against a running `brtun serve`.
//
// The tests need bash, shellcheck and systemd-analyze (Debian packages
// bash, shellcheck, systemd) and fail when one is missing.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
)

// lookTool finds a program the tests need, failing with what to install.
func lookTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	require.NoError(t, err, "%s is needed by these tests: install the Debian package %s (`make deps` does)", name, debianPackage)
	return path
}

// serveFlags lists the flags of `brtun serve` (without the leading --).
func serveFlags(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	require.Contains(t, flags, "api-listen", "parsed `brtun serve --help`: %s", out)
	return flags
}

// envFlag is the flag a BRTUN_* variable sets: BRTUN_API_LISTEN -> api-listen.
func envFlag(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "BRTUN_")), "_", "-")
}

// readEnvFile parses KEY=VALUE lines, skipping comments and blank lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	env := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: not KEY=VALUE: %q", path, line)
		env[k] = v
	}
	require.NoError(t, sc.Err())
	return env
}

func TestScriptsAreShellClean(t *testing.T) {
	bash := lookTool(t, "bash", "bash")
	shellcheck := lookTool(t, "shellcheck", "shellcheck")
	scripts, err := filepath.Glob("*.sh")
	require.NoError(t, err)
	require.NotEmpty(t, scripts)
	for _, s := range scripts {
		out, err := exec.Command(bash, "-n", s).CombinedOutput()
		assert.NoError(t, err, "bash -n %s: %s", s, out)
		out, err = exec.Command(shellcheck, s).CombinedOutput()
		assert.NoError(t, err, "shellcheck %s:\n%s", s, out)
		info, err := os.Stat(s)
		require.NoError(t, err)
		assert.NotZero(t, info.Mode()&0o111, "%s is executable", s)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze := lookTool(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile("brtun.service")
	require.NoError(t, err)
	unit := string(raw)
	for _, line := range []string{
		"ExecStart=/usr/local/bin/brtun serve",
		"EnvironmentFile=/etc/brtun/brtun.env",
		"StateDirectory=brtun",
		"LoadCredential=api-token:/etc/brtun/api-token",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
	} {
		assert.Contains(t, unit, "\n"+line+"\n")
	}

	// verify checks that ExecStart is executable: point it at a fresh build.
	bin := testbed.BrtunBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "brtun.service")
	unit = strings.Replace(unit, "ExecStart=/usr/local/bin/brtun ", "ExecStart="+bin+" ", 1)
	require.NoError(t, os.WriteFile(path, []byte(unit), 0o644))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify: %s", out)
	// verify exits 0 on values it ignores ("Failed to parse ..., ignoring",
	// "Unknown key name"): any word about the unit is a finding.
	for _, line := range strings.Split(string(out), "\n") {
		assert.NotContains(t, line, "brtun.service", "systemd-analyze verify")
	}
}

func TestSettingsAreServeFlags(t *testing.T) {
	flags := serveFlags(t, testbed.BrtunBinary(t))

	env := readEnvFile(t, "brtun.env")
	for _, k := range []string{"BRTUN_API_LISTEN", "BRTUN_OPENFLOW_LISTEN", "BRTUN_OPENFLOW_ADVERTISE", "BRTUN_DATA_DIR"} {
		assert.Contains(t, env, k, "brtun.env sets %s", k)
	}
	for k := range env {
		assert.Contains(t, flags, envFlag(k), "brtun.env: %s is no `brtun serve` flag", k)
	}
	assert.Equal(t, "/var/lib/brtun", env["BRTUN_DATA_DIR"], "the unit's StateDirectory=brtun")

	docker, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	vars := regexp.MustCompile(`\bBRTUN_[A-Z_]+`).FindAllString(string(docker), -1)
	require.NotEmpty(t, vars)
	for _, k := range vars {
		assert.Contains(t, flags, envFlag(k), "Dockerfile: %s is no `brtun serve` flag", k)
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	docker := string(raw)
	assert.Contains(t, docker, "NOT BUILT HERE", "the header says it was never built")
	from := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(docker, -1)
	require.Len(t, from, 2, "a build stage and a runtime stage")

	// The builder's Go is the one go.mod asks for.
	mod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(mod))
	require.NotNil(t, goVersion)
	assert.True(t, strings.HasPrefix(from[0][1], "golang:"+goVersion[1]+"-") || from[0][1] == "golang:"+goVersion[1],
		"build stage %s uses Go %s as go.mod does", from[0][1], goVersion[1])
	assert.Contains(t, docker, "go build")
	assert.Contains(t, docker, "./cmd/brtun")
	assert.Contains(t, docker, "COPY --from=build /out/brtun /usr/local/bin/brtun")
	assert.Contains(t, docker, `ENTRYPOINT ["/usr/local/bin/brtun", "serve"]`)
	assert.Regexp(t, `(?m)^USER \S+`, docker, "the daemon does not run as root")
}

// startServe runs `brtun serve` with its API and OpenFlow listener on
// 127.0.0.1 and its state in a temporary directory, and returns the API's
// URL. env (BRTUN_*=...) overrides those settings. It is stopped with
// SIGTERM when the test ends, and must stop within 15 s.
func startServe(t *testing.T, bin string, env ...string) string {
	t.Helper()
	apiAddr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1"))
	b := testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary: bin,
		API:    "http://" + apiAddr,
		Env: append([]string{
			"BRTUN_API_LISTEN=" + apiAddr,
			"BRTUN_OPENFLOW_LISTEN=tcp:127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1")),
			"BRTUN_OPENFLOW_ADVERTISE=",
			"BRTUN_DATA_DIR=" + t.TempDir(),
		}, env...), // later entries win
	})
	t.Cleanup(func() {
		if !b.Terminate(15 * time.Second) {
			t.Errorf("brtun serve did not stop within 15s of SIGTERM")
		}
	})
	return b.API
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "GET %s", url)
	require.NoError(t, json.NewDecoder(res.Body).Decode(v))
}

// The parts of the API's answers the scenario checks.
type (
	host struct {
		Name         string `json:"name"`
		OVSDB        string `json:"ovsdb"`
		TunnelIP     string `json:"tunnel_ip"`
		DatapathType string `json:"datapath_type"`
	}
	network struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		SegmentID uint32 `json:"segment_id"`
	}
	port struct {
		Name      string   `json:"name"`
		Host      string   `json:"host"`
		Interface string   `json:"interface"`
		MAC       string   `json:"mac"`
		IPs       []string `json:"ips"`
		LocalVLAN uint16   `json:"local_vlan"`
	}
)

// runScript runs two-tenants.sh with args against server and returns its
// stdout. env holds the script's settings (WAIT=..., ...).
func runScript(t *testing.T, bin, server string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./two-tenants.sh", args...)
	cmd.Env = append(os.Environ(), "BRTUN="+bin, "BRTUN_SERVER="+server)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "two-tenants.sh %v\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	return stdout.String()
}

// TestTwoTenantsScript runs the example against a real `brtun serve` (no OVS
// hosts: it checks what the script asks brtun to build, not the dataplane).
func TestTwoTenantsScript(t *testing.T) {
	lookTool(t, "curl", "curl")
	bin := testbed.BrtunBinary(t)
	server := startServe(t, bin)

	// No OVS hosts here: nothing would ever apply the changes, so the script
	// does not wait for it. Port 1 keeps the controller away from any real
	// OVSDB a lab on this machine might run at 198.51.100.N:6640.
	env := []string{"WAIT=", "OVSDB_PORT=1"}
	out := runScript(t, bin, server, env, "up")
	assert.Contains(t, out, "Topology page: "+server+"/ui")

	var hosts struct{ Hosts []host }
	getJSON(t, server+"/v1/hosts", &hosts)
	require.Len(t, hosts.Hosts, 3)
	for i, h := range hosts.Hosts {
		n := i + 1
		assert.Equal(t, host{Name: fmt.Sprintf("h%d", n), OVSDB: fmt.Sprintf("tcp:198.51.100.%d:1", n),
			TunnelIP: fmt.Sprintf("192.0.2.%d", n), DatapathType: "system"}, h)
	}

	var networks struct{ Networks []network }
	getJSON(t, server+"/v1/networks", &networks)
	assert.Equal(t, []network{{"tenant-a", "vxlan", 100}, {"tenant-b", "gre", 100}}, networks.Networks)

	vlans := make(map[string][]uint16) // host -> local VLANs of its networks
	for _, tenant := range []string{"a", "b"} {
		var ports struct{ Ports []port }
		getJSON(t, server+"/v1/networks/tenant-"+tenant+"/ports", &ports)
		require.Len(t, ports.Ports, 3)
		for i, p := range ports.Ports {
			n := i + 1
			assert.Equal(t, fmt.Sprintf("%s%d", tenant, n), p.Name)
			assert.Equal(t, fmt.Sprintf("h%d", n), p.Host)
			assert.Equal(t, fmt.Sprintf("t%s%d", tenant, n), p.Interface)
			assert.Equal(t, fmt.Sprintf("02:00:00:00:0%s:0%d", tenant, n), p.MAC)
			assert.Equal(t, []string{fmt.Sprintf("198.18.0.%d", n)}, p.IPs, "both tenants use the same addresses")
			vlans[p.Host] = append(vlans[p.Host], p.LocalVLAN)
		}
	}
	for h, v := range vlans {
		slices.Sort(v)
		assert.Equal(t, []uint16{1, 2}, v, "the two networks have their own local VLAN on %s", h)
	}

	runScript(t, bin, server, env, "down")
	getJSON(t, server+"/v1/hosts", &hosts)
	getJSON(t, server+"/v1/networks", &networks)
	assert.Empty(t, hosts.Hosts)
	assert.Empty(t, networks.Networks)
}
