package dhcpclient

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Events reads complete lines only: the script may be writing the last.
func TestEventsSkipAnUnfinishedLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.events")
	require.NoError(t, os.WriteFile(file, []byte("reason=PREINIT\n"+
		"reason=BOUND new_ip_address=198.18.0.2 new_routers=198.18.0.1 new_domain_name_servers=198.18.0.2,198.18.0.3\n"+
		"reason=bound ip=198.18.0.4 router=198.18.0.1\n"+
		"reason=RENEW new_ip_addr"), 0o644))
	ev := Events(file)
	require.Len(t, ev, 3)
	assert.Equal(t, Event{"reason": "PREINIT"}, ev[0])
	assert.Equal(t, "198.18.0.2", ev[1].IP(), "dhclient's new_ip_address")
	assert.Equal(t, "198.18.0.2,198.18.0.3", ev[1]["new_domain_name_servers"])
	assert.Equal(t, "198.18.0.4", ev[2].IP(), "udhcpc's ip")
	assert.Equal(t, 1, Count(file, "BOUND"))
	assert.Zero(t, Count(file, "RENEW"), "the unfinished line is not counted")
	assert.Empty(t, Events(filepath.Join(t.TempDir(), "missing")))
}

// The script records a call as the client makes it (here dhclient's
// PREINIT, which applies nothing), and the command lines are the clients'.
func TestScriptAndCommandLines(t *testing.T) {
	c := &Client{Netns: "unused", Iface: "eth0", Dir: t.TempDir()}
	script, events := c.Script(t, "run")
	cmd := exec.Command(script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "reason=PREINIT", "new_routers=198.18.0.1 198.18.0.254", "interface=eth0"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, []Event{{"reason": "PREINIT", "new_routers": "198.18.0.1,198.18.0.254"}}, Events(events))
	assert.Equal(t, []string{"dhclient", "-6", "-d", "-v", "-sf", script, "-pf", filepath.Join(c.Dir, "r6.pid"),
		"-lf", filepath.Join(c.Dir, "r6.leases"), "-1", "eth0"}, c.Dhclient("r6", script, true, "-1"))
	assert.Equal(t, []string{"busybox", "udhcpc", "-i", "eth0", "-f", "-O", "mtu", "-O", "staticroutes", "-s", script, "-t", "5"},
		c.Udhcpc(script, "-t", "5"))
}
