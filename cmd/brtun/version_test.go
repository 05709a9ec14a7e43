package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/testbed"
)

func TestBuildInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newBuildInfo())
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, families, 1)
	assert.Equal(t, "brtun_build_info", families[0].GetName())
	require.Len(t, families[0].GetMetric(), 1)
	m := families[0].GetMetric()[0]
	assert.Equal(t, 1.0, m.GetGauge().GetValue())
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	assert.Equal(t, map[string]string{"version": buildVersion(), "go_version": runtime.Version()}, labels)
}

// TestMakeBuildInjectsTheVersion builds brtun with the Makefile's build
// target and finds the version in --version, `version` and the
// brtun_build_info metric of a running `brtun serve`.
func TestMakeBuildInjectsTheVersion(t *testing.T) {
	// The default VERSION is git describe's.
	describe, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	require.NoError(t, err)
	dry, err := makeCommand("-n", "-C", "../..", "build", "BIN=/nonexistent/brtun").CombinedOutput()
	require.NoError(t, err, "%s", dry)
	assert.Contains(t, string(dry), `-ldflags "-X main.version=`+strings.TrimSpace(string(describe))+`"`)

	bin := filepath.Join(t.TempDir(), "brtun")
	out, err := makeCommand("-C", "../..", "build", "BIN="+bin, "VERSION=v9.9.9-test").CombinedOutput()
	require.NoError(t, err, "%s", out)
	line := "brtun v9.9.9-test (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	assert.Equal(t, line, runBinary(t, bin, "--version"))
	assert.Equal(t, line, runBinary(t, bin, "version"))

	api := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1"))
	b := testbed.StartBrtun(t, testbed.BrtunOptions{
		Binary: bin,
		Args: []string{"--api-listen", api, "--data-dir", t.TempDir(),
			"--openflow-listen", "tcp:127.0.0.1:" + strconv.Itoa(testbed.FreePort(t, "127.0.0.1"))},
		API: "http://" + api,
	})
	res, err := http.Get(b.API + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), `brtun_build_info{go_version="`+runtime.Version()+`",version="v9.9.9-test"} 1`+"\n")
	assert.Equal(t, 0, b.Stop(t, 10*time.Second), "output: %s", b.Log())

	// Control: plain go build has no injected version.
	plain := runBinary(t, testbed.BrtunBinary(t), "--version")
	assert.NotContains(t, plain, "v9.9.9-test")
	assert.Regexp(t, `^brtun \S+ \(go1\.`, plain)
}

// makeCommand runs make without what an outer make (make test-unit
// VERSION=x) passes down in the environment.
func makeCommand(args ...string) *exec.Cmd {
	cmd := exec.Command("make", args...)
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VERSION":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}
