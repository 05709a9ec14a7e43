//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// chromium runs Debian's headless Chromium with a fresh profile and the
// flags that keep it off the network.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "install Debian's chromium package (make test does)")
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,900", "--virtual-time-budget=6000"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	require.NoError(t, err, "chromium %v", args)
	return string(out)
}

// TestTopologyPageRendersThreeHosts renders GET /ui in headless Chromium
// while brtun manages three real lab hosts: the hosts, the tunnel mesh and
// each host's VLAN <-> segment mapping appear, with live status, and a
// screenshot is saved.
func TestTopologyPageRendersThreeHosts(t *testing.T) {
	s := newScenario(t, 3, daemonOptions{Advertise: true})
	s.network("blue", topology.VXLAN, 5001)
	s.network("red", topology.GRE, 5001)
	s.vm(s.lab.Hosts[0], "b1", "blue", "02:00:00:00:0b:01", "198.18.0.1/24")
	s.vm(s.lab.Hosts[1], "b2", "blue", "02:00:00:00:0b:02", "198.18.0.2/24")
	s.vm(s.lab.Hosts[2], "r3", "red", "02:00:00:00:0e:03", "198.18.0.3/24")
	s.waitApplied(30 * time.Second)

	dom := chromium(t, "--dump-dom", s.brtun.API+"/ui")
	for _, h := range []string{"h1", "h2", "h3"} {
		require.Regexp(t, `data-host="`+h+`"`, dom, "host %s drawn", h)
	}
	for _, pair := range []string{"h1 h2", "h1 h3", "h2 h3"} {
		require.Regexp(t, `class="edge[^"]*" data-hosts="`+pair+`"`, dom, "tunnel edge %s drawn", pair)
	}
	require.Len(t, regexp.MustCompile(`data-openflow="connected"`).FindAllString(dom, -1), 6, "both bridges of the three hosts show connected")
	require.Len(t, regexp.MustCompile(`data-ovsdb="connected"`).FindAllString(dom, -1), 3)
	require.Regexp(t, `data-network="blue" data-vlan="1" data-segment="vxlan:5001"`, dom)
	require.Regexp(t, `data-network="red" data-vlan="1" data-segment="gre:5001"`, dom)

	shot := filepath.Join(os.TempDir(), "brtun-ui.png")
	chromium(t, "--screenshot="+shot, s.brtun.API+"/ui")
	info, err := os.Stat(shot)
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(10_000), "a real screenshot, not an empty image")
	t.Logf("screenshot of the topology page: %s", shot)
}
