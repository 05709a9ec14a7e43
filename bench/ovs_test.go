//go:build bench

package bench

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/brtun/brtun/testbed"
)

// ovs is a private Open vSwitch on the dummy datapath (testbed.StartOVS) in
// root/name, name being the host brtun knows it as.
type ovs struct {
	*testbed.Switch
	name string
}

func startOVS(t testing.TB, root, name string) *ovs {
	t.Helper()
	return &ovs{Switch: testbed.StartOVS(t, filepath.Join(root, name)), name: name}
}

// waitIdle waits up to d until the switch's ovs-vswitchd used less than a
// quarter of a CPU over a second: after thousands of ports were added it
// goes on working for a while after brtun has applied, and a timing taken
// then measures that work.
func (o *ovs) waitIdle(t testing.TB, d time.Duration) {
	t.Helper()
	pid := o.VswitchdPID()
	deadline := time.Now().Add(d)
	for last := cpuSeconds(pid); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now := cpuSeconds(pid)
		if now-last < 0.25 {
			return
		}
		last = now
	}
	t.Logf("%s's ovs-vswitchd still busy after %s", o.name, d)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitTrue(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	if !testbed.Poll(d, 10*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
